"""The experiment record, its IDs and its lifecycle.

One JSONL line holds one whole record: the full current state of one experiment, so a
reader that keeps the last line per id has the current ledger. Lifecycle moves are pure
functions from one record to the next; the store applies them atomically.

    QUEUED ──> RUNNING ──> SUCCESS / FAILED / CANCELLED
       └──────────────────────^   (a result may be recorded straight from QUEUED)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import TYPE_CHECKING, Any

from .errors import BadInput, IllegalTransition, keyword, literal
from .schema import supersedes as supersedes  # which version is current: the rule is in schema.py
from .schema import version as version

FORMAT_VERSION = 1
# Records written by the seed tool have no UUID: derive a stable one from the ID so every
# line of the same legacy experiment maps to the same record.
LEGACY_NAMESPACE = "6f1d9a52-3c2e-4b8e-9a41-0c7e5b1f2d90"


class Status(str, Enum):
    """Where an experiment is in its lifecycle."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @classmethod
    def parse(cls, text: str, *, among: frozenset[Status] | None = None) -> Status:
        """Read a status word as a person types it: any case, surrounding blanks ignored;
        `among`: the statuses that make sense here (a result's: FINISHED), named in the error."""
        if isinstance(text, Status) and (among is None or text in among):
            return text
        try:
            status = cls(str(getattr(text, "value", text)).strip().upper())
        except ValueError:
            status = None
        if status is None or (among is not None and status not in among):
            valid = ", ".join(s.value.lower() for s in cls if among is None or s in among)
            raise BadInput(f"unknown status {text!r}: valid are {valid}"
                           if status is None else f"status {status.value.lower()!r} cannot be used here: valid are {valid}")
        return status

    @property
    def finished(self) -> bool:
        return self in FINISHED


FINISHED = frozenset({Status.SUCCESS, Status.FAILED, Status.CANCELLED})
_STATUS_WORDS = {status.value: status for status in Status}
_ID = re.compile(r"(?:exp-?)?0*([0-9]+)", re.IGNORECASE | re.ASCII)  # ASCII digits only: "١" is no ID


def parse_id(text: str | int) -> int:
    """The number behind any spelling of an ID: `EXP-001`, `exp-1` and `1` are all 1."""
    match = _ID.fullmatch(str(text).strip())
    if not match or int(match.group(1)) == 0:
        raise BadInput(f"not an experiment ID: {text!r} (expected EXP-001, exp-1 or 1)")
    return int(match.group(1))


def format_id(number: int) -> str:
    """EXP-001 … EXP-999, then EXP-1000: zero-padded to three digits."""
    return f"EXP-{number:03d}"


def id_number(exp_id: str) -> int | None:
    """The number of a stored ID, or None for an ID not in the EXP-NNN form."""
    match = _ID.fullmatch(exp_id or "")
    return int(match.group(1)) if match else None


def now_iso(now: datetime | None = None) -> str:
    """ISO 8601 with a UTC offset and milliseconds, e.g. 2026-11-25T20:11:46.123+00:00."""
    moment = now or datetime.now(timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def parse_time(text: str | None) -> datetime | None:
    """A stored timestamp as an aware datetime (naive legacy ones are taken as UTC)."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


# NaN and ±inf are not JSON: they are stored as these strings and read back as floats.
_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


NUL_SIGN = "\u2400"  # ␀: what a NUL character is stored as, by every store alike


def json_safe(value: Any) -> Any:
    """A value as stored: every NaN and ±inf as its string form, and every NUL character in
    text as ␀ (PostgreSQL cannot hold NUL, so no store does: a record is the same in each)."""
    kind = type(value)
    if kind is str:
        return value if "\x00" not in value else value.replace("\x00", NUL_SIGN)
    if kind is int or value is None or kind is bool:
        return value
    if kind is dict:
        return {(k if "\x00" not in k else k.replace("\x00", NUL_SIGN)) if type(k) is str else str(k): json_safe(v)
                for k, v in value.items()}
    if kind is float or isinstance(value, float):
        if value - value == 0:  # finite (inf - inf and nan - nan are nan)
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if kind is list or kind is tuple or isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    return value


def _read_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    if not any(isinstance(v, str) for v in metrics.values()):
        return metrics
    return {k: _NONFINITE.get(v, v) if isinstance(v, str) else v for k, v in metrics.items()}


def canonical(value: Any) -> Any:
    """A value in one normal form, so equal configs compare equal: 1e-3 == 0.001, 2.0 == 2."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 2**53:
            return int(value)
        return value if math.isfinite(value) else json_safe(value)
    if isinstance(value, int):
        return value
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    return str(value)


def fingerprint(task: str | None, model: str | None, params: dict[str, Any]) -> str:
    """A short hash of task + model + canonical params: the same config has the same print."""
    text = json.dumps([task, model, canonical(params)], ensure_ascii=False)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


_JSON_KINDS = {dict: "an object", list: "a list", str: "a string", int: "a number", float: "a number",
               bool: "true/false", type(None): "null"}
MAX_DEPTH = 32
BULK_LINES = 500  # from so many lines on, a listing parses them with orjson (its import costs a few ms)
MAX_NUMBER_LENGTH = 100  # characters in one JSON number; Python refuses ints past 4,300 digits


def _json_number(kind: Any) -> Any:
    def read(text: str) -> Any:
        if len(text) > MAX_NUMBER_LENGTH:
            raise BadInput(f"the number {text[:20]}… is too long (at most {MAX_NUMBER_LENGTH} characters)")
        return kind(text)

    return read


_READ_INT, _READ_FLOAT = _json_number(int), _json_number(float)


def parse_json_object(text: str, flag: str) -> dict[str, Any]:
    """A JSON object given on the command line, or a BadInput that shows the fix."""
    example = '{"accuracy": 0.93}' if flag == "--metrics" else '{"lr": 0.001}'
    try:
        value = json.loads(text, parse_int=_READ_INT, parse_float=_READ_FLOAT)
    except BadInput as err:
        raise BadInput(f"{flag}: {err}") from None
    except json.JSONDecodeError as err:
        raise BadInput(f"{flag} is not valid JSON ({err.msg} at column {err.colno}); example: {flag} '{example}'") from None
    except RecursionError:
        raise BadInput(f"{flag} is nested too deeply (at most {MAX_DEPTH} levels)") from None
    if not isinstance(value, dict):
        raise BadInput(f"{flag} must be a JSON object like '{example}', not {_JSON_KINDS[type(value)]}")
    if _depth(value) > MAX_DEPTH:
        raise BadInput(f"{flag} is nested too deeply (at most {MAX_DEPTH} levels)")
    return value


def _depth(value: Any) -> int:
    """Nesting depth of a JSON value, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            break
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, level + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def check_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """Metrics are numbers (NaN and ±inf allowed) or lists of numbers; text goes in the summary."""
    for name, value in metrics.items():
        values = value if isinstance(value, list) else [value]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            raise BadInput(f"metric {literal(repr(name))} must be a number or a list of numbers, not "
                           f"{_JSON_KINDS.get(type(value), 'that')} (put words in {{0}})", arguments=(keyword("summary"),))
    return metrics


@dataclass
class Experiment:
    """One experiment as the ledger holds it; field order is the on-disk order."""

    id: str
    name: str
    task: str | None = None
    model: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    command: str | None = None
    machine: str | None = None
    status: Status = Status.QUEUED
    created: str | None = None
    started: str | None = None
    completed: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    summary: str | None = None
    failed_reason: str | None = None
    tags: list[Any] = field(default_factory=list)
    priority: int = 0  # workers take higher first
    workdir: str | None = None  # where it was added (absolute): a worker's fallback folder
    repo_path: str | None = None  # that folder relative to its git repository's top: tried first
    gpus: int | None = None  # GPUs it needs; a worker with fewer leaves it queued
    aliases: list[Any] = field(default_factory=list)  # IDs it had in ledgers merged into this one
    provenance: dict[str, Any] = field(default_factory=dict)  # where and from what code it ran
    runner: dict[str, Any] = field(default_factory=dict)  # the process that runs it: host, pid, attempt, exit
    files: list[Any] = field(default_factory=list)  # files it produced: path, base, size, sha256, kind (files.py)
    system: dict[str, Any] = field(default_factory=dict)  # peaks of its hardware use, e.g. gpu_mem_peak_mb (sysmetrics.py)
    uuid: str = ""
    rev: int = 0
    updated: str | None = None
    history: list[Any] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # keys written by other tools, kept untouched

    if not TYPE_CHECKING:  # (so that mypy still knows every attribute)
        def __getattr__(self, name: str) -> Any:
            """An optional field that a stored line left out while empty (from_dict does not
            fill them in: a long listing reads thousands): a fresh empty list or dict, made
            on first use. Fields with a fixed default (None, 0) come from the class."""
            empty = _OPTIONAL.get(name, _UNSEEN) if name != "extra" else {}
            if empty is _UNSEEN:
                raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
            value = empty.copy() if isinstance(empty, (list, dict)) else empty
            self.__dict__[name] = value
            return value

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.task, self.model, self.params)

    @property
    def duration(self) -> float | None:
        """Seconds its process ran (as its runner measured), else from start to completion
        (or to now while running), if started."""
        if self.status.finished and isinstance(self.runner.get("duration"), (int, float)):
            return float(self.runner["duration"])
        start = parse_time(self.started)
        if start is None:
            return None
        end = parse_time(self.completed) or (None if self.status.finished else datetime.now(timezone.utc))
        return (end - start).total_seconds() if end else None

    def to_dict(self) -> dict[str, Any]:
        """The record as stored and as `--json` shows it."""
        out = {name: getattr(self, name) for name in _FIELDS}
        out["status"] = self.status.value
        out.update(self.extra)
        out["v"] = FORMAT_VERSION
        safe: dict[str, Any] = json_safe(out)
        return safe

    def to_line(self) -> bytes:
        """One complete JSONL line, UTF-8 as text (Chinese stays readable), compact: no
        blanks between tokens, and the optional fields left out while they are empty.

        The three characters that `str.splitlines()` takes for line breaks but JSON does
        not escape are escaped, so no reader ever sees one record as two lines.
        """
        out = self.to_dict()
        for key in _OPTIONAL:  # an empty optional field says nothing: leave it out
            if not out[key]:
                del out[key]
        text = json.dumps(out, ensure_ascii=False, separators=(",", ":"))
        for char, escaped in _LINE_BREAKS:
            if char in text:
                text = text.replace(char, escaped)
        return (text + "\n").encode()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Experiment:
        """Read a stored record, tolerating the seed tool's lines; ValueError if unusable."""
        return cls._read(data, adopt=False)

    @classmethod
    def _read(cls, data: dict[str, Any], *, adopt: bool, admitted: bool = False) -> Experiment:
        """from_dict; with `adopt`, `data` is the caller's to give away (just parsed), and our
        own line becomes the record's attributes as it is, without a copy; with `admitted`,
        it passed models.admit on its way in (an index row), so it is not checked again."""
        identity = None
        if admitted and data.get("v") == FORMAT_VERSION:
            status = _STATUS_WORDS.get(data["status"]) if data.get("status").__class__ is str else None
        else:
            identity = read_identity(data)
            status = identity[2]
        own = _OWN_FORM.get(keys := tuple(data))
        if own is None:
            own = _own_form(keys)
            if len(_OWN_FORM) < 1024:
                _OWN_FORM[keys] = own
        if own and status is not None and data["v"] == FORMAT_VERSION and type(data["tags"]) is list:
            # Our own line: the fast path for large listings, no per-field work. The optional
            # fields it leaves out while empty come from the class (None, 0) or __getattr__.
            values = data if adopt else data.copy()
            del values["v"]
            values["status"] = status
            metrics = values["metrics"]
            if metrics and str in set(map(type, metrics.values())):
                values["metrics"] = _read_metrics(metrics)
            exp = cls.__new__(cls)
            exp.__dict__ = values
            return exp
        uuid, rev, status = identity or read_identity(data)
        values, extra = {}, {}
        for key, value in data.items():
            if key in _FIELD_SET:
                if value is not None:
                    values[key] = value
            elif key != "v":
                extra[key] = value
        tags = values.get("tags", [])
        if "metrics" in values:
            values["metrics"] = _read_metrics(values["metrics"])
        values.update(
            uuid=uuid, rev=rev, status=status, name=str(values.get("name", "")),
            tags=[tags] if isinstance(tags, str) else list(tags),
        )
        return cls(**values, extra=extra)

    @classmethod
    def from_line(cls, line: bytes | str) -> Experiment:
        return cls._read(json.loads(line), adopt=True)

    @classmethod
    def from_lines(cls, lines: Sequence[bytes | str], *, admitted: bool = False) -> list[Experiment]:
        """Many stored lines at once (a long listing): parsed by orjson when there are enough
        of them to repay its import, and by the standard library for what orjson refuses
        (NaN literals, integers beyond 64 bits: other tools' lines). `admitted`: each line
        passed models.admit on its way in (an index's rows), so it is not checked again."""
        if len(lines) < BULK_LINES:
            return [cls._read(json.loads(line), adopt=True, admitted=admitted) for line in lines]
        loads = _bulk_loads()
        with collector_paused():
            return [cls._read(loads(line), adopt=True, admitted=admitted) for line in lines]


def _bulk_loads() -> Callable[[bytes | str], Any]:
    """json.loads, by orjson where it can (for what orjson refuses, the standard library)."""
    try:
        import orjson
    except ImportError:
        return json.loads

    def loads(line: bytes | str) -> Any:
        try:
            return orjson.loads(line)
        except orjson.JSONDecodeError:
            return json.loads(line)

    return loads


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cycle collector off for a bulk step (reading or rendering a long listing):
    it makes tens of thousands of dicts and lists, no cycle among them, and the collector
    would only rescan them again and again."""
    import gc

    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


_LINE_BREAKS = (("\x85", "\\u0085"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029"))
_FIELDS = tuple(f.name for f in dataclasses.fields(Experiment) if f.name != "extra")
_FIELD_SET = frozenset(_FIELDS)
_LINE_KEYS = frozenset([*_FIELDS, "v"])
# Left out of a line while empty (lines written before files and system existed lack them too).
_OPTIONAL: dict[str, Any] = {"priority": 0, "workdir": None, "repo_path": None, "gpus": None, "aliases": [], "provenance": {},
             "runner": {}, "files": [], "system": {}, "history": []}
_OPTIONAL_KEYS = frozenset(_OPTIONAL)
_UNSEEN: Any = object()
_OWN_FORM: dict[tuple[str, ...], bool] = {}  # the keys of a line, in order -> _own_form(them); a ledger has few


def _own_form(keys: tuple[str, ...]) -> bool:
    """Whether a line with these keys is in our own form: a `v`, no key we do not know, and
    nothing missing but the optional fields."""
    found = set(keys)
    return "v" in found and found <= _LINE_KEYS and _FIELD_SET - found <= _OPTIONAL_KEYS


def read_identity(data: Any) -> tuple[str, int, Status]:
    """Check that a stored record is usable and return its uuid, rev and status.

    Cheap enough to run on every line of a large ledger; ValueError names what is wrong.
    Lines without a uuid (the seed tool's) get one derived from their ID.
    """
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    exp_id = data.get("id")
    if not isinstance(exp_id, str) or not exp_id.strip():
        raise ValueError("record has no id")
    word = data.get("status") or "QUEUED"
    status = _STATUS_WORDS.get(word) if word.__class__ is str else None  # as we write it: no parsing
    if status is None:
        try:
            status = Status.parse(word)
        except BadInput as err:
            raise ValueError(str(err)) from None
    get = data.get
    if not isinstance(get("params") or {}, dict):
        raise ValueError("params is not a JSON object")
    if not isinstance(get("metrics") or {}, dict):
        raise ValueError("metrics is not a JSON object")
    if not isinstance(get("system") or {}, dict):
        raise ValueError("system is not a JSON object")
    if not isinstance(data.get("tags") or [], (list, str)):
        raise ValueError("tags is not a list")
    if not isinstance(data.get("files") or [], list):
        raise ValueError("files is not a list")
    rev = data.get("rev") or 0
    if not isinstance(rev, int) or not isinstance(data.get("priority") or 0, int):
        raise ValueError("rev or priority is not a whole number")
    return data.get("uuid") or legacy_uuid(exp_id), rev, status


_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_STORED_ID = re.compile(r"EXP-[0-9]{1,9}", re.IGNORECASE)
_TIMES = ("created", "started", "completed", "updated")
_RUNNER_INTS = ("pid", "attempt", "max_attempts", "child_pid")
_RUNNER_TEXTS = ("host", "pid_start", "dir", "token", "target")
MAX_TEXT = 4096  # characters in a runner field or timestamp


def admit(data: Any) -> tuple[str, int, Status]:
    """`read_identity` plus what a record from elsewhere (git union, merge, copy, a shared
    database) must satisfy before anything acts on it: ValueError names the first problem.

    Its uuid and IDs become folder names and its runner fields choose a process to signal,
    so they must have their own shapes: a UUID, IDs like EXP-001, timestamps that parse,
    a PID that is a positive whole number.
    """
    identity = read_identity(data)
    exp_id = data["id"]
    if not _STORED_ID.fullmatch(exp_id):
        raise ValueError(f"id {exp_id[:40]!r} is not like EXP-001")
    uuid = data.get("uuid")
    if uuid is not None and not (isinstance(uuid, str) and _UUID.fullmatch(uuid)):
        raise ValueError(f"uuid {str(uuid)[:40]!r} is not a UUID")
    aliases = data.get("aliases") or []
    if not isinstance(aliases, list) or (aliases and not all(isinstance(a, str) and _STORED_ID.fullmatch(a)
                                                             for a in aliases)):
        raise ValueError("aliases are not IDs like EXP-001")
    # This runs on every line of a ledger's first read: parse_time's test, inlined, and the
    # runner's fields only looked at when there is a runner.
    fromisoformat = datetime.fromisoformat
    for name in _TIMES:
        value = data.get(name)
        if value is not None:
            try:
                if not (isinstance(value, str) and value and len(value) <= 64):
                    raise ValueError
                fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError(f"{name} is not an ISO 8601 time") from None
    runner = data.get("runner") or {}
    if not isinstance(runner, dict) or not isinstance(data.get("provenance") or {}, dict):
        raise ValueError("runner or provenance is not a JSON object")
    if runner:
        for name in _RUNNER_INTS:
            value = runner.get(name)
            if value is not None and not (type(value) is int and 0 < value < 2**31 or name != "pid" and value == 0):
                raise ValueError(f"runner.{name} is not a positive whole number")
        for name in _RUNNER_TEXTS:
            value = runner.get(name)
            if value is not None and not (isinstance(value, str) and len(value) <= MAX_TEXT):
                raise ValueError(f"runner.{name} is not text")
    get = data.get
    for value, name in ((get("command"), "command"), (get("workdir"), "workdir"), (get("name"), "name")):
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{name} is not text")
    return identity


def legacy_uuid(exp_id: str) -> str:
    """The stable uuid of a seed-tool record, derived from its ID."""
    import uuid

    return str(uuid.uuid5(uuid.UUID(LEGACY_NAMESPACE), exp_id.strip().upper()))


def new_experiment(
    *,
    name: str,
    task: str | None = None,
    model: str | None = None,
    params: dict[str, Any] | None = None,
    command: str | None = None,
    machine: str | None = None,
    tags: list[Any] | tuple[Any, ...] = (),
    status: Status = Status.QUEUED,
    priority: int = 0,
    workdir: str | None = None,
    repo_path: str | None = None,
    gpus: int | None = None,
    runner: dict[str, Any] | None = None,
    added_on: str | None = None,
    now: datetime | None = None,
) -> Experiment:
    """A validated record for `add`, still without its ID (the store allocates that).

    `added_on` (the machine it was registered on) goes in its provenance, where
    `exp worker --only-from-host` looks."""
    name = (name or "").strip()
    if not name:
        raise BadInput("the experiment needs a name: pass {0}", arguments=(keyword("name", '"…"'),))
    if params is not None and not isinstance(params, dict):
        raise BadInput("params must be a JSON object like {\"lr\": 0.001}")
    if status not in (Status.QUEUED, Status.RUNNING):
        raise BadInput("a new experiment starts as queued or running; record results with {0}",
                       arguments=(keyword("result", python="Store.result()", cli="`exp result`"),))
    if gpus is not None and (isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 1):
        raise BadInput(f"{{0}} must be a whole number of GPUs, 1 or more, not {literal(repr(gpus))}",
                       arguments=(keyword("gpus"),))
    stamp = now_iso(now)
    return Experiment(
        id="",
        name=name,
        task=task or None,
        model=model or None,
        params=dict(params or {}),
        command=command or None,
        machine=machine or None,
        status=status,
        created=stamp,
        started=stamp if status is Status.RUNNING else None,
        tags=_clean_tags(tags),
        priority=int(priority),
        workdir=workdir,
        repo_path=repo_path,
        gpus=gpus,
        runner={**runner, "attempt": 1} if runner and status is Status.RUNNING else {},
        provenance={"added_on": added_on} if added_on else {},
    )


def _clean_tags(tags: Any) -> list[Any]:
    out: list[str] = []
    for tag in tags:
        for part in str(tag).split(","):
            part = part.strip()
            if part and part not in out:
                out.append(part)
    return out


def start(exp: Experiment, *, runner: dict[str, Any] | None = None, machine: str | None = None, retries: int = 0,
          now: datetime | None = None, command: str | None = None) -> Experiment:
    """QUEUED -> RUNNING; `runner` names the process that runs it (its attempt is counted),
    `machine` where it runs now. A lost run is re-queued automatically `retries` times,
    counted from the first claim after it was queued (a re-queue by hand starts a new count).
    `command` is what runs when that is not the queued command (kept as `runner.queued_command`)."""
    if exp.status is not Status.QUEUED:
        raise IllegalTransition(f"{exp.id} is {exp.status.value}; only a QUEUED experiment can be started")
    attempt = int(exp.runner.get("attempt", 0)) + 1
    target = exp.runner.get("target", exp.machine)  # where it was queued for, kept for a re-queue
    limit = exp.runner.get("max_attempts") or attempt + retries
    runner = {**(runner or {}), "attempt": attempt, "max_attempts": limit, "target": target}
    if command and exp.command and command != exp.command:
        runner["queued_command"] = exp.command
    return dataclasses.replace(exp, status=Status.RUNNING, started=now_iso(now), machine=machine or exp.machine,
                               runner=runner, command=command or exp.command)


def requeue(exp: Experiment, *, reason: str, attempt: int | None = None, ended_as: str = "FAILED",
            now: datetime | None = None) -> Experiment:
    """RUNNING -> QUEUED again (a lost run with retries left, a worker told to give back its work).

    How the attempt ended (`ended_as`, with `reason`) goes to the history, so `show` can say
    why it runs again."""
    _check_attempt(exp, attempt)
    if exp.status is not Status.RUNNING:
        raise IllegalTransition(f"{exp.id} is {exp.status.value}; only a RUNNING experiment can be re-queued")
    ended = {"status": ended_as, "metrics": exp.metrics, "summary": exp.summary, "failed_reason": reason,
             "started": exp.started, "completed": now_iso(now), "replaced": now_iso(now),
             "attempt": exp.runner.get("attempt"), "host": exp.runner.get("host"), "requeued": True}
    return _queued_again(exp, reason=reason, ended=ended, keep=("attempt", "max_attempts", "target"))


def retry(exp: Experiment, *, reason: str, now: datetime | None = None) -> Experiment:
    """A finished experiment (success, failed, cancelled, lost) back in the queue as a new
    attempt (`exp requeue`); its outcome is kept in its history."""
    if not exp.status.finished:
        raise IllegalTransition(f"{exp.id} is {exp.status.value}; only a finished experiment can be re-queued"
                                + (" (cancel it first)" if exp.status is Status.RUNNING else ""))
    ended = {**_result_of(exp, replaced=now_iso(now)), "started": exp.started,
             "attempt": exp.runner.get("attempt"), "host": exp.runner.get("host")}
    return _queued_again(exp, reason=reason, ended=ended, keep=("attempt", "target"))


def _queued_again(exp: Experiment, *, reason: str, ended: dict[str, Any], keep: tuple[Any, ...]) -> Experiment:
    # Back to its queued form: the target machine again, nothing left of the attempt that
    # ended but its entry in the history.
    runner = {key: exp.runner[key] for key in keep if key in exp.runner}
    ended = {key: value for key, value in ended.items() if value is not None}
    # Where it should run: the target it was queued with (one that never had a runner kept its target as machine).
    target = exp.runner.get("target") if "attempt" in exp.runner else exp.machine
    return dataclasses.replace(exp, status=Status.QUEUED, started=None, completed=None, machine=target,
                               metrics={}, summary=None, failed_reason=None, provenance={},
                               history=[*exp.history, ended], runner={**runner, "requeued": reason})


def update_running(exp: Experiment, *, metrics: dict[str, Any] | None = None, summary: str | None = None,
                   attempt: int | None = None, declared: dict[str, Any] | None = None, task: str | None = None,
                   model: str | None = None, params: dict[str, Any] | None = None,
                   tags: list[str] | tuple[str, ...] = ()) -> Experiment:
    """Add to a RUNNING experiment without finishing it: metrics, a summary, what the code
    says it runs (task, model, params, tags), and the outcome the code `declared` (a status
    and reason the runner records when the command exits 0).

    With `attempt`, only that attempt may write (a runner that lost its claim may not).
    """
    _check_attempt(exp, attempt)
    if exp.status is not Status.RUNNING:
        raise IllegalTransition(f"{exp.id} is {exp.status.value}, no longer running")
    return dataclasses.replace(
        exp,
        metrics={**exp.metrics, **check_metrics(metrics or {})},
        summary=summary if summary is not None else exp.summary,
        task=task or exp.task,
        model=model or exp.model,
        params={**(params or {}), **exp.params},  # what `exp run --params` said wins; the code adds the rest
        tags=_clean_tags([*exp.tags, *tags]),
        runner={**exp.runner, "declared": declared} if declared else exp.runner,
    )


def add_provenance(exp: Experiment, provenance: dict[str, Any], *, attempt: int | None = None) -> Experiment:
    """Record where a run ran; allowed after it finished too (a short run may end first)."""
    _check_attempt(exp, attempt)
    return dataclasses.replace(exp, provenance={**exp.provenance, **provenance})


def add_files(exp: Experiment, entries: list[dict[str, Any]], *, attempt: int | None = None) -> Experiment:
    """Record files a run produced (files.py); a file logged again at the same path replaces
    its entry (a checkpoint overwritten in place). Allowed after the run finished too."""
    _check_attempt(exp, attempt)
    again = {(entry["base"], entry["path"]) for entry in entries}
    kept = [entry for entry in exp.files if (entry.get("base"), entry.get("path")) not in again]
    return dataclasses.replace(exp, files=[*kept, *entries])


def add_params(exp: Experiment, params: dict[str, Any], *, attempt: int | None = None) -> Experiment:
    """Add params a running experiment learned about (a framework's settings); keys it already
    has keep their values, so what was registered by hand wins."""
    _check_attempt(exp, attempt)
    return dataclasses.replace(exp, params={**params, **exp.params})


def add_metrics(exp: Experiment, metrics: dict[str, Any], *, attempt: int | None = None) -> Experiment:
    """Merge metrics measured after a run's result (a test pass after training) into it."""
    _check_attempt(exp, attempt)
    return dataclasses.replace(exp, metrics={**exp.metrics, **check_metrics(metrics)})


def add_system(exp: Experiment, peaks: dict[str, Any], *, attempt: int | None = None) -> Experiment:
    """Record the hardware peaks sampled while a run ran (sysmetrics.py)."""
    _check_attempt(exp, attempt)
    return dataclasses.replace(exp, system={**exp.system, **peaks})


def close_run(exp: Experiment, *, runner: dict[str, Any], attempt: int | None = None) -> Experiment:
    """Record how the runner's process ended (exit code, duration) on any status."""
    _check_attempt(exp, attempt)
    return dataclasses.replace(exp, runner={**exp.runner, **runner})


def _check_attempt(exp: Experiment, attempt: int | None) -> None:
    """A runner writes only for its own attempt, and not once its experiment was re-queued."""
    if attempt is None:
        return
    if exp.runner.get("attempt") != attempt or exp.status is Status.QUEUED:
        raise IllegalTransition(f"{exp.id} was re-queued or claimed again (now attempt "
                                f"{exp.runner.get('attempt')}, {exp.status.value}); attempt {attempt} may not write")


def record_result(
    exp: Experiment,
    *,
    status: Status | str,
    metrics: dict[str, Any] | None = None,
    summary: str | None = None,
    reason: str | None = None,
    force: bool = False,
    attempt: int | None = None,
    runner: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> Experiment:
    """Record how an experiment ended; a finished result is replaced only with force.

    A runner passes its `attempt` (only the current claim may write) and its exit details.

    The replaced result goes to the record's history. A failure always carries a reason:
    the explicit one, else the summary (the seed records failures that way).
    """
    _check_attempt(exp, attempt)
    status = Status.parse(status, among=FINISHED)
    if metrics is not None and not isinstance(metrics, dict):
        raise BadInput("metrics must be a JSON object like {\"accuracy\": 0.93}")
    check_metrics(metrics or {})
    if status is Status.FAILED:
        reason = reason or summary
        if not (reason or "").strip():
            raise BadInput("a failed result needs a reason: pass {0} or {1}",
                           arguments=(keyword("reason", '"…"'), keyword("summary", '"…"')))
    elif reason is not None:
        if status is Status.SUCCESS:
            raise BadInput("{0} is for failed or cancelled results; describe a success with {1}",
                           arguments=(keyword("reason"), keyword("summary")))
        summary = summary or reason  # a cancellation's reason is kept as its summary, as `cancel` does
    history = exp.history
    merged = dict(exp.metrics)
    if exp.status.finished:
        if not force:
            raise IllegalTransition(
                f"{literal(exp.id)} already has a result ({exp.status.value}); "
                "pass {0} to replace it (the old result is kept in its history)", arguments=(keyword("force", "True"),)
            )
        history = [*history, _result_of(exp, replaced=now_iso(now))]
        merged = {}
    merged.update(metrics or {})
    return dataclasses.replace(
        exp,
        status=status,
        metrics=merged,
        summary=summary if summary is not None else (None if exp.status.finished else exp.summary),
        failed_reason=reason if status is Status.FAILED else None,
        completed=exp.completed if exp.status.finished and exp.completed else now_iso(now),  # a new verdict, not a longer run
        history=history,
        runner={**exp.runner, **(runner or {})},
    )


def cancel(exp: Experiment, *, reason: str | None = None, by: str | None = None,
           now: datetime | None = None) -> Experiment:
    """QUEUED or RUNNING -> CANCELLED; `by` (user@host) is recorded with it."""
    if exp.status.finished:
        raise IllegalTransition(f"{exp.id} is already {exp.status.value}; only queued or running experiments can be cancelled")
    runner = {**exp.runner, "cancelled_by": by} if by else exp.runner
    return dataclasses.replace(
        exp, status=Status.CANCELLED, completed=now_iso(now), summary=reason or exp.summary, runner=runner
    )


def annotate(exp: Experiment, *, tags: list[Any] | tuple[Any, ...] | None = None, summary: str | None = None) -> Experiment:
    """Replace the tags and/or the summary (None: unchanged; an empty summary clears it), in any status."""
    if summary is not None and not isinstance(summary, str):
        raise BadInput("a summary is text")
    return dataclasses.replace(
        exp,
        tags=_clean_tags(tags) if tags is not None else exp.tags,
        summary=(summary or None) if summary is not None else exp.summary,
    )


def _result_of(exp: Experiment, *, replaced: str) -> dict[str, Any]:
    return {
        "status": exp.status.value,
        "metrics": exp.metrics,
        "summary": exp.summary,
        "failed_reason": exp.failed_reason,
        "completed": exp.completed,
        "replaced": replaced,
    }
