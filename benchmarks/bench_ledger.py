"""How fast the CLI answers on a large JSONL ledger, in fresh processes.

Builds a ledger of N experiments with three lifecycle lines each (added, started,
result), then times, as a user would see them:
  - bare Python start-up (`python -c pass`), the floor for any CLI;
  - the first command after the ledger appeared (it builds the index), wall and CPU time,
    and the index's size on disk beside the log's;
  - a `git pull`-style replacement (a new file: the same bytes plus 100 new lines): the
    next command catches up (wall, and the index's own counters say it read only the new lines);
  - `exp list --status success --task T`, `exp show ID`, `exp add`, `exp result`.
Each figure is the median of several runs. Usage:

    python benchmarks/bench_ledger.py [--experiments 100000] [--repeat 7] [--fresh-venv] [--workdir DIR]

--workdir keeps the generated ledger (DIR/ledger-N.jsonl) for the next run, which copies it
into place instead of writing it again.

With --fresh-venv it installs expledger into a new virtual environment first and times
that, as a user's clean install would run; otherwise it uses the running interpreter.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

TASKS = ["asr", "layer-analysis", "translation", "probing", "distillation"]
MODELS = ["whisper-base", "whisper-large", "wav2vec2", "hubert", "t5-small"]


def build_ledger(path: Path, count: int) -> None:
    """Write `count` experiments as the CLI would: a queued, a running and a result line each."""
    rng = random.Random(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as out:
        for n in range(1, count + 1):
            base = {
                "id": f"EXP-{n:03d}", "name": f"run {n}", "task": rng.choice(TASKS), "model": rng.choice(MODELS),
                "params": {"lr": rng.choice([1e-4, 3e-4, 1e-3]), "layers": rng.randint(2, 24), "seed": n % 5},
                "command": f"python3 train.py --seed {n % 5}", "machine": rng.choice(["lab", "mac"]),
                "status": "QUEUED", "created": "2026-01-01T00:00:00.000+00:00", "started": None,
                "completed": None, "metrics": {}, "summary": None, "failed_reason": None, "tags": ["bench"],
                "uuid": str(uuid.UUID(int=rng.getrandbits(128))), "rev": 1,
                "updated": "2026-01-01T00:00:00.000+00:00", "history": [], "v": 1,
            }
            out.write(json.dumps(base, ensure_ascii=False) + "\n")
            running = dict(base, status="RUNNING", started="2026-01-01T00:01:00.000+00:00", rev=2)
            out.write(json.dumps(running, ensure_ascii=False) + "\n")
            failed = rng.random() < 0.2
            done = dict(running, rev=3, completed="2026-01-01T01:00:00.000+00:00",
                        status="FAILED" if failed else "SUCCESS",
                        metrics={} if failed else {"accuracy": round(rng.random(), 4), "loss": round(rng.random(), 4)},
                        summary="CUDA out of memory" if failed else "fine",
                        failed_reason="CUDA out of memory" if failed else None)
            out.write(json.dumps(done, ensure_ascii=False) + "\n")


def ledger_at(path: Path, count: int, keep: Path | None) -> None:
    """The ledger of `count` experiments at `path`: copied from `keep` (a --workdir) when an
    earlier run left it there, else built (and left there for the next run)."""
    kept = keep / f"ledger-{count}.jsonl" if keep else None
    if kept is not None and kept.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(kept, path)
        return
    build_ledger(path, count)
    if kept is not None:
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, kept)


def fresh_venv(folder: Path) -> str:
    """A new virtual environment with this checkout installed; its python's path."""
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    python = str(folder / "bin" / "python")
    repo = Path(__file__).resolve().parents[1]
    subprocess.run([python, "-m", "pip", "install", "-q", str(repo)], check=True)
    return python


def timed(argv: list[str], env: dict, cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {proc.stderr}")
    return elapsed


def cpu_timed(argv: list[str], env: dict, cwd: Path) -> tuple[float, float]:
    """(wall, user + system CPU) seconds of one command in a fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = timed(argv, env, cwd)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def index_size(ledger: Path) -> int:
    """Bytes of the ledger's index on disk (the SQLite file and its WAL)."""
    return sum(path.stat().st_size for path in (ledger.parent / ".exp-cache").glob(f"{ledger.name}.sqlite3*"))


def pulled(ledger: Path, count: int, first: int) -> None:
    """Replace the ledger as a `git pull` that brought `count` new lines does: a new file with
    the old bytes and the new lines, renamed over it."""
    other = ledger.with_name(".pulled.jsonl")
    shutil.copyfile(ledger, other)
    rng = random.Random(first)
    with open(other, "a", encoding="utf-8") as out:
        for n in range(first, first + count):
            out.write(json.dumps({
                "id": f"EXP-{n:03d}", "name": f"pulled {n}", "task": rng.choice(TASKS), "model": rng.choice(MODELS),
                "params": {"lr": 1e-3, "layers": rng.randint(2, 24), "seed": n % 5}, "status": "QUEUED",
                "created": "2026-01-02T00:00:00.000+00:00", "uuid": str(uuid.UUID(int=rng.getrandbits(128))),
                "rev": 1, "updated": "2026-01-02T00:00:00.000+00:00", "v": 1}) + "\n")
    os.replace(other, ledger)


CATCH_UP = ("import json, sys, time\nfrom expledger.store import open_store\n"
            "with open_store(sys.argv[1]) as store:\n    start = time.perf_counter()\n    store.search(limit=0)\n"
            "    print(round((time.perf_counter() - start) * 1000), json.dumps(store.index.counters()))")


def median_ms(argv, env, cwd, repeat) -> float:
    return statistics.median(timed(argv, env, cwd) for _ in range(repeat)) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiments", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--fresh-venv", action="store_true", help="time a clean install in a new venv")
    parser.add_argument("--workdir", type=Path, help="keep the generated ledger here and reuse it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        python = fresh_venv(work / "venv") if args.fresh_venv else sys.executable
        print(f"python: {python}")
        exp = [python, "-m", "expledger"]
        ledger = work / "memory/experiments/experiments.jsonl"
        ledger_at(ledger, args.experiments, args.workdir)
        env = {k: v for k, v in os.environ.items() if not k.startswith("EXP_")}
        size = ledger.stat().st_size
        print(f"ledger: {args.experiments:,} experiments, {3 * args.experiments:,} lines, {size / 1e6:.0f} MB")
        rows = [("bare python start-up", median_ms([python, "-c", "pass"], env, work, args.repeat))]
        wall, cpu = cpu_timed(exp + ["list", "--limit", "1"], env, work)
        rows.append(("first read: index built from the log", wall * 1000))
        rows.append(("  its CPU time (user + system)", cpu * 1000))
        print(f"index: {index_size(ledger) / 1e6:.1f} MB beside the {size / 1e6:.1f} MB log "
              f"({index_size(ledger) / size:.2f} of it)")
        pulled(ledger, 100, args.experiments + 1)
        rows.append(("after a git pull of 100 lines: exp list --limit 1", timed(exp + ["list", "--limit", "1"], env, work)
                     * 1000))
        pulled(ledger, 100, args.experiments + 101)
        ms, counters = subprocess.run([python, "-c", CATCH_UP, str(ledger)], env=env, cwd=work, capture_output=True,
                                      text=True, check=True).stdout.split(maxsplit=1)
        rows.append(("  the catch-up itself, in the process", float(ms)))
        print(f"index counters after that catch-up: {counters.strip()}")
        middle = f"EXP-{args.experiments // 2:03d}"
        for label, argv in [
            ("exp list --status success --task asr", ["list", "--status", "success", "--task", "asr"]),
            ("exp list (newest 100)", ["list"]),
            (f"exp show {middle}", ["show", middle]),
            ("exp list --json --status failed --limit 0", ["list", "--json", "--status", "failed", "--limit", "0"]),
            ("exp list --where 'params.lr < 0.001 and metrics.accuracy > 0.9' --sort -metrics.accuracy --limit 10",
             ["list", "--where", "params.lr < 0.001 and metrics.accuracy > 0.9", "--sort", "-metrics.accuracy",
              "--limit", "10"]),
            ("exp check --task asr --model hubert --params '{\"lr\": 0.001, \"layers\": 12, \"seed\": 1}'",
             ["check", "--task", "asr", "--model", "hubert", "--params", '{"lr": 0.001, "layers": 12, "seed": 1}']),
            ("exp export --where 'task = asr' --format md", ["export", "--where", "task = asr", "--format", "md"]),
        ]:
            rows.append((label, median_ms(exp + argv, env, work, args.repeat)))
        add = ["add", "--name", "bench", "--task", "asr", "--model", "hubert", "--params", '{"lr": 0.1}']
        rows.append(("exp add", median_ms(exp + add, env, work, args.repeat)))
        rows.append(("exp result", median_ms(exp + ["result", middle, "--status", "success", "--force"],
                                             env, work, args.repeat)))
        width = max(len(label) for label, _ in rows)
        for label, ms in rows:
            print(f"{label:<{width}}  {ms:8.0f} ms")


if __name__ == "__main__":
    main()
