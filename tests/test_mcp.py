"""`exp mcp` driven through the MCP SDK's own client, over stdio, against a real subprocess."""

from __future__ import annotations

import json
import os
import sys

import pytest

pytest.importorskip("mcp")

import anyio
from mcp import Client, StdioServerParameters

from tests.conftest import run_exp

READS = {"list", "show", "check", "compare", "queue", "export", "files", "logs", "steps", "workers", "notes", "next"}
WRITES = {"add", "start", "result", "cancel"}


def _server(tmp_path, *flags: str) -> StdioServerParameters:
    env = {key: value for key, value in os.environ.items() if not key.startswith("EXP_")}
    env["EXP_MACHINE"] = "testbox"
    return StdioServerParameters(command=sys.executable, args=["-m", "expledger", "mcp", *flags], env=env,
                                 cwd=str(tmp_path))


def _session(tmp_path, script, *flags: str):
    async def main():
        async with Client(_server(tmp_path, *flags), read_timeout_seconds=60) as client:
            await script(client)

    anyio.run(main)


async def _call(client, tool: str, **arguments) -> dict:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    return result.structured_content


async def _error(client, tool: str, **arguments) -> str:
    result = await client.call_tool(tool, arguments)
    assert result.is_error
    return result.content[0].text


def test_the_seed_quick_start_as_tool_calls_on_the_same_ledger_as_the_cli(tmp_path):
    async def script(client):
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert set(tools) == READS | WRITES
        assert "check" in tools["add"].description and tools["show"].annotations.read_only_hint is True
        assert tools["result"].input_schema["properties"]["status"]["enum"] == ["success", "failed", "cancelled"]
        added = await _call(client, "add", name="whisper logit lens", task="layer-analysis", model="whisper-base",
                            params={"layers": 6, "method": "logit_lens"}, command="python3 whisper_logit_lens.py",
                            machine="lab")
        assert added["ok"] is True and added["experiment"]["id"] == "EXP-001"
        await _call(client, "add", name="whisper CKA", task="layer-analysis", model="whisper-base",
                    params='{"layers": 6, "method": "cka"}', command="python3 whisper_cka.py")
        await _call(client, "add", name="whisper-large probe", task="layer-analysis", model="whisper-large",
                    params={"layers": 32})
        done = await _call(client, "result", id="EXP-001", status="success",
                           metrics={"accuracy": 0.934, "layers_identified": 2},
                           summary="CKA shows 2 clusters: acoustic (0-2) and semantic (3-5)")
        assert done["experiment"]["status"] == "SUCCESS"
        compared = await _call(client, "compare", ids=["EXP-001", "EXP-002"])
        assert compared["params"]["differ"]["method"] == {"EXP-001": "logit_lens", "EXP-002": "cka"}
        queued = await _call(client, "queue", fields=["id", "command"])
        assert queued["experiments"] == [{"id": "EXP-002", "command": "python3 whisper_cka.py"},
                                         {"id": "EXP-003", "command": None}]
        failed = await _call(client, "result", id="exp-3", status="failed",
                             summary="OOM on whisper-large, need gradient checkpointing")
        assert failed["experiment"]["failed_reason"] == "OOM on whisper-large, need gradient checkpointing"
        tried = await _call(client, "check", model="whisper-base", params={"method": "logit_lens"})
        assert tried["answer"].startswith("tried, 1 SUCCESS")
        # The CLI sees what the tools wrote, and the tools see what the CLI writes.
        listed = json.loads(run_exp("list", "--json", cwd=tmp_path).out)
        assert [e["id"] for e in listed["experiments"]] == ["EXP-003", "EXP-002", "EXP-001"]
        assert run_exp("result", "2", "--status", "success", "--metrics", '{"accuracy": 0.9}', cwd=tmp_path).code == 0
        mine = await _call(client, "list", status=["success"], fields=["id", "metrics.accuracy"])
        assert mine["experiments"] == [{"id": "EXP-002", "metrics": {"accuracy": 0.9}},
                                       {"id": "EXP-001", "metrics": {"accuracy": 0.934}}]
        assert mine == json.loads(run_exp("list", "--status", "success", "--fields", "id,metrics.accuracy",
                                          "--json", cwd=tmp_path).out)
        best = await _call(client, "compare", where="task = layer-analysis", top=2, by="accuracy")
        assert best["baseline"] == "EXP-001"
        shown = await client.read_resource("exp://EXP-003")
        assert json.loads(shown.contents[0].text)["experiment"]["status"] == "FAILED"
        reference = await client.read_resource("exp://format")
        assert "JSON output of the CLI" in reference.contents[0].text
        table = await _call(client, "export", format="md")
        assert table["table"]["rows"] and table["text"].startswith("|")

    _session(tmp_path, script)


def test_bad_calls_are_tool_errors_in_the_tools_words_and_the_server_keeps_serving(tmp_path):
    async def script(client):
        await _call(client, "add", name="a", task="t")
        malformed = await _error(client, "add", name="b", params="{lr: 1e-3")
        assert malformed.startswith("bad_input: params is not valid JSON")
        unknown = await _error(client, "show", id="EXP-042")
        assert unknown == "not_found: " + run_exp("show", "EXP-042", cwd=tmp_path).err[len("error: "):].strip()
        await _call(client, "result", id="1", status="success")
        illegal = await _error(client, "start", id="1")
        assert illegal.startswith("illegal_transition: EXP-001 is SUCCESS")
        again = await _error(client, "result", id="1", status="failed", reason="x")
        assert "pass force=True to replace it" in again  # the tool's argument, not --force
        wrong_type = await client.call_tool("list", {"limit": "many"})
        assert wrong_type.is_error
        bad_query = await _error(client, "list", where="params.lr <")
        assert bad_query.startswith("bad_input: where")
        assert (await _call(client, "show", id="1"))["experiment"]["status"] == "SUCCESS"  # still serving

    _session(tmp_path, script)


def test_read_only_mode_offers_no_tool_that_writes(tmp_path):
    assert run_exp("add", "--name", "a", cwd=tmp_path).code == 0

    async def script(client):
        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert tools == READS
        prompts = {prompt.name for prompt in (await client.list_prompts()).prompts}
        assert prompts == {"before_running", "after_running", "writing_the_paper"}
        refused = await client.call_tool("add", {"name": "b"})
        assert refused.is_error
        assert (await _call(client, "list"))["total"] == 1

    _session(tmp_path, script, "--read-only")


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for(port: int, proc) -> None:
    import socket
    import time

    for _ in range(600):
        assert proc.poll() is None, proc.stderr.read()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("exp mcp --http did not start listening")


def test_http_serves_on_loopback_and_needs_a_token_beyond_it(tmp_path):
    import subprocess

    import httpx

    refused = run_exp("mcp", "--http", "--host", "0.0.0.0", cwd=tmp_path)
    assert refused.code == 2 and "--token" in refused.err
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "expledger", "mcp", "--http", "--port", str(port), "--token", "s3cret"],
                            cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(port, proc)
        hello = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
        headers = {"accept": "application/json, text/event-stream"}
        url = f"http://127.0.0.1:{port}/mcp"
        assert httpx.post(url, json=hello, headers=headers, timeout=30).status_code == 401
        wrong = httpx.post(url, json=hello, headers={**headers, "authorization": "Bearer nope"}, timeout=30)
        assert wrong.status_code == 401
        right = httpx.post(url, json=hello, headers={**headers, "authorization": "Bearer s3cret"}, timeout=30)
        assert right.status_code == 200 and "expledger" in right.text
    finally:
        proc.terminate()
        proc.wait(timeout=30)
