"""Errors the library raises; only the CLI turns them into exit codes.

Messages speak to a Python caller: an error that names an argument (the one at fault, or the
one that would fix it) keeps it as data in `arguments`, worded by keyword (`force=True`,
`reason="…"`). The CLI shows the same message with its flags instead (`--force`,
`--reason "…"`) through `for_cli()`; no library message spells a flag itself.

    ExpledgerError            base; exit 2, HTTP 400
    ├── BadInput              the user typed something we cannot use (JSON, status, ID, flag)
    ├── IllegalTransition     the lifecycle forbids this move right now (HTTP 409)
    ├── StoreError            the ledger cannot be read or written (path, permissions, disk)
    │   └── MissingExtra      an optional dependency is needed for this store
    ├── NotFound              what was asked for does not exist; exit 1, HTTP 404
    └── AlreadyTried          `add --unless-tried` found the config succeeded or running; exit 1, HTTP 409
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Argument:
    """An argument an error names: its keyword, and how a Python caller and the CLI write it.

    Attributes:
        name: the keyword argument, e.g. "force".
        python: as a Python caller writes it, e.g. "force=True".
        cli: as the command line writes it, e.g. "--force".
    """

    name: str
    python: str
    cli: str


def keyword(name: str, value: str | None = None, *, cli: str | None = None, python: str | None = None) -> Argument:
    """The argument `name`, with an example `value` as Python writes it ("True", '"…"'):
    `name=value` for a Python caller, `--name value` (`--name` for True) on the command line."""
    flag = "--" + name.replace("_", "-")
    return Argument(
        name=name,
        python=python or (f"{name}={value}" if value is not None else name),
        cli=cli or (flag if value in (None, "True") else f"{flag} {value}"),
    )


def literal(text: object) -> str:
    """Text put into a message template as it is (its braces are not placeholders)."""
    return str(text).replace("{", "{{").replace("}", "}}")


class ExpledgerError(Exception):
    """Base of every error the user should see as one line, without a traceback.

    Args:
        message: the message; with `arguments`, a template whose `{0}`, `{1}`, … are the
            arguments it names (use `literal()` for other text with braces in it).
        arguments: the arguments the message names, as `keyword()` builds them.
    """

    exit_code = 2
    http_status = 400
    kind = "error"

    def __init__(self, message: str = "", *, arguments: tuple[Argument, ...] | list[Argument] = ()) -> None:
        self.template = message
        self.arguments = tuple(arguments)
        super().__init__(message.format(*(a.python for a in self.arguments)) if self.arguments else message)

    @property
    def argument(self) -> str | None:
        """The keyword of the first argument the message names (None if it names none)."""
        return self.arguments[0].name if self.arguments else None

    def for_cli(self) -> str:
        """The message with the command line's flags in place of keyword arguments."""
        if not self.arguments:
            return str(self)
        return self.template.format(*(a.cli for a in self.arguments))


class BadInput(ExpledgerError):
    """Input that cannot be used as given; the message says how to fix it."""

    kind = "bad_input"


class IllegalTransition(ExpledgerError):
    """A lifecycle move the experiment's current status does not allow."""

    http_status = 409
    kind = "illegal_transition"


class StoreError(ExpledgerError):
    """The ledger could not be opened, read or written."""

    http_status = 500
    kind = "store_error"


class MissingExtra(StoreError):
    """A store needs an optional dependency that is not installed."""

    kind = "missing_extra"


class NotFound(ExpledgerError):
    """An experiment (or other named thing) that does not exist."""

    exit_code = 1
    http_status = 404
    kind = "not_found"


class AlreadyTried(ExpledgerError):
    """A config asked to be added only if untried already succeeded or is running."""

    exit_code = 1
    http_status = 409
    kind = "already_tried"
