"""The model protocol: what the graphs ask of any completion model (``agent.models`` implements it).

A backend turns a :class:`ModelRequest` into a stream of :class:`ModelEvent` items: zero or more
:class:`TextDelta` pieces, then exactly one :class:`ModelResult` (the whole output, tool calls,
finish reason and token usage). ``complete`` is derived from ``stream``, so a backend writes its
generation logic once.

These are our own small typed objects; OpenAI-shaped dicts exist only at the edges (the HTTP
backend's request body, the SDK's responses).
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from graphs.errors import ModelError, NotFoundError
from tools import ToolDefinition

__all__ = [
    "Capabilities",
    "MediaPart",
    "Message",
    "ModelBackend",
    "ModelEvent",
    "ModelRequest",
    "ModelResult",
    "Role",
    "SamplingParams",
    "TextDelta",
    "ToolCall",
    "ToolSpec",
    "Usage",
]

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One function call the model asked for; ``arguments`` is the raw JSON text it wrote."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class MediaPart:
    """A non-text content part of a user turn, as the caller sent it: ``kind`` is OpenAI's part type
    (``image_url``, ``input_audio``, ``file``) and ``part`` the whole part object.

    ``param`` is where the caller put it (``messages[1].content[2]``), for an error that names it
    when the model cannot take it.
    """

    kind: str
    part: dict[str, Any]
    param: str = ""


@dataclass(frozen=True, slots=True)
class Message:
    """One conversation turn; ``media`` follow the text of a user turn (for models that take them)."""

    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None
    media: tuple[MediaPart, ...] = ()


#: A function the model may call: name, description, JSON-schema parameters (and an optional per-call
#: ``timeout`` the graph applies when it runs the tool itself). One type for every tool a model sees:
#: the same class as :class:`tools.ToolDefinition`, which toolsets list.
ToolSpec = ToolDefinition


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """The studiolm sampling parameters, already validated."""

    temperature: float = 0.7
    max_tokens: int = 1000
    top_p: float = 1.0
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    #: Sequences that end the output (not included in it); at most 4, as OpenAI allows.
    stop: tuple[str, ...] = ()
    #: A fixed seed for reproducible sampling (None: the backend's own choice).
    seed: int | None = None
    #: Bias added to the logits of token ids (OpenAI's ``logit_bias``: -100 bans, 100 forces).
    logit_bias: tuple[tuple[int, float], ...] = ()
    #: Return the log probability of each output token, and of this many alternatives per token.
    logprobs: bool = False
    top_logprobs: int | None = None
    #: Sampler settings beyond OpenAI's (llama.cpp's and vLLM's); None keeps the backend's default.
    top_k: int | None = None
    min_p: float | None = None
    repetition_penalty: float | None = None


@dataclass(frozen=True, slots=True)
class ModelRequest:
    """One call to a model.

    ``json_schema`` asks for output constrained to that schema where the backend can do it
    (``Capabilities.json_schema``); ``json_object`` asks for any JSON object. The caller's
    ``json_schema_name``, ``json_schema_description`` and ``json_schema_strict`` go with the schema
    to backends that pass it on (OpenAI's ``response_format.json_schema``). ``tool_choice`` is
    ``"auto"``, ``"none"``, ``"required"`` or the name of one tool.
    """

    model: str
    messages: tuple[Message, ...]
    sampling: SamplingParams = field(default_factory=SamplingParams)
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: str = "auto"
    json_schema: dict[str, Any] | None = None
    json_object: bool = False
    json_schema_name: str = "response"
    json_schema_description: str | None = None
    json_schema_strict: bool = False
    #: False: the model may call at most one tool per turn.
    parallel_tool_calls: bool = True
    #: OpenAI request fields passed to upstreams as the caller sent them (``store``, ``metadata``,
    #: ``service_tier``…); backends that have no upstream ignore them.
    extra: tuple[tuple[str, Any], ...] = ()
    #: Which field the caller used for the output budget, so an upstream gets the one it was sent.
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts; adding two sums them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens, self.completion_tokens + other.completion_tokens
        )


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of generated text, as it arrives."""

    text: str
    type: Literal["text"] = "text"


@dataclass(frozen=True, slots=True)
class ModelResult:
    """The complete output of one model call (always the last event of a stream)."""

    content: str
    finish_reason: str = "stop"
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage = field(default_factory=Usage)
    #: Per-token log probabilities when asked for: OpenAI's ``{"token", "logprob", "bytes", "top_logprobs"}``.
    logprobs: tuple[dict[str, Any], ...] = ()
    type: Literal["result"] = "result"


ModelEvent = TextDelta | ModelResult


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a model can do natively; the graph adapts to the answer, the caller never has to."""

    tool_calling: bool = False
    json_schema: bool = False
    json_object: bool = False
    #: Whether the model reads images in user turns (``image_url`` content parts).
    vision: bool = False
    #: Whether requests go to an upstream service that takes OpenAI's own fields and parts (audio,
    #: files, moderation…) as they are; a local model refuses what it cannot honour.
    upstream: bool = False
    #: Whether a grounded answer may offer the model the reply "the search results do not contain the
    #: answer" (measured per model: a very small one then declines questions its results do answer).
    abstains: bool = True
    #: How many results of a search the model reads well, when the request does not say
    #: (``web_search_options.search_context_size``) or the client (``ChatLimits.max_results``); ``None``: 5.
    #: Measured per model: a 0.5B model answers better from the first result alone than from five.
    results_read: int | None = None


class ModelBackend(abc.ABC):
    """A source of chat completions (an HTTP endpoint, a local GGUF model, a script)."""

    #: Short name shown in steps and errors, e.g. ``"openai-compatible"``.
    name: str = "model"

    @abc.abstractmethod
    async def list_models(self) -> list[str]:
        """The model ids this backend serves."""

    async def check_model(self, model: str) -> None:
        """Raise :class:`NotFoundError` (listing what exists) unless this backend serves ``model``."""
        available = await self.list_models()
        if model not in available:
            raise NotFoundError(model, available)

    @abc.abstractmethod
    def capabilities(self, model: str) -> Capabilities:
        """What ``model`` supports natively."""

    @abc.abstractmethod
    def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        """Generate: yield :class:`TextDelta` pieces, then exactly one :class:`ModelResult`.

        Closing the iterator early (the caller went away) must stop the generation.
        """

    async def complete(
        self, request: ModelRequest, *, on_delta: Callable[[TextDelta], None] | None = None
    ) -> ModelResult:
        """The final :class:`ModelResult` of :meth:`stream`; ``on_delta`` sees each text piece on the way.

        Raises :class:`ModelError` when the stream ends without a result (a broken backend).
        """
        result: ModelResult | None = None
        stream = self.stream(request)
        try:
            async for event in stream:
                if isinstance(event, ModelResult):
                    result = event
                elif on_delta is not None:
                    on_delta(event)
        finally:
            await _aclose(stream)
        if result is None:
            raise ModelError(f"model backend {self.name!r} ended its stream without a result")
        return result

    async def aclose(self) -> None:
        """Release what the backend holds (HTTP connections, threads). Idempotent."""
        return


async def _aclose(stream: AsyncIterator[ModelEvent]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()
