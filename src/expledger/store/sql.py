"""Compile a Search (filters, a `--where` AST, a sort) to SQL over JSON records.

Both SQL backends keep each record's JSON in a `data` column beside a few plain columns;
a Dialect says how to reach into that JSON. User input never becomes SQL text: values and
JSON paths travel as bound parameters. Every predicate is wrapped so that a missing field
gives false, never NULL, and `not` then means what it says.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod

from ..errors import BadInput, keyword, literal
from .base import Search


class Dialect(ABC):
    """How one database reaches into a record's JSON; `?` placeholders throughout.

    Each method returns SQL and its parameters for one field path, e.g. ("params", "lr").
    """

    false = "0"

    @abstractmethod
    def kind(self, path: tuple) -> tuple[str, list]:
        """The JSON type of a field: 'number', 'text', 'boolean', 'array', 'object', 'null', or NULL."""

    def is_kind(self, path: tuple, kind: str) -> tuple[str, list]:
        """True when the field's JSON type is `kind` (a cheaper test than comparing `kind()`)."""
        sql, args = self.kind(path)
        return f"({sql}) = '{kind}'", args

    @abstractmethod
    def number(self, path: tuple) -> tuple[str, list]:
        """The field as a number (only read where kind is 'number')."""

    @abstractmethod
    def text(self, path: tuple) -> tuple[str, list]:
        """The field as text (only read where kind is 'text')."""

    @abstractmethod
    def boolean(self, path: tuple) -> tuple[str, list]:
        """The field as something comparable with a bound True/False."""

    @abstractmethod
    def sort_terms(self, path: tuple) -> list[tuple[str, list]]:
        """Sort keys for the field after its kind rank: numbers numerically, text by code point."""

    @abstractmethod
    def regex(self, path: tuple, pattern: str) -> tuple[str, list]:
        """True when `pattern` (a regular expression) is found in the text field, any case."""

    def boolean_value(self, value: bool):
        """A Python bool as this database compares it with `boolean(path)`."""
        return int(value)

    @abstractmethod
    def has(self, path: tuple, value) -> tuple[str, list]:
        """True when a list field holds `value`, or an object field has it as a key."""

    def order_column(self, column: str) -> str:
        """A plain column as an ORDER BY term sorts it: text by code point, as everywhere."""
        return column


class SQLiteDialect(Dialect):
    """SQLite's JSON1 functions; `regexp` is a Python function registered on the connection.

    Top-level fields may live in plain columns and params/metrics/tags in their own small
    JSON columns; anything else is read from the whole record in `data`.
    """

    _KIND = ("CASE {t} WHEN 'integer' THEN 'number' WHEN 'real' THEN 'number' "
             "WHEN 'true' THEN 'boolean' WHEN 'false' THEN 'boolean' ELSE {t} END")

    def __init__(self, *, scalar_columns: set[str] = frozenset(), json_columns: set[str] = frozenset()):
        self.scalar_columns = scalar_columns
        self.json_columns = json_columns

    def _locate(self, path: tuple) -> tuple[str, str | None]:
        """The column holding a field, and the JSON path inside it (None: the column is the value)."""
        head = path[0]
        if head in self.json_columns:
            return head, "$" + "".join(f'."{_label(part)}"' for part in path[1:])
        if len(path) == 1 and head in self.scalar_columns:
            return head, None
        return "data", "$" + "".join(f'."{_label(part)}"' for part in path)

    def kind(self, path):
        column, json_path = self._locate(path)
        if json_path is None:
            return self._KIND.format(t=f"typeof({column})"), []
        return self._KIND.format(t=f"json_type({column}, ?)"), [json_path, json_path]

    _JSON_TYPES = {"number": "('integer', 'real')", "boolean": "('true', 'false')", "text": "('text')"}
    _SQL_TYPES = {"number": "('integer', 'real')", "text": "('text')", "boolean": "('none')"}

    def is_kind(self, path, kind):
        column, json_path = self._locate(path)
        if json_path is None:
            return f"typeof({column}) IN {self._SQL_TYPES[kind]}", []
        return f"json_type({column}, ?) IN {self._JSON_TYPES[kind]}", [json_path]

    def number(self, path):
        column, json_path = self._locate(path)
        return (column, []) if json_path is None else (f"json_extract({column}, ?)", [json_path])

    text = boolean = number

    def sort_terms(self, path):
        return [self.number(path)]  # SQLite orders numbers numerically and text by code point

    def regex(self, path, pattern):
        from ..regex import engine

        engine()  # a missing google-re2 is one clear error, not a failure inside SQLite
        text, args = self.text(path)
        return f"regexp(?, {text})", [pattern, *args]

    def has(self, path, value):
        column, json_path = self._locate(path)
        if json_path is None:
            return "0", []
        element = _literal_kind(value)
        exists = (
            f"EXISTS (SELECT 1 FROM json_each({column}, ?) AS j WHERE "
            f"(json_type({column}, ?) = 'array' AND j.value = ? AND "
            "(CASE j.type WHEN 'integer' THEN 'number' WHEN 'real' THEN 'number' "
            "WHEN 'true' THEN 'boolean' WHEN 'false' THEN 'boolean' ELSE j.type END) = ?) "
            f"OR (json_type({column}, ?) = 'object' AND j.key = ?))"
        )
        args = [json_path, json_path, _sql_value(value), element, json_path, str(value)]
        if json_path == "$" and isinstance(value, str) and _PLAIN_WORD.fullmatch(value):
            # A whole list column (tags, aliases) holding a plain word holds it as "word" in its
            # JSON text: a substring test per row in C spares the JSON walk of nearly every row.
            # (CASE, not AND: SQLite may evaluate both sides of an AND.)
            return f"(CASE WHEN instr({column}, ?) > 0 THEN {exists} ELSE 0 END)", [f'"{value}"', *args]
        return exists, args


_PLAIN_WORD = re.compile(r"[A-Za-z0-9_.:@+-]+")  # written the same in any JSON text: no escapes


def _label(key: str) -> str:
    """A key as SQLite's JSON path reads it: it takes backslash escapes in a quoted label, so a
    key holding `\\` is written `\\\\` and names the same key as PostgreSQL's text[] path does."""
    return key.replace("\\", "\\\\")


def _literal_kind(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    return "number" if isinstance(value, (int, float)) else "text"


def _sql_value(value):
    return int(value) if isinstance(value, bool) else value


class Compiler:
    """Turns a Search into `WHERE` and `ORDER BY` clauses with their parameters.

    `columns` maps top-level fields to plain columns (status, id number, …) where the
    backend keeps them; everything else is read from the JSON.
    """

    def __init__(self, dialect: Dialect, *, columns: dict[str, str]):
        self.dialect = dialect
        self.columns = columns

    def where(self, search: Search) -> tuple[str, list]:
        clauses, args = ["1=1"], []

        def add(sql: str, values: list) -> None:
            clauses.append(sql)
            args.extend(values)

        if search.status:
            add(f"{self.columns['status']} IN ({', '.join('?' * len(search.status))})",
                [getattr(s, "value", s) for s in search.status])
        for field in ("task", "model", "machine"):
            value = getattr(search, field)
            if value is not None:
                add(f"{self.columns[field]} = ?", [value])
        for tag in search.tags:
            from ..query import Has

            add(*self.predicate(Has(("tags",), tag)))
        if search.fingerprint:
            add(f"{self.columns['fingerprint']} = ?", [search.fingerprint])
        if search.where is not None:
            add(*self.predicate(search.where))
        return " AND ".join(clauses), args

    def predicate(self, expr) -> tuple[str, list]:
        """SQL that is true exactly when the record matches `expr` (never NULL)."""
        from ..query import And, Not, Or  # only searches with a query pay for loading it

        if isinstance(expr, (And, Or)):
            parts = [self.predicate(item) for item in expr.items]
            joiner = " AND " if isinstance(expr, And) else " OR "
            return "(" + joiner.join(sql for sql, _ in parts) + ")", [a for _, args in parts for a in args]
        if isinstance(expr, Not):
            sql, args = self.predicate(expr.item)
            return f"(NOT {sql})", args
        sql, args = self._leaf(expr)
        return f"coalesce(({sql}), {self.dialect.false})", args

    def _leaf(self, expr) -> tuple[str, list]:
        from ..query import Compare, Exists, Has, In

        if isinstance(expr, In):
            parts = [self._compare(expr.path, "=", value) for value in expr.values]
            return "(" + " OR ".join(f"({sql})" for sql, _ in parts) + ")", [a for _, args in parts for a in args]
        if isinstance(expr, Compare):
            return self._compare(expr.path, expr.op, expr.value)
        if isinstance(expr, Has):
            return self.dialect.has(expr.path, expr.value)
        if isinstance(expr, Exists):
            kind, args = self.dialect.kind(expr.path)
            return f"({kind}) NOT IN ('null')", args
        raise BadInput(f"cannot compile {expr!r}")

    def _compare(self, path: tuple, op: str, value) -> tuple[str, list]:
        op_sql = {"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}.get(op)
        if path == ("id",) and op != "~":
            return f"{self.columns['id_number']} {op_sql} ?", [value]
        if path == ("status",) and op != "~":
            return f"{self.columns['status']} {op_sql} ?", [value]
        if op == "~":
            from ..regex import translate

            kind, kind_args = self.dialect.is_kind(path, "text")
            match, match_args = self.dialect.regex(path, translate(str(value)))
            return f"{kind} AND {match}", [*kind_args, *match_args]
        if isinstance(value, bool):
            if op not in ("=", "!="):
                raise BadInput("{0}: " + literal(f"true and false compare only with = or != (in {'.'.join(path)} {op})"),
                               arguments=(keyword("where"),))
            kind, kind_args = self.dialect.is_kind(path, "boolean")
            field, field_args = self.dialect.boolean(path)
            return f"{kind} AND {field} {op_sql} ?", [*kind_args, *field_args, self.dialect.boolean_value(value)]
        if isinstance(value, (int, float)):
            kind, kind_args = self.dialect.is_kind(path, "number")
            number, number_args = self.dialect.number(path)
            return f"{kind} AND {number} {op_sql} ?", [*kind_args, *number_args, value]
        kind, kind_args = self.dialect.is_kind(path, "text")
        text, text_args = self.dialect.text(path)
        return f"{kind} AND {text} {op_sql} ?", [*kind_args, *text_args, value]

    def order(self, search: Search) -> tuple[str, list]:
        """ORDER BY for the search's sort keys: missing values last, then by ID."""
        parts, args = [], []
        number = self.columns["id_number"]
        for path, descending in search.sort_keys():
            direction = "DESC" if descending else "ASC"
            if path == ("id",):
                parts.append(f"{number} {direction}, {self.dialect.order_column(self.columns['id'])} {direction}")
                continue
            if len(path) == 1 and path[0] in self.columns:  # a plain column: the database's index can serve
                parts.append(f"{self.dialect.order_column(self.columns[path[0]])} {direction} NULLS LAST")
                continue
            # Numbers first, then text, then true/false, then lists, objects and missing, in
            # either direction: a NaN (stored as text) never tops a leaderboard.
            kind, kind_args = self.dialect.kind(path)
            parts.append(f"CASE ({kind}) WHEN 'number' THEN 0 WHEN 'text' THEN 1 WHEN 'boolean' THEN 2 "
                         "WHEN 'null' THEN 4 ELSE 3 END")
            args += kind_args
            for term, term_args in self.dialect.sort_terms(path):
                parts.append(f"{term} {direction}")
                args += term_args
        return ", ".join([*parts, f"{number} ASC"]), args


def regexp(pattern: str, text) -> bool:
    """SQLite's missing REGEXP: `~`'s dialect (a pattern from regex.translate) through RE2,
    in linear time, the same answer as PostgreSQL's `~*`."""
    from ..regex import search

    return isinstance(text, str) and search(pattern, text)


class PostgresDialect(Dialect):
    """PostgreSQL's jsonb operators over a `data` jsonb column; paths travel as text[]."""

    false = "false"
    _KIND = "CASE jsonb_typeof(data #> ?::text[]) WHEN 'string' THEN 'text' ELSE jsonb_typeof(data #> ?::text[]) END"

    def kind(self, path):
        return self._KIND, [list(path), list(path)]

    def number(self, path):
        return ("CASE WHEN jsonb_typeof(data #> ?::text[]) = 'number' THEN (data #>> ?::text[])::float8 END",
                [list(path), list(path)])

    def text(self, path):
        return '(data #>> ?::text[]) COLLATE "C"', [list(path)]

    def boolean(self, path):
        return ("CASE WHEN jsonb_typeof(data #> ?::text[]) = 'boolean' THEN (data #>> ?::text[])::boolean END",
                [list(path), list(path)])

    def boolean_value(self, value):
        return bool(value)

    def order_column(self, column):
        from ..schema import columns

        text = {name for name, kind in columns() if kind == "text"}
        return f'{column} COLLATE "C"' if column in text else column  # not the database's locale order

    def sort_terms(self, path):
        return [self.number(path), self.text(path)]

    def regex(self, path, pattern):
        return "(data #>> ?::text[]) ~* ?", [list(path), pattern]

    def has(self, path, value):
        import json

        return ("CASE jsonb_typeof(data #> ?::text[]) WHEN 'array' THEN (data #> ?::text[]) @> ?::jsonb "
                "WHEN 'object' THEN jsonb_exists(data #> ?::text[], ?) ELSE false END",
                [list(path), list(path), json.dumps([value]), list(path), str(value)])
