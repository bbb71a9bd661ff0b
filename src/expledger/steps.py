"""Step metrics on disk: compact binary chunks, because text can't keep up with training loops.

A chunk per metric per flush: b"SC", name length (u16), name (UTF-8), point count (u32),
a CRC-32 of the name, count and points (u32), then the steps as int64 and the values as float64, all
little-endian. Chunks are only ever appended; a chunk cut short by a crash, or any damaged
part, is skipped on reading, and the chunks after it are still read. The checksum is what
makes that safe: without it, bytes of a torn chunk can pass for a chunk of their own (found
by the property test). Chunks written before it (b"ST", no checksum) are read as they were.
Writing a million floats as JSON text costs about a second on a small machine; this costs
a memcpy. NaN and ±inf are stored as they are.
"""

from __future__ import annotations

import math
import struct
import sys
import zlib
from array import array

_HEADER = struct.Struct("<2sH")
_COUNT = struct.Struct("<I")
_MAGIC = b"ST"  # chunks written before checksums
_MAGIC_CRC = b"SC"
_MAGICS = (_MAGIC, _MAGIC_CRC)
_CRC = struct.Struct("<I")
_VALUE = struct.Struct("<d")
SYSTEM = "system/"  # the prefix of the series sysmetrics.py samples


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
        encoded, step_bytes, value_bytes = name.encode(), steps.tobytes(), values.tobytes()
        count = _COUNT.pack(len(steps))
        crc = zlib.crc32(value_bytes, zlib.crc32(step_bytes, zlib.crc32(encoded + count)))
        parts += [_HEADER.pack(_MAGIC_CRC, len(encoded)), encoded, count, _CRC.pack(crc), step_bytes, value_bytes]
    return b"".join(parts)


def _find_magic(data, start: int, stop: int | None = None) -> int:
    """The next place a chunk may start (either magic) at or after `start`, or -1."""
    stop = len(data) if stop is None else stop
    places = [p for p in (data.find(magic, start, stop) for magic in _MAGICS) if p != -1]
    return min(places) if places else -1


def _chunk_at(data, position: int, *, strict: bool = False, verify: bool = True) -> tuple[str, int, int] | None:
    """(name, start of the steps, end) of a well-formed chunk at `position`, else None.

    Well-formed: a magic, a UTF-8 name, its points within the data and, for a checksummed
    chunk, their CRC-32 (unless not `verify`: reading only the ends of chunks). An old chunk
    without a checksum must be followed by the end of the data, the next chunk's magic, or
    (unless `strict`) damage that is not a chunk starting inside it: a torn chunk followed
    by later ones is never read as one long chunk.
    """
    end = len(data)
    if position + _HEADER.size > end:
        return None
    magic, length = _HEADER.unpack_from(data, position)
    if magic not in _MAGICS:
        return None
    checked = magic == _MAGIC_CRC
    start = position + _HEADER.size + length + _COUNT.size + (_CRC.size if checked else 0)
    if start > end:
        return None
    (count,) = _COUNT.unpack_from(data, position + _HEADER.size + length)
    stop = start + 16 * count
    if stop > end:
        return None
    try:
        name = bytes(data[position + _HEADER.size: position + _HEADER.size + length]).decode("utf-8")
    except UnicodeDecodeError:
        return None
    if checked:
        if verify:
            (crc,) = _CRC.unpack_from(data, start - _CRC.size)
            with memoryview(data) as view:  # the name and count too: a torn header must not borrow a payload
                if zlib.crc32(view[start:stop], zlib.crc32(view[position + _HEADER.size:start - _CRC.size])) != crc:
                    return None
        return name, start, stop
    following = bytes(data[stop:stop + 2])
    if following and not any(m.startswith(following) for m in _MAGICS):
        if strict:
            return None
        inside = _find_magic(data, position + 1, stop)
        while inside != -1:
            if _chunk_at(data, inside, strict=True) is not None:
                return None
            inside = _find_magic(data, inside + 1, stop)
    return name, start, stop


def chunks(data, *, verify: bool = True) -> tuple[list[tuple[str, int, int]], int]:
    """Where every well-formed chunk is, as (name, start of its steps, end), and how many
    damaged parts (a torn write, garbage) were skipped to find them. `data` may be an mmap."""
    found, skipped, position, end = [], 0, 0, len(data)
    while position < end:
        chunk = _chunk_at(data, position, verify=verify)
        if chunk is None:  # damaged: go on from the next place a chunk starts
            skipped += 1
            position = _find_magic(data, position + 1)
            while position != -1 and _chunk_at(data, position, verify=verify) is None:
                position = _find_magic(data, position + 1)
            if position == -1:
                break
            continue
        found.append(chunk)
        position = chunk[2]
    return found, skipped


def decode(data: bytes, *, warn=None, arrays: bool = False) -> dict[str, tuple[list, list]]:
    """All well-formed chunks as {name: (steps, values)}, in the order they were written;
    with `arrays`, as array('q')/array('d') (16 bytes a point instead of about 60: for
    reading a long series through once, as `show` does).

    A damaged part is skipped (only it) and `warn` is told how many were.
    """
    found, skipped = chunks(data)
    if skipped and warn is not None:
        warn(f"skipped {skipped} damaged parts of a step series (a write cut short, or garbage); "
             "the points around them are kept")
    series: dict[str, tuple[list, list]] = {}
    for name, start, stop in found:
        if stop == start:  # no points: nothing to add (and bytes inside garbage can look like an empty chunk)
            continue
        middle = start + (stop - start) // 2
        steps, values = array("q"), array("d")
        steps.frombytes(data[start:middle])
        values.frombytes(data[middle:stop])
        if sys.byteorder != "little":
            steps.byteswap()
            values.byteswap()
        held = series.get(name)
        if held is None:
            held = series[name] = (array("q"), array("d")) if arrays else ([], [])
        held[0].extend(steps if arrays else steps.tolist())
        held[1].extend(values if arrays else values.tolist())
    return series


def all_finite(values) -> bool:
    """Whether every value is a finite number, at C speed: one NaN or inf makes the sum non-finite."""
    try:
        return math.isfinite(math.fsum(values))
    except (OverflowError, TypeError):
        return False


def last_values(series: dict[str, tuple[list, list]]) -> dict:
    """The last logged value of every step metric: the default final metrics (the `system/`
    series of sysmetrics.py are not results: their peaks go on the record's `system`)."""
    return {name: values[-1] for name, (_, values) in series.items() if values and not name.startswith(SYSTEM)}


def last_of(data) -> dict:
    """The last value of every series, read from the chunks' ends only (for an mmap of a
    long series, a few pages instead of the whole); `system/` series left out, as above."""
    return {name: _VALUE.unpack_from(data, stop - 8)[0] for name, start, stop in chunks(data, verify=False)[0]
            if stop > start and not name.startswith(SYSTEM)}


def summary(series: dict[str, tuple[list, list]]) -> dict:
    """Per metric: points, step range, last, min and max (what `show --json` gives); NaN and
    ±inf never count as the min or max."""
    out = {}
    for name, (steps, values) in series.items():
        finite = values if all_finite(values) else [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
        out[name] = {"points": len(values), "first_step": steps[0] if steps else None,
                     "last_step": steps[-1] if steps else None, "last": values[-1] if values else None,
                     "min": min(finite) if finite else None, "max": max(finite) if finite else None}
    return out
