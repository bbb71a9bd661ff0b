"""Command latency on PostgreSQL against the JSONL file: the same commands, fresh processes.

    python benchmarks/bench_pg_latency.py --url postgresql://postgres@127.0.0.1:5432/test [--experiments 500 --repeat 7]

Seeds both stores with the same experiments (a scratch schema on the server, dropped
afterwards; a temporary JSONL ledger whose index is built before timing), then times each
command as a user types it (`python -m expledger …`, a new process each time) and prints the
median per command and store, the ratio, and the floor: `python -c pass` and the driver's
import alone.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from expledger.models import Status
from expledger.store import open_store

COMMANDS = [
    ("exp add", ["add", "--name", "bench add", "--task", "asr", "--params", '{"lr": 0.5}']),
    ("exp list", ["list"]),
    ("exp list --where", ["list", "--where", "params.lr < 0.01 and metrics.acc > 0.5", "--sort", "-metrics.acc"]),
    ("exp show EXP-100", ["show", "EXP-100"]),
    ("exp queue", ["queue"]),
    ("exp result --force", ["result", "EXP-050", "--status", "success", "--metrics", '{"acc": 0.9}', "--force"]),
]


def seed(url: str, count: int) -> None:
    with open_store(url) as store:
        for n in range(count):
            exp = store.add(name=f"run {n}", task="asr", model=f"m{n % 5}", params={"lr": 10 ** -(n % 5), "seed": n})
            if n % 4:
                store.result(exp.id, status=Status.SUCCESS, metrics={"acc": (n % 97) / 97})


def timed(argv: list[str], url: str, cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *argv] if argv[0] == "-c" else [sys.executable, "-m", "expledger", "--store", url,
                                                                     *argv],
                   cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="a PostgreSQL server to create a scratch schema on")
    parser.add_argument("--experiments", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    schema = f"exp_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.url, autocommit=True) as db:
        db.execute(f"CREATE SCHEMA {schema}")
    pg_url = f"{args.url}{'&' if '?' in args.url else '?'}options=-csearch_path%3D{schema}"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cwd = Path(tmp)
            jsonl_url = str(cwd / "experiments.jsonl")
            for url in (jsonl_url, pg_url):
                seed(url, args.experiments)
                timed(["list"], url, cwd)  # the JSONL index is built once, before timing
            floors = {"python -c pass": ["-c", "pass"], "python -c 'import psycopg'": ["-c", "import psycopg"]}
            print(f"{args.experiments} experiments; median of {args.repeat} fresh processes (seconds)\n")
            print("| command | JSONL file | PostgreSQL | ratio |\n| --- | --- | --- | --- |")
            for label, argv in floors.items():
                median = statistics.median(timed(argv, "", cwd) for _ in range(args.repeat))
                print(f"| {label} | {median:.3f} | | |")
            for label, argv in COMMANDS:
                medians = [statistics.median(timed(argv, url, cwd) for _ in range(args.repeat))
                           for url in (jsonl_url, pg_url)]
                print(f"| `{label}` | {medians[0]:.3f} | {medians[1]:.3f} | {medians[1] / medians[0]:.2f}x |")
    finally:
        with psycopg.connect(args.url, autocommit=True) as db:
            db.execute(f"DROP SCHEMA {schema} CASCADE")


if __name__ == "__main__":
    main()
