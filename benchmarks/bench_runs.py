"""Running experiments: step-logging throughput of the Python API, and what `exp run` adds.

    python benchmarks/bench_runs.py [--points 2000000] [--repeat 5]

- `run.log({"loss": x, "acc": y}, step=i)` in a loop: points per second, including the
  background flushes to the run folder (timed until every point is on disk).
- `exp run -- true` against a bare `true`, and against `python -c pass`, in fresh processes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def logging_rate(points: int) -> float:
    import expledger

    run = expledger.start(name="bench logging")
    calls = points // 2
    start = time.perf_counter()
    log = run.log
    for step in range(calls):
        log({"loss": 1.0 / (step + 1), "acc": step * 1e-6}, step=step)
    run.flush()
    elapsed = time.perf_counter() - start
    run.result()
    written = sum(len(values) for _, values in run.store.read_steps(run.experiment).values())
    assert written == 2 * calls, (written, calls)
    return 2 * calls / elapsed


def median_seconds(argv: list[str], cwd: Path, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        os.chdir(work)
        os.environ.pop("EXP_ID", None)
        os.environ.pop("EXP_STORE", None)
        rate = logging_rate(args.points)
        print(f"step logging through run.log: {rate:,.0f} points/s ({args.points:,} points, 2 metrics a call)")
        true = median_seconds(["true"], work, args.repeat)
        python = median_seconds([sys.executable, "-c", "pass"], work, args.repeat)
        exp_run = median_seconds([sys.executable, "-m", "expledger", "run", "--", "true"], work, args.repeat)
        print(f"bare `true`: {true * 1000:.0f} ms; `python -c pass`: {python * 1000:.0f} ms; "
              f"`exp run -- true`: {exp_run * 1000:.0f} ms")


if __name__ == "__main__":
    main()
