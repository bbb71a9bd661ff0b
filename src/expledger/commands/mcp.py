"""`exp mcp`: serve the ledger to AI assistants over the Model Context Protocol."""

from __future__ import annotations

import click

from ..cli import CONTEXT, common_options
from ..errors import MissingExtra


@click.command(context_settings=CONTEXT)
@click.option("--read-only", is_flag=True, help="Expose only the tools that read (list, show, check, compare, "
                                                "queue, export, files, logs, steps, workers, notes, next): "
                                                "nothing can be written.")
@click.option("--http", is_flag=True, help="Serve streamable HTTP at http://HOST:PORT/mcp instead of stdio.")
@click.option("--host", default="127.0.0.1", show_default=True, help="With --http: the address to bind; "
                                                                      "anything but loopback needs --token.")
@click.option("--port", type=click.IntRange(1, 65535), default=8765, show_default=True, help="With --http: the port.")
@click.option("--token", metavar="TOKEN",
              help="With --http: clients must send 'Authorization: Bearer TOKEN' (default: $EXP_MCP_TOKEN).")
@common_options
def mcp(read_only, http, host, port, token):
    """Serve the ledger to AI assistants over the Model Context Protocol (stdio by default).

    Tools mirror the commands (list, show, check, compare, queue, export, files, logs,
    workers, notes, next, steps for chart data, and unless --read-only: add, start, result,
    cancel) and return their --json objects; errors come back as tool errors naming the
    tools' arguments. Resources: exp://format, exp://EXP-001.
    Needs the mcp extra: pip install 'expledger[mcp]'.

    \b
    Example:
      exp mcp
      exp mcp --read-only --store ~/lab/memory/experiments/experiments.jsonl
      exp mcp --http --port 8765
    """
    try:
        import mcp as _sdk  # noqa: F401
    except ImportError:
        raise MissingExtra("exp mcp needs the MCP SDK: pip install 'expledger[mcp]'") from None
    from ..config import mcp_token
    from ..mcp_server import serve

    serve(click.get_current_context().meta.get("store_url"), read_only=read_only, http=http, host=host, port=port,
          token=mcp_token(token))
