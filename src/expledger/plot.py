"""`exp plot`: step metrics of several runs overlaid, one panel per metric, into a PNG.

matplotlib is an optional dependency (`pip install 'expledger[plot]'`) loaded only here,
with the headless Agg backend.
"""

from __future__ import annotations

import math

from .errors import BadInput, MissingExtra
from .models import Experiment


def draw(runs: list[tuple[Experiment, dict]], *, metrics: list[str], path: str) -> list[str]:
    """Plot `metrics` (default: every logged one) for each (experiment, steps); returns the metrics drawn."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingExtra("plotting needs matplotlib: pip install 'expledger[plot]'") from None
    names = metrics or list(dict.fromkeys(name for _, series in runs for name in series))
    if not names:
        raise BadInput("nothing to plot: none of these runs logged step metrics (run.log(...) in the Python API)")
    missing = [name for name in names if not any(name in series for _, series in runs)]
    if missing:
        raise BadInput(f"no run logged {', '.join(missing)}; logged: "
                       f"{', '.join(sorted({n for _, s in runs for n in s})) or 'nothing'}")
    columns = min(2, len(names))
    rows = math.ceil(len(names) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(6.4 * columns, 4 * rows), squeeze=False)
    for panel, name in zip(axes.flat, names):
        for exp, series in runs:
            if name in series:
                steps, values = series[name]
                panel.plot(steps, [float(v) for v in values], label=f"{exp.id} {exp.name}"[:40], linewidth=1.2)
        panel.set_title(name)
        panel.set_xlabel("step")
        panel.grid(alpha=0.3)
        panel.legend(fontsize="small")
    for panel in list(axes.flat)[len(names):]:
        panel.set_visible(False)
    figure.tight_layout()
    try:
        figure.savefig(path, dpi=100)
    except OSError as err:
        raise BadInput(f"cannot write {path}: {err.strerror}") from None
    finally:
        plt.close(figure)
    return names
