"""`exp ui`: the web dashboard and JSON API over the current store.

Starlette and uvicorn (the `ui` extra) are imported only when the command runs, so no other
command pays for them.
"""

from __future__ import annotations

import click

from ..cli import CONTEXT, common_options, json_mode, open_ledger
from ..errors import BadInput, MissingExtra


@click.command(context_settings=CONTEXT)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; any but the loopback needs a token.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="Port (0: a free one).")
@click.option("--open", "open_browser", is_flag=True, help="Open the dashboard in a web browser.")
@click.option("--token", metavar="TEXT", help="Require this token on every request (default: $EXP_UI_TOKEN; "
              "off the loopback one is generated and printed).")
@common_options
def ui(host, port, open_browser, token):
    """Serve the dashboard: the experiments table, runs with their charts, compare, the queue.

    Reads on 127.0.0.1 are open to this machine; on any other address every request needs
    the token (opening the printed URL once stores it in the browser). The JSON API under
    /api/ takes the same filters as `exp list` and answers in the `--json` schema.

    \b
    Example:
      exp ui                                  # http://127.0.0.1:8765/
      exp ui --host 0.0.0.0 --port 8080       # on the lab network, with a printed token
    """
    import secrets
    import socket

    from ..config import resolve_ui_token
    from ..redact import redact

    try:
        import uvicorn

        from ..web.server import Serving, build_app, is_loopback
    except ImportError:
        raise MissingExtra("exp ui needs Starlette and uvicorn: pip install 'expledger[ui]'") from None
    token = resolve_ui_token(token)
    if token is None and not is_loopback(host):
        token = secrets.token_urlsafe(24)
    store = open_ledger(reap=True)  # a store that cannot be opened fails here, as one line
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        listener = socket.socket(family, kind, proto)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
    except OSError as err:
        raise BadInput(f"cannot listen on {host}:{port} ({err.strerror or err}); --port 0 picks a free port") from None
    bound = listener.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else shown}:{bound}/"
    opened = url + (f"?token={token}" if token else "")
    app = build_app(store.url, host=host, token=token, cookie=f"exp_ui_token_{bound}")
    if json_mode():
        from .. import output

        output.emit_json(Serving(url, opened, token, redact(store.url)).to_json())
    click.echo(f"exp ui: {redact(store.url)} at {opened} (Ctrl-C stops)", err=True)
    if open_browser:
        import webbrowser

        webbrowser.open(opened)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    server.run(sockets=[listener])
