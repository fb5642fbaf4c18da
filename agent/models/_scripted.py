"""A scripted model: replays given replies and tool calls, for tests (ours and our users')."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from graphs.model import (
    Capabilities,
    ModelBackend,
    ModelEvent,
    ModelRequest,
    ModelResult,
    TextDelta,
    ToolCall,
    Usage,
)

__all__ = ["ScriptedCall", "ScriptedModel", "ScriptedReply"]

# Streams are split into words so consumers see several deltas, like a real model.
_WORD = re.compile(r"\S+\s*|\s+")


@dataclass(frozen=True, slots=True)
class ScriptedCall:
    """A tool call the scripted model makes: ``name`` with ``arguments`` (dict or raw JSON text)."""

    name: str
    arguments: dict[str, Any] | str


@dataclass(frozen=True, slots=True)
class ScriptedReply:
    """One scripted turn: text, tool calls, or both."""

    content: str = ""
    tool_calls: tuple[ScriptedCall, ...] = ()
    finish_reason: str | None = None


Script = str | ScriptedReply | Callable[[ModelRequest], "str | ScriptedReply"]


class ScriptedModel(ModelBackend):
    """Replays ``replies`` in order, one per model call, and records every request in ``requests``.

    A reply is a string, a :class:`ScriptedReply`, or a function of the :class:`ModelRequest`
    returning either (handy for answers that depend on the prompt). When the script runs out the
    last reply repeats, so a loop that never stops is visible as such.
    """

    name = "scripted"

    def __init__(
        self,
        replies: Iterable[Script],
        *,
        model: str = "scripted",
        capabilities: Capabilities | None = None,
    ) -> None:
        self._replies = list(replies)
        if not self._replies:
            raise ValueError("replies: give the scripted model at least one reply")
        self._model = model
        self._capabilities = capabilities or Capabilities(tool_calling=True)
        self.requests: list[ModelRequest] = []

    async def list_models(self) -> list[str]:
        """The single model id this script answers to."""
        return [self._model]

    def capabilities(self, model: str) -> Capabilities:
        """The capabilities given to the constructor (tool calling by default)."""
        return self._capabilities

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        """Yield the next reply word by word, then its result."""
        reply = self._next_reply(request)
        for piece in _WORD.findall(reply.content):
            yield TextDelta(piece)
        calls = tuple(_tool_call(i, len(self.requests), c) for i, c in enumerate(reply.tool_calls))
        finish = reply.finish_reason or ("tool_calls" if calls else "stop")
        prompt_words = sum(len(m.content.split()) for m in request.messages)
        usage = Usage(prompt_tokens=prompt_words, completion_tokens=len(reply.content.split()))
        yield ModelResult(content=reply.content, finish_reason=finish, tool_calls=calls, usage=usage)

    def _next_reply(self, request: ModelRequest) -> ScriptedReply:
        index = min(len(self.requests), len(self._replies) - 1)
        self.requests.append(request)
        script = self._replies[index]
        reply = script(request) if callable(script) else script
        return ScriptedReply(reply) if isinstance(reply, str) else reply


def _tool_call(index: int, turn: int, call: ScriptedCall) -> ToolCall:
    args = call.arguments if isinstance(call.arguments, str) else json.dumps(call.arguments)
    return ToolCall(id=f"call_{turn}_{index}", name=call.name, arguments=args)
