"""Secrets out of everything `exp` prints: one redaction for store URLs and driver errors.

Every error line, warning, worker line and `--json` error passes through `redact`, which
hides the password of a URL's userinfo (`postgresql://me:***@db/x`, a password holding
`@` included: the userinfo ends at the last `@`), every `password=` parameter
(`?password=***`, libpq's `password='***'`), and any password of a store opened in this
process wherever a driver echoes it. Opening a store calls `remember(url)`.
"""

from __future__ import annotations

import functools
import re

MASK = "***"
_SECRET_WORD = r"(?:token|passw(?:or)?d|secret|api[-_]?key|access[-_]?key|private[-_]?key|credentials?|auth)"
_PATTERNS = {
    # scheme://user:PASSWORD@host — greedy up to the last '@' of the token, so 'p@ss' is hidden whole.
    "userinfo": (r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@'\"]*):(?P<secret>\S*)@(?=[^\s@]*(?:\s|$))", 0),
    "param": (r"(?P<head>\b(?:password|passwd|pwd)\s*=\s*)(?P<secret>'(?:[^'\\]|\\.)*'|[^\s&;'\",)]+)",
              re.IGNORECASE),
    "secret option": (rf"--?[\w-]*{_SECRET_WORD}[\w-]*", re.IGNORECASE),
    "secret pair": (rf"(?P<key>[A-Za-z_][\w]*{_SECRET_WORD}[\w]*)=(?P<value>.+)", re.IGNORECASE | re.DOTALL),
}


@functools.cache
def _pattern(name: str) -> re.Pattern[str]:
    """Compiled on first use: every command imports this module, few print a message to redact."""
    return re.compile(*_PATTERNS[name])


_SECRETS: set[str] = set()
_SHORTEST = 3  # a literal shorter than this is too common to hunt for in free text


def redact(text: str) -> str:
    """`text` with every password it may hold replaced by ***."""
    if not text:
        return text
    text = _pattern("userinfo").sub(lambda m: f"{m['head']}:{MASK}@", text)
    text = _pattern("param").sub(lambda m: f"{m['head']}{MASK}", text)
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def passwords(url: str) -> set[str]:
    """The passwords a store URL carries: its userinfo's and its `password=` parameters."""
    if "://" not in url:
        return set()  # a file path
    from urllib.parse import parse_qsl, unquote

    found: set[str] = set()
    for match in _pattern("userinfo").finditer(url):
        found.update((match["secret"], unquote(match["secret"])))
        found.update(part for part in match["secret"].split("@")[1:])  # what a driver may read as a host
    _, _, query = url.partition("?")
    try:
        found.update(value for key, value in parse_qsl(query) if key.lower() in ("password", "passwd", "pwd"))
    except ValueError:
        pass
    found.update(m["secret"].strip("'") for m in _pattern("param").finditer(url))
    return {secret for secret in found if len(secret) >= _SHORTEST}


def remember(url: str) -> None:
    """Hide this URL's passwords from every later message of this process."""
    _SECRETS.update(passwords(url))


def redact_args(argv):
    """A command line as stored, with secret-looking values hidden when `EXP_REDACT_ARGS=1`:
    `--token X`, `--api-key=X`, `HF_TOKEN=X` become `***`. A string is split and joined
    again; the command itself always runs as typed."""
    from .config import redact_args_wanted

    if not redact_args_wanted():
        return argv
    if isinstance(argv, str):
        import shlex

        try:
            return shlex.join(redact_args(shlex.split(argv)))
        except ValueError:
            return argv
    out, hide_next = [], False
    for arg in argv:
        if hide_next and not arg.startswith("-"):
            out.append(MASK)
            hide_next = False
            continue
        hide_next = False
        option, equals, _ = arg.partition("=")
        if _pattern("secret option").fullmatch(option):
            if equals:
                arg = f"{option}={MASK}"
            else:
                hide_next = True
        elif (pair := _pattern("secret pair").fullmatch(arg)) is not None:
            arg = f"{pair['key']}={MASK}"
        out.append(arg)
    return out


def raw_at_in_password(url: str) -> bool:
    """Whether the userinfo holds a raw '@' (drivers cut at the first one and show the rest)."""
    authority = url.partition("://")[2].split("/", 1)[0].split("?", 1)[0]
    return authority.count("@") > 1
