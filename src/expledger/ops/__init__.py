"""The library's operations, one module each; every face (the `exp` CLI, the web dashboard,
the MCP server) calls these and only renders what they return.

Each operation returns a typed result whose `to_json()` is the command's `--json` payload
(the documented schema in references/experiment-format.md, without the `ok`/`version`
envelope), so the CLI, the web API and the MCP tools serialise a result one way.

    search.py   list, queue: a page of experiments with the total that matched; status counts
    show.py     one experiment whole: record, step summaries, renumbered namesakes
    compare.py  experiments side by side
    check.py    was this config tried already?
    record.py   add, start, result, cancel
    export.py   the paper table: mean ± std per config
    notes.py    research notes per task (notes), and next.py: what to run next
    files.py    the files a run recorded, checked here
    logs.py     a run's output, once or as it grows
    steps.py    step series for charts, downsampled
    workers.py  the workers sharing the store
    doctor.py   checking the ledger; sync.py: merge and copy; plot.py; runs.py (run, worker)
    edit.py     tags and summary; again.py: a finished experiment queued again as a new one

Operations validate their input before they touch the store (bad input changes nothing),
and a read first marks lost runs FAILED once per store object (`Store.reap_once`), so no
face shows a dead run as running.
"""
