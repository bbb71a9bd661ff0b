"""Downsampling for charts keeps the shape: every bucket's extremes, in step order (hypothesis)."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from expledger.series import chart_series

values = st.lists(st.one_of(st.floats(-1e6, 1e6), st.just(math.nan), st.just(math.inf)), min_size=1, max_size=3000)


@given(values, st.integers(10, 400))
def test_downsampled_series_keep_extremes_in_order(ys, points):
    xs = list(range(0, 3 * len(ys), 3))
    out = chart_series(xs, ys, points=points)
    assert out["points"] == len(ys)
    assert out["steps"] == sorted(out["steps"]) and set(out["steps"]) <= set(xs)
    assert all(v is None or math.isfinite(v) for v in out["values"])
    finite = [y for y in ys if math.isfinite(y)]
    if out["downsampled"]:
        assert len(out["steps"]) <= points
        assert set(out["values"]) - {None} <= set(finite)
    if finite:
        assert min(finite) in out["values"] and max(finite) in out["values"]
    else:
        assert set(out["values"]) == {None}
