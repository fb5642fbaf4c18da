"""Test harness for the HTTP server: real uvicorn servers on loopback ports, a fake OpenAI-compatible
upstream that records what happens to its connections, and small model backends with known timing.

Imported by the tests in this folder (pytest puts the folder on ``sys.path``).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from agent import (
    Capabilities,
    ModelBackend,
    ModelError,
    ModelEvent,
    ModelRequest,
    ModelResult,
    ScriptedModel,
    TextDelta,
    Usage,
)
from graphs._prompts import PLANNER_INSTRUCTIONS

MODEL = "gemma-3-12b-it-qat"  # the id the studiolm docs' samples use
ANSWER = "Stanley Kubrick directed 2001: A Space Odyssey [1]."
QUERY = "2001 A Space Odyssey director"
API_KEY = "sk-test-0123456789"


def scripted_model() -> ScriptedModel:
    """Plans the query when asked to, otherwise answers ANSWER (with or without search results)."""

    def reply(request: ModelRequest) -> str:
        first = request.messages[0].content if request.messages else ""
        return QUERY if first.startswith(PLANNER_INSTRUCTIONS) else ANSWER

    return ScriptedModel([reply], model=MODEL)


class ServerThread:
    """A real uvicorn server for ``app`` on a free loopback port, on its own thread and event loop."""

    def __init__(self, app: ASGIApp, host: str = "127.0.0.1", config: uvicorn.Config | None = None) -> None:
        # log_config=None: uvicorn leaves logging alone, so its records reach pytest's caplog.
        if config is None:
            config = uvicorn.Config(app, host=host, port=0, log_config=None, access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn-test", daemon=True)
        self.host = host
        self.port = 0

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass
class UpstreamCall:
    """One chat-completions request the fake upstream received, and what became of its connection."""

    body: dict[str, Any]
    authorization: str | None
    received_at: float = field(default_factory=time.monotonic)
    disconnected_at: float | None = None
    disconnected: threading.Event = field(default_factory=threading.Event)


class FakeUpstream:
    """An OpenAI-compatible chat server (ASGI) with scriptable behaviour.

    ``mode``: ``"ok"`` streams ``words`` (after ``start_delay`` s, then ``word_delay`` s apart);
    ``"status"`` answers ``status``/``error_body``; ``"hang"`` never answers. Every call is recorded
    in ``calls``, including the moment its client went away (``disconnected_at``).
    """

    def __init__(self) -> None:
        self.mode = "ok"
        self.words = ANSWER.split(" ")
        self.start_delay = 0.0
        self.word_delay = 0.0
        self.status = 500
        self.error_body: Any = {"error": {"message": "boom", "type": "server_error"}}
        self.calls: list[UpstreamCall] = []
        self.requested = threading.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"].endswith("/models"):
            await _send_json(send, 200, {"object": "list", "data": [{"id": MODEL, "object": "model"}]})
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = dict(scope["headers"])
        auth = headers.get(b"authorization")
        call = UpstreamCall(json.loads(body), auth.decode() if auth else None)
        self.calls.append(call)
        self.requested.set()
        watcher = asyncio.ensure_future(_watch_disconnect(receive, call))
        try:
            await self._respond(send, call)
        finally:
            watcher.cancel()

    async def _respond(self, send: Send, call: UpstreamCall) -> None:
        if self.mode == "status":
            await _send_json(send, self.status, self.error_body)
            return
        if self.mode == "hang":
            await wait_event(call.disconnected)
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        if not await _sleep_unless_gone(self.start_delay, call):
            return
        for i, word in enumerate(self.words):
            text = word if i == len(self.words) - 1 else word + " "
            chunk = {"id": "up-1", "object": "chat.completion.chunk", "model": MODEL,
                     "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
            await send({"type": "http.response.body", "body": b"data: " + json.dumps(chunk).encode() + b"\n\n",
                        "more_body": True})
            if not await _sleep_unless_gone(self.word_delay, call):
                return
        final = {"id": "up-1", "object": "chat.completion.chunk", "model": MODEL,
                 "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                 "usage": {"prompt_tokens": 5, "completion_tokens": len(self.words), "total_tokens": 5}}
        await send({"type": "http.response.body",
                    "body": b"data: " + json.dumps(final).encode() + b"\n\ndata: [DONE]\n\n"})


async def wait_event(event: threading.Event) -> None:
    """Wait for a ``threading.Event`` set from another thread (an ``asyncio.Event`` cannot be)."""
    while not event.is_set():  # noqa: ASYNC110
        await asyncio.sleep(0.005)


async def _watch_disconnect(receive: Receive, call: UpstreamCall) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    call.disconnected_at = time.monotonic()
    call.disconnected.set()


async def _sleep_unless_gone(seconds: float, call: UpstreamCall) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if call.disconnected.is_set():
            return False
        await asyncio.sleep(0.005)
    return not call.disconnected.is_set()


async def _send_json(send: Send, status: int, body: Any) -> None:
    payload = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": payload})


class SlowModel(ModelBackend):
    """A local model with known timing: waits ``start_delay`` s, then yields ``words`` ``word_delay``
    s apart; ``fail_after`` words in, it raises ``error``. Records when its generation was stopped."""

    name = "slow"
    # Several requests share one instance; `started`/`stopped` describe the latest generation.

    def __init__(self, words: list[str] | None = None, *, start_delay: float = 0.0, word_delay: float = 0.0,
                 fail_after: int | None = None, error: Exception | None = None,
                 gate: threading.Event | None = None) -> None:
        self.words = words or ["Stanley ", "Kubrick."]
        self.gate = gate  # when given, nothing is generated until it is set
        self.start_delay = start_delay
        self.word_delay = word_delay
        self.fail_after = fail_after
        self.error = error or ModelError("the local model crashed")
        self.started = threading.Event()
        self.stopped = threading.Event()
        self.stopped_at: float | None = None
        self.finished = threading.Event()

    async def list_models(self) -> list[str]:
        return [MODEL]

    def capabilities(self, model: str) -> Capabilities:
        return Capabilities()

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        self.started.set()
        try:
            await asyncio.sleep(self.start_delay)
            if self.gate is not None:
                await wait_event(self.gate)
            for i, word in enumerate(self.words):
                if self.fail_after is not None and i >= self.fail_after:
                    raise self.error
                yield TextDelta(word)
                await asyncio.sleep(self.word_delay)
            yield ModelResult(content="".join(self.words), usage=Usage(1, len(self.words)))
            self.finished.set()
        finally:
            if not self.finished.is_set():
                self.stopped_at = time.monotonic()
                self.stopped.set()


def raw_request(url: str, request: bytes, *, timeout: float = 10.0) -> bytes:
    """Send raw bytes to the server at ``url`` and read the whole answer (until the server closes or
    the response is complete)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(request)
        return read_response(sock)


def read_response(sock: socket.socket) -> bytes:
    """Read one HTTP response with a Content-Length (or until EOF)."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        if not piece:
            return data
        data += piece
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), None)
    while length is None or len(rest) < length:
        piece = sock.recv(65536)
        if not piece:
            break
        rest += piece
    return head + b"\r\n\r\n" + rest


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def body_of(response: bytes) -> Any:
    return json.loads(response.partition(b"\r\n\r\n")[2])


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


# --- The studiolm docs' streaming samples, as written (studiolm-docs/streaming.txt), only the URL changed


def docs_requests_loop(url: str) -> str:
    return f'''
import requests
import json

def stream_chat(api_key, messages):
    response = requests.post(
        "{url}/v1/chat/completions",
        headers={{"Authorization": f"Bearer {{api_key}}"}},
        json={{"model": "gemma-3-12b-it-qat", "messages": messages, "stream": True}},
        stream=True,
    )
    response.raise_for_status()

    for line in response.iter_lines():
        if not line:
            continue
        text = line.decode("utf-8")
        if text.startswith("data: "):
            text = text[6:]
        if text == "[DONE]":
            break
        try:
            chunk = json.loads(text)
            content = chunk["choices"][0].get("delta", {{}}).get("content", "")
            print(content, end="", flush=True)
        except (json.JSONDecodeError, KeyError):
            continue
    print()
'''


def docs_fetch_loop(url: str) -> str:
    return f'''
async function streamChat(apiKey, messages) {{
  const response = await fetch("{url}/v1/chat/completions", {{
    method: "POST",
    headers: {{
      "Authorization": `Bearer ${{apiKey}}`,
      "Content-Type": "application/json",
    }},
    body: JSON.stringify({{ model: "gemma-3-12b-it-qat", messages, stream: true }}),
  }});

  const reader = response.body.getReader();
  const decoder = new TextDecoder();

  while (true) {{
    const {{ done, value }} = await reader.read();
    if (done) break;
    for (const line of decoder.decode(value).split("\\n")) {{
      if (!line.startsWith("data: ") || line === "data: [DONE]") continue;
      const chunk = JSON.parse(line.slice(6));
      process.stdout.write(chunk.choices[0]?.delta?.content ?? "");
    }}
  }}
}}
'''


#: The ``start_server`` fixture (conftest.py): ``start(backend, search=..., app=..., host=..., **create_app options)``.
StartServer = Callable[..., ServerThread]
