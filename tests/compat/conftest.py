"""Fixtures for the client-compatibility suite (issue 9): our real app (``agent.create_app``) under a real
uvicorn on a loopback port, in front of a scripted OpenAI-compatible upstream, and the bodies that
went through each hop recorded, so a test can assert what a client sent, what we answered and what
the upstream received.

Nothing here touches the internet: the environment below keeps the clients from phoning home.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

# The clients must not phone home (LiteLLM's model-cost map, telemetry, tracing exporters).
os.environ.setdefault("OPENAI_API_KEY", "sk-compat-dummy")
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ.setdefault("LITELLM_TELEMETRY", "False")
os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")
os.environ.setdefault("LANGCHAIN_TRACING_V2", "false")
os.environ.setdefault("LANGSMITH_TRACING", "false")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from starlette.types import Message, Receive, Scope, Send

import agent
from tests.agent.server.server_harness import ServerThread  # the server tests' loopback uvicorn harness
from tests.fakes import FakeSearch

MODEL = "compat-model"
API_KEY = "sk-compat-0123456789"
UPSTREAM_KEY = "sk-upstream-key"
ANSWER = "Hello from the scripted upstream."
#: What the scripted upstream and model answer when JSON is asked for (valid for openai_fields' "person").
PERSON = {"name": "Ada", "year": 1843}


def answer_for(body: dict[str, Any]) -> str:
    """The default upstream reply: PERSON as JSON in JSON mode, else ANSWER."""
    wants_json = (body.get("response_format") or {}).get("type") in ("json_object", "json_schema")
    return json.dumps(PERSON) if wants_json else ANSWER


@dataclass
class Reply:
    """One scripted upstream turn: text and/or tool calls ``(name, arguments dict or JSON text)``."""

    content: str = ""
    tool_calls: list[tuple[str, Any]] = field(default_factory=list)


Script = str | Reply | Callable[[dict[str, Any]], "str | Reply"]


class ScriptedUpstream:
    """An OpenAI-compatible chat server (ASGI) that answers from ``script`` (one reply per request,
    the last one repeating) and records every request body in ``bodies``."""

    def __init__(self) -> None:
        self.script: list[Script] = [answer_for]
        self.bodies: list[dict[str, Any]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] == "GET":
            await _send_json(send, 200, {"object": "list", "data": [
                {"id": MODEL, "object": "model", "created": 0, "owned_by": "compat"}]})
            return
        body = json.loads(await _read(receive))
        self.bodies.append(body)
        reply = self._reply(body)
        chunks = list(_chunks(reply))
        if body.get("stream"):
            payload = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/event-stream")]})
            await send({"type": "http.response.body", "body": payload})
        else:
            await _send_json(send, 200, _completion(reply))

    def _reply(self, body: dict[str, Any]) -> Reply:
        script = self.script[min(len(self.bodies) - 1, len(self.script) - 1)]
        reply = script(body) if callable(script) else script
        return Reply(reply) if isinstance(reply, str) else reply


def _calls(reply: Reply) -> list[dict[str, Any]]:
    return [{"id": f"call_{i}", "type": "function", "function": {
        "name": name, "arguments": args if isinstance(args, str) else json.dumps(args)}}
        for i, (name, args) in enumerate(reply.tool_calls)]


def _chunks(reply: Reply) -> Iterator[dict[str, Any]]:
    base = {"id": "up-1", "object": "chat.completion.chunk", "created": 0, "model": MODEL}
    words = reply.content.split(" ") if reply.content else []
    for i, word in enumerate(words):
        piece = word if i == len(words) - 1 else word + " "
        yield {**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
    for i, call in enumerate(_calls(reply)):
        yield {**base, "choices": [{"index": 0, "delta": {"tool_calls": [{"index": i, **call}]}}]}
    finish = "tool_calls" if reply.tool_calls else "stop"
    yield {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}],
           "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}}


def _completion(reply: Reply) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.content or None}
    if reply.tool_calls:
        message["tool_calls"] = _calls(reply)
    return {"id": "up-1", "object": "chat.completion", "created": 0, "model": MODEL,
            "choices": [{"index": 0, "message": message,
                         "finish_reason": "tool_calls" if reply.tool_calls else "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}}


@dataclass
class Exchange:
    """One request a client made to our server, and our answer's status (and JSON body, unstreamed)."""

    method: str
    path: str
    body: Any
    status: int = 0
    answer: bytes = b""

    def json(self) -> Any:
        return json.loads(self.answer)


class Recorder:
    """ASGI wrapper recording every exchange with the app it wraps (the client -> studiolm hop)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.exchanges: list[Exchange] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = await _read(receive)
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        exchange = Exchange(scope["method"], scope["path"], body)
        self.exchanges.append(exchange)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()

        async def record(message: Message) -> None:
            if message["type"] == "http.response.start":
                exchange.status = message["status"]
            elif message["type"] == "http.response.body":
                exchange.answer += message.get("body", b"")
            await send(message)

        await self.app(scope, replay, record)

    @property
    def chat(self) -> list[Exchange]:
        """The chat-completions exchanges, in order."""
        return [e for e in self.exchanges if e.path.endswith("/chat/completions")]


@dataclass
class Compat:
    """What a compat test works with: our server's URLs, the recorded hops, the scripted upstream."""

    server: ServerThread
    recorder: Recorder
    upstream: ScriptedUpstream

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL clients are given (``.../v1``)."""
        return f"{self.server.url}/v1"

    @property
    def sent(self) -> list[dict[str, Any]]:
        """The chat-completions bodies the client sent us."""
        return [e.body for e in self.recorder.chat]

    @property
    def statuses(self) -> list[int]:
        """Our answers' statuses to those requests."""
        return [e.status for e in self.recorder.chat]

    @property
    def forwarded(self) -> list[dict[str, Any]]:
        """The bodies the upstream received from us."""
        return self.upstream.bodies


async def _read(receive: Receive) -> bytes:
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    return body


async def _send_json(send: Send, status: int, body: Any) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})


@contextmanager
def _compat_servers() -> Iterator[Compat]:
    upstream = ScriptedUpstream()
    with ServerThread(upstream) as up:
        backend = agent.OpenAICompatibleBackend(UPSTREAM_KEY, f"{up.url}/v1", max_retries=0)
        client = agent.AsyncClient(backend=backend, search=FakeSearch())
        recorder = Recorder(agent.create_app(client, api_keys=[API_KEY]))
        with ServerThread(recorder) as server:
            yield Compat(server, recorder, upstream)


@pytest.fixture(scope="module")
def shared_compat() -> Iterator[Compat]:
    """The servers behind :func:`compat`, started once per module (stopping uvicorn takes ~0.2 s)."""
    with _compat_servers() as servers:
        yield servers


@pytest.fixture
def compat(shared_compat: Compat, request: pytest.FixtureRequest) -> Iterator[Compat]:
    """studiolm (``agent.create_app``) on loopback, over an OpenAI-compatible backend pointed at a
    scripted upstream on another loopback port; every hop recorded. The servers are the module's
    (:func:`shared_compat`); the script and the records start empty for each test.

    With ``STUDIOLM_COMPAT_RECORD=path``, each test's hops are appended to ``path`` as JSON lines
    (what each client sent, what we answered, what the upstream got): the integrator's to-do list.
    """
    shared_compat.recorder.exchanges.clear()
    shared_compat.upstream.bodies.clear()
    shared_compat.upstream.script = [answer_for]
    yield shared_compat
    record = os.environ.get("STUDIOLM_COMPAT_RECORD")
    if record:
        _append_record(Path(record), request.node.nodeid, shared_compat.recorder, shared_compat.upstream)


def _append_record(path: Path, test: str, recorder: Recorder, upstream: ScriptedUpstream) -> None:
    hops = [{"method": e.method, "path": e.path, "sent": e.body, "status": e.status,
             "answer": e.answer.decode(errors="replace")[:600]} for e in recorder.exchanges]
    with path.open("a") as out:
        out.write(json.dumps({"test": test, "hops": hops, "forwarded": upstream.bodies}) + "\n")


@pytest.fixture(scope="module")
def local_server() -> Iterator[tuple[ServerThread, agent.ScriptedModel]]:
    """studiolm over the scripted *local* model (answers ANSWER), for the local half of the field sweep;
    shared by a module's tests."""
    def reply(request: agent.ModelRequest) -> str:
        # Without native JSON support the graph asks for JSON in the prompt; the sweep's user says "Hi".
        prompt = " ".join(m.content for m in request.messages)
        wants_json = request.json_schema is not None or request.json_object or "JSON" in prompt
        return json.dumps(PERSON) if wants_json else ANSWER

    model = agent.ScriptedModel([reply], model=MODEL)
    app = agent.create_app(agent.AsyncClient(backend=model, search=FakeSearch()), api_keys=[API_KEY])
    with ServerThread(app) as server:
        yield server, model
