"""The listing and the everyday commands, timed as a user meets them (issue 11's targets).

  - `exp list --limit 0` (the table, and --json) of a 10,000-experiment ledger: target 0.25 s;
  - `exp add`, `exp list`, `exp show ID` on a 100,000-experiment ledger: `exp add` target 0.1 s.

Each ledger is the one bench_ledger.py writes (three lifecycle lines an experiment); its
index is built first, and bytecode is written and used (PYTHONDONTWRITEBYTECODE dropped), as
for a user's installed package. Each figure is the median of --repeat fresh processes, as
wall time and as CPU time (user + system, which a busy machine inflates less). Usage:

    python benchmarks/bench_listing.py [--small 10000] [--large 100000] [--repeat 7] [--workdir DIR]

--workdir keeps the generated ledgers (DIR/ledger-N.jsonl) for the next run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ledger import cpu_timed, ledger_at  # noqa: E402


def medians(argv: list[str], env: dict, cwd: Path, repeat: int) -> tuple[float, float]:
    runs = [cpu_timed(argv, env, cwd) for _ in range(repeat)]
    return statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs)


def ledger_folder(root: Path, count: int, keep: Path | None) -> Path:
    """A folder holding memory/experiments/experiments.jsonl with `count` experiments."""
    folder = root / f"ledger-{count}"
    ledger_at(folder / "memory/experiments/experiments.jsonl", count, keep)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=10_000, help="experiments in the ledger listed whole")
    parser.add_argument("--large", type=int, default=100_000, help="experiments in the ledger for add/list/show")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--workdir", type=Path, help="keep the generated ledgers here and reuse them")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXP_") and k != "PYTHONDONTWRITEBYTECODE"}
    exp = [sys.executable, "-m", "expledger"]
    rows: list[tuple[str, float, float, str]] = []
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        rows.append(("bare python start-up", *medians([sys.executable, "-c", "pass"], env, root, args.repeat), ""))
        small = ledger_folder(root, args.small, args.workdir)
        cpu_timed(exp + ["list", "--limit", "1"], env, small)  # builds the index (and writes bytecode)
        rows.append((f"exp list --limit 0 ({args.small:,} experiments)",
                     *medians(exp + ["list", "--limit", "0"], env, small, args.repeat), "target 250 ms"))
        rows.append((f"exp list --limit 0 --json ({args.small:,})",
                     *medians(exp + ["list", "--limit", "0", "--json"], env, small, args.repeat), ""))
        large = ledger_folder(root, args.large, args.workdir)
        cpu_timed(exp + ["list", "--limit", "1"], env, large)
        middle = f"EXP-{args.large // 2:03d}"
        rows.append((f"exp list ({args.large:,}: newest 100)", *medians(exp + ["list"], env, large, args.repeat), ""))
        rows.append((f"exp show {middle}", *medians(exp + ["show", middle], env, large, args.repeat), ""))
        add = ["add", "--name", "bench", "--task", "asr", "--model", "hubert", "--params", '{"lr": 0.1}']
        rows.append((f"exp add ({args.large:,})", *medians(exp + add, env, large, args.repeat), "target 100 ms"))
    print(f"python: {sys.executable}; median of {args.repeat} fresh processes each")
    width = max(len(label) for label, *_ in rows)
    print(f"{'':<{width}}  {'wall':>8}  {'CPU':>8}")
    for label, wall, cpu, note in rows:
        print(f"{label:<{width}}  {wall * 1000:6.0f} ms  {cpu * 1000:6.0f} ms  {note}".rstrip())


if __name__ == "__main__":
    main()
