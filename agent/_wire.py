"""The edge: graph events and outcomes to OpenAI/studiolm-shaped responses and chunks.

The SDK and the HTTP server both build their bodies here, so they are identical by construction.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

from agent._exceptions import StudiolmError
from agent._types import ChatCompletion, ChatCompletionChunk
from graphs import ChatEvent, ChatOutcome, Token, event_payload

__all__ = ["chunk_stream", "completion", "error_body", "new_completion_id", "now", "url_citations"]

_CITATION = re.compile(r"\[(\d{1,3})\]")


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
    body = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": outcome.model,
        "choices": [{"index": 0, "message": message, "finish_reason": outcome.finish_reason}],
        "usage": _usage(outcome),
        **_search_fields(outcome),
    }
    return ChatCompletion(body)


async def chunk_stream(
    events: AsyncIterator[ChatEvent | ChatOutcome], *, completion_id: str, created: int, model: str
) -> AsyncIterator[ChatCompletionChunk]:
    """Chunks for a run: a role chunk, then token and step chunks as they happen, then the final one."""
    head = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model}
    yield ChatCompletionChunk(head, choices=[_choice({"role": "assistant", "content": ""})])
    async for event in events:
        if isinstance(event, ChatOutcome):
            yield _final_chunk(head, event)
        elif isinstance(event, Token):
            extra = {"partial": event.partial} if event.partial is not None else {}
            yield ChatCompletionChunk(head, choices=[_choice({"content": event.text})], **extra)
        else:
            yield ChatCompletionChunk(head, choices=[_choice({})], step=event_payload(event))


def error_body(error: StudiolmError) -> dict[str, Any]:
    """The OpenAI error envelope for ``error``."""
    return {"error": {"message": error.message, "type": error.error_type, "param": error.param,
                      "code": error.code}}


def url_citations(outcome: ChatOutcome) -> list[dict[str, Any]]:
    """An OpenAI ``url_citation`` annotation for every ``[n]`` in the answer that names a source."""
    targets = _numbered_targets(outcome)
    annotations = []
    for match in _CITATION.finditer(outcome.content):
        number = int(match.group(1))
        if 1 <= number <= len(targets):
            url, title = targets[number - 1]
            annotations.append({"type": "url_citation", "url_citation": {
                "url": url, "title": title, "start_index": match.start(), "end_index": match.end()}})
    return annotations


def _numbered_targets(outcome: ChatOutcome) -> list[tuple[str, str]]:
    # In images mode the model numbers the images; otherwise it numbers the text sources.
    if outcome.mode == "images":
        return [(i.source_url or i.image_url, i.title) for i in outcome.images]
    return [(s.url, s.title) for s in outcome.sources]


def _final_chunk(head: dict[str, Any], outcome: ChatOutcome) -> ChatCompletionChunk:
    delta: dict[str, Any] = {}
    annotations = url_citations(outcome)
    if annotations:
        delta["annotations"] = annotations
    choice = {"index": 0, "delta": delta, "finish_reason": outcome.finish_reason}
    extra = {"parsed": outcome.parsed} if outcome.parsed is not None else {}
    return ChatCompletionChunk(head, choices=[choice], usage=_usage(outcome), **_search_fields(outcome), **extra)


def _choice(delta: dict[str, Any]) -> dict[str, Any]:
    return {"index": 0, "delta": delta, "finish_reason": None}


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


def _search_fields(outcome: ChatOutcome) -> dict[str, Any]:
    if outcome.mode == "off":
        return {}
    decision = outcome.decision
    searched = decision.searched if decision is not None else outcome.mode in ("force", "images")
    reason = decision.reason if decision is not None else f'web_search="{outcome.mode}" always searches'
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
        fields["images"] = [
            {"image_url": i.image_url, "thumbnail_url": i.thumbnail_url, "source_url": i.source_url,
             "title": i.title, "width": i.width, "height": i.height}
            for i in outcome.images
        ]
    return fields


def now() -> int:
    """Unix time for ``created``."""
    return int(time.time())
