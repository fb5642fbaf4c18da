"""Hard limits: the body cap (413 before the body is read), bounded concurrency with a short queue
(429/503 + Retry-After), and a client that leaves cancels its generation within a second."""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from agent.models._openai import OpenAICompatibleBackend
from agent.server._limits import MAX_BODY_BYTES, ServerLimits
from tests.agent.server.server_harness import (
    API_KEY,
    MODEL,
    FakeUpstream,
    ServerThread,
    SlowModel,
    StartServer,
    body_of,
    read_response,
    status_of,
    wait_for,
)

TEN_MB = 10 * 1024 * 1024
AUTH = {"Authorization": f"Bearer {API_KEY}"}
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}


def connect(server: ServerThread) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def head(server: ServerThread, *extra: bytes) -> bytes:
    lines = [b"POST /v1/chat/completions HTTP/1.1", f"Host: 127.0.0.1:{server.port}".encode(),
             b"Authorization: Bearer " + API_KEY.encode(), b"Content-Type: application/json", *extra]
    return b"\r\n".join(lines) + b"\r\n\r\n"


# --- Body cap ---------------------------------------------------------------------------------------

def test_declared_length_over_the_cap_is_413_before_any_body_is_sent(docs_server: ServerThread) -> None:
    with connect(docs_server) as sock:
        sock.sendall(head(docs_server, f"Content-Length: {TEN_MB}".encode()))
        response = read_response(sock)  # no body sent at all: the answer cannot have waited for it
    assert status_of(response) == 413
    error = body_of(response)["error"]
    assert (error["code"], error["type"]) == ("request_too_large", "invalid_request_error")
    assert str(MAX_BODY_BYTES) in error["message"]


def test_a_chunked_body_is_cut_off_at_the_cap(docs_server: ServerThread) -> None:
    piece = b"x" * 65536
    sent = 0
    with connect(docs_server) as sock:
        sock.sendall(head(docs_server, b"Transfer-Encoding: chunked"))
        # Send a little over the cap and then stop, without the final chunk: a server that waited for
        # the whole body would never answer.
        while sent <= MAX_BODY_BYTES + len(piece):
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            sent += len(piece)
        readable, _, _ = select.select([sock], [], [], 10)
        assert readable, "no answer although the body passed the cap"
        response = read_response(sock)
    assert status_of(response) == 413


def test_ten_megabytes_through_requests_is_413(docs_server: ServerThread) -> None:
    url = f"{docs_server.url}/v1/chat/completions"
    body = json.dumps({**CHAT, "messages": [{"role": "user", "content": "x" * TEN_MB}]})
    response = requests.post(url, data=body, headers={**AUTH, "Content-Type": "application/json"}, timeout=60)
    assert response.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the cap is enforced while reading
        for _ in range(TEN_MB // 65536):
            yield b" " * 65536

    response = requests.post(url, data=chunks(), headers={**AUTH, "Content-Type": "application/json"}, timeout=60)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"


def test_a_body_just_under_the_cap_is_read(start_server: StartServer) -> None:
    server = start_server(SlowModel(), api_keys=[API_KEY], limits=ServerLimits(max_body_bytes=2000))
    body = json.dumps({**CHAT, "user": "u" * 1000})
    response = requests.post(f"{server.url}/v1/chat/completions", data=body, timeout=30,
                             headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == 200
    body = json.dumps({**CHAT, "user": "u" * 2000})
    response = requests.post(f"{server.url}/v1/chat/completions", data=body, timeout=30,
                             headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == 413


# --- Overload ---------------------------------------------------------------------------------------

def post_in_thread(server: ServerThread, results: list[requests.Response]) -> threading.Thread:
    def run() -> None:
        results.append(requests.post(f"{server.url}/v1/chat/completions", json=CHAT, headers=AUTH, timeout=30))

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_overload_queues_then_refuses_with_retry_after(start_server: StartServer) -> None:
    gate = threading.Event()
    model = SlowModel(gate=gate)
    limits = ServerLimits(max_concurrent=1, max_queued=1, queue_timeout=0.5, retry_after=3)
    server = start_server(model, api_keys=[API_KEY], limits=limits)
    first: list[requests.Response] = []
    busy = post_in_thread(server, first)
    assert model.started.wait(10)
    queued: list[requests.Response] = []
    waiting = post_in_thread(server, queued)
    time.sleep(0.15)  # the second request is now in the queue
    refused = requests.post(f"{server.url}/v1/chat/completions", json=CHAT, headers=AUTH, timeout=30)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "3"
    assert refused.json()["error"]["code"] == "server_queue_full"
    waiting.join(10)
    assert queued[0].status_code == 503  # waited queue_timeout without a slot
    assert queued[0].headers["retry-after"] == "3"
    assert queued[0].json()["error"]["code"] == "server_overloaded"
    gate.set()
    busy.join(10)
    assert first[0].status_code == 200
    again = requests.post(f"{server.url}/v1/chat/completions", json=CHAT, headers=AUTH, timeout=30)
    assert again.status_code == 200  # the slot was given back


def test_a_queued_request_gets_the_slot_when_it_frees(start_server: StartServer) -> None:
    gate = threading.Event()
    model = SlowModel(gate=gate)
    server = start_server(model, api_keys=[API_KEY],
                          limits=ServerLimits(max_concurrent=1, max_queued=1, queue_timeout=10))
    results: list[requests.Response] = []
    threads = [post_in_thread(server, results)]
    assert model.started.wait(10)
    threads.append(post_in_thread(server, results))
    time.sleep(0.1)
    gate.set()
    for thread in threads:
        thread.join(10)
    assert [r.status_code for r in results] == [200, 200]


# --- Disconnects cancel the work --------------------------------------------------------------------

def request_bytes(server: ServerThread, stream: bool) -> bytes:
    body = json.dumps({**CHAT, "stream": stream}).encode()
    return head(server, f"Content-Length: {len(body)}".encode()) + body


def leave(server: ServerThread, stream: bool, started: threading.Event, *, during: bool) -> float:
    """Send a chat request and leave: before the first token (the model is held back), or during the
    generation (streaming: once the first token arrived; not streaming: while tokens flow inside the
    server). Returns when the socket was closed."""
    sock = connect(server)
    sock.sendall(request_bytes(server, stream))
    assert started.wait(10)
    if during and stream:
        data = b""
        while b'"delta":{"content":"' not in data:
            piece = sock.recv(65536)
            assert piece, "the stream ended before the first token"
            data += piece
    else:
        time.sleep(0.3)
    sock.close()
    return time.monotonic()


def assert_slot_freed(server: ServerThread, closed_at: float, release: threading.Event | None = None) -> None:
    """Within a second of the client leaving, its slot serves the next request (max_queued=0, so a
    busy slot would be an immediate 429)."""
    if release is not None:
        release.set()
    statuses: list[int] = []

    def served() -> bool:
        response = requests.post(f"{server.url}/v1/chat/completions", json=CHAT, headers=AUTH, timeout=30)
        statuses.append(response.status_code)
        return response.status_code == 200

    assert wait_for(served, timeout=max(0.0, closed_at + 1.0 - time.monotonic())), statuses


CASES = pytest.mark.parametrize(("stream", "during"), [(False, False), (False, True), (True, False), (True, True)])


@CASES
def test_disconnect_cancels_the_upstream_call(start_server: StartServer, upstream: tuple[FakeUpstream, ServerThread],
                                              stream: bool, during: bool) -> None:
    fake, fake_server = upstream
    fake.words = ["word"] * 200
    fake.start_delay, fake.word_delay = (0.0, 0.05) if during else (30.0, 0.0)
    backend = OpenAICompatibleBackend("sk-up", f"{fake_server.url}/v1", max_retries=0)
    limits = ServerLimits(max_concurrent=1, max_queued=0)
    server = start_server(backend, api_keys=[API_KEY], limits=limits)
    closed_at = leave(server, stream, fake.requested, during=during)
    call = fake.calls[0]
    assert call.disconnected.wait(5), "the upstream call was not cancelled"
    assert call.disconnected_at is not None and call.disconnected_at - closed_at < 1.0
    fake.start_delay = fake.word_delay = 0.0
    fake.words = ["ok"]
    assert_slot_freed(server, closed_at)


@CASES
def test_disconnect_stops_the_local_generation(start_server: StartServer, stream: bool, during: bool) -> None:
    gate = threading.Event()
    model = SlowModel(["word "] * 400, word_delay=0.02, gate=None if during else gate)
    server = start_server(model, api_keys=[API_KEY], limits=ServerLimits(max_concurrent=1, max_queued=0))
    closed_at = leave(server, stream, model.started, during=during)
    assert model.stopped.wait(5), "the generation went on after the client left"
    assert model.stopped_at is not None and model.stopped_at - closed_at < 1.0
    assert not model.finished.is_set()
    model.words, model.word_delay = ["ok"], 0.0
    assert_slot_freed(server, closed_at, gate)
