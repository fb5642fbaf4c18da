"""Issue 10 rows 6, 10 and 15 at the backend: credentials in the base URL never reach an error,
upstream answers are size-capped (without buffering past the cap), and an HTML page where JSON/SSE
was expected is reported as one, and not retried as a broken stream."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from agent import APIConnectionError, APIStatusError, InternalServerError, UpstreamTooLargeError
from agent.models import OpenAICompatibleBackend, ResponseLimits
from graphs.model import Message, ModelRequest

REQUEST = ModelRequest(model="m-1", messages=(Message("user", "hi"),))
SECRETS = ("admin:pw", "pw@", "s3cr3t-token")
MiB = 1024 * 1024


async def no_sleep(_: float) -> None:
    return None


def backend(handler: Callable[[httpx.Request], Any], *, base_url: str = "http://upstream.test/v1",
            limits: ResponseLimits | None = None, max_retries: int = 2) -> OpenAICompatibleBackend:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return OpenAICompatibleBackend("sk-key", base_url, http_client=client, max_retries=max_retries,
                                   sleep=no_sleep, limits=limits)


def closed_port() -> int:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def everything_said(error: BaseException) -> str:
    """The message, the attributes and the causes' messages of an error, as one text."""
    parts = [str(error), repr(vars(error))]
    cause = error.__cause__ or error.__context__
    while cause is not None:
        parts.append(str(cause))
        cause = cause.__cause__ or cause.__context__
    return "\n".join(parts)


# --- Row 6: credentials in URLs ----------------------------------------------------------------------


async def test_userinfo_of_an_unreachable_base_url_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    model = OpenAICompatibleBackend(None, f"http://admin:pw@127.0.0.1:{closed_port()}/v1", max_retries=0)
    try:
        with pytest.raises(APIConnectionError) as caught:
            await model.complete(REQUEST)
    finally:
        await model.aclose()
    said = everything_said(caught.value) + caplog.text
    assert "could not reach upstream http://[redacted]@127.0.0.1:" in str(caught.value)
    assert not any(secret in said for secret in SECRETS)


async def test_an_upstream_echoing_the_url_and_its_query_secret_is_redacted() -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, json={"error": {"message": f"bad gateway for {request.url}"}})

    model = backend(echo, base_url="http://admin:pw@upstream.test/v1?api_key=s3cr3t-token", max_retries=0)
    with pytest.raises(InternalServerError) as caught:
        await model.complete(REQUEST)
    assert "bad gateway for" in str(caught.value)
    assert not any(secret in everything_said(caught.value) for secret in SECRETS)


async def test_userinfo_goes_out_as_basic_auth_and_no_log_line_has_it(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"choices": [{"index": 0, "message": {"content": "hi"}}]})

    model = backend(handler, base_url="http://admin:p%40w@upstream.test/v1?tenant=t1")
    assert (await model.complete(REQUEST)).content == "hi"
    assert str(seen[0].url) == "http://upstream.test/v1/chat/completions?tenant=t1"
    assert seen[0].headers["authorization"] == httpx.BasicAuth("admin", "p@w")._auth_header
    assert "admin" not in caplog.text and "p%40w" not in caplog.text


def test_a_bad_base_url_is_refused_without_quoting_its_password() -> None:
    with pytest.raises(Exception) as caught:
        OpenAICompatibleBackend(None, "ftp://admin:pw@host/v1")
    assert "admin:pw" not in str(caught.value) and "ftp://[redacted]@host/v1" in str(caught.value)


# --- Row 10: size caps -------------------------------------------------------------------------------


class Body:
    """A lazily generated body of ``total`` bytes (``head`` first, then ``fill``), counting what was pulled."""

    def __init__(self, head: bytes, fill: bytes, total: int, piece: int = 64 * 1024) -> None:
        self.head, self.fill, self.total, self.piece = head, fill, total, piece
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.head
        self.pulled = len(self.head)
        block = self.fill * (self.piece // len(self.fill))
        while self.pulled < self.total:
            yield block
            self.pulled += len(block)


def serving(body: Body, content_type: str, calls: list[int]) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(200, headers={"content-type": content_type}, content=body)

    return handler


SMALL = ResponseLimits(max_response_bytes=256 * 1024, max_stream_bytes=1 * MiB,
                       max_sse_line_chars=128 * 1024, max_sse_event_chars=128 * 1024)


@pytest.mark.parametrize(("head", "fill", "content_type", "limit_name"), [
    # a 200 MiB SSE line that never ends
    (b'data: {"choices": [{"index": 0, "delta": {"content": "', b"x", "text/event-stream", "max_sse_line_chars"),
    # one event of many short data lines
    (b"", b"data: xxxxxxx\n", "text/event-stream", "max_sse_event_chars"),
    # a 200 MiB stream of small valid chunks
    (b"", b'data: {"choices":[{"index":0,"delta":{"content":"x"}}]}\n\n', "text/event-stream", "max_stream_bytes"),
    # a 200 MiB non-streamed JSON completion
    (b'{"choices": [{"index": 0, "message": {"content": "', b"x", "application/json", "max_response_bytes"),
])
async def test_an_oversized_answer_is_refused_at_its_cap_without_reading_on(
    head: bytes, fill: bytes, content_type: str, limit_name: str
) -> None:
    body, calls = Body(head, fill, 200 * MiB), []
    with pytest.raises(UpstreamTooLargeError) as caught:
        await backend(serving(body, content_type, calls), limits=SMALL).complete(REQUEST)
    limit = getattr(SMALL, limit_name)
    assert (caught.value.limit_name, caught.value.limit) == (limit_name, limit)
    assert limit_name in str(caught.value) and caught.value.code == "upstream_too_large"
    assert isinstance(caught.value, APIStatusError)
    assert body.pulled <= limit + 2 * body.piece  # memory bounded: nothing read far past the cap
    assert len(calls) == 1  # not retried: it would be as large again


async def test_the_default_caps_are_generous_for_a_real_completion() -> None:
    text = "word " * 50_000  # ~250 KB of text in 50k chunks: ~5 MB of SSE
    chunks = b"".join(
        b"data: " + json.dumps({"choices": [{"index": 0, "delta": {"content": "word "}}]}).encode() + b"\n\n"
        for _ in range(50_000)
    ) + b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=chunks)

    result = await backend(handler).complete(REQUEST)
    assert result.content == text


async def test_a_huge_error_body_is_read_only_up_to_its_cap() -> None:
    body = Body(b'{"error": {"message": "', b"y", 200 * MiB)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, headers={"content-type": "application/json"}, content=body)

    with pytest.raises(APIStatusError) as caught:
        await backend(handler, limits=ResponseLimits(max_error_body_bytes=4096)).complete(REQUEST)
    assert caught.value.status_code == 400
    assert body.pulled < 1 * MiB


def test_limits_must_be_positive() -> None:
    with pytest.raises(Exception, match="max_stream_bytes"):
        ResponseLimits(max_stream_bytes=0)


# --- Row 15: HTML pages ------------------------------------------------------------------------------

PAGE = b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><h1>nginx</h1></body></html>"


@pytest.mark.parametrize("content_type", ["text/html; charset=utf-8", "application/octet-stream", ""])
async def test_a_200_html_page_is_reported_as_such_and_not_retried(content_type: str) -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(200, headers={"content-type": content_type}, content=PAGE)

    with pytest.raises(APIStatusError) as caught:
        await backend(handler).complete(REQUEST)
    assert "the upstream answered an HTML page, not JSON/SSE: 502 Bad Gateway" in str(caught.value)
    assert "closed the stream" not in str(caught.value)
    assert len(calls) == 1


async def test_a_5xx_html_page_follows_the_retry_policy_and_says_what_it_was() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(502, headers={"content-type": "text/html"}, content=PAGE)

    with pytest.raises(InternalServerError) as caught:
        await backend(handler, max_retries=2).complete(REQUEST)
    assert len(calls) == 3
    assert "HTML page, not JSON/SSE: 502 Bad Gateway" in str(caught.value)
    assert caught.value.body == PAGE.decode()


async def test_an_html_models_list_is_reported_as_such() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/html"}, content=PAGE)

    with pytest.raises(APIStatusError, match="HTML page, not JSON/SSE: 502 Bad Gateway"):
        await backend(handler).list_models()
