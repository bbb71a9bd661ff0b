"""Step metrics as a picture: `exp plot`."""

from __future__ import annotations

from dataclasses import dataclass

from ..store.base import Store


@dataclass(frozen=True)
class Plotted:
    """A PNG written: where, which metrics, for which experiments (IDs)."""

    path: str
    metrics: list[str]
    experiments: list[str]

    def to_json(self) -> dict:
        return {"path": self.path, "metrics": self.metrics, "experiments": self.experiments}


def plot(store: Store, refs, *, path: str, metrics=()) -> Plotted:
    """Draw the step metrics (default: all) of the experiments `refs` into the PNG at `path`,
    runs overlaid per metric."""
    from ..plot import draw

    runs = [(exp, store.read_steps(exp)) for exp in (store.get(ref) for ref in dict.fromkeys(refs))]
    drawn = draw(runs, metrics=list(metrics), path=path)
    return Plotted(str(path), drawn, [exp.id for exp, _ in runs])
