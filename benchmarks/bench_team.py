"""Team scale on PostgreSQL: how fast workers drain a queue, how soon they pick up new work,
and whether the claim query stays an index scan on a large table.

    python benchmarks/bench_team.py --url postgresql://postgres@127.0.0.1:5432/test [--experiments 1000]

Works in a scratch schema it drops afterwards. Figures:
  - 4 `exp worker --until-empty` processes draining N trivial queued experiments (`true`);
  - the time from `add` to RUNNING for one worker polling an empty queue (median of 5);
  - EXPLAIN ANALYZE of the claim query with 100,000 experiments in the table.
Also compares with the JSONL store for the drain.
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

from expledger.store import open_store


def scratch_url(base: str) -> tuple[str, str]:
    schema = f"exp_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base, autocommit=True) as db:
        db.execute(f"CREATE SCHEMA {schema}")
    joiner = "&" if "?" in base else "?"
    return f"{base}{joiner}options=-csearch_path%3D{schema}", schema


def drain(url: str, count: int, workers: int, cwd: Path) -> float:
    with open_store(url) as store:
        for n in range(count):
            store.add(name=f"job {n}", command="true", workdir=str(cwd))
    start = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-m", "expledger", "--store", url, "worker", "--until-empty",
                               "--poll", "0.05"], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for _ in range(workers)]
    for proc in procs:
        proc.wait()
    elapsed = time.perf_counter() - start
    with open_store(url) as store:
        left = store.search(status=("QUEUED", "RUNNING"), limit=0).total
        done = store.search(status=("SUCCESS",), limit=0).total
    assert left == 0 and done == count, (left, done)
    return count / elapsed


def pickup_latency(url: str, cwd: Path, repeat: int = 5) -> float:
    waits = []
    for _ in range(repeat):
        proc = subprocess.Popen([sys.executable, "-m", "expledger", "--store", url, "worker", "--once"],
                                cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.5)  # up and polling
        with open_store(url) as store:
            exp = store.add(name="new", command="sleep 1")
            queued = time.perf_counter()
            while store.get(exp.id).status.value == "QUEUED":
                time.sleep(0.01)
            waits.append(time.perf_counter() - queued)
        proc.wait()
    return statistics.median(waits)


def explain_claim(base: str, rows: int) -> str:
    url, schema = scratch_url(base)
    try:
        with open_store(url):  # creates the schema
            pass
        with psycopg.connect(url, autocommit=True) as db:
            db.execute(f"""
                INSERT INTO experiments (uuid, id, num, rev, status, priority, data)
                SELECT gen_random_uuid(), 'EXP-' || lpad(n::text, 3, '0'), n, 1,
                       CASE WHEN n % 10 = 0 THEN 'QUEUED' ELSE 'SUCCESS' END, 0,
                       jsonb_build_object('id', 'EXP-' || n, 'name', 'x', 'status', 'QUEUED')
                FROM generate_series(1, {rows}) AS n""")
            db.execute("ANALYZE experiments")
            from expledger.models import Status
            from expledger.query import Compare, Exists, Not, Or
            from expledger.store.base import QUEUE_ORDER, Search
            from expledger.store.postgres import _COMPILER, _sql

            search = Search(status=(Status.QUEUED,), where=Or((Compare(("machine",), "=", "lab"),
                                                                Not(Exists(("machine",))))),
                            sort=QUEUE_ORDER, limit=1)
            where, args = _COMPILER.where(search)
            order, order_args = _COMPILER.order(search)
            plan = db.execute(_sql(f"EXPLAIN ANALYZE SELECT data FROM experiments WHERE {where} ORDER BY {order} "
                                   "LIMIT 1 FOR UPDATE SKIP LOCKED"), [*args, *order_args]).fetchall()
        return "\n".join(row[0] for row in plan)
    finally:
        with psycopg.connect(base, autocommit=True) as db:
            db.execute(f"DROP SCHEMA {schema} CASCADE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="a PostgreSQL URL (a scratch schema is used)")
    parser.add_argument("--experiments", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--explain-rows", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        url, schema = scratch_url(args.url)
        try:
            rate = drain(url, args.experiments, args.workers, work)
            print(f"PostgreSQL: {args.workers} workers drained {args.experiments} trivial experiments "
                  f"at {rate:.1f} experiments/s")
            print(f"pick-up: a worker started a newly queued experiment after {pickup_latency(url, work):.2f} s "
                  "(median of 5)")
        finally:
            with psycopg.connect(args.url, autocommit=True) as db:
                db.execute(f"DROP SCHEMA {schema} CASCADE")
        jsonl = str(work / "memory/experiments/experiments.jsonl")
        rate = drain(jsonl, args.experiments, args.workers, work)
        print(f"JSONL: {args.workers} workers drained {args.experiments} trivial experiments at {rate:.1f} experiments/s")
    print(f"claim query with {args.explain_rows:,} experiments:")
    print(explain_claim(args.url, args.explain_rows))


if __name__ == "__main__":
    main()
