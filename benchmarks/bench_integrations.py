"""What the Transformers callback costs a training run: the tiny model of the tests for 500 steps,
with and without ExpLedgerCallback, alternating, median of N rounds.

    python benchmarks/bench_integrations.py --steps 500 --repeat 5

The callback logs every step (logging_steps=1, the worst case) and keeps its defaults
(system metrics every 10 s, provenance in a thread). Each run gets a fresh ledger.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
os.environ["HF_HUB_OFFLINE"] = "1"


def one_run(steps: int, with_callback: bool) -> float:
    from tiny_training import tiny_trainer

    from expledger.integrations.transformers import ExpLedgerCallback

    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        callback = ExpLedgerCallback(name="bench") if with_callback else None
        trainer = tiny_trainer(Path(folder) / "out", callback, steps=steps, save_steps=10**9, eval_steps=None)
        started = time.perf_counter()
        trainer.train()
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    one_run(20, True)  # warm up: imports, first allocations
    times: dict[bool, list[float]] = {False: [], True: []}
    for round_ in range(options.repeat):
        for with_callback in (False, True) if round_ % 2 == 0 else (True, False):
            times[with_callback].append(one_run(options.steps, with_callback))
            print(f"round {round_ + 1}: {'with' if with_callback else 'without'} callback "
                  f"{times[with_callback][-1]:.2f} s", file=sys.stderr)
    bare, logged = statistics.median(times[False]), statistics.median(times[True])
    print(f"{options.steps} steps, median of {options.repeat}: without {bare:.2f} s, with ExpLedgerCallback "
          f"{logged:.2f} s, overhead {100 * (logged - bare) / bare:+.1f} %")


if __name__ == "__main__":
    main()
