"""Step series for charts: the dashboard's run and compare pages, the `steps` MCP tool.
Long series are downsampled (expledger.series: min and max per bucket), never shipped whole
unless asked for."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .. import models
from ..errors import BadInput
from ..models import Experiment
from ..series import DEFAULT_POINTS, MAX_POINTS
from ..store.base import Store

# memo(exp, key, compute) -> compute()'s value, kept by a long-lived face for a finished run
Memo = Callable[[Experiment, tuple, Callable[[], dict]], dict]


@dataclass(frozen=True)
class StepSeries:
    """An experiment's step metrics as chart data.

    Attributes:
        experiment: the record.
        series: {name: {"steps": [...], "values": [...] (non-finite as None), "points": how
            many were logged, "downsampled": bool}}.
    """

    experiment: Experiment
    series: dict[str, dict]

    def to_json(self) -> dict:
        return {"id": self.experiment.id, "status": self.experiment.status.value, "series": self.series}


def series(store: Store, ref: str | int, *, metrics=(), points: int | None = DEFAULT_POINTS,
           memo: Memo | None = None) -> StepSeries:
    """The step metrics named in `metrics` (default: all) of experiment `ref`, each
    downsampled to about `points` (None: every point). `memo` lets a face that serves many
    requests compute a finished run's charts once."""
    if points is not None and not 2 <= points <= MAX_POINTS:
        raise BadInput(f"points must be between 2 and {MAX_POINTS}, not {points}")
    models.parse_id(ref)  # a malformed ID fails before the store is touched
    exp = store.get(ref)
    wanted = frozenset(metrics)

    def charts() -> dict:
        from ..series import chart_series

        return {name: chart_series(xs, ys, points=points) for name, (xs, ys) in store.read_steps(exp).items()
                if not wanted or name in wanted}

    found = charts() if memo is None else memo(exp, ("charts", points, tuple(sorted(wanted))), charts)
    return StepSeries(exp, found)
