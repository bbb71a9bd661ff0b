"""The one regular-expression dialect of `~`: the same answer on every store, in linear time.

A pattern is checked by a small parser and rewritten into a form that RE2 (the JSONL index,
through google-re2) and PostgreSQL (`~*`) read the same way:

    literals, escaped punctuation (\\. \\( …), \\t \\n \\r \\f \\v
    .  ^  $  |  ( … )  (?: … )
    [abc]  [^a-z]  and \\d \\w \\s \\D \\W \\S (ASCII: [0-9], [0-9A-Za-z_], blanks)
    *  +  ?  {m}  {m,}  {m,n} (m, n at most 255), optionally followed by ? (same matches)

Matching is a search (anywhere in the text), in any case, and `.` matches a newline too.
Everything else (back-references, look-around, \\b and other engine-specific escapes, named
groups, inline flags, POSIX classes `[[:alpha:]]`, `{,n}`) is refused as bad input, so no
pattern means one thing on one store and another thing (or an error) on the other. RE2
never backtracks, so `(a+)+$` against a long name takes linear time.
"""

from __future__ import annotations

from .errors import BadInput, keyword, literal

MAX_LENGTH = 1_000  # characters in one pattern
MAX_REPEAT = 255  # PostgreSQL's limit on {m,n}
MAX_SIZE = 1_000  # nested counted repetitions multiplied, so no pattern compiles into a giant program

_CLASSES = {"d": "0-9", "w": "0-9A-Za-z_", "s": "\\t\\n\\v\\f\\r "}
_CONTROL = {"t": "\\t", "n": "\\n", "r": "\\r", "f": "\\f", "v": "\\v"}
_SPECIAL = set("\\.^$|?*+()[]{}")
_CLASS_SPECIAL = set("\\]^-[")


class _Parser:
    def __init__(self, pattern: str, column: int):
        self.text, self.pos, self.column = pattern, 0, column

    def fail(self, message: str) -> BadInput:
        return BadInput("{0}: " + literal(f"{message} in the regular expression at column {self.column + self.pos}"),
                        arguments=(keyword("where"),))

    def peek(self, ahead: int = 0) -> str:
        index = self.pos + ahead
        return self.text[index] if index < len(self.text) else ""

    def alternation(self, depth: int) -> tuple[str, int]:
        branches, size = [], 1
        while True:
            text, branch_size = self.sequence(depth)
            branches.append(text)
            size = max(size, branch_size)
            if self.peek() != "|":
                return "|".join(branches), size
            self.pos += 1

    def sequence(self, depth: int) -> tuple[str, int]:
        parts, size = [], 1
        while self.peek() not in ("", "|", ")"):
            atom, atom_size, repeatable = self.atom(depth)
            bounds = self.quantifier()
            if bounds is not None:
                if not repeatable:
                    raise self.fail("nothing to repeat")
                low, high, text = bounds
                atom_size *= max(1, high if high is not None else low)
                atom += text
                if self.peek() in ("*", "+", "?", "{"):
                    raise self.fail("a repeat of a repeat is not allowed")
            parts.append(atom)
            size = max(size, atom_size)
            if size > MAX_SIZE:
                raise self.fail(f"repetitions too large (nested counts multiply past {MAX_SIZE})")
        return "".join(parts), size

    def quantifier(self) -> tuple[int, int | None, str] | None:
        char = self.peek()
        if char in ("*", "+", "?"):
            self.pos += 1
            bounds = (0, None, "*") if char == "*" else (1, None, "+") if char == "+" else (0, 1, "?")
        elif char == "{":
            bounds = self.counted()
        else:
            return None
        if self.peek() == "?":
            self.pos += 1  # lazy: the same matches for a yes/no search
        return bounds

    def counted(self) -> tuple[int, int | None, str]:
        end = self.text.find("}", self.pos)
        body = self.text[self.pos + 1 : end] if end != -1 else ""
        low, comma, high = body.partition(",")
        if end == -1 or not low.isascii() or not low.isdigit() or (high and not (high.isascii() and high.isdigit())):
            raise self.fail("write {m}, {m,} or {m,n} to repeat, or \\{ for a literal brace")
        low_n, high_n = int(low), (int(high) if high else None if comma else int(low))
        if max(low_n, high_n or 0) > MAX_REPEAT or (high_n is not None and high_n < low_n):
            raise self.fail(f"repeat counts go from 0 to {MAX_REPEAT}, the smaller first")
        self.pos = end + 1
        text = f"{{{low_n}}}" if not comma else f"{{{low_n},}}" if high_n is None else f"{{{low_n},{high_n}}}"
        return low_n, high_n, text

    def atom(self, depth: int) -> tuple[str, int, bool]:
        char = self.peek()
        if char == "(":
            if depth >= 32:
                raise self.fail("groups nested too deeply")
            self.pos += 1
            if self.peek() == "?":
                if self.peek(1) != ":":
                    raise self.fail("only (?:…) groups are supported (no named groups, flags or look-around)")
                self.pos += 2
            inner, size = self.alternation(depth + 1)
            if self.peek() != ")":
                raise self.fail("missing ')'")
            self.pos += 1
            return f"(?:{inner})", size, True
        if char == "[":
            return self.bracket(), 1, True
        self.pos += 1
        if char in ("^", "$"):
            return char, 1, False
        if char == ".":
            return ".", 1, True
        if char == "\\":
            return self.escape(in_class=False), 1, True
        if char in ("*", "+", "?"):
            raise self.fail(f"nothing to repeat before {char!r}")
        if char in ("{", "}", "]"):
            raise self.fail(f"write \\{char} for a literal {char!r}")
        if char == "\x00":
            raise self.fail("a NUL character is not allowed")
        return char, 1, True

    def escape(self, *, in_class: bool) -> str:
        char = self.peek()
        self.pos += 1
        if not char:
            raise self.fail("a trailing backslash")
        if char in _CONTROL:
            return _CONTROL[char]
        if char.lower() in _CLASSES and char.isascii():
            if char.islower():
                return _CLASSES[char] if in_class else f"[{_CLASSES[char]}]"
            if not in_class:
                return f"[^{_CLASSES[char.lower()]}]"
            raise self.fail(f"\\{char} is not allowed inside [...]")
        if char.isascii() and not char.isalnum() and char.isprintable():
            return "\\" + char
        raise self.fail(f"\\{char} is not part of the ~ dialect (use \\d \\w \\s \\D \\W \\S \\t \\n \\r \\f \\v "
                        "or a backslash before punctuation)")

    def bracket(self) -> str:
        self.pos += 1
        negate = self.peek() == "^"
        if negate:
            self.pos += 1
        items: list[str] = []
        first = True
        while True:
            char = self.peek()
            if not char:
                raise self.fail("missing ']'")
            if char == "]" and not first:
                self.pos += 1
                break
            low = self.class_char()
            if self.peek() == "-" and self.peek(1) not in ("]", ""):
                self.pos += 1
                high = self.class_char()
                if not (_single(low) and _single(high)):
                    raise self.fail("a range needs a single character at each end")
                if _value(low) > _value(high):
                    raise self.fail("a range must go from the lower character to the higher")
                items.append(f"{low}-{high}")
            else:
                items.append(low)
            first = False
        return "[" + ("^" if negate else "") + "".join(items) + "]"

    def class_char(self) -> str:
        char = self.peek()
        self.pos += 1
        if char == "\\":
            return self.escape(in_class=True)
        if char == "[":
            raise self.fail("write \\[ for a literal '[' inside [...] (no POSIX classes)")
        if char == "\x00":
            raise self.fail("a NUL character is not allowed")
        return "\\" + char if char in _CLASS_SPECIAL else char


_ESCAPED = {"\\t": "\t", "\\n": "\n", "\\r": "\r", "\\f": "\f", "\\v": "\v"}


def _single(item: str) -> bool:
    """One character as a class item emits it: `a`, or an escape like `\\-` or `\\t`."""
    return len(item) == 1 or (len(item) == 2 and item[0] == "\\")


def _value(item: str) -> int:
    if item in _ESCAPED:
        return ord(_ESCAPED[item])
    return ord(item[-1])


def translate(pattern: str, *, column: int = 1) -> str:
    """The pattern in the dialect's canonical form (same meaning on RE2 and PostgreSQL);
    BadInput naming the construct and its column when it is outside the dialect."""
    if len(pattern) > MAX_LENGTH:
        raise BadInput(f"{{0}}: the regular expression at column {column} is too long (at most {MAX_LENGTH} characters)",
                       arguments=(keyword("where"),))
    parser = _Parser(pattern, column)
    text, _ = parser.alternation(0)
    if parser.pos != len(pattern):
        raise parser.fail("unbalanced ')'")
    return text


_COMPILED: dict[str, object] = {}


def search(canonical: str, text: str) -> bool:
    """Whether a canonical pattern (from `translate`) occurs in `text`, in any case: RE2,
    imported only when a `~` query runs, so start-up stays small."""
    compiled = _COMPILED.get(canonical)
    if compiled is None:
        re2 = engine()
        options = re2.Options()
        options.case_sensitive = False
        options.dot_nl = True
        options.never_capture = True
        options.log_errors = False
        compiled = _COMPILED[canonical] = re2.compile(canonical, options)
    return compiled.search(text) is not None


def engine():
    """The RE2 module; MissingExtra with the fix when google-re2 is not installed."""
    try:
        import re2
    except ImportError:
        from .errors import MissingExtra

        raise MissingExtra("`~` on this store needs google-re2: pip install google-re2") from None
    return re2
