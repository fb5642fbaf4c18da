"""Connection hygiene and limits that fit the backend: c=64 against an HTTP upstream with the defaults,
header and body deadlines (a bounded slowloris), 431 for oversized headers, the open-connection cap,
the log's repeat filter, and the limits from the CLI and the environment.

Real uvicorn on loopback with the config ``studiolm serve`` uses (:func:`agent.server._app.uvicorn_config`).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import requests

from agent import AsyncClient, BadRequestError, MemoryResponseStore, ModelBackend, ScriptedModel
from agent._cli import _parser, _serve_limits
from agent.models import LlamaBackend, OpenAICompatibleBackend
from agent.server import ServerLimits, limits_from_env
from agent.server._app import create_app, uvicorn_config
from agent.server._conn import RepeatFilter
from agent.server._limits import SLOTS_BY_BACKEND, generation_slots
from tests.agent.server.server_harness import (
    MODEL,
    FakeUpstream,
    ServerThread,
    SlowModel,
    read_response,
    status_of,
)

CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
PROTOCOLS = pytest.mark.parametrize("protocol", ["GuardedH11Protocol", "GuardedHttpToolsProtocol"])


@pytest.fixture
def start_guarded() -> Iterator[object]:
    """Start ``backend`` behind the app and the uvicorn config of ``studiolm serve``."""
    servers: list[ServerThread] = []

    def start(backend: ModelBackend, limits: ServerLimits, protocol: str | None = None) -> ServerThread:
        client = AsyncClient(backend=backend, search="none", response_store=MemoryResponseStore())
        app = create_app(client, api_keys=[], limits=limits)
        config = uvicorn_config(app, host="127.0.0.1", port=0, limits=limits, configure_logging=False)
        if protocol is not None:
            config.http = f"agent.server._conn:{protocol}"
        server = ServerThread(app, config=config).__enter__()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.__exit__()


def connect(server: ServerThread) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def head(server: ServerThread, *extra: bytes, end: bool = True) -> bytes:
    lines = [b"POST /v1/chat/completions HTTP/1.1", f"Host: 127.0.0.1:{server.port}".encode(),
             b"Content-Type: application/json", *extra]
    return b"\r\n".join(lines) + (b"\r\n\r\n" if end else b"\r\n")


def closed_within(sock: socket.socket, seconds: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes ``sock`` (at most ``seconds``), and when it closed."""
    sock.settimeout(seconds)
    data, began = b"", time.monotonic()
    try:
        while piece := sock.recv(65536):
            data += piece
    except (TimeoutError, ConnectionResetError):
        pass
    return data, time.monotonic() - began


# --- Limits per backend kind -------------------------------------------------------------------------

def test_the_generation_limits_follow_the_backend_kind() -> None:
    defaults = ServerLimits()
    upstream = OpenAICompatibleBackend("sk", "http://127.0.0.1:9/v1")
    assert generation_slots(defaults, upstream) == SLOTS_BY_BACKEND["upstream"] == (256, 1024)
    assert generation_slots(defaults, LlamaBackend()) == SLOTS_BY_BACKEND["local"] == (2, 16)
    assert generation_slots(defaults, ScriptedModel(["x"])) == SLOTS_BY_BACKEND["other"]
    assert generation_slots(ServerLimits(max_concurrent=3, max_queued=0), upstream) == (3, 0)
    assert defaults.queue_timeout <= 5


@PROTOCOLS
def test_c64_against_an_upstream_with_the_defaults_has_no_errors(
        start_guarded: object, upstream: tuple[FakeUpstream, ServerThread], protocol: str) -> None:
    fake, fake_server = upstream
    fake.words, fake.word_delay = ["word"] * 5, 0.01  # every request overlaps the others
    backend = OpenAICompatibleBackend("sk-up", f"{fake_server.url}/v1", max_retries=0)
    server = start_guarded(backend, ServerLimits(), protocol)  # type: ignore[operator]

    async def run() -> list[int]:
        async with httpx.AsyncClient(base_url=server.url, timeout=60,
                                     limits=httpx.Limits(max_connections=64)) as http:
            async def one(i: int) -> int:
                body = {**CHAT, "stream": i % 2 == 0, "web_search": False}
                return (await http.post("/v1/chat/completions", json=body)).status_code

            return list(await asyncio.gather(*(one(i) for i in range(640))))

    statuses = asyncio.run(run())
    assert statuses == [200] * 640


def test_limits_come_from_the_flags_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"STUDIOLM_MAX_CONCURRENCY": "7", "STUDIOLM_MAX_QUEUE": "0", "STUDIOLM_QUEUE_TIMEOUT": "1.5",
           "STUDIOLM_MAX_CONNECTIONS": "50"}
    limits = limits_from_env(env=env)
    assert (limits.max_concurrent, limits.max_queued, limits.queue_timeout, limits.max_connections) == (7, 0, 1.5, 50)
    assert limits_from_env(ServerLimits(max_concurrent=2), env=env).max_concurrent == 2  # given wins
    with pytest.raises(BadRequestError) as bad:
        limits_from_env(env={"STUDIOLM_MAX_QUEUE": "many"})
    assert bad.value.param == "STUDIOLM_MAX_QUEUE"
    with pytest.raises(BadRequestError) as bad:
        limits_from_env(env={"STUDIOLM_MAX_CONCURRENCY": "0"})
    assert bad.value.param == "STUDIOLM_MAX_CONCURRENCY"
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    args = _parser().parse_args(["serve", "--max-concurrency", "9", "--queue-timeout", "2"])
    limits = _serve_limits(args)
    assert (limits.max_concurrent, limits.max_queued, limits.queue_timeout, limits.max_connections) == (9, 0, 2.0, 50)


def test_a_refusal_says_what_is_busy_with_retry_after(start_guarded: object) -> None:
    gate = threading.Event()
    model = SlowModel(gate=gate)
    limits = ServerLimits(max_concurrent=1, max_queued=0)
    server = start_guarded(model, limits)  # type: ignore[operator]
    busy = threading.Thread(target=requests.post, args=(f"{server.url}/v1/chat/completions",),
                            kwargs={"json": CHAT, "timeout": 30})
    busy.start()
    try:
        assert model.started.wait(10)
        refused = requests.post(f"{server.url}/v1/chat/completions", json=CHAT, timeout=10)
    finally:
        gate.set()
        busy.join(10)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "2"
    assert "1 generations running, 0 waiting" in refused.json()["error"]["message"]


# --- Deadlines: a bounded slowloris --------------------------------------------------------------------

@PROTOCOLS
def test_half_sent_requests_get_408_and_health_stays_responsive(start_guarded: object, protocol: str) -> None:
    limits = ServerLimits(header_timeout=1.0, body_timeout=1.0)
    server = start_guarded(ScriptedModel(["x"]), limits, protocol)  # type: ignore[operator]
    heads, bodies = [], []
    try:
        for i in range(50):
            sock = connect(server)
            if i % 2:
                sock.sendall(head(server, b"X-Slow: 1", end=False))  # the header block never ends
                heads.append(sock)
            else:
                sock.sendall(head(server, b"Content-Length: 100") + b'{"model":')  # the body never ends
                bodies.append(sock)
        began = time.monotonic()
        health = requests.get(f"{server.url}/health", timeout=5)
        assert health.status_code == 200
        assert time.monotonic() - began < 1.0
        for sock in heads + bodies:
            data, took = closed_within(sock, 6)
            assert status_of(data) == 408, data[:200]
            assert took < 6
        assert b"request_timeout" in data
    finally:
        for sock in heads + bodies:
            sock.close()


@PROTOCOLS
def test_an_idle_kept_alive_connection_closes_silently_and_a_late_head_gets_408(
        start_guarded: object, protocol: str) -> None:
    limits = ServerLimits(header_timeout=1.0, idle_timeout=2)
    server = start_guarded(ScriptedModel(["x"] * 4), limits, protocol)  # type: ignore[operator]
    request = head(server, b"Content-Length: 2") + b"{}"
    with connect(server) as idle, connect(server) as slow:
        for sock in (idle, slow):
            sock.sendall(request)
            assert status_of(sock.recv(65536)) == 400  # answered; the connection stays open
        time.sleep(1.5)  # past header_timeout: an idle connection is not a late header block
        slow.sendall(head(server, end=False))  # the next request's head begins and never ends
        data, took = closed_within(idle, 5)
        assert data == b"" and 0.2 < took < 2.5  # closed at idle_timeout, with no stray response
        data, _ = closed_within(slow, 5)
        assert status_of(data) == 408


# --- Header limits -----------------------------------------------------------------------------------

@PROTOCOLS
@pytest.mark.parametrize("shape", ["one 100 KiB header", "2000 headers", "256 KiB in pieces"])
def test_oversized_headers_get_431(start_guarded: object, protocol: str, shape: str) -> None:
    server = start_guarded(ScriptedModel(["x"]), ServerLimits(), protocol)  # type: ignore[operator]
    with connect(server) as sock:
        if shape == "one 100 KiB header":
            sock.sendall(head(server, b"X-Big: " + b"a" * 100 * 1024))
        elif shape == "2000 headers":
            sock.sendall(head(server, *(b"X-H%d: v" % i for i in range(2000))))
        else:
            try:
                sock.sendall(head(server, end=False))
                for _ in range(64):
                    sock.sendall(b"X-Part: " + b"b" * 4086 + b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server answered and closed mid-way: read what it said
        response = read_response(sock)
    assert status_of(response) == 431, response[:200]
    assert b"request_headers_too_large" in response


def test_ordinary_headers_pass(start_guarded: object) -> None:
    server = start_guarded(ScriptedModel(["x"]), ServerLimits())  # type: ignore[operator]
    response = requests.get(f"{server.url}/health", headers={f"X-H{i}": "v" * 100 for i in range(60)}, timeout=5)
    assert response.status_code == 200
    # Keep-alive: a second request on the same connection gets a fresh header allowance and deadline.
    with requests.Session() as session:
        for _ in range(3):
            assert session.get(f"{server.url}/health", headers={"X-Big": "a" * 20000}, timeout=5).status_code == 200


# --- Open connections --------------------------------------------------------------------------------

def test_connections_past_the_cap_get_503_at_once(start_guarded: object) -> None:
    server = start_guarded(ScriptedModel(["x"]), ServerLimits(max_connections=5))  # type: ignore[operator]
    idle = [connect(server) for _ in range(5)]
    try:
        time.sleep(0.2)  # the server has accepted them
        with connect(server) as extra:
            data, _ = closed_within(extra, 5)
        assert status_of(data) == 503
        assert b"too_many_connections" in data and b"retry-after" in data.lower()
    finally:
        for sock in idle:
            sock.close()
    time.sleep(0.2)
    assert requests.get(f"{server.url}/health", timeout=5).status_code == 200  # freed again


def test_the_connection_cap_fits_the_file_descriptor_limit() -> None:
    import resource

    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert ServerLimits().connections() <= max(1, (soft - 64) // 2)
    assert ServerLimits(max_connections=7).connections() == 7


# --- Log flooding ------------------------------------------------------------------------------------

def test_repeated_log_records_are_rate_limited() -> None:
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    handler = Collect()
    handler.addFilter(RepeatFilter(burst=5, window=0.2))
    log = logging.getLogger("studiolm.test.repeats")
    log.addHandler(handler)
    log.propagate = False
    try:
        for _ in range(10_000):
            log.error("socket.accept() out of system resource")
        log.error("something else %s", 1)
        assert len(records) == 6
        time.sleep(0.25)
        log.error("socket.accept() out of system resource")
    finally:
        log.removeHandler(handler)
    assert records[-1] == "socket.accept() out of system resource [9995 identical messages suppressed]"
