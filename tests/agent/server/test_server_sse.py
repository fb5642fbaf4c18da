"""SSE framing that naive clients can read: complete events in every write (never a piece of one;
events ready together share a write), keep-alives while the model is slow to start, exactly one error
event on failure, ``data: [DONE]`` at the end."""

from __future__ import annotations

import json
import re
import socket
import time
from typing import Any

import openai
import pytest
import requests

from agent import ModelError
from agent.server._limits import ServerLimits
from tests.agent.server.server_harness import API_KEY, MODEL, ServerThread, SlowModel, StartServer, docs_requests_loop

EVENT = re.compile(rb"\A(data: \{[^\n]*\}\n\n|data: \[DONE\]\n\n|: keep-alive\n\n)\Z")
#: One write: one or more whole events.
WRITE = re.compile(rb"\A(?:data: \{[^\n]*\}\n\n|data: \[DONE\]\n\n|: keep-alive\n\n)+\Z")


def http_chunks(server: ServerThread, body: dict[str, Any]) -> tuple[bytes, list[tuple[float, bytes]]]:
    """POST ``body`` over a raw socket; return the response head and each HTTP/1.1 chunk of the body
    (one per write the server made) with the time it arrived."""
    payload = json.dumps(body).encode()
    request = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
               f"Authorization: Bearer {API_KEY}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n").encode() + payload
    data, arrivals = b"", []
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(request)
        while piece := sock.recv(65536):
            data += piece
            arrivals.append((time.monotonic(), len(data)))
    head, _, rest = data.partition(b"\r\n\r\n")
    offset, chunks = len(head) + 4, []
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        offset += len(size_line) + 2
        arrived = next(t for t, total in arrivals if total >= offset + size)
        chunks.append((arrived, rest[:size]))
        rest, offset = rest[size + 2:], offset + size + 2
    return head, chunks


def events_of(chunks: list[tuple[float, bytes]]) -> list[bytes]:
    """The events of the writes, in order; every write must hold whole events only."""
    assert all(WRITE.match(chunk) for _, chunk in chunks), chunks
    return [event + b"\n\n" for _, chunk in chunks for event in chunk.split(b"\n\n")[:-1]]


def test_every_write_is_complete_events_with_a_choices_list(docs_server: ServerThread) -> None:
    head, chunks = http_chunks(docs_server, {"model": MODEL, "stream": True, "web_search": "force",
                                             "messages": [{"role": "user", "content": "Who directed 2001?"}]})
    assert head.startswith(b"HTTP/1.1 200")
    assert b"content-type: text/event-stream" in head.lower()
    events = events_of(chunks)
    assert all(EVENT.match(event) for event in events), events
    assert events[-1] == b"data: [DONE]\n\n"
    bodies = [json.loads(event[6:]) for event in events[:-1]]
    assert all(isinstance(b["choices"], list) and b["choices"] for b in bodies)
    assert bodies[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert any("step" in b for b in bodies)
    assert bodies[-1]["choices"][0]["finish_reason"] == "stop"


def test_keepalive_comments_while_the_model_is_slow_to_start(start_server: StartServer,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    model = SlowModel(["Stanley ", "Kubrick."], start_delay=1.0)
    limits = ServerLimits(keepalive=0.2, stream_hold=0.1)
    server = start_server(model, api_keys=[API_KEY], limits=limits)
    began = time.monotonic()
    head, chunks = http_chunks(server, {"model": MODEL, "stream": True,
                                        "messages": [{"role": "user", "content": "hi"}]})
    assert head.startswith(b"HTTP/1.1 200")
    events = events_of(chunks)
    first_token = next(i for i, e in enumerate(events) if b'"content":"Stanley ' in e)
    assert events[0].startswith(b"data: ")  # the role chunk went out with the headers...
    assert chunks[0][0] - began < 0.8  # ...long before the first token
    assert events[1:first_token].count(b": keep-alive\n\n") >= 3
    assert events[-1] == b"data: [DONE]\n\n"
    # The docs' naive `requests` loop reads through the comments.
    namespace: dict[str, Any] = {}
    exec(docs_requests_loop(server.url), namespace)
    namespace["stream_chat"](API_KEY, [{"role": "user", "content": "hi"}])
    assert capsys.readouterr().out == "Stanley Kubrick.\n"


def test_a_failure_mid_stream_is_exactly_one_error_event_then_the_end(start_server: StartServer) -> None:
    model = SlowModel(["Stanley ", "Kubrick."], fail_after=1, error=ModelError("the local model crashed"))
    server = start_server(model, api_keys=[API_KEY], limits=ServerLimits(stream_hold=0.0))
    head, chunks = http_chunks(server, {"model": MODEL, "stream": True,
                                        "messages": [{"role": "user", "content": "hi"}]})
    assert head.startswith(b"HTTP/1.1 200")
    events = events_of(chunks)
    assert all(EVENT.match(event) for event in events)
    errors = [e for e in events if e.startswith(b'data: {"error"')]
    assert errors == [events[-1]]
    assert json.loads(events[-1][6:]) == {"error": {"message": "the local model crashed", "type": "api_error",
                                                    "param": None, "code": "model_error"}}
    assert b"data: [DONE]\n\n" not in events
    assert any(b'"content":"Stanley "' in e for e in events)


def test_openai_package_raises_on_the_error_event(start_server: StartServer) -> None:
    model = SlowModel(["Stanley ", "Kubrick."], fail_after=1)
    server = start_server(model, api_keys=[API_KEY], limits=ServerLimits(stream_hold=0.0))
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=API_KEY, max_retries=0)
    stream = client.chat.completions.create(model=MODEL, stream=True,
                                            messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.APIError, match="the local model crashed"):
        for _ in stream:
            pass


def test_a_failure_before_the_first_token_keeps_its_status(start_server: StartServer) -> None:
    model = SlowModel(fail_after=0)
    server = start_server(model, api_keys=[API_KEY])
    response = requests.post(f"{server.url}/v1/chat/completions", timeout=30,
                             headers={"Authorization": f"Bearer {API_KEY}"},
                             json={"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == "model_error"
