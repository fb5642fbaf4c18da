"""``complete`` without ``on_delta``: one non-streamed upstream call (``stream: false``), read as a
JSON completion, with the same retries, field fallback, size caps, HTML detection and redaction as
the streamed path; against httpx.MockTransport."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from agent import APIStatusError, UpstreamBadRequestError, UpstreamTooLargeError
from agent.models import OpenAICompatibleBackend, ResponseLimits
from graphs.model import Message, ModelRequest, ModelResult, TextDelta, ToolCall, Usage
from tests.agent.models.test_openai_backend import HELLO, KEY, REQUEST, Mock, Sleeps, error_response, sse_response


def completion(content: str | None = "Hello", *, finish: str = "stop", **message: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1", "object": "chat.completion", "model": "m-1",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content, **message},
                     "finish_reason": finish, "logprobs": None}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
    }


def json_response(body: Any) -> httpx.Response:
    return httpx.Response(200, json=body)


async def test_complete_without_on_delta_asks_for_one_json_completion() -> None:
    mock = Mock(json_response(completion()))
    result = await mock.backend().complete(REQUEST)
    assert result == ModelResult("Hello", "stop", (), Usage(9, 2))
    (body,) = mock.bodies()
    assert body["stream"] is False
    assert "stream_options" not in body  # OpenAI refuses it on a non-streamed call
    (request,) = mock.requests
    assert request.headers["content-type"] == "application/json"
    assert request.headers["authorization"] == f"Bearer {KEY}"


async def test_complete_with_on_delta_streams_and_shows_each_piece() -> None:
    mock = Mock(sse_response(*HELLO))
    seen: list[TextDelta] = []
    result = await mock.backend().complete(REQUEST, on_delta=seen.append)
    assert seen == [TextDelta("Hel"), TextDelta("lo")] and result.content == "Hello"
    (body,) = mock.bodies()
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


async def test_tool_calls_and_logprobs_of_a_json_completion() -> None:
    calls = [{"id": "call_a", "type": "function", "function": {"name": "search", "arguments": '{"q": "x"}'}},
             {"id": "call_b", "type": "function", "function": {"name": "fetch", "arguments": "{}"}}]
    body = completion(None, finish="tool_calls", tool_calls=calls)
    body["choices"][0]["logprobs"] = {"content": [{"token": "a", "logprob": -0.5}]}
    result = await Mock(json_response(body)).backend().complete(REQUEST)
    assert result.tool_calls == (ToolCall("call_a", "search", '{"q": "x"}'), ToolCall("call_b", "fetch", "{}"))
    assert (result.content, result.finish_reason) == ("", "tool_calls")
    assert result.logprobs == ({"token": "a", "logprob": -0.5},)


async def test_an_upstream_that_streams_anyway_is_understood() -> None:
    mock = Mock(sse_response(*HELLO))
    assert (await mock.backend().complete(REQUEST)).content == "Hello"
    assert mock.bodies()[0]["stream"] is False


async def test_retried_like_a_streamed_call() -> None:
    sleeps = Sleeps()
    mock = Mock(error_response(503), error_response(429, **{"retry-after": "2"}), json_response(completion()))
    assert (await mock.backend(sleeps).complete(REQUEST)).content == "Hello"
    assert len(sleeps) == 2 and sleeps[1] == 2.0
    assert [body["stream"] for body in mock.bodies()] == [False, False, False]


async def test_the_budget_field_is_swapped_once_when_refused() -> None:
    refusal = {"error": {"message": "Unsupported parameter: 'max_tokens'", "param": "max_tokens"}}
    mock = Mock(error_response(400, refusal), json_response(completion()))
    assert (await mock.backend().complete(REQUEST)).content == "Hello"
    first, second = mock.bodies()
    assert "max_tokens" in first and "max_completion_tokens" not in first
    assert second["max_completion_tokens"] == first["max_tokens"] and "max_tokens" not in second
    assert second["stream"] is False


async def test_a_refusal_that_names_another_field_is_raised() -> None:
    refusal = {"error": {"message": "bad temperature", "param": "temperature"}}
    with pytest.raises(UpstreamBadRequestError) as caught:
        await Mock(error_response(400, refusal)).backend().complete(REQUEST)
    assert caught.value.param == "temperature"


async def test_a_completion_past_the_cap_is_refused_and_not_retried() -> None:
    mock = Mock(*[json_response(completion("x" * 10_000))] * 3)
    limits = ResponseLimits(max_response_bytes=4096)
    with pytest.raises(UpstreamTooLargeError) as caught:
        await mock.backend(limits=limits).complete(REQUEST)
    assert (caught.value.limit_name, caught.value.limit) == ("max_response_bytes", 4096)
    assert len(mock.requests) == 1


async def test_a_200_html_page_is_reported_as_such() -> None:
    page = b"<html><head><title>Sign in to the Wi-Fi</title></head><body>...</body></html>"
    mock = Mock(httpx.Response(200, content=page, headers={"content-type": "text/html"}))
    with pytest.raises(APIStatusError) as caught:
        await mock.backend().complete(REQUEST)
    assert "HTML page, not JSON/SSE: Sign in to the Wi-Fi" in str(caught.value)
    assert len(mock.requests) == 1


async def test_malformed_json_is_an_error_naming_it() -> None:
    mock = Mock(httpx.Response(200, content=b'{"choices": [', headers={"content-type": "application/json"}))
    with pytest.raises(APIStatusError, match="malformed JSON"):
        await mock.backend(max_retries=0).complete(REQUEST)


async def test_an_error_inside_a_200_body_keeps_its_status() -> None:
    body = {"error": {"message": "model overloaded", "code": 503}}
    with pytest.raises(APIStatusError) as caught:
        await Mock(json_response(body)).backend(max_retries=0).complete(REQUEST)
    assert caught.value.status_code == 503 and "model overloaded" in str(caught.value)


async def test_an_echoed_key_and_url_secret_are_redacted() -> None:
    said = f"Incorrect API key provided: {KEY} for https://upstream.test/v1?token=s3cr3t"

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": {"message": said}})

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    backend = OpenAICompatibleBackend(KEY, "https://upstream.test/v1?token=s3cr3t", http_client=client)
    with pytest.raises(APIStatusError) as caught:
        await backend.complete(REQUEST)
    text = str(caught.value) + json.dumps(caught.value.body)
    assert KEY not in text and "s3cr3t" not in text and "[redacted]" in text


async def test_values_json_refuses_but_python_json_takes_are_still_read() -> None:
    raw = b'{"choices": [{"index": 0, "message": {"content": "big"}, "finish_reason": "stop"}],' \
          b' "usage": {"prompt_tokens": 123456789012345678901234567890, "completion_tokens": NaN}}'
    mock = Mock(httpx.Response(200, content=raw, headers={"content-type": "application/json"}))
    result = await mock.backend().complete(REQUEST)
    assert result.content == "big" and result.usage == Usage(123456789012345678901234567890, 0)


async def test_a_request_body_json_cannot_encode_fast_still_goes_out() -> None:
    huge = 2**70  # past orjson's 64-bit integers
    mock = Mock(json_response(completion()))
    request = ModelRequest("m-1", (Message("user", "hi"),), extra=(("metadata", {"n": huge}),))
    await mock.backend().complete(request)
    assert mock.bodies()[0]["metadata"] == {"n": huge}
