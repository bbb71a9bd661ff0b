"""Step metrics on disk: compact binary chunks, because text can't keep up with training loops.

A chunk per metric per flush: b"ST", name length (u16), name (UTF-8), point count (u32),
then the steps as int64 and the values as float64, all little-endian. Chunks are only ever
appended; a chunk cut short by a crash is ignored on reading (at most one flush is lost).
Writing a million floats as JSON text costs about a second on a small machine; this costs
a memcpy. NaN and ±inf are stored as they are.
"""

from __future__ import annotations

import struct
import sys
from array import array

_HEADER = struct.Struct("<2sH")
_COUNT = struct.Struct("<I")
_MAGIC = b"ST"


def encode(series: dict[str, tuple]) -> bytes:
    """{name: (steps, values)} -> appendable bytes; array('q')/array('d') pass without a copy."""
    parts = []
    for name, (steps, values) in series.items():
        if not isinstance(steps, array):
            steps = array("q", steps)
        if not isinstance(values, array):
            values = array("d", values)
        if sys.byteorder != "little":
            steps, values = array("q", steps), array("d", values)
            steps.byteswap()
            values.byteswap()
        encoded = name.encode()
        parts += [_HEADER.pack(_MAGIC, len(encoded)), encoded, _COUNT.pack(len(steps)),
                  steps.tobytes(), values.tobytes()]
    return b"".join(parts)


def decode(data: bytes) -> dict[str, tuple[list, list]]:
    """All complete chunks as {name: (steps, values)}, in the order they were written."""
    series: dict[str, tuple[list, list]] = {}
    position, end = 0, len(data)
    while position + _HEADER.size <= end:
        magic, length = _HEADER.unpack_from(data, position)
        start = position + _HEADER.size + length + _COUNT.size
        if magic != _MAGIC or start > end:
            break
        name = data[position + _HEADER.size: position + _HEADER.size + length].decode("utf-8", "replace")
        (count,) = _COUNT.unpack_from(data, start - _COUNT.size)
        stop = start + 16 * count
        if stop > end:
            break  # cut short by a crash
        steps, values = array("q"), array("d")
        steps.frombytes(data[start: start + 8 * count])
        values.frombytes(data[start + 8 * count: stop])
        if sys.byteorder != "little":
            steps.byteswap()
            values.byteswap()
        held = series.setdefault(name, ([], []))
        held[0].extend(steps.tolist())
        held[1].extend(values.tolist())
        position = stop
    return series


def last_values(series: dict[str, tuple[list, list]]) -> dict:
    """The last logged value of every step metric: the default final metrics."""
    return {name: values[-1] for name, (_, values) in series.items() if values}
