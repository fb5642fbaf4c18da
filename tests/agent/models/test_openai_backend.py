"""The OpenAI-compatible HTTP backend against real loopback upstreams (uvicorn, raw asyncio sockets)
and, for fast request/response-shape checks, httpx.MockTransport."""

from __future__ import annotations

import asyncio
import email.utils
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn

import agent as studiolm
from agent._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    RateLimitError,
    UpstreamBadRequestError,
    UpstreamNotFoundError,
)
from agent.models._openai import (
    DEFAULT_TIMEOUT,
    INITIAL_RETRY_DELAY,
    RETRY_JITTER,
    OpenAICompatibleBackend,
)
from graphs.model import (
    Capabilities,
    Message,
    ModelEvent,
    ModelRequest,
    ModelResult,
    SamplingParams,
    TextDelta,
    ToolCall,
    ToolSpec,
    Usage,
)

KEY = "sk-test-0123456789abcdef"
REQUEST = ModelRequest(model="m-1", messages=(Message("user", "Say hello"),))

# --- Wire helpers -----------------------------------------------------------------------------------


def chunk(
    content: str | None = None,
    *,
    finish: str | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
    role: str | None = None,
) -> dict[str, Any]:
    delta: dict[str, Any] = {}
    if role is not None:
        delta["role"] = role
    if content is not None:
        delta["content"] = content
    if tool_calls is not None:
        delta["tool_calls"] = tool_calls
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "m-1", "choices": [choice]}


def usage_chunk(prompt: int, completion: int) -> dict[str, Any]:
    usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [], "usage": usage}


def sse_bytes(*events: dict[str, Any] | str, done: bool = True) -> bytes:
    lines = [f"data: {e if isinstance(e, str) else json.dumps(e, ensure_ascii=False)}\n\n" for e in events]
    return ("".join(lines) + ("data: [DONE]\n\n" if done else "")).encode()


HELLO = (chunk(role="assistant", content=""), chunk("Hel"), chunk("lo"), chunk(finish="stop"))


async def collect(stream: AsyncIterator[ModelEvent]) -> list[ModelEvent]:
    return [event async for event in stream]


class Sleeps(list[float]):
    """The injected sleep: records each backoff delay instead of waiting."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


# --- A real HTTP upstream: an ASGI app on uvicorn, in its own thread and event loop ------------------


class Exchange:
    """One request/response on the fake upstream, at ASGI level so a test controls every write."""

    def __init__(self, receive: Callable[[], Awaitable[dict[str, Any]]], send: Any) -> None:
        self._receive = receive
        self._send = send
        self.disconnected = False  # the client went away while the handler waited

    async def start(self, status: int = 200, headers: Sequence[tuple[str, str]] = ()) -> None:
        raw = [(k.lower().encode(), v.encode()) for k, v in headers]
        await self._send({"type": "http.response.start", "status": status, "headers": raw})

    async def write(self, data: bytes, *, more: bool = True) -> None:
        await self._send({"type": "http.response.body", "body": data, "more_body": more})

    async def json(self, status: int, body: Any, headers: Sequence[tuple[str, str]] = ()) -> None:
        await self.start(status, [("content-type", "application/json"), *headers])
        await self.write(json.dumps(body).encode(), more=False)

    async def wait_disconnect(self) -> bool:
        try:
            async with asyncio.timeout(10):
                message = await self._receive()
        except TimeoutError:
            return False
        return bool(message["type"] == "http.disconnect")


Handler = Callable[[Exchange], Awaitable[None]]
SSE_HEADERS = [("content-type", "text/event-stream")]


def sse(*events: dict[str, Any] | str, done: bool = True, pause: float = 0.0) -> Handler:
    """Each event in its own write (so its own TCP segment when ``pause`` > 0)."""

    async def handler(ex: Exchange) -> None:
        await ex.start(200, SSE_HEADERS)
        for event in events:
            await ex.write(sse_bytes(event, done=False))
            await asyncio.sleep(pause)
        await ex.write(b"data: [DONE]\n\n" if done else b"", more=False)

    return handler


def reply_json(status: int, body: Any, headers: Sequence[tuple[str, str]] = ()) -> Handler:
    async def handler(ex: Exchange) -> None:
        await ex.json(status, body, headers)

    return handler


def pieces(*data: bytes, then: str = "end", pause: float = 0.005) -> Handler:
    """Raw body pieces, then ``end`` the body, ``abort`` the connection mid-body, or ``hang``."""

    async def handler(ex: Exchange) -> None:
        await ex.start(200, SSE_HEADERS)
        for piece in data:
            await ex.write(piece)
            await asyncio.sleep(pause)
        if then == "end":
            await ex.write(b"", more=False)
        elif then == "abort":
            raise ConnectionAbortedError("fake upstream dies mid-stream")  # uvicorn drops the socket
        else:
            ex.disconnected = await ex.wait_disconnect()

    return handler


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class Upstream:
    """A scripted OpenAI-compatible server: each chat request is answered by the next handler."""

    def __init__(self) -> None:
        self.base_url = ""
        self.reset()

    def reset(self) -> None:
        self.replies: list[Handler] = []
        self.requests: list[Seen] = []
        self.models = ["m-1", "m-2"]
        self.disconnects = threading.Event()

    def script(self, *handlers: Handler) -> None:
        self.replies.extend(handlers)

    @property
    def chat_requests(self) -> list[Seen]:
        return [seen for seen in self.requests if seen.path.endswith("/chat/completions")]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.requests.append(
            Seen(scope["method"], scope["path"], headers, json.loads(body) if body else None)
        )
        ex = Exchange(receive, send)
        if scope["path"] == "/v1/models":
            await ex.json(
                200, {"object": "list", "data": [{"id": m, "object": "model"} for m in self.models]}
            )
        elif self.replies:
            await self.replies.pop(0)(ex)
            if ex.disconnected:
                self.disconnects.set()
        else:
            await ex.json(500, {"error": {"message": "unscripted request"}})


@pytest.fixture(scope="module")
def upstream_server() -> Iterator[Upstream]:
    """One uvicorn server per module (it takes ~0.2 s to stop); ``upstream`` resets it per test."""
    fake = Upstream()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        fake, http="h11", lifespan="off", log_level="critical", access_log=False, timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    fake.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    yield fake
    server.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture
def upstream(upstream_server: Upstream) -> Upstream:
    upstream_server.reset()
    return upstream_server


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
async def make_backend(
    upstream: Upstream, sleeps: Sleeps
) -> AsyncIterator[Callable[..., OpenAICompatibleBackend]]:
    made: list[OpenAICompatibleBackend] = []

    def make(api_key: str | None = KEY, **kwargs: Any) -> OpenAICompatibleBackend:
        kwargs.setdefault("sleep", sleeps)
        backend = OpenAICompatibleBackend(api_key, kwargs.pop("base_url", upstream.base_url), **kwargs)
        made.append(backend)
        return backend

    yield make
    for backend in made:
        await backend.aclose()


# --- Raw asyncio server, for byte-level control of the connection ------------------------------------


@dataclass
class RawServer:
    base_url: str
    connections: list[int]


@pytest.fixture
async def raw_server() -> AsyncIterator[Callable[..., Awaitable[RawServer]]]:
    servers: list[asyncio.Server] = []

    async def start(respond: Callable[[asyncio.StreamWriter], Awaitable[None]]) -> RawServer:
        connections: list[int] = []

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            connections.append(1)
            await reader.readuntil(b"\r\n\r\n")  # the request head; the body is not needed
            try:
                await respond(writer)
                await reader.read()  # until the client hangs up
            finally:
                writer.close()

        server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return RawServer(f"http://127.0.0.1:{port}/v1", connections)

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


# === Streaming ========================================================================================


async def test_plain_streaming_with_usage(upstream: Upstream, make_backend: Any) -> None:
    upstream.script(sse(*HELLO, usage_chunk(9, 2)))
    events = await collect(make_backend().stream(REQUEST))
    assert events == [TextDelta("Hel"), TextDelta("lo"), ModelResult("Hello", "stop", (), Usage(9, 2))]


async def test_request_body_and_authorization_header(upstream: Upstream, make_backend: Any) -> None:
    upstream.script(sse(*HELLO))
    request = ModelRequest(
        model="m-1",
        messages=(Message("system", "Be brief."), Message("user", "Hi", name="ann")),
        sampling=SamplingParams(temperature=0.2, max_tokens=50, top_p=0.9, frequency_penalty=0.5),
    )
    await collect(make_backend().stream(request))
    (seen,) = upstream.chat_requests
    assert seen.method == "POST"
    assert seen.headers["authorization"] == f"Bearer {KEY}"
    assert seen.body == {
        "model": "m-1",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi", "name": "ann"},
        ],
        "temperature": 0.2,
        "max_tokens": 50,
        "top_p": 0.9,
        "frequency_penalty": 0.5,
        "presence_penalty": 0.0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


async def test_no_authorization_header_without_a_key(upstream: Upstream, make_backend: Any) -> None:
    upstream.script(sse(*HELLO))
    await make_backend(api_key=None).complete(REQUEST)
    assert "authorization" not in upstream.chat_requests[0].headers


async def test_streamed_tool_call_deltas_are_assembled(upstream: Upstream, make_backend: Any) -> None:
    first = {"index": 0, "id": "call_a", "type": "function", "function": {"name": "search", "arguments": ""}}
    second = {
        "index": 1,
        "id": "call_b",
        "type": "function",
        "function": {"name": "fetch", "arguments": '{"u'},
    }
    upstream.script(
        sse(
            chunk(role="assistant"),
            chunk(tool_calls=[first]),
            chunk(tool_calls=[{"index": 0, "function": {"arguments": '{"q": "ky'}}]),
            chunk(tool_calls=[second]),
            chunk(tool_calls=[{"index": 0, "function": {"arguments": 'oto"}'}}]),
            chunk(tool_calls=[{"index": 1, "function": {"arguments": 'rl": "x"}'}}]),
            chunk(finish="tool_calls"),
            usage_chunk(20, 11),
            pause=0.002,
        )
    )
    tool = ToolSpec("search", "Search the web", {"type": "object"})
    result = await make_backend().complete(ModelRequest("m-1", REQUEST.messages, tools=(tool,)))
    assert result == ModelResult(
        "",
        "tool_calls",
        (ToolCall("call_a", "search", '{"q": "kyoto"}'), ToolCall("call_b", "fetch", '{"url": "x"}')),
        Usage(20, 11),
    )


async def test_sse_split_across_tcp_writes_inside_a_utf8_character(
    upstream: Upstream, make_backend: Any
) -> None:
    body = sse_bytes(chunk("日本"), chunk(" 🎉"), chunk(finish="stop"))
    cut_in_char = body.index("日".encode()) + 1
    cut_in_emoji = body.index("🎉".encode()) + 2
    parts = [body[:5], body[5:cut_in_char], body[cut_in_char:cut_in_emoji], body[cut_in_emoji:]]
    upstream.script(pieces(*parts))
    events = await collect(make_backend().stream(REQUEST))
    assert events == [TextDelta("日本"), TextDelta(" 🎉"), ModelResult("日本 🎉", "stop")]


async def test_non_sse_json_body_is_read_as_a_whole_completion(upstream: Upstream, make_backend: Any) -> None:
    completion = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Hi there",
                    "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
    }
    upstream.script(reply_json(200, completion))
    events = await collect(make_backend().stream(REQUEST))
    assert events == [
        TextDelta("Hi there"),
        ModelResult("Hi there", "tool_calls", (ToolCall("c1", "f", "{}"),), Usage(5, 3)),
    ]


async def test_models_listed_and_cached(upstream: Upstream, make_backend: Any) -> None:
    backend = make_backend()
    assert await backend.list_models() == ["m-1", "m-2"]
    assert await backend.list_models() == ["m-1", "m-2"]
    models_requests = [seen for seen in upstream.requests if seen.path == "/v1/models"]
    assert len(models_requests) == 1
    assert models_requests[0].method == "GET"
    assert models_requests[0].headers["authorization"] == f"Bearer {KEY}"


# === Retries ==========================================================================================


async def test_retries_429_with_retry_after_then_500_then_succeeds(
    upstream: Upstream, make_backend: Any, sleeps: Sleeps
) -> None:
    upstream.script(
        reply_json(429, {"error": {"message": "slow down"}}, [("retry-after", "2")]),
        reply_json(500, {"error": {"message": "boom"}}),
        sse(*HELLO),
    )
    result = await make_backend().complete(REQUEST)
    assert result.content == "Hello"
    assert len(upstream.chat_requests) == 3
    assert sleeps[0] == 2.0  # the server's hint, as given
    assert 1.0 * (1 - RETRY_JITTER) <= sleeps[1] <= 1.0  # second backoff step: 0.5 * 2**1, jittered


async def test_gives_up_after_max_retries_with_the_last_error(
    upstream: Upstream, make_backend: Any, sleeps: Sleeps
) -> None:
    upstream.script(*[reply_json(503, {"error": {"message": f"overloaded {n}"}}) for n in range(3)])
    with pytest.raises(InternalServerError) as caught:
        await make_backend().complete(REQUEST)
    assert caught.value.status_code == 503
    assert caught.value.attempts == 3
    assert caught.value.body == {"error": {"message": "overloaded 2"}}
    assert "overloaded 2" in caught.value.message
    assert len(upstream.chat_requests) == 3
    assert len(sleeps) == 2
    assert INITIAL_RETRY_DELAY * (1 - RETRY_JITTER) <= sleeps[0] <= INITIAL_RETRY_DELAY


async def test_rate_limit_gives_up_with_retry_after(upstream: Upstream, make_backend: Any) -> None:
    upstream.script(*[reply_json(429, {"error": {"message": "quota"}}, [("retry-after", "7")])] * 2)
    with pytest.raises(RateLimitError) as caught:
        await make_backend(max_retries=1).complete(REQUEST)
    assert (caught.value.attempts, caught.value.retry_after, caught.value.status_code) == (2, 7.0, 429)
    assert len(upstream.chat_requests) == 2


async def test_max_retries_zero_means_one_attempt(upstream: Upstream, make_backend: Any) -> None:
    upstream.script(reply_json(500, {"error": {"message": "boom"}}), sse(*HELLO))
    with pytest.raises(InternalServerError):
        await make_backend(max_retries=0).complete(REQUEST)
    assert len(upstream.chat_requests) == 1


async def test_bad_request_reports_the_upstream_param_and_is_not_retried(
    upstream: Upstream, make_backend: Any
) -> None:
    body = {
        "error": {
            "message": "temperature must be at most 2",
            "type": "invalid_request_error",
            "param": "temperature",
            "code": None,
        }
    }
    upstream.script(reply_json(400, body))
    with pytest.raises(UpstreamBadRequestError) as caught:
        await make_backend().complete(REQUEST)
    assert caught.value.param == "temperature"
    assert "temperature must be at most 2" in str(caught.value)
    assert "'temperature'" in str(caught.value)
    assert (caught.value.status_code, caught.value.attempts, caught.value.body) == (400, 1, body)
    assert len(upstream.chat_requests) == 1


async def test_unauthorized_never_leaks_the_key(upstream: Upstream, make_backend: Any) -> None:
    upstream.script(reply_json(401, {"error": {"message": f"Incorrect API key provided: {KEY}"}}))
    with pytest.raises(AuthenticationError) as caught:
        await make_backend().complete(REQUEST)
    assert caught.value.status_code == 401
    assert "Incorrect API key provided" in str(caught.value)
    assert KEY not in str(caught.value)
    assert KEY not in json.dumps(caught.value.body)
    assert len(upstream.chat_requests) == 1


async def test_not_found(upstream: Upstream, make_backend: Any) -> None:
    upstream.script(reply_json(404, {"error": {"message": "The model `m-9` does not exist"}}))
    with pytest.raises(UpstreamNotFoundError, match="m-9"):
        await make_backend().complete(REQUEST)


# === Failures mid-stream ==============================================================================


async def test_no_retry_after_first_token_when_the_stream_is_cut_mid_line(
    upstream: Upstream, make_backend: Any
) -> None:
    upstream.script(
        pieces(
            sse_bytes(chunk(role="assistant"), chunk("Hel"), done=False),
            b'data: {"choices": [{"del',
            then="abort",
        ),
        sse(*HELLO),  # would succeed, if it were (wrongly) asked
    )
    stream = make_backend().stream(REQUEST)
    assert await anext(stream) == TextDelta("Hel")
    with pytest.raises(APIConnectionError) as caught:
        await anext(stream)
    assert caught.value.attempts == 1
    assert len(upstream.chat_requests) == 1


async def test_stream_cut_before_the_first_token_is_retried(upstream: Upstream, make_backend: Any) -> None:
    upstream.script(
        pieces(sse_bytes(chunk(role="assistant", content=""), done=False), then="abort"), sse(*HELLO)
    )
    assert (await make_backend().complete(REQUEST)).content == "Hello"
    assert len(upstream.chat_requests) == 2


async def test_clean_eof_mid_line_after_a_token_is_an_error(raw_server: Any, make_backend: Any) -> None:
    async def respond(writer: asyncio.StreamWriter) -> None:
        # No Content-Length, no chunking: the body ends when the server closes, here mid-line.
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n")
        writer.write(sse_bytes(chunk("Hel"), done=False) + b'data: {"choices": [{"delta": {"cont')
        await writer.drain()
        writer.close()

    server = await raw_server(respond)
    stream = make_backend(base_url=server.base_url).stream(REQUEST)
    assert await anext(stream) == TextDelta("Hel")
    with pytest.raises(APIConnectionError, match="before the completion finished") as caught:
        await anext(stream)
    assert caught.value.attempts == 1
    assert len(server.connections) == 1


async def test_error_event_after_a_token_is_raised_not_retried(upstream: Upstream, make_backend: Any) -> None:
    error = {"error": {"message": "model crashed", "type": "server_error", "code": 503}}
    upstream.script(sse(chunk("Hel"), error, done=False), sse(*HELLO))
    stream = make_backend().stream(REQUEST)
    assert await anext(stream) == TextDelta("Hel")
    with pytest.raises(APIStatusError, match="model crashed") as caught:
        await anext(stream)
    assert (caught.value.status_code, caught.value.attempts, caught.value.body) == (503, 1, error)
    assert len(upstream.chat_requests) == 1


async def test_early_close_of_the_iterator_closes_the_upstream_connection(
    upstream: Upstream, make_backend: Any
) -> None:
    upstream.script(pieces(sse_bytes(chunk("Hel"), done=False), then="hang"))
    stream = make_backend().stream(REQUEST)
    assert await anext(stream) == TextDelta("Hel")
    await stream.aclose()
    assert await asyncio.to_thread(upstream.disconnects.wait, 5), "the upstream never saw the client go away"


# === Connection failures ==============================================================================


async def test_connection_refused(make_backend: Any, sleeps: Sleeps) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(APIConnectionError) as caught:
        await make_backend(base_url=f"http://127.0.0.1:{port}/v1").complete(REQUEST)
    assert type(caught.value) is APIConnectionError
    assert caught.value.attempts == 3
    assert len(sleeps) == 2
    assert KEY not in str(caught.value)


async def test_timeout_waiting_for_the_response_is_retried_then_raised(
    raw_server: Any, make_backend: Any
) -> None:
    async def never_answer(writer: asyncio.StreamWriter) -> None:
        return None

    server = await raw_server(never_answer)
    backend = make_backend(base_url=server.base_url, timeout=httpx.Timeout(0.15))
    with pytest.raises(APITimeoutError) as caught:
        await backend.complete(REQUEST)
    assert caught.value.attempts == 3
    assert len(server.connections) == 3


async def test_read_timeout_after_a_token_is_not_retried(upstream: Upstream, make_backend: Any) -> None:
    upstream.script(pieces(sse_bytes(chunk("Hel"), done=False), then="hang"), sse(*HELLO))
    stream = make_backend(timeout=httpx.Timeout(5.0, read=0.15)).stream(REQUEST)
    assert await anext(stream) == TextDelta("Hel")
    with pytest.raises(APITimeoutError) as caught:
        await anext(stream)
    assert caught.value.attempts == 1
    assert len(upstream.chat_requests) == 1
    assert await asyncio.to_thread(upstream.disconnects.wait, 5)


# === Fast checks on httpx.MockTransport ===============================================================


class Mock:
    """An httpx.MockTransport answering from a list of responses and keeping the requests."""

    def __init__(self, *responses: httpx.Response) -> None:
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.responses.pop(0)

    def backend(self, sleeps: Sleeps | None = None, **kwargs: Any) -> OpenAICompatibleBackend:
        client = httpx.AsyncClient(transport=httpx.MockTransport(self.handler))
        return OpenAICompatibleBackend(
            KEY,
            "https://upstream.test/v1/",
            http_client=client,
            sleep=Sleeps() if sleeps is None else sleeps,
            **kwargs,
        )

    def bodies(self) -> list[Any]:
        return [json.loads(request.content) for request in self.requests]


def sse_response(*events: dict[str, Any] | str, done: bool = True) -> httpx.Response:
    return httpx.Response(
        200, content=sse_bytes(*events, done=done), headers={"content-type": "text/event-stream"}
    )


def error_response(status: int, body: Any = None, **headers: str) -> httpx.Response:
    if isinstance(body, str):
        return httpx.Response(status, text=body, headers=headers)
    return httpx.Response(status, json=body or {"error": {"message": "nope"}}, headers=headers)


TOOLS = (ToolSpec("search", "Search the web", {"type": "object", "properties": {"q": {"type": "string"}}}),)
SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}}


async def test_conversation_with_tool_calls_tools_and_json_schema_on_the_wire() -> None:
    mock = Mock(sse_response(*HELLO))
    call = ToolCall("call_1", "search", '{"q": "kyoto"}')
    messages = (
        Message("user", "Weather in Kyoto?"),
        Message("assistant", "", tool_calls=(call,)),
        Message("tool", "Sunny", tool_call_id="call_1", name="search"),
    )
    request = ModelRequest("m-1", messages, tools=TOOLS, tool_choice="search", json_schema=SCHEMA)
    await mock.backend().complete(request)
    (body,) = mock.bodies()
    assert str(mock.requests[0].url) == "https://upstream.test/v1/chat/completions"
    assert body["messages"] == [
        {"role": "user", "content": "Weather in Kyoto?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "search", "arguments": '{"q": "kyoto"}'},
                }
            ],
        },
        {"role": "tool", "content": "Sunny", "tool_call_id": "call_1"},
    ]
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "search",
                "description": "Search the web",
                "parameters": TOOLS[0].parameters,
            },
        }
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "search"}}
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": SCHEMA, "strict": False},
    }


@pytest.mark.parametrize("choice", ["auto", "none", "required"])
async def test_tool_choice_keywords_pass_through(choice: str) -> None:
    mock = Mock(sse_response(*HELLO))
    await mock.backend().complete(ModelRequest("m-1", REQUEST.messages, tools=TOOLS, tool_choice=choice))
    assert mock.bodies()[0]["tool_choice"] == choice


async def test_tool_choice_naming_an_unknown_tool_is_refused_before_sending() -> None:
    mock = Mock()
    with pytest.raises(BadRequestError) as caught:
        await mock.backend().complete(ModelRequest("m-1", REQUEST.messages, tools=TOOLS, tool_choice="fly"))
    assert caught.value.param == "tool_choice"
    assert mock.requests == []


@pytest.mark.parametrize(
    ("capabilities", "request_kwargs", "expected"),
    [
        (Capabilities(json_object=True), {"json_schema": SCHEMA}, {"type": "json_object"}),
        (Capabilities(json_schema=True, json_object=True), {"json_object": True}, {"type": "json_object"}),
        (Capabilities(), {"json_schema": SCHEMA}, None),
        (Capabilities(), {"json_object": True}, None),
        (Capabilities(json_schema=True, json_object=True), {}, None),
    ],
)
async def test_response_format_follows_capabilities(
    capabilities: Capabilities, request_kwargs: dict[str, Any], expected: Any
) -> None:
    mock = Mock(sse_response(*HELLO))
    backend = mock.backend(capabilities=capabilities)
    await backend.complete(ModelRequest("m-1", REQUEST.messages, **request_kwargs))
    assert mock.bodies()[0].get("response_format") == expected
    assert backend.capabilities("m-1") == capabilities


async def test_tools_are_not_sent_without_tool_calling_capability() -> None:
    mock = Mock(sse_response(*HELLO))
    await mock.backend(capabilities=Capabilities(tool_calling=False)).complete(
        ModelRequest("m-1", REQUEST.messages, tools=TOOLS, tool_choice="required")
    )
    assert "tools" not in mock.bodies()[0]
    assert "tool_choice" not in mock.bodies()[0]


def test_default_capabilities_and_timeout() -> None:
    backend = OpenAICompatibleBackend(None, "http://localhost:8080/v1")
    assert backend.name == "openai-compatible"
    assert backend.capabilities("any") == Capabilities(tool_calling=True, json_schema=True, json_object=True,
                                                       vision=True, upstream=True)
    assert (DEFAULT_TIMEOUT.connect, DEFAULT_TIMEOUT.read) == (5.0, 600.0)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": "60"}, 60.0),
    ],
)
async def test_retry_after_hints_are_honoured(headers: dict[str, str], expected: float) -> None:
    sleeps = Sleeps()
    mock = Mock(error_response(429, **headers), sse_response(*HELLO))
    await mock.backend(sleeps).complete(REQUEST)
    assert sleeps == [expected]


async def test_retry_after_as_http_date() -> None:
    sleeps = Sleeps()
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    mock = Mock(error_response(503, **{"retry-after": when}), sse_response(*HELLO))
    await mock.backend(sleeps).complete(REQUEST)
    assert 28 <= sleeps[0] <= 30


@pytest.mark.parametrize("hint", ["61", "0", "-3", "soon", "nan"])
async def test_unusable_retry_after_falls_back_to_backoff(hint: str) -> None:
    sleeps = Sleeps()
    mock = Mock(error_response(429, **{"retry-after": hint}), sse_response(*HELLO))
    await mock.backend(sleeps).complete(REQUEST)
    assert INITIAL_RETRY_DELAY * (1 - RETRY_JITTER) <= sleeps[0] <= INITIAL_RETRY_DELAY


async def test_backoff_grows_exponentially_and_is_capped() -> None:
    sleeps = Sleeps()
    mock = Mock(*[error_response(500)] * 7, sse_response(*HELLO))
    await mock.backend(sleeps, max_retries=7).complete(REQUEST)
    nominal = [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert all(n * (1 - RETRY_JITTER) <= s <= n for s, n in zip(sleeps, nominal, strict=True))


RETRIED = [(408, True), (409, True), (502, True), (400, False), (422, False), (403, False), (404, False)]


@pytest.mark.parametrize(("status", "retried"), [*RETRIED, (418, False)])
async def test_which_statuses_are_retried(status: int, retried: bool) -> None:
    mock = Mock(error_response(status), sse_response(*HELLO))
    backend = mock.backend()
    if retried:
        assert (await backend.complete(REQUEST)).content == "Hello"
    else:
        with pytest.raises(APIStatusError) as caught:
            await backend.complete(REQUEST)
        assert caught.value.status_code == status
    assert len(mock.requests) == (2 if retried else 1)


async def test_x_should_retry_header_overrides_the_status() -> None:
    mock = Mock(error_response(500, **{"x-should-retry": "false"}))
    with pytest.raises(InternalServerError):
        await mock.backend().complete(REQUEST)
    mock = Mock(error_response(400, **{"x-should-retry": "true"}), sse_response(*HELLO))
    assert (await mock.backend().complete(REQUEST)).content == "Hello"


@pytest.mark.parametrize(
    ("status", "body", "error", "param", "said"),
    [
        (
            422,
            {"detail": [{"loc": ["body", "top_p"], "msg": "must be <= 1", "type": "x"}]},
            UpstreamBadRequestError,
            "top_p",
            "top_p: must be <= 1",
        ),
        (404, {"error": "model 'llama9' not found"}, UpstreamNotFoundError, None, "model 'llama9' not found"),
        (403, "<html>Forbidden by proxy</html>", AuthenticationError, None, "Forbidden by proxy"),
        (418, {"message": "teapot"}, APIStatusError, None, "teapot"),
    ],
)
async def test_error_bodies_of_other_servers(
    status: int, body: Any, error: type[APIStatusError], param: str | None, said: str
) -> None:
    mock = Mock(error_response(status, body))
    with pytest.raises(error) as caught:
        await mock.backend().complete(REQUEST)
    assert type(caught.value) is error
    assert said in str(caught.value)
    assert caught.value.param == param
    assert caught.value.body == body


async def test_error_event_before_the_first_token_is_retried() -> None:
    sleeps = Sleeps()
    mock = Mock(
        sse_response(chunk(role="assistant"), {"error": {"message": "overloaded"}}), sse_response(*HELLO)
    )
    assert (await mock.backend(sleeps).complete(REQUEST)).content == "Hello"
    assert len(mock.requests) == 2


async def test_error_event_with_a_client_status_is_not_retried() -> None:
    mock = Mock(sse_response({"error": {"message": "context too long", "code": 400, "param": "messages"}}))
    with pytest.raises(UpstreamBadRequestError) as caught:
        await mock.backend().complete(REQUEST)
    assert caught.value.param == "messages"
    assert len(mock.requests) == 1


async def test_named_error_event() -> None:
    response = httpx.Response(
        200,
        content=b'event: error\ndata: {"message": "upstream exploded"}\n\n',
        headers={"content-type": "text/event-stream"},
    )
    mock = Mock(response)
    with pytest.raises(InternalServerError, match="upstream exploded"):
        await mock.backend(max_retries=0).complete(REQUEST)


async def test_malformed_chunk_is_reported_with_what_was_sent() -> None:
    mock = Mock(sse_response("{not json"))
    with pytest.raises(APIStatusError, match="malformed") as caught:
        await mock.backend().complete(REQUEST)
    assert caught.value.body == "{not json"
    assert len(mock.requests) == 1


async def test_json_body_without_content_type_is_sniffed() -> None:
    completion = {"choices": [{"index": 0, "message": {"content": "ok"}, "finish_reason": "length"}]}
    mock = Mock(httpx.Response(200, content=b"\n  " + json.dumps(completion).encode()))
    assert await collect(mock.backend().stream(REQUEST)) == [TextDelta("ok"), ModelResult("ok", "length")]


async def test_sse_without_content_type_is_sniffed() -> None:
    mock = Mock(httpx.Response(200, content=b": keep-alive\n\n" + sse_bytes(*HELLO)))
    assert (await mock.backend().complete(REQUEST)).content == "Hello"


async def test_stream_without_done_but_with_finish_reason_is_complete() -> None:
    mock = Mock(sse_response(*HELLO, usage_chunk(1, 2), done=False))
    assert await mock.backend().complete(REQUEST) == ModelResult("Hello", "stop", (), Usage(1, 2))


async def test_empty_200_body_is_retried_as_a_dropped_connection() -> None:
    mock = Mock(httpx.Response(200, content=b""), sse_response(*HELLO))
    assert (await mock.backend().complete(REQUEST)).content == "Hello"
    assert len(mock.requests) == 2


async def test_tool_call_deltas_without_index_or_id() -> None:
    # Some servers omit `index` (new id = new call) or the id itself (one is made up).
    mock = Mock(
        sse_response(
            chunk(tool_calls=[{"id": "a", "function": {"name": "f", "arguments": '{"x":'}}]),
            chunk(tool_calls=[{"function": {"arguments": " 1}"}}]),
            chunk(tool_calls=[{"id": "b", "function": {"name": "g", "arguments": {"y": 2}}}]),
            chunk(tool_calls=[{"index": 2, "function": {"name": "h", "arguments": "{}"}}]),
            chunk(finish="tool_calls"),
        )
    )
    result = await mock.backend().complete(REQUEST)
    assert [(c.id, c.name, c.arguments) for c in result.tool_calls[:2]] == [
        ("a", "f", '{"x": 1}'),
        ("b", "g", '{"y": 2}'),
    ]
    assert result.tool_calls[2].name == "h"
    assert result.tool_calls[2].id.startswith("call_")


async def test_finish_reason_defaults_when_the_upstream_gives_none() -> None:
    call = {"index": 0, "id": "c", "function": {"name": "f", "arguments": "{}"}}
    mock = Mock(sse_response(chunk("a")), sse_response(chunk(tool_calls=[call])))
    backend = mock.backend()
    assert (await backend.complete(REQUEST)).finish_reason == "stop"
    assert (await backend.complete(REQUEST)).finish_reason == "tool_calls"


async def test_models_list_retries_and_maps_errors() -> None:
    sleeps = Sleeps()
    mock = Mock(error_response(502), httpx.Response(200, json={"data": [{"id": "a"}, {"id": "b"}]}))
    assert await mock.backend(sleeps).list_models() == ["a", "b"]
    assert len(sleeps) == 1
    mock = Mock(error_response(401))
    with pytest.raises(AuthenticationError):
        await mock.backend().list_models()


async def test_client_ownership() -> None:
    injected = httpx.AsyncClient(transport=httpx.MockTransport(lambda request: httpx.Response(200)))
    backend = OpenAICompatibleBackend(KEY, "https://upstream.test/v1", http_client=injected)
    await backend.aclose()
    assert not injected.is_closed
    await injected.aclose()

    owning = OpenAICompatibleBackend(KEY, "https://upstream.test/v1")
    await owning.aclose()
    await owning.aclose()  # idempotent
    assert owning._client.is_closed


@pytest.mark.parametrize(
    ("kwargs", "param"), [({"base_url": "ftp://x"}, "base_url"), ({"max_retries": -1}, "max_retries")]
)
def test_constructor_validation(kwargs: dict[str, Any], param: str) -> None:
    args = {"base_url": "http://localhost/v1", **kwargs}
    with pytest.raises(BadRequestError) as caught:
        OpenAICompatibleBackend(KEY, **args)
    assert caught.value.param == param


async def test_first_tool_call_delta_without_index_or_id() -> None:
    mock = Mock(
        sse_response(chunk(tool_calls=[{"function": {"name": "f", "arguments": "{}"}}]), chunk(finish="stop"))
    )
    (call,) = (await mock.backend().complete(REQUEST)).tool_calls
    assert (call.name, call.arguments) == ("f", "{}")


async def test_json_schema_name_description_and_strict_go_on_the_wire() -> None:
    mock = Mock(sse_response(*HELLO), sse_response(*HELLO))
    backend = mock.backend()
    named = ModelRequest("m-1", REQUEST.messages, json_schema=SCHEMA, json_schema_name="person",
                         json_schema_description="One person", json_schema_strict=True)
    await backend.complete(named)
    await backend.complete(ModelRequest("m-1", REQUEST.messages, json_schema=SCHEMA))
    first, second = (body["response_format"]["json_schema"] for body in mock.bodies())
    assert first == {"name": "person", "schema": SCHEMA, "strict": True, "description": "One person"}
    assert second == {"name": "response", "schema": SCHEMA, "strict": False}  # no description key when none


async def test_the_sdk_forwards_the_callers_json_schema_spec_upstream() -> None:
    bodies: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json={"data": [{"id": "m-1"}]})
        bodies.append(json.loads(request.content))
        return sse_response(chunk('{"name": '), chunk('"Ada"}'), chunk(finish="stop"))

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    backend = OpenAICompatibleBackend(KEY, "https://upstream.test/v1/", http_client=http, sleep=Sleeps())
    spec = {"name": "person", "schema": SCHEMA, "strict": True, "description": "One person"}
    async with studiolm.AsyncClient(backend=backend, search="none") as client:
        response = await client.chat.completions.create(
            model="m-1", messages=[{"role": "user", "content": "Who?"}],
            response_format={"type": "json_schema", "json_schema": spec},
        )
    assert response.choices[0].message.parsed == {"name": "Ada"}
    assert [body["response_format"] for body in bodies] == [{"type": "json_schema", "json_schema": spec}]
