"""The experiment record's fields, described once, and the rule for which version wins.

Every list of fields elsewhere is derived from `FIELDS`: the SQLite index's columns and
statements (store/index.py), the PostgreSQL columns and the rows written to them
(store/postgres.py, store/migrations.py), the fields `--where` knows (query.py), the ones
`--sort` takes (store/base.py) and the SQL compiler's column map (store/sql.py). Adding a
field means one line here (and a migration step for PostgreSQL if it gets a column; a test
checks the migrations arrive at `columns()`).

The on-disk format (references/experiment-format.md) is not defined here: a record is
still its whole JSON, and columns are copies of some of its fields for an SQL store to
filter and sort on without reading the JSON.

Cheap to import (`exp list` loads it): no database module, no dataclass or NamedTuple machinery.
"""

from __future__ import annotations

from typing import Any


class Field:
    """One field of the record.

    Args:
        name: the key in the record's JSON.
        type: "text", "uuid" (text holding a UUID), "integer", "list" or "object": what it
            holds (a column's SQL type).
        column: "key" (an identity column every SQL store has: its value comes from the
            checks at the door, models.admit), "column" (a plain column copied from the
            record), "json" (its own small JSON column in the SQLite index), or "" (read
            from the record's JSON only).
        sortable: `--sort NAME` (objects: `--sort NAME.KEY`).
        queryable: `--where NAME …` (objects: `--where NAME.KEY …`).
        default: what a record that leaves it out means.
    """

    __slots__ = ("name", "type", "column", "sortable", "queryable", "default")

    def __init__(self, name: str, type: str, column: str = "", *, sortable: bool = True, queryable: bool = True,
                 default: Any = None):
        self.name, self.type, self.column = name, type, column
        self.sortable, self.queryable, self.default = sortable, queryable, default

    def __repr__(self) -> str:
        return f"Field({self.name!r}, {self.type!r}, {self.column!r})"


# In the record's on-disk order (models.Experiment); `provenance`, `files` and `history` are
# kept whole and read whole, never queried.
FIELDS: tuple[Field, ...] = (
    Field("id", "text", "key"),
    Field("name", "text", "column"),
    Field("task", "text", "column"),
    Field("model", "text", "column"),
    Field("params", "object", "json"),
    Field("command", "text", "column"),
    Field("machine", "text", "column"),
    Field("status", "text", "key"),
    Field("created", "text", "column"),
    Field("started", "text", "column"),
    Field("completed", "text", "column"),
    Field("metrics", "object", "json"),
    Field("summary", "text", "column"),
    Field("failed_reason", "text", "column"),
    Field("tags", "list", "json", sortable=False, default=[]),
    Field("priority", "integer", "column", default=0),
    Field("workdir", "text", "column"),
    Field("repo_path", "text"),
    Field("gpus", "integer"),
    Field("aliases", "list", "json", sortable=False, default=[]),
    Field("provenance", "object", sortable=False, queryable=False),
    Field("runner", "object"),
    Field("files", "list", sortable=False, queryable=False),
    Field("system", "object"),
    Field("uuid", "uuid", "key"),
    Field("rev", "integer", "key"),
    Field("updated", "text", "column"),
    Field("history", "list", sortable=False, queryable=False),
)
BY_NAME = {field.name: field for field in FIELDS}

# Columns an SQL store computes from the record rather than copies: (name, type, what).
DERIVED_COLUMNS = (
    ("num", "integer", "the number of the ID (EXP-012: 12), for ID order and `id < 10`"),
    ("fingerprint", "text", "task + model + canonical params hashed (models.fingerprint)"),
)


def names(*, column: str | None = None, sortable: bool | None = None, queryable: bool | None = None,
          nested: bool | None = None) -> tuple[str, ...]:
    """Field names in record order, filtered: `column="column"`, `sortable=True`, …;
    `nested=True` keeps the objects (queried and sorted by path, `params.lr`)."""
    return tuple(f.name for f in FIELDS
                 if (column is None or f.column == column) and (sortable is None or f.sortable == sortable)
                 and (queryable is None or f.queryable == queryable)
                 and (nested is None or (f.type == "object") == nested))


def columns() -> tuple[tuple[str, str], ...]:
    """(column, type) of every plain column an SQL store keeps beside the whole record:
    the identity columns first, then the derived ones, then the copied fields."""
    keys = [(name, BY_NAME[name].type) for name in ("uuid", "id", "rev", "status")]
    return (*keys, *((name, kind) for name, kind, _ in DERIVED_COLUMNS),
            *((f.name, f.type) for f in FIELDS if f.column == "column"))


def row(data: dict[str, Any]) -> tuple[Any, ...]:
    """The plain columns' values, in `columns()` order, for a record as stored
    (Experiment.to_dict()); a text field holding something else gives its JSON text."""
    import json

    from .models import fingerprint, id_number

    derived = {"num": id_number(data["id"]),
               "fingerprint": fingerprint(data.get("task"), data.get("model"), data.get("params") or {})}
    values = []
    for name, kind in columns():
        value = derived[name] if name in derived else column_value(data, name)
        if kind == "text" and value is not None and not isinstance(value, str):
            value = json.dumps(value, ensure_ascii=False)
        values.append(value)
    return tuple(values)


def column_map() -> dict[str, str]:
    """Field -> column for store/sql.Compiler: the plain columns, plus `id_number` (num)."""
    return {**{name: name for name, _ in columns()}, "id_number": "num"}


def sort_help() -> str:
    """The fields `--sort` takes, for error messages."""
    return (f"{', '.join(names(sortable=True, nested=False))}, or "
            f"{' / '.join(f'{n}.NAME' for n in names(sortable=True, nested=True))}")


def column_value(data: dict[str, Any], name: str) -> Any:
    """A copied column's value from the record's JSON (the field's default when left out)."""
    return data.get(name, BY_NAME[name].default)


# --- which version of a record is current -----------------------------------------------
#
# The one rule, used by the JSONL index when it folds the log, by every store's put/merge,
# by doctor and by conflicts.resolve. Versions order by (rev, updated); a record with rev 0
# was written by the seed tool, which keeps no versions: it replaces any version it meets,
# as a later line in the log does. `supersedes_sql` renders the same rule for SQL stores,
# and a test checks the two agree on every case.

VERSION = ("rev", "updated")  # the fields a version is ordered by, most significant first


def version(rev: int, updated: str | None) -> tuple[Any, ...]:
    """Orders two versions of one experiment: the higher rev, then the later `updated`.

    Every store, the index, doctor and merge decide "which one is current" by this alone,
    so two machines holding the same versions agree whatever order they saw them in.
    """
    return (rev, updated or "")


def supersedes(new: tuple[Any, ...], old: tuple[Any, ...]) -> bool:
    """Whether version `new` replaces `old` (both from `version`): a higher version does;
    the seed tool's records (rev 0) carry no version, so one always does. An equal version
    does not: writing the same version twice changes nothing."""
    return new[0] == 0 or new > old


def supersedes_sql(new: str, old: str) -> str:
    """`supersedes` as an SQL condition over two rows' `rev` and `updated` columns, e.g.
    supersedes_sql("excluded", "experiments") in an upsert's `DO UPDATE … WHERE`."""
    def key(row: str) -> str:
        return f"({row}.rev, coalesce({row}.updated, ''))"

    return f"({new}.rev = 0 OR {key(new)} > {key(old)})"
