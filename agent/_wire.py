"""The edge: graph events and outcomes to OpenAI/studiolm-shaped responses and chunks.

The SDK and the HTTP server both build their bodies here, so they are identical by construction.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import re
import secrets
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from agent._exceptions import OutputValidationError, StudiolmError
from agent._types import ChatCompletion, ChatCompletionChunk
from graphs import ChatEvent, ChatOutcome, Token, event_payload
from graphs.model import ToolCall


def _version() -> str:
    try:
        return importlib.metadata.version("studiolm-agent").replace(".", "_")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree
        return "dev"


__all__ = [
    "SYSTEM_FINGERPRINT",
    "StreamOptions",
    "chunk_stream",
    "completion",
    "completion_of_choices",
    "error_body",
    "new_completion_id",
    "now",
    "url_citations",
    "usage_chunk",
]

#: OpenAI's ``system_fingerprint``: identifies the serving stack's configuration, so a client can tell
#: when the same seed may give a different answer. One value per release of this package.
SYSTEM_FINGERPRINT = "fp_studiolm_" + _version()

@dataclass(frozen=True, slots=True)
class StreamOptions:
    """How a stream is encoded: ``json_mode`` holds content back until it validated (the attempts
    stream as ``json.delta`` steps); ``include_usage`` sends the usage in its own last chunk."""

    json_mode: bool = False
    include_usage: bool = False
    #: The choice these chunks belong to (``n`` > 1 streams the choices one after the other).
    index: int = 0


_CITATION = re.compile(r"\[(\d{1,3})\]")
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def new_completion_id() -> str:
    """A fresh ``chatcmpl-…`` id."""
    return f"chatcmpl-{secrets.token_hex(12)}"


def completion(outcome: ChatOutcome, *, completion_id: str, created: int) -> ChatCompletion:
    """The non-streaming response for a finished run."""
    message: dict[str, Any] = {"role": "assistant", "content": outcome.content}
    annotations = url_citations(outcome)
    if annotations:
        message["annotations"] = annotations
    if outcome.parsed is not None:
        message["parsed"] = outcome.parsed
    if outcome.tool_calls:
        message["content"] = outcome.content or None  # as OpenAI sends it beside tool calls
        message["tool_calls"] = [_wire_call(call) for call in outcome.tool_calls]
    choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": outcome.finish_reason,
                              "logprobs": _logprobs(outcome)}
    body = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": outcome.model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": [choice],
        "usage": _usage(outcome),
        **_search_fields(outcome),
        **_validation_fields(outcome),
        **_tool_fields(outcome),
    }
    return ChatCompletion(body)


def completion_of_choices(outcomes: list[ChatOutcome], *, completion_id: str, created: int) -> ChatCompletion:
    """The non-streaming response for ``n`` runs of one request: their choices in order, the usage
    summed; the search fields (citations, sources…) are the first run's, which the others reused."""
    body = completion(outcomes[0], completion_id=completion_id, created=created)
    choices = [completion(o, completion_id=completion_id, created=created)["choices"][0] for o in outcomes]
    for index, choice in enumerate(choices):
        choice["index"] = index
    usages = [_usage(o) for o in outcomes]
    usage = {key: sum(u.get(key, 0) for u in usages) for key in usages[0]}
    return ChatCompletion({**body, "choices": choices, "usage": usage})


def usage_chunk(head: dict[str, Any], usage: dict[str, Any]) -> ChatCompletionChunk:
    """OpenAI's ``include_usage`` chunk: no choices, the usage."""
    return ChatCompletionChunk(head, choices=[], usage=usage)


async def chunk_stream(
    events: AsyncGenerator[ChatEvent | ChatOutcome],
    *,
    completion_id: str,
    created: int,
    model: str,
    options: StreamOptions = StreamOptions(),
) -> AsyncGenerator[ChatCompletionChunk]:
    """Chunks for a run: a role chunk, then token and step chunks as they happen, then the final one.

    Content is never taken back: concatenating every ``delta.content`` gives exactly the answer. In
    JSON mode an attempt may still fail validation, so its text travels in ``json.delta`` steps (with
    the ``partial`` object so far) and the validated document follows as content once it passed.
    Closing this stream closes ``events`` before returning, so the model stops at once.
    """
    head = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
            "system_fingerprint": SYSTEM_FINGERPRINT}
    index = options.index
    yield ChatCompletionChunk(head, choices=[_choice({"role": "assistant", "content": ""}, index)])
    async with contextlib.aclosing(events):
        async for event in events:
            if isinstance(event, ChatOutcome):
                for chunk in _closing_chunks(head, event, options):
                    yield chunk
            elif isinstance(event, Token):
                yield _token_chunk(head, event, options)
            else:
                yield ChatCompletionChunk(head, choices=[_choice({}, index)], step=event_payload(event))


def _token_chunk(head: dict[str, Any], token: Token, options: StreamOptions) -> ChatCompletionChunk:
    extra = {"partial": token.partial} if token.partial is not None else {}
    if options.json_mode:
        step = {"type": "json.delta", "text": token.text}
        return ChatCompletionChunk(head, choices=[_choice({}, options.index)], step=step, **extra)
    return ChatCompletionChunk(head, choices=[_choice({"content": token.text}, options.index)], **extra)


def _closing_chunks(head: dict[str, Any], outcome: ChatOutcome, options: StreamOptions) -> list[ChatCompletionChunk]:
    chunks = []
    index = options.index
    if options.json_mode and outcome.content:
        chunks.append(ChatCompletionChunk(head, choices=[_choice({"content": outcome.content}, index)]))
    chunks += [ChatCompletionChunk(head, choices=[_choice(delta, index)]) for delta in _tool_call_deltas(outcome)]
    chunks.append(_final_chunk(head, outcome, with_usage=not options.include_usage, index=index))
    if options.include_usage:
        chunks.append(ChatCompletionChunk(head, choices=[], usage=_usage(outcome)))
    return chunks


def error_body(error: StudiolmError) -> dict[str, Any]:
    """The OpenAI error envelope for ``error``; JSON-mode failures add every ``attempts`` record
    (raw output, finish reason, errors), so an HTTP caller sees what the model produced."""
    body: dict[str, Any] = {"message": error.message, "type": error.error_type, "param": error.param,
                            "code": error.code}
    if isinstance(error, OutputValidationError):
        body["attempts"] = error.attempts
    return {"error": body}


def url_citations(outcome: ChatOutcome) -> list[dict[str, Any]]:
    """An OpenAI ``url_citation`` annotation for every ``[n]`` in the answer that names a source."""
    targets = _numbered_targets(outcome)
    # In JSON mode "[1]" is also an array; only markers inside string values are citations.
    inside = _string_spans(outcome.content) if outcome.validation else None
    annotations = []
    for match in _CITATION.finditer(outcome.content):
        number = int(match.group(1))
        in_text = inside is None or any(a < match.start() and match.end() < b for a, b in inside)
        if in_text and 1 <= number <= len(targets):
            url, title = targets[number - 1]
            annotations.append({"type": "url_citation", "url_citation": {
                "url": url, "title": title, "start_index": match.start(), "end_index": match.end()}})
    return annotations


def _string_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in _JSON_STRING.finditer(text)]


def _numbered_targets(outcome: ChatOutcome) -> list[tuple[str, str]]:
    # In images mode the model numbers the images; otherwise it numbers the text sources.
    if outcome.mode == "images":
        return [(i.source_url or i.image_url, i.title) for i in outcome.images]
    return [(s.url, s.title) for s in outcome.sources]


def _final_chunk(head: dict[str, Any], outcome: ChatOutcome, *, with_usage: bool, index: int) -> ChatCompletionChunk:
    delta: dict[str, Any] = {}
    annotations = url_citations(outcome)
    if annotations:
        delta["annotations"] = annotations
    choice = {"index": index, "delta": delta, "finish_reason": outcome.finish_reason, "logprobs": _logprobs(outcome)}
    extra: dict[str, Any] = {"parsed": outcome.parsed} if outcome.parsed is not None else {}
    if with_usage:
        extra["usage"] = _usage(outcome)
    return ChatCompletionChunk(head, choices=[choice], **_search_fields(outcome),
                               **_validation_fields(outcome), **_tool_fields(outcome), **extra)


def _logprobs(outcome: ChatOutcome) -> dict[str, Any] | None:
    return {"content": list(outcome.logprobs), "refusal": None} if outcome.logprobs else None


def _choice(delta: dict[str, Any], index: int = 0) -> dict[str, Any]:
    return {"index": index, "delta": delta, "finish_reason": None}


def _usage(outcome: ChatOutcome) -> dict[str, Any]:
    usage = outcome.usage
    body: dict[str, Any] = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "model_calls": outcome.model_calls,
    }
    if outcome.mode != "off":
        body["search_queries"] = len(outcome.queries)
    return body


def _validation_fields(outcome: ChatOutcome) -> dict[str, Any]:
    # JSON mode: every attempt (raw output, errors as JSON Pointer + message), so a re-ask is visible.
    if not outcome.validation:
        return {}
    return {"validation": {"attempts": len(outcome.validation), "history": [r.as_dict() for r in outcome.validation]}}


def _wire_call(call: ToolCall) -> dict[str, Any]:
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}


def _tool_call_deltas(outcome: ChatOutcome) -> list[dict[str, Any]]:
    """OpenAI's streamed tool calls: per call, a delta with its index, id, type and name (arguments
    ``""``), then one with its arguments, so clients that concatenate argument pieces work."""
    deltas: list[dict[str, Any]] = []
    for index, call in enumerate(outcome.tool_calls):
        head = {"index": index, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}
        deltas.append({"tool_calls": [head]})
        deltas.append({"tool_calls": [{"index": index, "function": {"arguments": call.arguments}}]})
    return deltas


def _tool_fields(outcome: ChatOutcome) -> dict[str, Any]:
    # The tool calls the graph ran itself (the caller's own calls are in message.tool_calls), and the
    # loop budget that cut the run short, named as the Responses API names its cut: incomplete_details.
    fields: dict[str, Any] = {"tool_runs": [r.as_dict() for r in outcome.tool_runs]} if outcome.tool_runs else {}
    if outcome.incomplete is not None:
        fields["incomplete_details"] = {"reason": outcome.incomplete.budget, "limit": outcome.incomplete.limit}
    return fields


def _search_fields(outcome: ChatOutcome) -> dict[str, Any]:
    if outcome.mode == "off" and not (outcome.sources or outcome.queries or outcome.images or outcome.search_errors):
        return {}  # no search mode, and no search tool ran either
    searched, reason = _search_reason(outcome)
    fields: dict[str, Any] = {
        "citations": [s.url for s in outcome.sources],
        "search_results": [
            {"title": s.title, "url": s.url, "snippet": s.snippet, "source": s.source} for s in outcome.sources
        ],
        "web_search": {"mode": outcome.mode, "searched": searched, "reason": reason,
                       "queries": list(outcome.queries), "errors": list(outcome.search_errors)},
    }
    if outcome.mode == "images":
        fields["citations"] = [i.source_url for i in outcome.images]
    if outcome.mode == "images" or outcome.images:  # images mode always lists them, even none
        fields["images"] = [
            {"image_url": i.image_url, "thumbnail_url": i.thumbnail_url, "source_url": i.source_url,
             "title": i.title, "width": i.width, "height": i.height}
            for i in outcome.images
        ]
    return fields


def _search_reason(outcome: ChatOutcome) -> tuple[bool, str]:
    if outcome.decision is not None:
        return outcome.decision.searched, outcome.decision.reason
    if outcome.mode in ("force", "images"):
        return True, f'web_search="{outcome.mode}" always searches'
    searched = bool(outcome.queries)  # web_search off: only a search tool (local_search…) can have searched
    return searched, "the model called a search tool" if searched else "no search tool was called"


def now() -> int:
    """Unix time for ``created``."""
    return int(time.time())
