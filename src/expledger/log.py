"""The library's warnings go to `logging.getLogger("expledger")`, so an application routes,
formats or silences them like any other library's; `exp` shows each as the one line it is
(`warning: …` on stderr).

`logging` is imported only when there is something to say, so start-up stays small.
"""

from __future__ import annotations

LOGGER = "expledger"
_one_line = False  # set by the CLI: give warnings as `warning: …` lines on stderr


def warn(message: str) -> None:
    """Give a warning (redact URLs in `message` before: it may be shown anywhere)."""
    import logging

    logger = logging.getLogger(LOGGER)
    if _one_line and not any(getattr(h, "one_line", False) for h in logger.handlers):
        logger.addHandler(_OneLine())
    logger.warning(message)


def one_line_warnings() -> None:
    """Show the library's warnings as `warning: …` lines on stderr, as `exp` does."""
    global _one_line
    _one_line = True


def _OneLine():  # noqa: N802 - builds the handler class on first use: logging stays unimported until then
    import logging
    import sys

    class OneLine(logging.Handler):
        one_line = True

        def emit(self, record: logging.LogRecord) -> None:
            sys.stderr.write(f"warning: {record.getMessage()}\n")  # the stderr of now (tests swap it)
            sys.stderr.flush()

    return OneLine(logging.WARNING)
