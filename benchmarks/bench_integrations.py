"""What the Transformers callback costs a training run: the tiny model of the tests for 500 steps,
with and without ExpLedgerCallback, alternating, median of N rounds.

    python benchmarks/bench_integrations.py --steps 500 --repeat 5

The callback logs every step (logging_steps=1, the worst case) and keeps its defaults
(system metrics every 10 s, provenance in a thread). Each run gets a fresh ledger. Besides the
wall-clock difference (noisy on a shared machine), it reports the time spent inside the
callback's events on the training thread, which the noise does not touch. The Trainer's own
per-step log lines go to stdout; the figures go to stderr.
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


def one_run(steps: int, with_callback: bool) -> tuple[float, float]:
    """Seconds for train(), and seconds spent inside the callback's events on the training thread."""
    from tiny_training import tiny_trainer

    from expledger.integrations.transformers import ExpLedgerCallback

    inside = [0.0]
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        callback = ExpLedgerCallback(name="bench") if with_callback else None
        if callback is not None:
            for event in ("on_train_begin", "on_log", "on_save", "on_train_end"):
                setattr(callback, event, _timed(getattr(callback, event), inside))
        trainer = tiny_trainer(Path(folder) / "out", callback, steps=steps, save_steps=10**9, eval_steps=None)
        started = time.perf_counter()
        trainer.train()
        return time.perf_counter() - started, inside[0]


def _timed(method, total: list):
    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            total[0] += time.perf_counter() - started

    return timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    one_run(20, True)  # warm up: imports, first allocations
    times: dict[bool, list[float]] = {False: [], True: []}
    inside: list[float] = []
    for round_ in range(options.repeat):
        for with_callback in (False, True) if round_ % 2 == 0 else (True, False):
            took, in_callback = one_run(options.steps, with_callback)
            times[with_callback].append(took)
            if with_callback:
                inside.append(in_callback / took)
            print(f"round {round_ + 1}: {'with' if with_callback else 'without'} callback {took:.2f} s"
                  + (f" ({in_callback:.3f} s inside it)" if with_callback else ""), file=sys.stderr)
    bare, logged = statistics.median(times[False]), statistics.median(times[True])
    print(f"{options.steps} steps, median of {options.repeat}: without {bare:.2f} s, with ExpLedgerCallback "
          f"{logged:.2f} s, overhead {100 * (logged - bare) / bare:+.1f} %; time inside the callback's events: "
          f"{100 * statistics.median(inside):.2f} % of train()", file=sys.stderr)


if __name__ == "__main__":
    main()
