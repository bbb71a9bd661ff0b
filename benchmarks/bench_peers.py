"""expledger, trackio and MLflow side by side: the same workloads, one run, one table.

    python benchmarks/bench_peers.py [--venvs DIR] [--runs 1000] [--points 5000]
                                     [--store-runs 10000] [--repeat 3] [--tools T,..] [--workloads W,..]

    # just the create figure, expledger against trackio (about a minute once the venvs exist):
    python benchmarks/bench_peers.py --tools expledger,trackio --workloads create

Each tool runs in a virtual environment of its own that this script creates once in --venvs
(default ~/.cache/expledger-bench), with pinned versions from PyPI: trackio 0.43.0, MLflow
3.17.2 (sqlite backend), and expledger from this checkout installed beside both of them, so
its provenance scans the 100+ packages a user of either would have. Every workload runs in
fresh processes of that tool's interpreter, in a scratch folder:
- import of the package (median of --repeat);
- create --runs runs through the tool's normal API, each with 10 params, 5 metrics, 2 tags
  (expledger.start + result; trackio.init + log + finish; mlflow.start_run + log_params + log_metrics),
  in one process, into a store that already exists (median of --repeat processes);
- step logging, one call per step, --points points;
- a store of --store-runs runs made the same way (4 processes at once), then a filtered query
  over it (a metric above a threshold and one param equal to a value; the time of the query
  in a process that has imported the tool) and the full CLI listing of it (wall time of the
  command, median of --repeat), and its size on disk;
- 4 processes x 250 runs at once, with a check that all 1,000 are kept.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PINS = {"trackio": ["trackio==0.43.0"], "mlflow": ["mlflow==3.17.2"]}
PINS["expledger"] = [*PINS["trackio"], *PINS["mlflow"]]
TOOLS = ("expledger", "trackio", "mlflow")
WORKLOADS = ("import", "create", "log", "store")
QUERY_VALUE = "b"  # runs with params.kind = b and metrics.m0 > 0.9: about 1 in 40

PREAMBLE = """
import sys, time
count, first = int(sys.argv[1]), int(sys.argv[2])
def params(n):
    out = {f"p{i}": round(n * 0.001 + i, 4) for i in range(9)}
    out["kind"] = "abcd"[n % 4]
    return out
def metrics(n):
    return {f"m{i}": round((n % 1000) / 1000 + i, 4) for i in range(5)}
"""

CREATE = {
    "expledger": PREAMBLE + """
import expledger
start = time.perf_counter()
for n in range(first, first + count):
    with expledger.start(name=f"run {n}", task="bench", model="m", params=params(n), tags=["a", "b"],
                         store="store/experiments.jsonl") as run:
        run.result(metrics=metrics(n))
print(time.perf_counter() - start)
""",
    "trackio": PREAMBLE + """
import trackio
start = time.perf_counter()
for n in range(first, first + count):
    trackio.init(project="bench", name=f"run {n}", config={**params(n), "tags": ["a", "b"]})
    trackio.log(metrics(n))
    trackio.finish()
print(time.perf_counter() - start)
""",
    "mlflow": PREAMBLE + """
import mlflow
mlflow.set_tracking_uri("sqlite:///store/mlflow.db")
start = time.perf_counter()
for n in range(first, first + count):
    with mlflow.start_run(run_name=f"run {n}", tags={"a": "1", "b": "1"}):
        mlflow.log_params(params(n))
        mlflow.log_metrics(metrics(n))
print(time.perf_counter() - start)
""",
}

LOG = {
    "expledger": """
import sys, time, expledger
points = int(sys.argv[1])
run = expledger.start(name="log bench", store="store/experiments.jsonl")
start = time.perf_counter()
for step in range(points):
    run.log({"loss": 1.0 / (step + 1)}, step=step)
run.flush()
print(points / (time.perf_counter() - start))
run.result()
""",
    "trackio": """
import sys, time, trackio
points = int(sys.argv[1])
trackio.init(project="logbench", name="log bench")
start = time.perf_counter()
for step in range(points):
    trackio.log({"loss": 1.0 / (step + 1)}, step=step)
trackio.finish()
print(points / (time.perf_counter() - start))
""",
    "mlflow": """
import sys, time, mlflow
mlflow.set_tracking_uri("sqlite:///store/mlflow.db")
points = int(sys.argv[1])
with mlflow.start_run(run_name="log bench"):
    start = time.perf_counter()
    for step in range(points):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    print(points / (time.perf_counter() - start))
""",
}

QUERY = {
    "expledger": f"""
import time
from expledger.store import open_store
store = open_store("store/experiments.jsonl")
start = time.perf_counter()
total = store.search(where='metrics.m0 > 0.9 and params.kind = {QUERY_VALUE}', limit=None).total
print(time.perf_counter() - start, total)
""",
    "trackio": f"""
import time
from trackio.sqlite_storage import SQLiteStorage
start = time.perf_counter()
rows = SQLiteStorage.query_project("bench", "SELECT DISTINCT c.run_name FROM configs c JOIN metrics m "
    "ON m.run_id = c.run_id WHERE json_extract(c.config, '$.kind') = '{QUERY_VALUE}' "
    "AND json_extract(m.metrics, '$.m0') > 0.9")
print(time.perf_counter() - start, len(rows["rows"]))
""",
    "mlflow": f"""
import time, mlflow
mlflow.set_tracking_uri("sqlite:///store/mlflow.db")
start = time.perf_counter()
found = mlflow.search_runs(search_all_experiments=True, max_results=50000,
                           filter_string="metrics.m0 > 0.9 and params.kind = '{QUERY_VALUE}'")
print(time.perf_counter() - start, len(found))
""",
}

COUNT = {
    "expledger": "from expledger.store import open_store\nprint(open_store('store/experiments.jsonl').search(limit=0).total)",
    "trackio": "from trackio.sqlite_storage import SQLiteStorage\n"
               "print(SQLiteStorage.query_project('bench', 'SELECT count(*) AS n FROM configs')['rows'][0]['n'])",
    "mlflow": "import mlflow\nmlflow.set_tracking_uri('sqlite:///store/mlflow.db')\n"
              "print(len(mlflow.search_runs(search_all_experiments=True, max_results=50000)))",
}

IMPORT = {"expledger": "import expledger; expledger.Run", "trackio": "import trackio", "mlflow": "import mlflow"}


def listing(tool: str, venv: Path) -> list[str]:
    """The tool's own CLI listing every run of the store."""
    return {
        "expledger": [str(venv / "bin/exp"), "--store", "store/experiments.jsonl", "list", "--limit", "0"],
        "trackio": [str(venv / "bin/trackio"), "list", "runs", "--project", "bench"],
        "mlflow": [str(venv / "bin/mlflow"), "runs", "list", "--experiment-id", "0"],
    }[tool]


def environment(tool: str, work: Path) -> dict:
    env = {**os.environ, "TRACKIO_DIR": str(work / "store"), "MLFLOW_TRACKING_URI": f"sqlite:///{work}/store/mlflow.db",
           "EXP_STORE": str(work / "store/experiments.jsonl"), "PYTHONWARNINGS": "ignore"}
    env.pop("PYTHONPATH", None)
    return env


def make_venv(tool: str, root: Path) -> Path:
    """The tool's venv with its pinned versions, created once; expledger reinstalled from this checkout."""
    venv = root / tool
    pip = [str(venv / "bin/python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    if not (venv / "bin/python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([*pip, *PINS[tool]], check=True)
    if tool == "expledger":  # from a copy, so the build leaves nothing in the checkout
        with tempfile.TemporaryDirectory() as folder:
            copy = Path(folder) / "expledger"
            shutil.copytree(REPO, copy, ignore=shutil.ignore_patterns(".git", "*.egg-info", "build", "__pycache__"))
            subprocess.run([*pip, "--force-reinstall", "--no-deps", str(copy)], check=True)
    return venv


def python_run(venv: Path, code: str, *args, work: Path, tool: str) -> str:
    proc = subprocess.run([str(venv / "bin/python"), "-c", code, *map(str, args)], cwd=work, capture_output=True,
                          text=True, env=environment(tool, work))
    if proc.returncode:
        raise RuntimeError(f"{tool}: {proc.stderr.strip()[-2000:]}")
    lines = proc.stdout.strip().splitlines()
    return lines[-1] if lines else ""


def parallel(venv: Path, tool: str, work: Path, processes: int, each: int, first: int = 0) -> tuple[float, list[int]]:
    start = time.perf_counter()
    procs = [subprocess.Popen([str(venv / "bin/python"), "-c", CREATE[tool], str(each), str(first + k * each)],
                              cwd=work, env=environment(tool, work), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for k in range(processes)]
    codes = []
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode:
            print(f"{tool} writer failed: {err.strip()[-500:]}", file=sys.stderr)
        codes.append(proc.returncode)
    return time.perf_counter() - start, codes


def size_of(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def measure(tool: str, venv: Path, args) -> dict:
    figures = {}
    count = subprocess.run([str(venv / "bin/python"), "-m", "pip", "list", "--disable-pip-version-check"],
                           capture_output=True, text=True).stdout.count("\n") - 2
    figures["packages"] = f"{count} packages"
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        (work / "store").mkdir()
        if "import" in args.workloads:
            times = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                python_run(venv, IMPORT[tool], work=work, tool=tool)
                times.append(time.perf_counter() - start)
            figures["import"] = f"{statistics.median(times):.2f} s"
        if "create" in args.workloads:
            python_run(venv, CREATE[tool], 1, 10**6, work=work, tool=tool)  # the store exists: create measures runs
            rates = [args.runs / float(python_run(venv, CREATE[tool], args.runs, n * args.runs, work=work, tool=tool))
                     for n in range(args.repeat)]
            figures["create"] = f"{statistics.median(rates):,.0f} runs/s"
        if "log" in args.workloads:
            rate = float(python_run(venv, LOG[tool], args.points, work=work, tool=tool))
            figures["log"] = f"{rate:,.0f} points/s"
    if "store" not in args.workloads:
        return figures
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        (work / "store").mkdir()
        python_run(venv, CREATE[tool], 1, 10**6, work=work, tool=tool)  # the schema once, so 4 writers do not race it
        wall, codes = parallel(venv, tool, work, 4, args.store_runs // 4)
        kept = int(python_run(venv, COUNT[tool], work=work, tool=tool)) - 1
        figures["populate"] = f"{kept:,} kept, {wall:.0f} s ({kept / wall:,.0f} runs/s)"
        seconds, found = python_run(venv, QUERY[tool], work=work, tool=tool).split()
        figures["query"] = f"{float(seconds) * 1000:,.0f} ms ({found} found)"
        times, rows = [], 0
        for _ in range(args.repeat):
            start = time.perf_counter()
            proc = subprocess.run(listing(tool, venv), cwd=work, env=environment(tool, work), capture_output=True,
                                  text=True)
            times.append(time.perf_counter() - start)
            rows = proc.stdout.count("\n")
        figures["list"] = f"{statistics.median(times):.2f} s ({rows:,} lines)"
        total = size_of(work / "store")
        figures["size"] = f"{total / 1e6:.1f} MB"
        if tool == "expledger":
            ledger = (work / "store/experiments.jsonl").stat().st_size
            figures["size"] += f" ({ledger / 1e6:.1f} MB log, {ledger / (kept + 1):,.0f} B/run; index {(total - ledger) / 1e6:.1f} MB)"
        if args.store_runs == 1000:  # that store was made by 4 processes x 250 runs at once
            figures["4x250"] = ("all kept" if kept == 1000 and not any(codes) else f"{kept} of 1000 kept") + \
                f", {wall:.1f} s"
            return figures
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        (work / "store").mkdir()
        python_run(venv, CREATE[tool], 1, 10**6, work=work, tool=tool)  # the schema once, so 4 writers do not race it
        wall, codes = parallel(venv, tool, work, 4, 250)
        kept = int(python_run(venv, COUNT[tool], work=work, tool=tool)) - 1
        figures["4x250"] = ("all kept" if kept == 1000 and not any(codes) else f"{kept} of 1000 kept") + f", {wall:.1f} s"
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--venvs", type=Path, default=Path.home() / ".cache/expledger-bench")
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--points", type=int, default=5000)
    parser.add_argument("--store-runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tools", default=",".join(TOOLS), help="comma-separated subset of " + ", ".join(TOOLS))
    parser.add_argument("--workloads", default=",".join(WORKLOADS),
                        help="comma-separated subset of " + ", ".join(WORKLOADS) + " (store: the --store-runs "
                        "store, its query, listing and size, and 4 processes x 250 runs)")
    args = parser.parse_args()
    args.workloads = set(args.workloads.split(","))
    args.venvs.mkdir(parents=True, exist_ok=True)
    tools = [tool for tool in TOOLS if tool in args.tools.split(",")]
    results = {}
    for tool in tools:
        venv = make_venv(tool, args.venvs)
        results[tool] = measure(tool, venv, args)
        print(f"{tool}: {results[tool]}", file=sys.stderr, flush=True)
    labels = {
        "packages": "environment",
        "import": "import of the package",
        "create": f"create {args.runs:,} runs (10 params, 5 metrics, 2 tags)",
        "log": "step logging, one call per step",
        "populate": f"{args.store_runs:,}-run store, 4 writer processes",
        "query": f"filtered query over {args.store_runs:,} runs",
        "list": f"full CLI listing of {args.store_runs:,} runs",
        "size": f"store size, {args.store_runs:,} runs",
        "4x250": "4 processes x 250 runs at once",
    }
    names = {"expledger": "expledger", "trackio": "trackio 0.43.0", "mlflow": "MLflow 3.17.2 (sqlite)"}
    print("| workload | " + " | ".join(names[t] for t in tools) + " |")
    print("| --- |" + " --- |" * len(tools))
    for key, label in labels.items():
        if any(key in results[t] for t in tools):
            print(f"| {label} | " + " | ".join(results[t].get(key, "-") for t in tools) + " |")


if __name__ == "__main__":
    main()
