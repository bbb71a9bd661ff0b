"""Step series for charts: long ones are downsampled on the server.

A browser never needs a million points to draw a thousand pixels, and shipping them froze
other dashboards (mlflow#9779). Each bucket keeps its minimum and its maximum at their own
steps, in step order, so spikes and dips survive and the curve looks like the full one at
screen resolution. Non-finite values (NaN, ±inf) become null: a gap in the chart.
"""

from __future__ import annotations

from .steps import all_finite

DEFAULT_POINTS = 2000  # per series: about two per pixel of a wide chart
MAX_POINTS = 100_000


def chart_series(steps: list, values: list, *, points: int | None = DEFAULT_POINTS) -> dict:
    """One series as JSON for a chart: all of it when short (or `points` is None), else
    min/max per bucket, with the count of points it stands for."""
    total = len(values)
    if points is None or total <= points:
        return {"steps": list(steps), "values": _nulls(values), "points": total, "downsampled": False}
    out_steps: list = []
    out_values: list = []
    buckets = max(1, points // 2)
    finite = all_finite(values)
    for bucket in range(buckets):
        low, high = bucket * total // buckets, (bucket + 1) * total // buckets
        segment = values[low:high]
        if not finite and not all_finite(segment):
            kept = [i for i, v in enumerate(segment) if v - v == 0]  # finite only (nan - nan, inf - inf are nan)
            if not kept:
                out_steps.append(steps[low])
                out_values.append(None)
                continue
            first = min(kept, key=segment.__getitem__)
            second = max(kept, key=segment.__getitem__)
        else:
            first = segment.index(min(segment))
            second = segment.index(max(segment))
        for index in sorted({first, second}):
            out_steps.append(steps[low + index])
            out_values.append(segment[index])
    return {"steps": out_steps, "values": out_values, "points": total, "downsampled": True}


def _nulls(values: list) -> list:
    if all_finite(values):
        return list(values)
    return [v if v - v == 0 else None for v in values]
