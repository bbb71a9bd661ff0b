"""The index after the ledger file was replaced: a `git pull` that only appended lines (git
writes a new file) costs only the new lines; any other replacement rebuilds it."""

from __future__ import annotations

import os
import shutil

from expledger.store import open_store


def _read(path) -> tuple[int, dict]:
    with open_store(str(path)) as store:
        total = store.search(limit=0).total
        return total, store.index.counters()


def _pulled(path, tmp_path, names: list[str], *, edit: bool = False) -> None:
    """Replace the ledger by a new file, as git does: its lines (one edited, if asked) plus new ones."""
    other = tmp_path / "pulled" / "experiments.jsonl"
    other.parent.mkdir(exist_ok=True)
    shutil.copyfile(path, other)
    if edit:
        other.write_bytes(other.read_bytes().replace(b'"run 0"', b'"run X"', 1))
    with open_store(str(other)) as store:
        for name in names:
            store.add(name=name)
    os.replace(other, path)


def test_a_pull_that_appended_lines_is_caught_up_and_one_that_changed_them_rebuilds(tmp_path):
    path = tmp_path / "experiments.jsonl"
    with open_store(str(path)) as store:
        for n in range(30):
            store.add(name=f"run {n}")
    assert _read(path) == (30, {"builds": 1, "replaced": 0, "read_lines": 30})  # writes left it to the first read
    _pulled(path, tmp_path, ["new 1", "new 2"])
    assert _read(path) == (32, {"builds": 1, "replaced": 1, "read_lines": 2})  # only the new lines read
    _pulled(path, tmp_path, ["new 3"], edit=True)  # same length, same tail, another first line
    total, counters = _read(path)
    assert total == 33 and counters["builds"] == 2 and counters["read_lines"] == 33
    with open_store(str(path)) as store:
        assert store.get(1).name == "run X" and store.get(33).name == "new 3"
