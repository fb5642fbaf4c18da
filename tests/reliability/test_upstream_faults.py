"""A fault-injecting upstream behind a real server (issue 10 rows 6, 10, 15 and the upstream faults
that already held): each fault is one clear error (status, or exactly one SSE error event), retried
exactly as the policy says, with no credential of the upstream URL in any answer or log line."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
import requests
from starlette.types import Receive, Scope, Send

from agent.models import OpenAICompatibleBackend, ResponseLimits
from tests.agent.server.server_harness import API_KEY, MODEL, ServerThread
from tests.reliability.conftest import StartServer

HEADERS = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
PAGE = b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
#: The upstream's retries after the first attempt, in these tests.
RETRIES = 2


def sse(content: str | None = None, finish: str | None = None) -> bytes:
    delta = {"content": content} if content is not None else {}
    chunk = {"id": "c", "object": "chat.completion.chunk", "model": MODEL,
             "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


OK_STREAM = [sse("Hello"), sse(" world"), sse(finish="stop"), b"data: [DONE]\n\n"]
Fault = Callable[[Send, Receive], Any]


async def start(send: Send, status: int = 200, content_type: bytes = b"text/event-stream") -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", content_type)]})


async def ok(send: Send, receive: Receive) -> None:
    await start(send)
    for piece in OK_STREAM:
        await send({"type": "http.response.body", "body": piece, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


def status(code: int, body: bytes = b'{"error": {"message": "boom"}}',
           content_type: bytes = b"application/json") -> Fault:
    async def fault(send: Send, receive: Receive) -> None:
        await start(send, code, content_type)
        await send({"type": "http.response.body", "body": body})

    return fault


async def reset_mid_stream(send: Send, receive: Receive) -> None:
    await start(send)
    await send({"type": "http.response.body", "body": OK_STREAM[0], "more_body": True})
    raise ConnectionResetError("upstream went away")  # uvicorn aborts the connection mid-body


async def hang(send: Send, receive: Receive) -> None:
    await asyncio.sleep(30)


async def endless_line(send: Send, receive: Receive) -> None:
    await start(send)
    await send({"type": "http.response.body", "body": b'data: {"choices": [{"delta": {"content": "', "more_body": True})
    block = b"x" * 65536
    for _ in range(200 * 16):  # 200 MiB, if nobody stops reading
        await send({"type": "http.response.body", "body": block, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


class FaultyUpstream:
    """An OpenAI-compatible upstream (ASGI) answering its n-th chat call with ``script[n]`` (the
    last entry repeats); ``calls`` counts them."""

    def __init__(self, *script: Fault) -> None:
        self.script = list(script)
        self.calls = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"].endswith("/models"):
            await start(send, 200, b"application/json")
            await send({"type": "http.response.body", "body": json.dumps({"data": [{"id": MODEL}]}).encode()})
            return
        more = True
        while more:
            more = (await receive()).get("more_body", False)
        fault = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        await fault(send, receive)


async def no_sleep(_: float) -> None:
    return None


def behind(start_server: StartServer, fake: FaultyUpstream, *, userinfo: str = "", timeout: float = 5.0,
           limits: ResponseLimits | None = None) -> ServerThread:
    upstream = start_server(app=fake)
    base = f"http://{userinfo}{upstream.host}:{upstream.port}/v1"
    backend = OpenAICompatibleBackend("sk-upstream", base, max_retries=RETRIES, timeout=timeout, sleep=no_sleep,
                                      limits=limits)
    return start_server(backend, api_keys=[API_KEY])


def ask(server: ServerThread, *, stream: bool) -> requests.Response:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    return requests.post(f"{server.url}/v1/chat/completions", json=body, headers=HEADERS, timeout=30)


def streamed_text(response: requests.Response) -> str:
    chunks = [json.loads(line[6:]) for line in response.text.splitlines()
              if line.startswith("data: {") and not line.startswith('data: {"error"')]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))


def error_events(response: requests.Response) -> list[dict[str, Any]]:
    events = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    return [json.loads(e)["error"] for e in events if e.startswith('{"error"')]


@pytest.mark.parametrize("stream", [False, True])
def test_5xx_then_success_is_retried_to_success(start_server: StartServer, stream: bool) -> None:
    fake = FaultyUpstream(status(503), status(502, PAGE, b"text/html"), ok)
    response = ask(behind(start_server, fake), stream=stream)
    assert response.status_code == 200
    text = streamed_text(response) if stream else response.json()["choices"][0]["message"]["content"]
    assert text == "Hello world"
    assert fake.calls == 3


@pytest.mark.parametrize("stream", [False, True])
def test_5xx_html_pages_follow_the_retry_policy_then_say_what_they_were(start_server: StartServer,
                                                                         stream: bool) -> None:
    fake = FaultyUpstream(status(502, PAGE, b"text/html"))
    response = ask(behind(start_server, fake), stream=stream)
    assert response.status_code == 502  # failed before any token: a real status even when streaming
    assert "HTML page, not JSON/SSE: 502 Bad Gateway" in response.json()["error"]["message"]
    assert fake.calls == 1 + RETRIES


@pytest.mark.parametrize("stream", [False, True])
def test_a_200_html_page_is_reported_once_and_not_retried(start_server: StartServer, stream: bool) -> None:
    fake = FaultyUpstream(status(200, PAGE, b"text/html"))
    response = ask(behind(start_server, fake), stream=stream)
    assert response.status_code == 502
    message = response.json()["error"]["message"]
    assert "HTML page, not JSON/SSE: 502 Bad Gateway" in message and "closed the stream" not in message
    assert fake.calls == 1


def test_a_reset_after_a_token_is_exactly_one_error_event_and_no_retry(start_server: StartServer) -> None:
    fake = FaultyUpstream(reset_mid_stream)
    response = ask(behind(start_server, fake), stream=True)
    assert response.status_code == 200  # the head went out with the first token
    assert "Hello" in response.text
    assert len(error_events(response)) == 1
    assert "[DONE]" not in response.text
    assert fake.calls == 1  # never retried once a token was produced


def test_a_timeout_is_retried_then_a_504(start_server: StartServer) -> None:
    fake = FaultyUpstream(hang)
    response = ask(behind(start_server, fake, timeout=0.3), stream=False)
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "upstream_timeout"
    assert fake.calls == 1 + RETRIES


@pytest.mark.parametrize("stream", [False, True])
def test_an_endless_sse_line_is_a_502_naming_the_cap(start_server: StartServer, stream: bool) -> None:
    limits = ResponseLimits(max_sse_line_chars=256 * 1024)
    response = ask(behind(start_server, FaultyUpstream(endless_line), limits=limits), stream=stream)
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "upstream_too_large" and "max_sse_line_chars" in error["message"]


@pytest.mark.parametrize("stream", [False, True])
def test_credentials_in_the_upstream_url_never_reach_a_client_or_the_log(
    start_server: StartServer, caplog: pytest.LogCaptureFixture, stream: bool
) -> None:
    caplog.set_level(logging.DEBUG)
    fake = FaultyUpstream(status(500, b'{"error": {"message": "no"}}'))
    server = behind(start_server, fake, userinfo="admin:pw@")
    texts = [ask(server, stream=stream).text]
    # And an upstream that cannot be reached at all: its URL is in the message, its password is not.
    upstream = start_server(app=fake)
    upstream.__exit__()
    backend = OpenAICompatibleBackend(None, f"http://admin:pw@127.0.0.1:{upstream.port}/v1", max_retries=0)
    dead = start_server(backend, api_keys=[API_KEY])
    unreachable = ask(dead, stream=stream)
    assert unreachable.status_code == 502
    assert "[redacted]@127.0.0.1" in unreachable.json()["error"]["message"]
    for text in [*texts, unreachable.text, caplog.text]:
        assert "admin:pw" not in text and "pw@" not in text
