"""Errors the library raises; only the CLI turns them into exit codes.

    ExpledgerError            base; exit 2, HTTP 400
    ├── BadInput              the user typed something we cannot use (JSON, status, ID, flag)
    ├── IllegalTransition     the lifecycle forbids this move right now (HTTP 409)
    ├── StoreError            the ledger cannot be read or written (path, permissions, disk)
    │   └── MissingExtra      an optional dependency is needed for this store
    ├── NotFound              what was asked for does not exist; exit 1, HTTP 404
    └── AlreadyTried          `add --unless-tried` found the config succeeded or running; exit 1, HTTP 409
"""


class ExpledgerError(Exception):
    """Base of every error the user should see as one line, without a traceback."""

    exit_code = 2
    http_status = 400
    kind = "error"


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
