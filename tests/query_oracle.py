"""The query semantics written plainly in Python: the reference the SQL backends must match."""

from __future__ import annotations

from expledger.models import id_number
from expledger.query import And, Compare, Has, In, Not, Or

_MISSING = object()


def _get(record: dict, path: tuple):
    value = record
    for part in path:
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _kind(value) -> str | None:
    if value is _MISSING:
        return None
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "text"
    return "array" if isinstance(value, list) else "object"


_OPS = {"=": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}


def _compare(record: dict, path: tuple, op: str, literal) -> bool:
    value = _get(record, path)
    if path == ("id",) and op != "~":
        value = id_number(value)
        return value is not None and _OPS[op](value, literal)
    kind = _kind(value)
    if op == "~":
        from expledger.regex import search, translate

        return kind == "text" and search(translate(str(literal)), value)
    if kind != _kind(literal):
        return False
    return _OPS[op](value, literal)


def matches(expr, record: dict) -> bool:
    """Whether a record (as `to_dict()` gives it) matches a parsed expression."""
    if isinstance(expr, And):
        return all(matches(item, record) for item in expr.items)
    if isinstance(expr, Or):
        return any(matches(item, record) for item in expr.items)
    if isinstance(expr, Not):
        return not matches(expr.item, record)
    if isinstance(expr, Compare):
        return _compare(record, expr.path, expr.op, expr.value)
    if isinstance(expr, In):
        return any(_compare(record, expr.path, "=", value) for value in expr.values)
    value = _get(record, expr.path)
    if isinstance(expr, Has):
        if isinstance(value, list):
            return any(_kind(v) == _kind(expr.value) and v == expr.value for v in value)
        return isinstance(value, dict) and str(expr.value) in value
    return _kind(value) not in (None, "null")  # Exists
