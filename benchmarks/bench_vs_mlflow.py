"""The SPEC's comparison workloads run side by side on expledger and MLflow (sqlite backend).

    python benchmarks/bench_vs_mlflow.py --mlflow-python /path/to/venv-with-mlflow/bin/python
        [--runs 1000] [--points 2000] [--repeat 3]

Each workload runs in fresh processes of each tool's own interpreter, in a scratch folder:
import of the package; creating N runs with 10 params, 5 metrics and 2 tags; step logging,
one call per step; 4 processes creating 250 runs each at once (all must be kept).
The expledger side uses the interpreter running this script.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CREATE = {
    "expledger": """
import sys, time
from expledger.models import Status
from expledger.store import open_store
count = int(sys.argv[1])
start = time.perf_counter()
with open_store("ledger/experiments.jsonl") as store:
    for n in range(count):
        exp = store.add(name=f"run {n}", tags=["a", "b"], params={f"p{i}": n * 0.1 + i for i in range(10)})
        store.result(exp.id, status=Status.SUCCESS, metrics={f"m{i}": n * 0.01 + i for i in range(5)})
print(time.perf_counter() - start)
""",
    "mlflow": """
import sys, time, mlflow
mlflow.set_tracking_uri("sqlite:///mlflow.db")
count = int(sys.argv[1])
start = time.perf_counter()
for n in range(count):
    with mlflow.start_run(run_name=f"run {n}", tags={"a": "1", "b": "1"}):
        mlflow.log_params({f"p{i}": n * 0.1 + i for i in range(10)})
        mlflow.log_metrics({f"m{i}": n * 0.01 + i for i in range(5)})
print(time.perf_counter() - start)
""",
}

LOG = {
    "expledger": """
import sys, time, expledger
points = int(sys.argv[1])
run = expledger.start(name="log bench", store="ledger/experiments.jsonl")
start = time.perf_counter()
for step in range(points):
    run.log({"loss": 1.0 / (step + 1)}, step=step)
run.flush()
print(points / (time.perf_counter() - start))
run.result()
""",
    "mlflow": """
import sys, time, mlflow
mlflow.set_tracking_uri("sqlite:///mlflow.db")
points = int(sys.argv[1])
with mlflow.start_run():
    start = time.perf_counter()
    for step in range(points):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    print(points / (time.perf_counter() - start))
""",
}

IMPORT = {"expledger": "import expledger; expledger.Run", "mlflow": "import mlflow"}


def run(python: str, code: str, *args: str, cwd: Path) -> str:
    proc = subprocess.run([python, "-c", code, *args], cwd=cwd, capture_output=True, text=True, check=True)
    return proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""


def measure(tool: str, python: str, args) -> dict:
    figures = {}
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            run(python, IMPORT[tool], cwd=work)
            times.append(time.perf_counter() - start)
        figures["import"] = f"{statistics.median(times):.2f} s"
        elapsed = float(run(python, CREATE[tool], str(args.runs), cwd=work))
        figures["create"] = f"{args.runs / elapsed:,.0f} runs/s"
        rate = float(run(python, LOG[tool], str(args.points), cwd=work))
        figures["log"] = f"{rate:,.0f} points/s"
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        if tool == "mlflow":  # create the schema once, so 4 processes do not race to migrate it
            run(python, CREATE[tool], "1", cwd=work)
        start = time.perf_counter()
        procs = [subprocess.Popen([python, "-c", CREATE[tool], "250"], cwd=work, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL) for _ in range(4)]
        codes = [proc.wait() for proc in procs]
        wall = time.perf_counter() - start
        count = run(python, COUNT[tool], cwd=work)
        expected = 1000 + (1 if tool == "mlflow" else 0)
        kept = "all kept" if int(count) == expected and not any(codes) else f"{count} of {expected} kept"
        figures["4x250"] = f"{kept}, {wall:.1f} s"
    return figures


COUNT = {
    "expledger": "from expledger.store import open_store\n"
                 "print(open_store('ledger/experiments.jsonl').search(limit=0).total)",
    "mlflow": "import mlflow\nmlflow.set_tracking_uri('sqlite:///mlflow.db')\n"
              "print(len(mlflow.search_runs(search_all_experiments=True, max_results=50000)))",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mlflow-python", required=True, help="a Python that has mlflow installed")
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--points", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    results = {"expledger": measure("expledger", sys.executable, args),
               "mlflow": measure("mlflow", args.mlflow_python, args)}
    labels = {"import": "import of the package", "create": f"create {args.runs:,} runs (10 params, 5 metrics, 2 tags)",
              "log": "step logging, one call per step", "4x250": "4 processes x 250 runs at once"}
    print(f"{'workload':<48} {'expledger':>24} {'MLflow (sqlite)':>24}")
    for key, label in labels.items():
        print(f"{label:<48} {results['expledger'][key]:>24} {results['mlflow'][key]:>24}")


if __name__ == "__main__":
    main()
