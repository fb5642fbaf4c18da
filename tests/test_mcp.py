"""MCP servers as tools: a real server (tests/mcp_demo_server.py) over stdio as a subprocess and over
streamable HTTP on a loopback port, listed and called end to end through the public SDK on the
scripted model, plus the toolset's lifetime (no leaked processes) and its errors."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import uvicorn

import agent as studiolm
from agent import ModelRequest, ScriptedCall, ScriptedModel, ScriptedReply, ToolsetError
from tests.fakes import FakeSearch
from tests.mcp_demo_server import build_server
from tools import McpConnectionError, McpError, McpToolset, ToolArgumentsError, ToolsUsageError, mcp_server

SERVER_SCRIPT = Path(__file__).with_name("mcp_demo_server.py")
QUESTION = [{"role": "user", "content": "What is 2 + 3?"}]


def call(name: str, arguments: dict[str, Any]) -> ScriptedReply:
    return ScriptedReply(tool_calls=(ScriptedCall(name, arguments),))


def stdio_server(**options: Any) -> McpToolset:
    return mcp_server([sys.executable, str(SERVER_SCRIPT)], **options)


class HttpServer:
    """The demo server's streamable-HTTP app on uvicorn, on a free loopback port, in its own thread."""

    def __init__(self) -> None:
        app = build_server().streamable_http_app()
        self.headers: list[dict[str, str]] = []  # of every HTTP request, as the server received them

        async def recording(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                self.headers.append({k.decode(): v.decode() for k, v in scope["headers"]})
            await app(scope, receive, send)

        config = uvicorn.Config(recording, host="127.0.0.1", port=0, log_level="warning", lifespan="on",
                                timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="mcp-http-test", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "uvicorn did not start"
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{self.server.servers[0].sockets[0].getsockname()[1]}/mcp"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def http_server() -> Iterator[HttpServer]:
    server = HttpServer()
    yield server
    server.stop()


@pytest.fixture(params=["stdio", "http"])
def make_server(request: pytest.FixtureRequest) -> Callable[..., McpToolset]:
    """A factory of toolsets for the demo server, over each transport."""
    if request.param == "stdio":
        return stdio_server
    http = request.getfixturevalue("http_server")
    return lambda **options: mcp_server(url=http.url, **options)


def run(model: ScriptedModel, server: McpToolset, *, stream: bool = True,
        **params: Any) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    """(answer, step payloads, response body or final chunk) of one request; the client closes ``server``."""
    with studiolm.Client(backend=model, search=FakeSearch(), tools=[server]) as client:
        result = client.chat.completions.create(model="scripted", messages=QUESTION, stream=stream, **params)
        if not stream:
            return result["choices"][0]["message"]["content"], [], result
        text, steps, final = "", [], {}
        for chunk in result:
            text += chunk["choices"][0]["delta"].get("content", "") or ""
            steps += [chunk["step"]] if "step" in chunk else []
            final = chunk if chunk["choices"][0]["finish_reason"] else final
        return text, steps, final


def tool_turn(request: ModelRequest) -> str:
    message = request.messages[-1]
    assert message.role == "tool"
    return message.content


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live (not zombie) process."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def wait_gone(pid: int, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# --- end to end through the SDK -------------------------------------------------------------------


def test_tool_is_listed_called_and_streamed_as_steps(make_server: Callable[..., McpToolset]) -> None:
    model = ScriptedModel([call("add", {"a": 2, "b": 3}), "2 + 3 = 5."])
    text, steps, final = run(model, make_server())
    assert text == "2 + 3 = 5."
    offered = {spec.name: spec for spec in model.requests[0].tools}
    assert {"add", "fail", "notes_get", "rich", "slow", "crash"} <= set(offered)
    assert offered["add"].description == "Add two integers."
    assert offered["add"].parameters["properties"]["b"]["minimum"] == 0
    assert offered["add"].parameters["required"] == ["a", "b"]
    assert tool_turn(model.requests[1]) == "5"
    called = next(s for s in steps if s["type"] == "tool.called")
    result = next(s for s in steps if s["type"] == "tool.result")
    assert called == {"type": "tool.called", "name": "add", "arguments": '{"a": 2, "b": 3}',
                      "call_id": result["call_id"], "runs_on": "graph"}
    assert result["error"] is None and result["preview"] == "5" and result["duration_ms"] >= 0
    assert steps.index(called) < steps.index(result)
    assert final["choices"][0]["finish_reason"] == "stop"


def test_non_stream_reports_the_run_in_tool_runs(make_server: Callable[..., McpToolset]) -> None:
    model = ScriptedModel([call("notes_get", {"key": "paris"}), "Paris is the capital."])
    _, _, body = run(model, make_server(), stream=False)
    (record,) = body["tool_runs"]
    assert record["name"] == "notes_get" and record["error"] is None
    assert tool_turn(model.requests[1]) == "Paris is the capital of France."  # the dotted name reached the server


def test_a_failing_tool_is_an_error_result_the_model_reads(make_server: Callable[..., McpToolset]) -> None:
    model = ScriptedModel([call("fail", {"message": "disk full"}), "The tool failed."])
    text, steps, final = run(model, make_server())
    assert text == "The tool failed."
    assert "demo failure: disk full" in tool_turn(model.requests[1])
    result = next(s for s in steps if s["type"] == "tool.result")
    assert "demo failure: disk full" in result["error"]
    assert final["choices"][0]["finish_reason"] == "stop"


def test_invalid_arguments_are_checked_against_the_input_schema(make_server: Callable[..., McpToolset]) -> None:
    model = ScriptedModel([call("add", {"a": 2, "b": -3}), call("add", {"a": 2}), "I could not add."])
    _, steps, _ = run(model, make_server())
    assert tool_turn(model.requests[1]) == "Error: invalid arguments for add: /b: -3 is less than the minimum of 0"
    assert "'b' is a required property" in tool_turn(model.requests[2])
    errors = [s["error"] for s in steps if s["type"] == "tool.result"]
    assert len(errors) == 2 and all(e.startswith("invalid arguments for add") for e in errors)


def test_calls_of_one_turn_share_the_session_concurrently(make_server: Callable[..., McpToolset]) -> None:
    both = ScriptedReply(tool_calls=(ScriptedCall("slow", {"seconds": 0.6}), ScriptedCall("slow", {"seconds": 0.6})))
    model = ScriptedModel([call("add", {"a": 1, "b": 1}), both, "done"])
    _, steps, _ = run(model, make_server())
    durations = [s["duration_ms"] for s in steps if s["type"] == "tool.result"][1:]
    assert [tool_turn(model.requests[2])] == ["finally"] and len(durations) == 2
    turn = model.requests[2].messages
    assert [m.content for m in turn[-2:]] == ["finally", "finally"]
    assert max(durations) < 1100  # together, not one after the other (each sleeps 600 ms)


def test_a_call_past_its_timeout_is_cancelled_and_the_session_lives_on(make_server: Callable[..., McpToolset]) -> None:
    model = ScriptedModel([call("slow", {"seconds": 5}), call("add", {"a": 1, "b": 2}), "3"])
    started = time.monotonic()
    _, steps, _ = run(model, make_server(timeout=0.5))
    results = [s for s in steps if s["type"] == "tool.result"]
    assert results[0]["error"] == "timed out after 0.5 s"
    assert results[1]["error"] is None and tool_turn(model.requests[2]) == "3"
    assert time.monotonic() - started < 4.5


def test_prefix_keeps_two_servers_apart(http_server: HttpServer) -> None:
    model = ScriptedModel([ScriptedReply(tool_calls=(ScriptedCall("one_add", {"a": 1, "b": 1}),
                                                    ScriptedCall("two_add", {"a": 2, "b": 2}))), "2 and 4"])
    servers = [mcp_server(url=http_server.url, prefix="one"), stdio_server(prefix="two")]
    with studiolm.Client(backend=model, search=FakeSearch(), tools=servers) as client:
        client.chat.completions.create(model="scripted", messages=QUESTION)
    names = [spec.name for spec in model.requests[0].tools]
    assert "one_add" in names and "two_notes_get" in names and "add" not in names
    assert [m.content for m in model.requests[1].messages[-2:]] == ["2", "4"]


# --- the server going away -------------------------------------------------------------------------


def test_a_stdio_server_that_dies_is_an_error_result_then_restarts() -> None:
    model = ScriptedModel([call("pid", {}), call("crash", {}), call("pid", {}), "It crashed, then came back."])
    text, steps, final = run(model, stdio_server())
    results = [s for s in steps if s["type"] == "tool.result"]
    assert results[0]["error"] is None and results[2]["error"] is None
    crashed = results[1]["error"]
    assert crashed.startswith("McpConnectionError: MCP server 'python") and "connection was lost" in crashed
    assert "crashed on purpose" in tool_turn(model.requests[2])  # the server's stderr, quoted for the model
    first, second = int(tool_turn(model.requests[1])), int(tool_turn(model.requests[3]))
    assert first != second and not alive(first)
    assert text == "It crashed, then came back." and final["choices"][0]["finish_reason"] == "stop"
    assert wait_gone(second)  # the client closed the fresh one too


def test_a_server_killed_between_requests_is_replaced_for_the_next() -> None:
    model = ScriptedModel([call("pid", {}), "one", call("pid", {}), "two"])
    with studiolm.Client(backend=model, search=FakeSearch(), tools=[stdio_server()]) as client:
        client.chat.completions.create(model="scripted", messages=QUESTION)
        first = int(tool_turn(model.requests[1]))
        os.kill(first, signal.SIGKILL)
        assert wait_gone(first)
        body = client.chat.completions.create(model="scripted", messages=QUESTION)
        second = int(tool_turn(model.requests[3]))
    assert second != first and body["tool_runs"][0]["error"] is None
    assert wait_gone(second)


def test_an_http_server_that_goes_away_is_an_error_result(http_server: HttpServer) -> None:
    def stop_then_call(request: ModelRequest) -> ScriptedReply:
        http_server.stop()
        return call("add", {"a": 1, "b": 2})

    model = ScriptedModel([stop_then_call, "The server is gone."])
    text, steps, final = run(model, mcp_server(url=http_server.url))
    error = next(s for s in steps if s["type"] == "tool.result")["error"]
    assert error.startswith("McpConnectionError: MCP server 'http://127.0.0.1:")
    assert text == "The server is gone." and final["choices"][0]["finish_reason"] == "stop"


def test_a_server_that_cannot_start_fails_the_request_clearly() -> None:
    model = ScriptedModel(["unused"])
    with pytest.raises(ToolsetError) as caught:
        run(model, mcp_server(["/nonexistent/mcp-server", "--stdio"]))
    assert "cannot start it" in str(caught.value) and "/nonexistent/mcp-server" in str(caught.value)
    assert caught.value.toolset == "mcp-server --stdio"
    assert model.requests == []


def test_a_program_that_is_no_mcp_server_is_reported_with_its_stderr() -> None:
    program = "import sys; print('hello, not json'); print('usage: nope', file=sys.stderr); sys.exit(2)"
    with pytest.raises(ToolsetError) as caught:
        run(ScriptedModel(["unused"]), mcp_server([sys.executable, "-c", program], name="nope"))
    assert "MCP server 'nope'" in str(caught.value) and "usage: nope" in str(caught.value)


async def test_a_server_that_never_answers_times_out_and_is_killed(monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    monkeypatch.setattr("tools._mcp.CONNECT_TIMEOUT_SECONDS", 0.5)
    pid_file = tmp_path / "pid"
    program = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(60)"
    server = mcp_server([sys.executable, "-c", program, str(pid_file)], name="mute")
    with pytest.raises(McpConnectionError) as caught:
        await server.list_tools()
    assert str(caught.value).startswith("MCP server 'mute': no MCP handshake within 0.5 s")
    assert caught.value.server == "mute"
    assert await asyncio.to_thread(wait_gone, int(pid_file.read_text()))


# --- lifetime -------------------------------------------------------------------------------------


async def test_the_session_is_reused_and_aclose_stops_the_process() -> None:
    async with stdio_server() as server:
        await server.list_tools()
        pid = int((await server.call_tool("pid", {})).content)
        assert int((await server.call_tool("pid", {})).content) == pid  # one process for every call
        assert alive(pid)
    assert await asyncio.to_thread(wait_gone, pid)
    await server.aclose()  # idempotent


async def test_outside_the_graph_the_timeout_is_the_request_read_timeout() -> None:
    async with stdio_server(timeout=0.3) as server:
        with pytest.raises(McpError) as caught:
            await server.call_tool("slow", {"seconds": 3})
        assert (await server.call_tool("add", {"a": 1, "b": 1})).content == "2"  # the session is fine
    assert not isinstance(caught.value, McpConnectionError)
    assert caught.value.rpc_code == -32001 and "timed out" in str(caught.value)


async def test_a_closed_toolset_connects_again_when_used() -> None:
    server = stdio_server()
    first = int((await server.call_tool("pid", {})).content)
    await server.aclose()
    second = int((await server.call_tool("pid", {})).content)
    await server.aclose()
    assert first != second and not alive(first) and await asyncio.to_thread(wait_gone, second)


def test_a_loop_that_ends_stops_the_server_and_the_next_loop_starts_one() -> None:
    server = stdio_server()

    async def server_pid() -> int:
        return int((await server.call_tool("pid", {})).content)

    first = asyncio.run(server_pid())  # no aclose: asyncio.run cancels the session's task on the way out
    assert wait_gone(first)
    second = asyncio.run(server_pid())
    assert second != first and wait_gone(second)


def test_the_sync_client_closes_its_servers() -> None:
    server = stdio_server()
    model = ScriptedModel([call("pid", {}), "done"])
    run(model, server)
    assert wait_gone(int(tool_turn(model.requests[1])))


async def test_one_toolset_on_two_live_loops_is_refused_and_closes_across_loops() -> None:
    server = stdio_server()
    model = ScriptedModel([call("pid", {}), "done"])
    client = studiolm.Client(backend=model, search=FakeSearch())  # its own loop, on its own thread
    try:
        client.chat.completions.create(model="scripted", messages=QUESTION, tools=[server])
        pid = int(tool_turn(model.requests[1]))
        with pytest.raises(ToolsUsageError, match="another running event loop"):
            await server.list_tools()
        await server.aclose()  # stops the session on the client's loop, from this one
        assert await asyncio.to_thread(wait_gone, pid)
    finally:
        client.close()


async def test_env_reaches_a_stdio_server_and_the_rest_of_ours_does_not(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUDIOLM_TEST_SECRET", "hunter2")
    async with stdio_server(env={"DEMO_SETTING": "on"}) as server:
        assert (await server.call_tool("env", {"name": "DEMO_SETTING"})).content == "on"
        assert (await server.call_tool("env", {"name": "STUDIOLM_TEST_SECRET"})).content == "<unset>"


# --- results and arguments ------------------------------------------------------------------------


async def test_non_text_content_is_described_not_dropped(http_server: HttpServer) -> None:
    async with mcp_server(url=http_server.url, headers={"X-Demo": "1"}) as server:
        output = await server.call_tool("rich", {})
        structured = await server.call_tool("structured_only", {})
    assert not output.is_error
    assert output.content.splitlines() == [
        "a chart of sales",
        "[image: image/png, 70 bytes; not shown here]",
        "[audio: audio/wav, 30 bytes; not shown here]",
        "[resource <file:///notes.txt>]",
        "note body",
        "[resource <file:///data.bin>: application/octet-stream, 70 bytes; not shown here]",
        "[resource link: report <https://example.org/report.pdf> (application/pdf): the full report]",
    ]
    assert json.loads(structured.content) == {"total": 42}
    assert http_server.headers and all(h.get("x-demo") == "1" for h in http_server.headers)


async def test_an_injected_http_client_is_used_and_left_open(http_server: HttpServer) -> None:
    sent: list[str] = []

    async def record(request: httpx2.Request) -> None:
        sent.append(request.method)

    async with httpx2.AsyncClient(headers={"Authorization": "Bearer t0k3n"},
                                  event_hooks={"request": [record]}) as http:
        async with mcp_server(url=http_server.url, http_client=http) as server:
            assert (await server.call_tool("add", {"a": 40, "b": 2})).content == "42"
        assert not http.is_closed  # the caller's client: the toolset does not close it
    assert "POST" in sent and all(h.get("authorization") == "Bearer t0k3n" for h in http_server.headers)


async def test_arguments_error_carries_json_pointers(http_server: HttpServer) -> None:
    async with mcp_server(url=http_server.url) as server:
        with pytest.raises(ToolArgumentsError) as caught:
            await server.call_tool("add", {"a": "two", "b": 1})
        with pytest.raises(ToolsUsageError, match="has no tool 'nope'"):
            await server.call_tool("nope", {})
    assert caught.value.tool == "add" and caught.value.errors[0]["path"] == "/a"


@pytest.mark.parametrize(("args", "kwargs", "message"), [
    ((), {}, "either command"),
    ((["x"],), {"url": "http://h/mcp"}, "either command"),
    (("server --stdio",), {}, "list of strings"),
    (([],), {}, "list of strings"),
    ((["x"],), {"headers": {"a": "b"}}, "for url="),
    ((), {"url": "ftp://h/mcp"}, "http:// or https://"),
    ((), {"url": "http://h/mcp", "env": {"A": "1"}}, "for command="),
    ((["x"],), {"prefix": "bad prefix"}, "prefix"),
    ((["x"],), {"timeout": 0}, "positive"),
])
def test_mcp_server_refuses_what_describes_no_server(args: tuple[Any, ...], kwargs: dict[str, Any],
                                                     message: str) -> None:
    with pytest.raises(ToolsUsageError, match=message):
        mcp_server(*args, **kwargs)


def test_default_names_say_which_server() -> None:
    assert stdio_server().name == f"{os.path.basename(sys.executable)} {SERVER_SCRIPT}"
    assert mcp_server(url="https://user:pw@mcp.example/mcp?token=x").name == "https://mcp.example/mcp"
    assert repr(mcp_server(url="http://h/mcp", name="docs")) == "McpToolset('docs')"
