"""``studiolm serve`` as a process: SIGTERM during a stream ends it with one ``server_shutting_down``
error event within the grace period, and ``--workers 2`` serves one port from two processes.

Each test starts a real server process on a loopback port (``python -c``, this checkout first on the path).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import requests

from tests.agent.server.server_harness import MODEL, FakeUpstream, ServerThread

ROOT = Path(__file__).resolve().parents[3]
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "web_search": False}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[object]:
    """Start ``code`` in a Python process; returns (process, url, log path) once /health answers."""
    started: list[subprocess.Popen[bytes]] = []

    def start(code: str, port: int, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str, Path]:
        log = tmp_path / f"server-{port}.log"
        environ = {**os.environ, "PYTHONPATH": str(ROOT), "STUDIOLM_SERVER_API_KEYS": "", **(env or {})}
        with log.open("wb") as out:
            process = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=environ, stdin=subprocess.DEVNULL,
                                       stdout=out, stderr=subprocess.STDOUT)
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            try:
                if requests.get(f"{url}/health", timeout=1).status_code == 200:
                    return process, url, log
            except requests.ConnectionError:
                time.sleep(0.1)
        raise AssertionError(f"the server did not start: {log.read_text()}")

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(10)


SLOW_SERVER = """
import asyncio
from agent import AsyncClient
from agent.server import ServerLimits, serve
from tests.agent.server.server_harness import SlowModel

client = AsyncClient(backend=SlowModel(["word "] * 5000, word_delay=0.01), search="none")
limits = ServerLimits(shutdown_drain=0.5, shutdown_grace=5)
asyncio.run(serve(client, port={port}, api_keys=[], limits=limits, log_level="warning"))
"""


def test_sigterm_ends_open_streams_with_one_error_event(launch: object) -> None:
    port = free_port()
    process, url, log = launch(SLOW_SERVER.format(port=port), port)  # type: ignore[operator]
    body = {**CHAT, "stream": True}
    with requests.post(f"{url}/v1/chat/completions", json=body, stream=True, timeout=30) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        first = next((line for line in lines if line.startswith(b"data: ") and b'"content":"word' in line), None)
        assert first is not None, "no token before the signal"
        process.send_signal(signal.SIGTERM)
        sent_at = time.monotonic()
        rest = [line for line in lines if line.startswith(b"data: ")]
        ended_at = time.monotonic()
    errors = [json.loads(line[6:]) for line in rest if b'"error"' in line]
    assert len(errors) == 1, rest[-3:]
    assert errors[0]["error"]["code"] == "server_shutting_down"
    assert rest[-1] == b"data: " + json.dumps(errors[0], separators=(",", ":")).encode()  # last, no [DONE]
    assert ended_at - sent_at < 5, "the stream outlived the grace period"
    # uvicorn ends a graceful shutdown by re-raising the signal: the process exits by SIGTERM.
    assert process.wait(10) in (0, -signal.SIGTERM), log.read_text()


@pytest.fixture
def fake_upstream() -> Iterator[tuple[FakeUpstream, ServerThread]]:
    fake = FakeUpstream()
    with ServerThread(fake) as server:
        yield fake, server


def test_two_workers_share_one_port(launch: object, fake_upstream: tuple[FakeUpstream, ServerThread]) -> None:
    fake, fake_server = fake_upstream
    fake.word_delay = 0.01
    port = free_port()
    code = f"from agent._cli import main; raise SystemExit(main(['serve', '--port', '{port}', '--workers', '2']))"
    env = {"STUDIOLM_BASE_URL": f"{fake_server.url}/v1", "STUDIOLM_API_KEY": "sk-up", "STUDIOLM_SEARCH": "none"}
    process, url, log = launch(code, port, env)  # type: ignore[operator]

    async def run() -> list[int]:
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            async def one(i: int) -> int:
                body = {**CHAT, "stream": i % 2 == 0}
                return (await http.post("/v1/chat/completions", json=body)).status_code

            return list(await asyncio.gather(*(one(i) for i in range(64))))

    def serving() -> set[str]:
        return set(re.findall(r'\[(\d+)\] "POST /v1/chat/completions" 200', log.read_text()))

    # /health answered as soon as one worker was up; the other may still be importing.
    deadline = time.monotonic() + 60
    while len(serving()) < 2 and time.monotonic() < deadline:
        assert asyncio.run(run()) == [200] * 64
    process.send_signal(signal.SIGTERM)
    assert process.wait(20) in (0, -signal.SIGTERM)
    assert len(serving()) == 2, log.read_text()[-2000:]
    assert str(process.pid) not in serving()  # the parent supervises; the workers serve


FD_STARVED_SERVER = """
import asyncio, resource
resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
from agent import AsyncClient, ScriptedModel
from agent.server import ServerLimits, serve

client = AsyncClient(backend=ScriptedModel(["x"]), search="none")
# A cap above what the descriptors allow, so accept() does fail: the log must stay small anyway.
asyncio.run(serve(client, port={port}, api_keys=[], limits=ServerLimits(max_connections=10_000)))
"""


def test_accept_failures_at_the_fd_limit_do_not_flood_the_log(launch: object) -> None:
    port = free_port()
    process, url, log = launch(FD_STARVED_SERVER.format(port=port), port)  # type: ignore[operator]
    flood = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(150)]
    try:
        time.sleep(3)
    finally:
        for sock in flood:
            sock.close()
    time.sleep(1.5)  # asyncio retries accept() a second after running out
    assert requests.get(f"{url}/health", timeout=5).status_code == 200
    process.send_signal(signal.SIGTERM)
    process.wait(20)
    text = log.read_text()
    assert "socket.accept() out of system resource" in text  # the limit was hit
    assert text.count("socket.accept() out of system resource") <= 6
    assert len(text) < 100_000, f"{len(text)} bytes of log"
