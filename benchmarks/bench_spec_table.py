"""Our figures for each row of SPEC.md's comparison table (MLflow, trackio, Aim), same workloads.

    python benchmarks/bench_spec_table.py [--repeat 5]

Rows: import of the package; creating 1,000 runs with 10 params, 5 metrics and 2 tags through
the Python API; step logging one call per step; the CLI listing a 10,000-run store; 4 processes
creating 250 runs each at once (checking that all 1,000 are kept). Runs on the JSONL store in a
scratch folder. The other tools' figures are the SPEC's, measured on the same kind of machine.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CREATE = """
import sys, time
from expledger.models import Status
from expledger.store import open_store
path, count = sys.argv[1], int(sys.argv[2])
start = time.perf_counter()
with open_store(path) as store:
    for n in range(count):
        exp = store.add(name=f"run {n}", task="bench", model="m", tags=["a", "b"],
                        params={f"p{i}": n * 0.1 + i for i in range(10)})
        store.result(exp.id, status=Status.SUCCESS, metrics={f"m{i}": n * 0.01 + i for i in range(5)})
print(time.perf_counter() - start)
"""


def median(values):
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    python = sys.executable
    rows = []
    imports = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        subprocess.run([python, "-c", "import expledger; expledger.Run"], check=True)
        imports.append(time.perf_counter() - start)
    bare = median([_timed([python, "-c", "pass"]) for _ in range(args.repeat)])
    rows.append(("import of the package (incl. the API)", f"{median(imports):.2f} s (bare python {bare:.2f} s)"))
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        one = str(work / "one" / "experiments.jsonl")
        elapsed = float(subprocess.run([python, "-c", CREATE, one, "1000"], check=True, capture_output=True,
                                       text=True).stdout)
        rows.append(("create 1,000 runs (10 params, 5 metrics, 2 tags)", f"{1000 / elapsed:,.0f} runs/s"))
        ten = str(work / "ten" / "experiments.jsonl")
        subprocess.run([python, "-c", CREATE, ten, "10000"], check=True, capture_output=True)
        subprocess.run([python, "-m", "expledger", "--store", ten, "list", "--limit", "1"], capture_output=True)
        listing = median([_timed([python, "-m", "expledger", "--store", ten, "list", "--limit", "0"])
                          for _ in range(args.repeat)])
        rows.append(("CLI listing of a 10,000-run store (all rows)", f"{listing:.2f} s"))
        four = str(work / "four" / "experiments.jsonl")
        start = time.perf_counter()
        procs = [subprocess.Popen([python, "-c", CREATE, four, "250"], stdout=subprocess.DEVNULL) for _ in range(4)]
        for proc in procs:
            proc.wait()
        wall = time.perf_counter() - start
        from expledger.store import open_store

        with open_store(four) as store:
            kept = store.search(limit=0).total
        rows.append(("4 processes x 250 runs at once", f"{'all' if kept == 1000 else kept} kept, {wall:.1f} s"))
    rows.append(("step logging, one call per step", "see benchmarks/bench_runs.py"))
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")


def _timed(argv) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
