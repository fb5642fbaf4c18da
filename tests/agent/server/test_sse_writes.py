"""How :func:`pump_sse` groups events into writes: events that are ready together go out in one
``send``, an event is never held back waiting for the next one, and a failure after some events
still comes after them, as the last write."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from agent import ModelError
from agent.server._io import Sender, dumps, pump_sse

ROLE = {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}


def token(text: str) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {"content": text}}]}


def event(chunk: dict[str, Any]) -> bytes:
    return b"data: " + dumps(chunk) + b"\n\n"


class Wire:
    """The ASGI ``send`` side: every message the pump sent."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.sent = asyncio.Event()

    async def __call__(self, message: Any) -> None:
        self.messages.append(message)
        self.sent.set()

    def bodies(self) -> list[bytes]:
        return [m["body"] for m in self.messages if m["type"] == "http.response.body"]


async def pump(chunks: AsyncIterator[Any], wire: Wire) -> None:
    await pump_sse(chunks, Sender(wire), keepalive=10.0, hold=0.0, where="test")  # type: ignore[arg-type]


async def test_events_ready_together_go_out_in_one_write() -> None:
    async def chunks() -> AsyncIterator[dict[str, Any]]:
        yield ROLE
        for text in ("a", "b", "c", "d"):
            yield token(text)

    wire = Wire()
    await pump(chunks(), wire)
    assert wire.messages[0]["type"] == "http.response.start" and wire.messages[0]["status"] == 200
    expected = b"".join(event(c) for c in (ROLE, token("a"), token("b"), token("c"), token("d")))
    assert wire.bodies() == [expected + b"data: [DONE]\n\n"]
    assert wire.messages[-1]["more_body"] is False


async def test_an_event_is_not_held_back_for_the_next_one() -> None:
    gate = asyncio.Event()

    async def chunks() -> AsyncIterator[dict[str, Any]]:
        yield ROLE
        yield token("first")
        await gate.wait()  # the next token is not ready until the first was written
        yield token("second")

    wire = Wire()
    task = asyncio.ensure_future(pump(chunks(), wire))
    async with asyncio.timeout(5):
        while not any(b'"first"' in body for body in wire.bodies()):
            wire.sent.clear()
            await wire.sent.wait()
    assert not any(b'"second"' in body for body in wire.bodies())
    gate.set()
    await task
    assert b"".join(wire.bodies()).endswith(event(token("second")) + b"data: [DONE]\n\n")


async def test_a_failure_after_ready_events_is_written_after_them() -> None:
    async def chunks() -> AsyncIterator[dict[str, Any]]:
        yield ROLE
        yield token("partial")
        raise ModelError("the local model crashed")

    wire = Wire()
    await pump(chunks(), wire)
    *before, last = wire.bodies()
    assert b"".join(before) == event(ROLE) + event(token("partial"))
    assert json.loads(last.removeprefix(b"data: "))["error"]["message"] == "the local model crashed"
    assert wire.messages[-1]["more_body"] is False
