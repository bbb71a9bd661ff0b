"""What both framework adapters do the same way: params from settings, one run per training,
the outcome from the exception, metrics that arrive after the result."""

from __future__ import annotations

import math
import sys

from ..errors import ExpledgerError

_SCALARS = (str, int, float, bool)


def flat_params(values: dict, *, prefix: str = "", skip: frozenset = frozenset()) -> dict:
    """Nested settings as one level of JSON scalars (`model/hidden_size`); None, non-finite
    numbers, objects that are not JSON and keys in `skip` are left out."""
    out: dict = {}
    for key, value in values.items():
        key = str(key)
        if key in skip or key.startswith("_"):
            continue
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flat_params(value, prefix=f"{name}/", skip=skip))
        elif isinstance(value, (list, tuple)) and all(isinstance(v, _SCALARS) for v in value):
            out[name] = list(value)
        elif isinstance(value, _SCALARS) and not (isinstance(value, float) and not math.isfinite(value)):
            out[name] = value
        elif hasattr(value, "value") and isinstance(value.value, _SCALARS):  # an Enum
            out[name] = value.value
    return out


def numbers(values: dict) -> dict:
    """The numeric entries of a framework's log dict (tensors and NumPy scalars included)."""
    out = {}
    for key, value in (values or {}).items():
        if isinstance(value, bool):
            continue
        if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
            value = value.item()
        if isinstance(value, (int, float)):
            out[str(key)] = value
    return out


def open_run(*, name, task, model, params: dict, tags, store):
    """Start a run, or attach to the one `exp run`/a worker started (adding the framework's
    params to it, keys given on the command line winning)."""
    import expledger

    run = expledger.start(name=name, task=task, model=model, params=params, tags=tags, store=store)
    if run.attached and params:
        run.log_params(params)
    return run


def finish(run, error: BaseException | None) -> None:
    """Record the outcome: SUCCESS, FAILED with the exception, CANCELLED on KeyboardInterrupt."""
    if run is None or run.finished:
        return
    if error is None:
        run.result()
    else:
        run.__exit__(type(error), error, error.__traceback__)


def current_error() -> BaseException | None:
    """The exception being handled right now, if any (frameworks finalize inside `except`)."""
    return sys.exc_info()[1]


def late_metrics(run, values: dict) -> None:
    """Metrics that arrive after the run's result (a test pass after fit): merged into it."""
    if not values:
        return
    from ..lifecycle import Amend
    from ..store import open_store

    try:
        with open_store(run.store.url) as store:
            store.apply(run.id, Amend(metrics=values, attempt=run.attempt))
    except (ExpledgerError, OSError) as err:  # never let recording hurt training
        from ..log import warn
        from ..redact import redact

        warn(redact(f"expledger could not add metrics to {run.id}: {err}"))

