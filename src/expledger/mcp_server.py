"""`exp mcp`: the ledger as typed tools for assistants that speak the Model Context Protocol.

Each tool calls the same operation (expledger.ops) as the `exp` command of that name and
returns that result's `to_json()` in the `--json` envelope, so the tools and the CLI share one
documented schema (references/experiment-format.md); `export` and `notes` may add the
document as `text`, and `steps` gives the dashboard's chart data. A bad call (malformed params, an unknown ID, a move the
lifecycle forbids) comes back as a tool error carrying the library's message, which names the
tool's own arguments (`pass force=True`, not the CLI's `--force`), prefixed by its kind
(`not_found: …`), and the server keeps serving. Every call opens the ledger afresh, so what
the CLI writes meanwhile is seen at once.

Read-only mode leaves out every tool that writes. Resources: the format reference
(`exp://format`) and each experiment (`exp://EXP-001`). Prompts: the seed's three moments
(before a run, after it, writing the paper).
"""

# No `from __future__ import annotations`: the SDK builds each tool's input schema from its
# signature, so the annotations must be real types.
import functools
import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

from .errors import BadInput, ExpledgerError

INSTRUCTIONS = """\
An experiment ledger: what was tried, with which params, what came out and why it failed.
Check before you run (`check`: a config as you give it, unnamed params and the seed match
anything), register with `add` (unless_tried=true refuses a config that already succeeded or
runs), and always record the outcome with `result`; a failure needs its reason. Read with
`list` and `fields` to keep answers small; `show` gives one experiment whole."""

FORMAT_CANDIDATES = ("skills/experiment-manager/references/experiment-format.md", "references/experiment-format.md")

Id = Annotated[str, Field(description="An experiment ID: EXP-001, exp-1 or 1.")]
Where = Annotated[str | None, Field(description="A query: 'params.lr < 0.01 and metrics.acc >= 0.9', "
                                                "'model ~ whisper', 'tags has baseline', 'status in (success, failed)'.")]
Fields = Annotated[list[str] | None, Field(description="Only these fields, e.g. ['id', 'status', 'metrics.wer'] "
                                                       "(also outcome, duration); default: a compact set.")]
Params = Annotated[dict[str, Any] | str | None, Field(description="Hyper-parameters: a JSON object.")]


def _json_object(value, flag: str) -> dict | None:
    """A JSON object given as an object or as its text, checked as the CLI checks it."""
    if value is None or isinstance(value, dict):
        return value
    from .models import parse_json_object

    return parse_json_object(value, flag)


def _answer(result, **options) -> dict[str, Any]:
    """The CLI's `--json` object for an operation's result."""
    from .output import envelope

    return envelope(result.to_json(**options) if options else result.to_json())


def build_server(store_url: str | None = None, *, read_only: bool = False):
    """The MCP server over the ledger at `store_url` (default: as the CLI resolves it)."""
    from mcp.server.mcpserver import MCPServer
    from mcp_types import ToolAnnotations

    from . import __version__
    from .config import resolve_store
    from .models import Status
    from .ops import check as checks
    from .ops import compare as comparisons
    from .ops import export as exports
    from .ops import record, search
    from .ops import show as shows
    from .store import open_store

    url = resolve_store(store_url)[0]
    server = MCPServer("expledger", version=__version__, instructions=INSTRUCTIONS)

    def tool(*, writes: bool = False):
        """Register a function as a tool whose library errors are tool errors (the library's message)."""

        def register(fn):
            @functools.wraps(fn)
            def call(*args, **kwargs):
                try:
                    with open_store(url) as store:
                        return fn(store, *args, **kwargs)
                except ExpledgerError as err:
                    return _failure(err)

            call.__signature__ = _without_store(fn)
            if not (writes and read_only):
                server.add_tool(call, name=fn.__name__.rstrip("_"), description=fn.__doc__,
                                annotations=ToolAnnotations(read_only_hint=not writes, destructive_hint=False,
                                                            idempotent_hint=not writes,
                                                            open_world_hint=False))
            return fn

        return register

    @tool()
    def list_(store, status: list[str] | None = None, task: str | None = None, model: str | None = None,
              machine: str | None = None, tags: list[str] | None = None, where: Where = None,
              sort: Annotated[str, Field(description="A field, params.X or metrics.X; '-' first for descending.")] = "-id",
              limit: Annotated[int, Field(ge=0, le=10_000, description="At most this many; 0: all.")] = 100,
              offset: Annotated[int, Field(ge=0)] = 0, fields: Fields = None) -> dict[str, Any]:
        """Find experiments (newest first): what was tried, how it ended, its metrics. Use before
        planning a run, and when writing: `list(status=['success'], task='X', sort='-metrics.acc')`.
        Ask only for the fields you need to keep the answer small."""
        found = search.list_experiments(store, status=tuple(status or ()), task=task, model=model,
                                        machine=machine, tags=tuple(tags or ()), where=where, sort=sort,
                                        limit=limit or None, offset=offset)
        return _answer(found, fields=_fields(fields))

    @tool()
    def show(store, id: Id) -> dict[str, Any]:
        """One experiment whole: params, metrics, summary or failure reason, step-metric summaries,
        provenance (git commit, packages, host, GPUs) and earlier results it replaced."""
        return _answer(shows.show(store, id))

    @tool()
    def check(store, task: str | None = None, model: str | None = None, params: Params = None,
              replicate: Annotated[str | None, Field(description="The param whose values are repeats of one "
                                                                 "config (never makes it new); null: none.")] = "seed",
              neighbours: Annotated[int, Field(ge=0, le=100)] = 5) -> dict[str, Any]:
        """Was this config tried already? Call it before every run. `answer` says it in one line
        ("tried, 3 SUCCESS: …" or "not tried: …"); params you leave out match any value. Read the
        failures' reasons before retrying one; `neighbours` are the nearest other configs."""
        return _answer(checks.check(store, task=task, model=model, params=_json_object(params, "params"),
                                       replicate=replicate or None, neighbours=neighbours))

    @tool()
    def compare(store, ids: list[str] | None = None, where: Where = None,
                top: Annotated[int | None, Field(ge=1, le=1000, description="Only the N best by `by`.")] = None,
                by: Annotated[str | None, Field(description="Rank by this metric (its name, e.g. 'wer'); the "
                                                            "best becomes the baseline.")] = None,
                lower: Annotated[list[str] | None, Field(description="Metrics where lower is better, besides "
                                                                     "loss/error/wer/… names.")] = None,
                baseline: Annotated[str | None, Field(description="Deltas against this ID.")] = None,
                limit: Annotated[int, Field(ge=1, le=1000)] = 20) -> dict[str, Any]:
        """Experiments side by side: params that differ, every metric with its best run and deltas
        against the baseline. 'Compare the two best': compare(where="task = X", top=2, by="acc")."""
        return _answer(comparisons.compare(store, tuple(ids or ()), where=where, top=top, by=by, limit=limit,
                                           baseline=baseline, lower=frozenset(lower or ())))

    @tool()
    def queue(store, where: Where = None, fields: Fields = None) -> dict[str, Any]:
        """Queued experiments in the order workers take them (priority, then age), with their
        command and target machine. Workers run only experiments that have a command."""
        return _answer(search.queue(store, where=where), fields=_fields(fields))

    @tool()
    def export(store, where: Where = None, status: list[str] | None = None,
               group_by: Annotated[list[str] | None, Field(description="Group by these fields, e.g. "
                                                                       "['params.lr']; default: task and every "
                                                                       "param that varies but the replicate.")] = None,
               replicate: str = "seed", metrics: list[str] | None = None, lower: list[str] | None = None,
               format: Literal["json", "md", "latex", "csv"] = "json") -> dict[str, Any]:
        """The paper table: one row per config, each metric as mean ± std over its seeds, the best
        bold within a task. `text` holds the table in Markdown, LaTeX or CSV when asked for."""
        names = [m if m.startswith("metrics.") else f"metrics.{m}" for m in metrics or ()]
        table = exports.export(store, status=tuple(Status.parse(s) for s in status or ("success",)), where=where,
                               group_by=group_by, replicate=replicate, metrics=names or None,
                               lower=frozenset(lower or ()))
        answer = _answer(table)
        if format != "json":
            answer["text"] = table.render(format)
        return answer

    @tool()
    def files(store, id: Id) -> dict[str, Any]:
        """The files a run recorded (checkpoints, predictions, figures): path, size, sha256, kind,
        and whether each is still there on this machine (`state`: ok, missing, changed)."""
        from .ops.files import files as recorded

        return _answer(recorded(store, id))

    @tool()
    def logs(store, id: Id, since: Annotated[int, Field(ge=0, description="Only what came after this many bytes "
                                                                         "(the `bytes` of an earlier answer).")] = 0
             ) -> dict[str, Any]:
        """A run's output (stdout and stderr as they came, the last 64 KB the store keeps), from
        any machine: read it to see why a run failed or how far a running one got."""
        from .ops.logs import logs as output

        return _answer(output(store, id, since=since))

    @tool()
    def steps(store, id: Id, metrics: Annotated[list[str] | None, Field(description="Step metrics to give "
                                                                                    "(default: all).")] = None,
              points: Annotated[int, Field(ge=2, le=100_000, description="About this many points per series: "
                                                                          "each bucket's min and max.")] = 100
              ) -> dict[str, Any]:
        """A run's step metrics (loss curves, …) downsampled to about `points` per series, keeping
        spikes and dips; values that are not finite are null."""
        from .ops.steps import series

        return _answer(series(store, id, metrics=tuple(metrics or ()), points=points))

    @tool()
    def workers(store) -> dict[str, Any]:
        """The workers sharing this ledger: where, which GPUs, running what, last heard from;
        `state` live, stopped or gone."""
        from .ops.workers import workers as registered

        return _answer(registered(store))

    @tool()
    def notes(store, task: str | None = None, where: Where = None,
              since: Annotated[str | None, Field(description="Only experiments changed since this date, "
                                                             "e.g. 2026-11-01.")] = None,
              by: Annotated[str | None, Field(description="The metric to rank by (default: the one most runs "
                                                          "report).")] = None,
              lower: list[str] | None = None, replicate: str = "seed",
              format: Literal["json", "md"] = "json") -> dict[str, Any]:
        """Research notes per task: what was tried, the best configs (mean ± std over seeds, with
        their IDs), the gap to the runner-up, failures grouped by cause, what runs or is queued.
        format='md' adds the Markdown document as `text`."""
        from .ops.notes import notes as build

        found = build(store, task=task, where=where, since=since, by=by, lower=frozenset(lower or ()),
                      replicate=replicate)
        answer = _answer(found)
        if format == "md":
            answer["text"] = found.to_markdown()
        return answer

    @tool()
    def next_(store, task: str | None = None, where: Where = None,
              by: Annotated[str | None, Field(description="The metric that decides the best config.")] = None,
              lower: list[str] | None = None, replicate: str = "seed",
              limit: Annotated[int, Field(ge=0, le=1000, description="At most this many; 0: all.")] = 10
              ) -> dict[str, Any]:
        """What to run next, each with its reason: the queue first, then missing seeds of good
        configs and neighbours of the best; never a config a failure rules out (`ruled_out`).
        Nothing is added: `add` the ones you take."""
        from .ops.next import suggest

        return _answer(suggest(store, task=task, where=where, by=by, lower=frozenset(lower or ()),
                               replicate=replicate, limit=limit or None))

    @tool(writes=True)
    def add(store, name: str, task: str | None = None, model: str | None = None, params: Params = None,
            command: Annotated[str | None, Field(description="The full command line; workers run only "
                                                             "experiments that have one.")] = None,
            machine: Annotated[str | None, Field(description="The machine that should run it (none: any).")] = None,
            tags: list[str] | None = None, priority: int = 0,
            status: Literal["queued", "running"] = "queued",
            unless_tried: Annotated[bool, Field(description="Refuse (an error naming the runs) a config that "
                                                            "already succeeded or is running.")] = False) -> dict[str, Any]:
        """Register an experiment (QUEUED, or RUNNING if you start it now). Call `check` first, or
        pass unless_tried=true. `similar` lists earlier runs of the same config."""
        return _answer(record.add(store, name=name, task=task, model=model,
                                      params=_json_object(params, "params") or {}, command=command,
                                      machine=machine, tags=tuple(tags or ()), status=status, priority=priority,
                                      unless_tried=unless_tried))

    @tool(writes=True)
    def start(store, id: Id) -> dict[str, Any]:
        """Mark a queued experiment RUNNING when you run it by hand."""
        return _answer(record.start(store, id))

    @tool(writes=True)
    def result(store, id: Id, status: Literal["success", "failed", "cancelled"],
               metrics: Annotated[dict[str, Any] | str | None, Field(description="Final metrics: numbers, or "
                                                                                 "lists of numbers.")] = None,
               summary: str | None = None,
               reason: Annotated[str | None, Field(description="Why it failed; a failure needs one (else "
                                                               "the summary is taken).")] = None,
               force: Annotated[bool, Field(description="Replace a recorded result (the old one stays in its "
                                                        "history); say so when you do.")] = False) -> dict[str, Any]:
        """Record how an experiment ended. Always do it, failures too: a failure's reason keeps the
        next person from repeating it."""
        return _answer(record.result(store, id, status=status, metrics=_json_object(metrics, "metrics"),
                                         summary=summary, reason=reason, force=force))

    @tool(writes=True)
    def cancel(store, id: Id, reason: str | None = None) -> dict[str, Any]:
        """Cancel a queued or running experiment (a running one's process here is stopped)."""
        return _answer(record.cancel(store, id, reason=reason))

    reference = _format_reference()
    if reference is not None:
        @server.resource("exp://format", name="format", mime_type="text/markdown",
                         description="The record's fields and the --json schema of every command and tool")
        def format_reference() -> str:
            return reference.read_text(encoding="utf-8")

    @server.resource("exp://{id}", name="experiment", description="One experiment whole, as `exp show --json`",
                     mime_type="application/json")
    def experiment(id: str) -> str:
        try:
            with open_store(url) as store:
                return json.dumps(_answer(shows.show(store, id)), ensure_ascii=False)
        except ExpledgerError as err:
            from mcp.server.mcpserver.exceptions import ResourceError

            raise ResourceError(f"{err.kind}: {err}") from None

    for prompt in PROMPTS:
        server.prompt(name=prompt.__name__, description=prompt.__doc__)(prompt)
    return server


def _failure(err: ExpledgerError):
    """A tool error: the library's message after its kind (the web API's words too), and the
    `--json` error object."""
    from mcp_types import CallToolResult, TextContent

    from .output import envelope

    error = {"type": err.kind, "message": str(err), "exit_code": err.exit_code}
    return CallToolResult(content=[TextContent(type="text", text=f"{err.kind}: {error['message']}")],
                          structured_content=envelope({"error": error}, ok=False), is_error=True)


def _fields(fields: list[str] | None) -> tuple[str, ...] | None:
    if fields is None:
        return None
    from .fields import parse_fields

    return parse_fields(",".join(fields), flag="fields")


def _without_store(fn):
    import inspect

    signature = inspect.signature(fn, eval_str=True)
    return signature.replace(parameters=list(signature.parameters.values())[1:])


def _format_reference() -> Path | None:
    """The format reference: in the repository (a checkout, an editable install) or next to
    the skill's zipapp; a wheel does not carry it."""
    here = Path(__file__).resolve()
    for root in here.parents:
        for relative in FORMAT_CANDIDATES:
            if (root / relative).is_file():
                return root / relative
    return None


def before_running(task: str, model: str = "", params: str = "{}") -> str:
    """Before a run: was this config tried, and how did it end?"""
    return (f"Before running {task} {model} with params {params}: call `check` with them. If the answer "
            "says tried with SUCCESS or RUNNING, do not rerun; report those runs. If it failed, read the "
            "reasons and change what caused them. Then `add` with a complete command (unless_tried=true).")


def after_running(id: str) -> str:
    """After a run: record the outcome; a failure needs its reason."""
    return (f"Record how {id} ended with `result`: status success with metrics and a one-line summary, or "
            "failed with the reason (the error, e.g. 'OOM at batch 64 on whisper-large'). Never leave it RUNNING.")


def writing_the_paper(task: str, metric: str = "") -> str:
    """Writing: find the successful runs, compare the best, export the table."""
    return (f"For task {task}: `list` with status ['success'] and task '{task}' (fields id, name, params, "
            f"metrics); `compare` with where \"task = {task}\", top 2{', by ' + repr(metric) if metric else ''}; "
            "`export` with format 'latex' for mean ± std over seeds. Quote numbers with their IDs.")


PROMPTS = (before_running, after_running, writing_the_paper)


def serve(store_url: str | None = None, *, read_only: bool = False, http: bool = False, host: str = "127.0.0.1",
          port: int = 8765, token: str | None = None) -> None:
    """Serve over stdio, or streamable HTTP (loopback only unless a token guards it)."""
    server = build_server(store_url, read_only=read_only)
    if not http:
        server.run("stdio")
        return
    loopback = host in ("127.0.0.1", "localhost", "::1")
    if not loopback and not token:
        raise BadInput(f"--host {host} exposes the ledger beyond this machine: give --token (or EXP_MCP_TOKEN), "
                       "which every client must send as 'Authorization: Bearer TOKEN'")
    import uvicorn

    app = server.streamable_http_app(host=host)
    if token:
        app.add_middleware(_BearerToken, token=token)
    uvicorn.run(app, host=host, port=port, log_level="warning")


class _BearerToken:
    """ASGI middleware: a request without `Authorization: Bearer TOKEN` gets 401."""

    def __init__(self, app, *, token: str):
        self.app, self.expected = app, f"Bearer {token}".encode()

    async def __call__(self, scope, receive, send):
        import hmac

        if scope["type"] == "http":
            given = dict(scope.get("headers") or ()).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"text/plain"), (b"www-authenticate", b"Bearer")]})
                await send({"type": "http.response.body", "body": b"a bearer token is required\n"})
                return
        await self.app(scope, receive, send)
