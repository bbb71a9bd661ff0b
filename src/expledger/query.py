"""The `--where` language: a real parser (no eval) from text to an AST, and back to text.

    params.lr < 0.01 and metrics.accuracy >= 0.9
    model ~ "whisper"            (case-insensitive regular expression search; regex.py: the dialect)
    tags has "baseline"          (a list holds the value; an object has the key)
    status in (success, failed)
    params.warmup exists         not (task = asr or metrics.wer > 0.2)

Semantics, the same in every backend: numbers compare as numbers (1e-3 equals 0.001),
strings as strings (a bare word is a string), booleans only with = and !=; a missing field,
or one of another type, never matches a comparison. `status` words are any case; `id`
takes any spelling of an ID and compares by number. Backends compile the AST (store/sql.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import Argument, BadInput, keyword, literal
from .schema import names

TOP_FIELDS = names(queryable=True, nested=False)  # the record's fields, described in schema.py
NESTED_FIELDS = names(queryable=True, nested=True)  # queried by a path inside: params.lr
KEYWORDS = {"and", "or", "not", "in", "has", "exists", "true", "false"}
# Limits that keep every backend's own parser and evaluator within bounds (SQLite's parser
# stack, its expression depth, Python's recursion and int parsing): past them is bad input.
MAX_LENGTH = 10_000  # characters in one expression
MAX_DEPTH = 32  # nested parentheses and `not`s
MAX_TERMS = 200  # comparisons, counting each value of an `in (…)` list
MAX_NUMBER_LENGTH = 100  # characters in one number


@dataclass(frozen=True)
class Compare:
    path: tuple
    op: str
    value: object


@dataclass(frozen=True)
class In:
    path: tuple
    values: tuple


@dataclass(frozen=True)
class Has:
    path: tuple
    value: object


@dataclass(frozen=True)
class Exists:
    path: tuple


@dataclass(frozen=True)
class Not:
    item: object


@dataclass(frozen=True)
class And:
    items: tuple


@dataclass(frozen=True)
class Or:
    items: tuple


_SEGMENT = r"""(?:[\w\-/:@]+|"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')"""
_TOKENS = re.compile(
    rf"""(?P<space>\s+)
       |(?P<number>-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?(?![\w.\-"']))
       |(?P<word>{_SEGMENT}(?:\.{_SEGMENT})*)
       |(?P<op><=|>=|!=|==|=|<|>|~)
       |(?P<punct>[(),])""",
    re.VERBOSE,
)
_QUOTED_PART = re.compile(_SEGMENT)
_PLAIN = re.compile(r"[A-Za-z_][\w\-]*")


@dataclass
class _Token:
    kind: str  # number, word, op, punct, end
    text: str
    column: int

    @property
    def keyword(self) -> str | None:
        lowered = self.text.lower()
        return lowered if self.kind == "word" and lowered in KEYWORDS else None


def _tokenize(text: str) -> list[_Token]:
    tokens, position = [], 0
    while position < len(text):
        match = _TOKENS.match(text, position)
        if not match:
            char = text[position]
            what = "an unclosed quote" if char in "\"'" else f"unexpected character {char!r}"
            raise _error(f"{what} at column {position + 1}")
        if match.lastgroup != "space":
            tokens.append(_Token(match.lastgroup, match.group(), position + 1))
        position = match.end()
    tokens.append(_Token("end", "", len(text) + 1))
    return tokens


def _error(message: str, argument: str | Argument = "where") -> BadInput:
    """BadInput about the argument (`where`, the CLI's --where) that holds the expression."""
    return BadInput("{0}: " + literal(message),
                    arguments=(argument if isinstance(argument, Argument) else keyword(argument),))


def _unquote(text: str) -> str:
    if text[:1] in "\"'":
        return re.sub(r"\\(.)", lambda m: m.group(1) if m.group(1) in "\\\"'" else m.group(), text[1:-1],
                      flags=re.DOTALL)
    return text


class _Parser:
    def __init__(self, text: str):
        if len(text) > MAX_LENGTH:
            raise _error(f"the expression is too long ({len(text)} characters; at most {MAX_LENGTH})")
        self.tokens = _tokenize(text)
        self.index = 0
        self.depth = 0
        self.terms = 0

    def nest(self, token: _Token) -> None:
        """One level deeper (a '(' or a `not`); bad input past MAX_DEPTH, before recursion runs out."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _error(f"nested too deeply at column {token.column} (at most {MAX_DEPTH} levels of "
                         "parentheses and 'not')")

    def count(self, token: _Token, terms: int = 1) -> None:
        self.terms += terms
        if self.terms > MAX_TERMS:
            raise _error(f"too many comparisons at column {token.column} (at most {MAX_TERMS}, "
                         "counting each value of an 'in' list)")

    @property
    def token(self) -> _Token:
        return self.tokens[self.index]

    def take(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def at_keyword(self, *words: str) -> bool:
        return self.token.keyword in words

    def parse(self):
        if self.token.kind == "end":
            raise _error("the expression is empty")
        expr = self.parse_or()
        if self.token.kind != "end":
            raise _error(f"expected 'and', 'or' or the end, found {self.token.text!r} at column {self.token.column}")
        return expr

    def parse_or(self):
        items = [self.parse_and()]
        while self.at_keyword("or"):
            self.take()
            items.append(self.parse_and())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def parse_and(self):
        items = [self.parse_not()]
        while self.at_keyword("and"):
            self.take()
            items.append(self.parse_not())
        return items[0] if len(items) == 1 else And(tuple(items))

    def parse_not(self):
        if self.at_keyword("not"):
            self.nest(self.take())
            expr = Not(self.parse_not())
            self.depth -= 1
            return expr
        return self.parse_atom()

    def parse_atom(self):
        if self.token.text == "(" and self.token.kind == "punct":
            self.nest(self.take())
            expr = self.parse_or()
            self.expect(")", "to close the '('")
            self.depth -= 1
            return expr
        return self.parse_predicate()

    def expect(self, text: str, why: str) -> None:
        if self.token.text != text or self.token.kind != "punct":
            raise _error(f"expected {text!r} {why} at column {self.token.column}")
        self.take()

    def parse_predicate(self):
        token = self.take()
        self.count(token)
        if token.kind != "word" or token.keyword:
            found = f"{token.text!r}" if token.kind != "end" else "the end"
            raise _error(f"expected a field (name, params.X, metrics.X, …), found {found} at column {token.column}")
        path = _field(token)
        after = self.token
        if path in {(name,) for name in NESTED_FIELDS} and not self.at_keyword("has", "exists", "not"):
            raise _error(f"unknown field {token.text!r} at column {token.column}: "
                         f"use {token.text}.NAME, or `{token.text} has NAME`")
        if after.kind == "op":
            self.take()
            op = "=" if after.text == "==" else after.text
            value_token = self.token
            value = self.parse_value(path, after, normalise=op != "~")
            if op == "~":
                from .regex import translate

                translate(str(value), column=value_token.column + 1)  # refused here, as bad input, on every store
            return Compare(path, op, value)
        if self.at_keyword("in"):
            self.take()
            return In(path, self.parse_list(path))
        if self.at_keyword("has"):
            return Has(path, self.parse_value(path, self.take(), normalise=False))
        if self.at_keyword("exists"):
            self.take()
            return Exists(path)
        if self.at_keyword("not"):
            self.take()
            if self.at_keyword("in"):
                self.take()
                return Not(In(path, self.parse_list(path)))
            if self.at_keyword("exists"):
                self.take()
                return Not(Exists(path))
            raise _error(f"expected 'in' or 'exists' after 'not' at column {self.token.column}")
        found = f"{after.text!r}" if after.kind != "end" else "the end"
        raise _error(f"expected an operator (= != < <= > >= ~ in has exists) after {token.text!r}, "
                     f"found {found} at column {after.column}")

    def parse_list(self, path: tuple) -> tuple:
        opening = self.token
        self.expect("(", "after 'in'")
        values = [self.parse_value(path, opening)]
        while self.token.text == "," and self.token.kind == "punct":
            comma = self.take()
            self.count(comma)
            values.append(self.parse_value(path, comma))
        self.expect(")", "to close the list")
        return tuple(values)

    def parse_value(self, path: tuple, after: _Token, *, normalise: bool = True):
        token = self.take()
        if token.kind == "number":
            if len(token.text) > MAX_NUMBER_LENGTH:
                raise _error(f"the number at column {token.column} is too long (at most {MAX_NUMBER_LENGTH} characters)")
            value = float(token.text) if any(c in token.text for c in ".eE") else int(token.text)
            if value in (float("inf"), float("-inf")):
                raise _error(f"the number {token.text} is too large at column {token.column}")
        elif token.kind == "word" and token.keyword in ("true", "false"):
            value = token.keyword == "true"
        elif token.kind == "word" and not token.keyword:
            value = _unquote(token.text) if _QUOTED_PART.fullmatch(token.text) else token.text
        else:
            found = f"{token.text!r}" if token.kind != "end" else "the end"
            raise _error(f"expected a value after {after.text!r} at column {token.column}, found {found}")
        return _normalise(path, value, token) if normalise else value


def _field(token: _Token) -> tuple:
    parts = tuple(_unquote(part) for part in _QUOTED_PART.findall(token.text))
    head = parts[0]
    if (len(parts) == 1 and head in TOP_FIELDS) or head in NESTED_FIELDS:
        if any(not part or '"' in part for part in parts):
            raise _error(f"field names may not be empty or hold '\"' at column {token.column}")
        return parts
    hint = f"{', '.join(TOP_FIELDS)}, or {' / '.join(f'{name}.NAME' for name in NESTED_FIELDS)}"
    raise _error(f"unknown field {token.text!r} at column {token.column}: use {hint}")


def _normalise(path: tuple, value, token: _Token):
    """Status words in any case; IDs in any spelling (compared by number)."""
    if path == ("status",):
        from .models import Status

        valid = ", ".join(s.value.lower() for s in Status)
        if not isinstance(value, str):
            raise _error(f"status is a word ({valid}), not {token.text!r}, at column {token.column}")
        try:
            return Status.parse(value).value
        except BadInput:
            raise _error(f"unknown status {value!r} at column {token.column}: valid are {valid}") from None
    if path == ("id",):
        from .models import id_number

        number = id_number(str(value)) if isinstance(value, str) else value
        if number is None or isinstance(value, (bool, float)):
            raise _error(f"not an experiment ID: {token.text!r} at column {token.column}")
        return number
    return value


def field_path(text: str, *, flag: str | Argument = "columns") -> tuple:
    """One field name (`name`, `params.lr`, `metrics."top-1"`) as a path; BadInput naming the
    argument `flag` (a keyword such as `group_by`; the CLI shows it as --group-by) if unknown."""
    argument = flag if isinstance(flag, Argument) else flag.lstrip("-").replace("-", "_")
    match = _TOKENS.fullmatch(text.strip())
    if not match or match.lastgroup != "word":
        raise _error(f"not a field name: {text!r}", argument)
    try:
        return _field(_Token("word", match.group(), 1))
    except BadInput as err:
        detail = str(err).partition(": ")[2].replace(" at column 1", "")
        raise _error(detail, argument) from None


def parse(text: str):
    """The AST of a `--where` expression; BadInput naming the column on a syntax error."""
    return _Parser(text).parse()


def to_text(expr) -> str:
    """Print an AST so that `parse(to_text(e)) == e`."""
    if isinstance(expr, Or):
        return " or ".join(_wrap(item, Or) for item in expr.items)
    if isinstance(expr, And):
        return " and ".join(_wrap(item, (Or, And)) for item in expr.items)
    if isinstance(expr, Not):
        return "not " + _wrap(expr.item, (Or, And))
    field = ".".join(part if _PLAIN.fullmatch(part) and part.lower() not in KEYWORDS else _quote(part)
                     for part in expr.path)
    if isinstance(expr, Compare):
        return f"{field} {expr.op} {_literal(expr.value)}"
    if isinstance(expr, In):
        return f"{field} in ({', '.join(_literal(v) for v in expr.values)})"
    if isinstance(expr, Has):
        return f"{field} has {_literal(expr.value)}"
    return f"{field} exists"


def _wrap(expr, kinds) -> str:
    text = to_text(expr)
    return f"({text})" if isinstance(expr, kinds) else text


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _literal(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return _quote(value)
