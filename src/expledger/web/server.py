"""`exp ui`'s web server: the JSON API under /api/ and the dashboard's files.

Routes hand requests to the plain functions of api.py, run on one thread that owns the
store (SQLite and psycopg connections belong to the thread that opened them), and send
their dicts in the CLI's JSON envelope. What keeps it safe to open on a lab's network:
- a loopback bind serves reads to anyone on this machine; the Host header must name the
  loopback (no DNS rebinding) and a write must be JSON sent from the page's own origin, which
  no other web site can make a browser send;
- any other bind needs the token on every request: `Authorization: Bearer TOKEN`,
  `?token=TOKEN` (a page opened that way gets it as an HttpOnly, SameSite=Strict cookie
  and is redirected to its URL without it), or that cookie; otherwise 401;
- every response carries a Content-Security-Policy that allows scripts only from the
  server's own files (no inline script, no eval), and the pages put user text into the
  document as text only.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .. import output
from ..errors import ExpledgerError, StoreError
from . import api

log = logging.getLogger("expledger.web")
STATIC = Path(__file__).parent / "static"
PAGES = ("/", "/exp/{exp_id}", "/compare", "/queue")  # each serves index.html; app.js draws the page
REAP_EVERY = 5.0  # seconds between looks for RUNNING experiments whose runner died
MAX_BODY = 1 << 20
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {"content-security-policy": CSP, "x-content-type-options": "nosniff",
                    "x-frame-options": "DENY", "referrer-policy": "no-referrer"}
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "[::1]"}


@dataclass(frozen=True)
class Serving:
    """Where a dashboard listens (`exp ui --json` prints it at start).

    Attributes:
        url: the dashboard's address.
        open: the address to open: with `?token=` when one is needed.
        token: the token every request needs, or None (a loopback bind without one).
        store: the store it serves (without a password).
    """

    url: str
    open: str
    token: str | None
    store: str

    def to_json(self) -> dict:
        return {"url": self.url, "open": self.open, "token": self.token, "store": self.store}


def is_loopback(host: str) -> bool:
    """Whether binding `host` keeps the server on this machine."""
    if host.strip("[]") in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Ledger:
    """The store, opened and used on a thread of its own; RUNNING runs whose runner died are reaped now and then."""

    def __init__(self, url: str):
        self.url = url
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="exp-ui-store")
        self._store = None
        self._reaped_at = float("-inf")

    async def call(self, function, *args, reap: bool = False):
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._run, function, args, reap)

    def _run(self, function, args, reap):
        """The function's result and the CPU seconds this thread spent on it."""
        began = time.thread_time()
        if self._store is None:
            from ..store import open_store

            self._store = api.CachedSteps(open_store(self.url))
        if reap and time.monotonic() - self._reaped_at > REAP_EVERY:
            self._reaped_at = time.monotonic()
            try:
                self._store.reap_lost()
            except StoreError:
                pass  # a read-only ledger: show it as it is
        result = function(self._store, *args)
        return result, time.thread_time() - began

    def close(self) -> None:
        def close_store():
            if self._store is not None:
                self._store.close()

        self._pool.submit(close_store).result()
        self._pool.shutdown()


def envelope(payload: dict, status: int = 200) -> Response:
    """The CLI's JSON envelope; NaN never leaves as a bare token (allow_nan=False catches a slip)."""
    body = json.dumps({"ok": status < 400, "version": output.JSON_VERSION, **payload}, ensure_ascii=False,
                      allow_nan=False, separators=(",", ":"))
    return Response(body, status_code=status, media_type="application/json", headers={"cache-control": "no-store"})


def error(status: int, kind: str, message: str, exit_code: int | None = None) -> Response:
    """The error envelope: as the CLI's `--json` error (with `exit_code` when the library
    raised it) plus the HTTP `status`."""
    found = {"type": kind, "message": message, "status": status}
    if exit_code is not None:
        found["exit_code"] = exit_code
    return envelope({"error": found}, status)


def build_app(store_url: str, *, host: str = "127.0.0.1", token: str | None = None, cookie: str = "exp_ui_token") -> Starlette:
    """The dashboard over `store_url`, as bound to `host`; `token` required on every request when given."""
    ledger = Ledger(store_url)
    loopback = is_loopback(host)
    if not loopback and not token:
        raise ValueError("a dashboard reachable from other machines needs a token")

    async def run(request: Request, function, *args, reap: bool = False) -> Response:
        try:
            began = time.perf_counter()
            payload, cpu = await ledger.call(function, *args, reap=reap)
            encoding = time.thread_time()
            response = envelope(payload)
            cpu += time.thread_time() - encoding
            # Server-Timing (shown by browsers' developer tools): the answer's time, and the CPU
            # it took, which a busy machine does not inflate (benchmarks/bench_ui.py reads it).
            response.headers["server-timing"] = (f"app;dur={(time.perf_counter() - began) * 1000:.1f}, "
                                                 f"cpu;dur={cpu * 1000:.1f}")
            return response
        except ExpledgerError as err:
            return error(err.http_status, err.kind, str(err), err.exit_code)
        except Exception as err:  # a bug: one line to the client, the traceback to the log
            log.exception("%s %s failed", request.method, request.url.path)
            return error(500, "internal", f"internal error: {type(err).__name__}: {err}")

    def args_of(request: Request) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for key, value in request.query_params.multi_items():
            found.setdefault(key, []).append(value)
        return found

    async def read(request: Request) -> Response:
        function = api.READS.get(request.path_params["name"])
        if function is None:
            return error(404, "not_found", f"no API endpoint {request.url.path}")
        return await run(request, function, args_of(request), reap=True)

    async def read_one(request: Request) -> Response:
        function = api.ONE_READS.get(request.path_params.get("name", ""))
        if function is None:
            return error(404, "not_found", f"no API endpoint {request.url.path}")
        return await run(request, function, request.path_params["exp_id"], args_of(request), reap=True)

    async def write(request: Request) -> Response:
        function = api.WRITES.get(request.path_params["name"])
        if function is None:
            return error(404, "not_found", f"no API endpoint {request.url.path}")
        raw = await request.body()
        if len(raw) > MAX_BODY:
            return error(413, "bad_input", f"the request body is over {MAX_BODY} bytes")
        try:
            body = json.loads(raw or b"{}")
        except (ValueError, RecursionError):
            return error(400, "bad_input", "the request body is not valid JSON")
        if not isinstance(body, dict):
            return error(400, "bad_input", "the request body must be a JSON object")
        return await run(request, function, request.path_params["exp_id"], body)

    async def unknown_api(request: Request) -> Response:
        return error(404, "not_found", f"no API endpoint {request.method} {request.url.path}")

    async def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"cache-control": "no-cache"})

    @asynccontextmanager
    async def lifespan(app):
        yield
        await asyncio.get_running_loop().run_in_executor(None, ledger.close)

    routes = [
        Route("/api/experiments/{exp_id}", read_one, methods=["GET"]),
        Route("/api/experiments/{exp_id}/{name}", read_one, methods=["GET"]),
        Route("/api/experiments/{exp_id}/{name}", write, methods=["POST"]),
        Route("/api/{name}", read, methods=["GET"]),
        Route("/api/{rest:path}", unknown_api, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
        *(Route(path, page, methods=["GET"]) for path in PAGES),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    guarded = Guard(app, token=token, loopback=loopback, cookie=cookie)
    return guarded  # type: ignore[return-value]  # an ASGI app, as uvicorn and TestClient take it


class Guard:
    """ASGI middleware: host and token checks, write checks, security headers on every response."""

    def __init__(self, app, *, token: str | None, loopback: bool, cookie: str):
        self.app, self.token, self.loopback, self.cookie = app, token, loopback, cookie

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request = Request(scope)
        refused = self.refuse(request)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                held = {key.lower() for key, _ in message.get("headers", [])}
                extra = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items() if k.encode() not in held]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        target = refused or self.app
        await target(scope, receive, send_with_headers)

    def refuse(self, request: Request):
        """The response that turns this request away, or None to let it through."""
        if self.loopback and (request.url.hostname or "") not in LOOPBACK_NAMES:
            return error(403, "forbidden", "this dashboard answers only to localhost / 127.0.0.1 (Host header)")
        api_call = request.url.path.startswith("/api/")
        if self.token:
            given = request.query_params.get("token")
            if given is not None and hmac.compare_digest(given.encode(), self.token.encode()) and not api_call \
                    and request.method == "GET":
                query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
                response = RedirectResponse(request.url.path + (f"?{query}" if query else ""), status_code=303)
                response.set_cookie(self.cookie, self.token, httponly=True, samesite="strict")
                return response
            if not self._has_token(request, given):
                if api_call:
                    return error(401, "unauthorized", "this dashboard needs its token: Authorization: Bearer TOKEN "
                                                      "(printed by exp ui, or EXP_UI_TOKEN)")
                return PlainTextResponse("401: open the URL with ?token=… that exp ui printed", status_code=401)
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
                return error(415, "bad_input", "send the request body as application/json")
            origin = request.headers.get("origin")
            if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
                return error(403, "forbidden", f"a write from another origin ({origin}) is refused")
        return None

    def _has_token(self, request: Request, given: str | None) -> bool:
        header = request.headers.get("authorization", "")
        candidates = [given, request.cookies.get(self.cookie),
                      header[7:] if header.lower().startswith("bearer ") else None]
        expected = (self.token or "").encode()
        return any(c is not None and hmac.compare_digest(c.encode(), expected) for c in candidates)
