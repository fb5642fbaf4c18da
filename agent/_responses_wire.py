"""The edge for the Responses API: graph events and the outcome to output items and semantic events.

The same events the chat-completions encoder (:mod:`agent._wire`) turns into chunks become, here:

* ``search.started`` → a ``web_search_call`` item (``action: {"type": "search", "query"}``) with
  ``response.output_item.added``, ``response.web_search_call.in_progress`` and ``.searching``;
  ``search.completed`` / ``images.completed`` / ``search.failed`` → ``.completed`` and
  ``response.output_item.done`` (status ``completed`` or ``failed``; ``action.sources`` when
  ``include`` asks for ``web_search_call.action.sources``);
* answer tokens → a ``message`` item: ``response.content_part.added``, ``response.output_text.delta``
  each, then ``response.output_text.done``, one ``response.output_text.annotation.added`` per
  ``url_citation`` (``start_index``/``end_index`` span the ``[n]`` marker), ``response.content_part.done``;
* the caller's tool calls → ``function_call`` items with ``response.function_call_arguments.delta`` /
  ``.done``;
* the end → ``response.completed`` (or ``response.incomplete`` when ``max_output_tokens`` cut it).

Every event carries ``sequence_number``. A non-streamed response is the last event's ``response``,
so the two are identical by construction. Our additions beside OpenAI's fields (typed clients
ignore them): ``search_results``, ``images`` and ``tool_runs`` (the Python and MCP tools the graph ran
itself; only the caller's own function tools become ``function_call`` items) on the response.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any

from agent._exceptions import RateLimitError, StudiolmError
from agent._types import WireObject
from agent._wire import url_citations
from graphs import ChatEvent, ChatOutcome, ImagesFound, SearchCompleted, SearchFailed, SearchStarted, Token

__all__ = ["Response", "ResponseEncoder", "ResponseStreamEvent", "new_response_id", "response_events"]

_SOURCES = "web_search_call.action.sources"


class Response(WireObject):
    """A Responses API ``response`` object (reads like a dict and like an object)."""

    @property
    def output_text(self) -> str:
        """The text of every ``output_text`` part, joined (as openai's ``Response.output_text``)."""
        return "".join(part["text"] for item in self["output"] if item["type"] == "message"
                       for part in item["content"] if part["type"] == "output_text")


class ResponseStreamEvent(WireObject):
    """One semantic event of a streamed response (``type``, ``sequence_number``, …)."""


def new_response_id() -> str:
    """A fresh ``resp_…`` id."""
    return f"resp_{secrets.token_hex(16)}"


def _item_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(16)}"


class ResponseEncoder:
    """Turns one run's events into Responses events, keeping the response as it grows."""

    def __init__(self, *, response_id: str, created_at: int, model: str, echo: dict[str, Any],
                 include: frozenset[str] = frozenset()) -> None:
        self.response: dict[str, Any] = {
            "id": response_id, "object": "response", "created_at": created_at, "status": "in_progress",
            "model": model, "output": [], "error": None, "incomplete_details": None, "usage": None, **echo}
        self._include = include
        self._seq = 0
        self._search: dict[str, Any] | None = None
        self._message: dict[str, Any] | None = None
        self._said = ""

    def _event(self, kind: str, **fields: Any) -> ResponseStreamEvent:
        event = ResponseStreamEvent({"type": kind, "sequence_number": self._seq, **fields})
        self._seq += 1
        return event

    def _snapshot(self) -> Response:
        return Response(self.response)

    def start(self) -> list[ResponseStreamEvent]:
        """``response.created`` and ``response.in_progress``."""
        return [self._event("response.created", response=self._snapshot()),
                self._event("response.in_progress", response=self._snapshot())]

    def feed(self, event: ChatEvent) -> list[ResponseStreamEvent]:
        """The events for one graph event (none for steps that have no Responses shape)."""
        if isinstance(event, Token):
            return self._text(event.text)
        if isinstance(event, SearchStarted):
            return self._search_started(event.query)
        if isinstance(event, SearchCompleted):
            return self._search_done("completed", [str(r.get("url", "")) for r in event.results])
        if isinstance(event, ImagesFound):
            return self._search_done("completed", [str(i.get("source_url") or i.get("image_url", ""))
                                                   for i in event.images])
        if isinstance(event, SearchFailed):
            return self._search_done("failed", [])
        return []

    # --- output items ----------------------------------------------------------------------------

    def _add_item(self, item: dict[str, Any]) -> tuple[int, ResponseStreamEvent]:
        self.response["output"].append(item)
        index = len(self.response["output"]) - 1
        return index, self._event("response.output_item.added", output_index=index, item=WireObject(item))

    def _item_done(self, item: dict[str, Any]) -> ResponseStreamEvent:
        index = self.response["output"].index(item)
        return self._event("response.output_item.done", output_index=index, item=WireObject(item))

    def _search_started(self, query: str) -> list[ResponseStreamEvent]:
        item = {"id": _item_id("ws"), "type": "web_search_call", "status": "in_progress",
                "action": {"type": "search", "query": query}}
        self._search = item
        index, added = self._add_item(item)
        where = {"item_id": item["id"], "output_index": index}
        return [added, self._event("response.web_search_call.in_progress", **where),
                self._event("response.web_search_call.searching", **where)]

    def _search_done(self, status: str, urls: list[str]) -> list[ResponseStreamEvent]:
        item, self._search = self._search, None
        if item is None:
            return []
        item["status"] = status
        if _SOURCES in self._include:
            item["action"]["sources"] = [{"type": "url", "url": url} for url in urls if url]
        events = []
        if status == "completed":
            events.append(self._event("response.web_search_call.completed", item_id=item["id"],
                                      output_index=self.response["output"].index(item)))
        return [*events, self._item_done(item)]

    def _text(self, text: str) -> list[ResponseStreamEvent]:
        events = self._open_message() if self._message is None else []
        assert self._message is not None
        self._said += text
        self._message["content"][0]["text"] = self._said
        events.append(self._event("response.output_text.delta", **self._where(), delta=text, logprobs=[]))
        return events

    def _where(self) -> dict[str, Any]:
        assert self._message is not None
        return {"item_id": self._message["id"], "output_index": self.response["output"].index(self._message),
                "content_index": 0}

    def _open_message(self) -> list[ResponseStreamEvent]:
        self._message = {"id": _item_id("msg"), "type": "message", "role": "assistant", "status": "in_progress",
                         "content": []}
        _, added = self._add_item(self._message)
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        event = self._event("response.content_part.added", **self._where(), part=WireObject(part))
        self._message["content"].append(part)
        return [added, event]

    # --- the end -----------------------------------------------------------------------------------

    def finish(self, outcome: ChatOutcome) -> list[ResponseStreamEvent]:
        """The closing events: the answer's text and annotations, the caller's calls, the final status."""
        events = self._search_done("completed", []) if self._search is not None else []
        events += self._finish_text(outcome)
        for call in outcome.tool_calls:
            events += self._function_call(call.id, call.name, call.arguments)
        usage = outcome.usage
        self.response["usage"] = {
            "input_tokens": usage.prompt_tokens, "output_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0}}
        self._additions(outcome)
        if outcome.finish_reason in ("length", "content_filter"):
            reason = "max_output_tokens" if outcome.finish_reason == "length" else "content_filter"
            details: dict[str, Any] = {"reason": reason}
            if outcome.incomplete is not None:  # a loop budget, not the token budget, cut the run
                details = {"reason": outcome.incomplete.budget, "limit": outcome.incomplete.limit}
            self.response.update(status="incomplete", incomplete_details=details)
            return [*events, self._event("response.incomplete", response=self._snapshot())]
        self.response["status"] = "completed"
        return [*events, self._event("response.completed", response=self._snapshot())]

    def _finish_text(self, outcome: ChatOutcome) -> list[ResponseStreamEvent]:
        content = outcome.content
        events: list[ResponseStreamEvent] = []
        if content.startswith(self._said) and len(content) > len(self._said):
            events += self._text(content[len(self._said):])  # what the model did not stream
        if self._message is None:
            return events
        part = self._message["content"][0]
        part["text"] = content
        where = self._where()
        events.append(self._event("response.output_text.done", **where, text=content, logprobs=[]))
        for index, annotation in enumerate(url_citations(outcome)):
            flat = {"type": "url_citation", **annotation["url_citation"]}
            part["annotations"].append(flat)
            events.append(self._event("response.output_text.annotation.added", **where, annotation_index=index,
                                      annotation=WireObject(flat)))
        events.append(self._event("response.content_part.done", **where, part=WireObject(part)))
        self._message["status"] = "completed"
        return [*events, self._item_done(self._message)]

    def _function_call(self, call_id: str, name: str, arguments: str) -> list[ResponseStreamEvent]:
        item = {"id": _item_id("fc"), "type": "function_call", "status": "in_progress", "call_id": call_id,
                "name": name, "arguments": ""}
        index, added = self._add_item(item)
        where = {"item_id": item["id"], "output_index": index}
        delta = self._event("response.function_call_arguments.delta", **where, delta=arguments)
        item.update(arguments=arguments, status="completed")
        done = self._event("response.function_call_arguments.done", **where, name=name, arguments=arguments)
        return [added, delta, done, self._item_done(item)]

    def _additions(self, outcome: ChatOutcome) -> None:
        if outcome.tool_runs:  # the Python and MCP tools the graph ran itself (not the caller's calls)
            self.response["tool_runs"] = [run.as_dict() for run in outcome.tool_runs]
        if outcome.sources:
            self.response["search_results"] = [
                {"title": s.title, "url": s.url, "snippet": s.snippet, "source": s.source} for s in outcome.sources]
        if outcome.images:
            self.response["images"] = [
                {"image_url": i.image_url, "thumbnail_url": i.thumbnail_url, "source_url": i.source_url,
                 "title": i.title, "width": i.width, "height": i.height} for i in outcome.images]

    def fail(self, error: StudiolmError) -> list[ResponseStreamEvent]:
        """A failure after the stream began: an ``error`` event, then ``response.failed``."""
        code = "rate_limit_exceeded" if isinstance(error, RateLimitError) else "server_error"
        self.response.update(status="failed", error={"code": code, "message": error.message})
        return [self._event("error", code=error.code, message=error.message, param=error.param),
                self._event("response.failed", response=self._snapshot())]

    def conversation(self) -> list[dict[str, Any]]:
        """This response's output as chat-format messages (what a follow-up continues from)."""
        text = "".join(p["text"] for item in self.response["output"] if item["type"] == "message"
                       for p in item["content"])
        calls = [{"id": i["call_id"], "type": "function", "function": {"name": i["name"], "arguments": i["arguments"]}}
                 for i in self.response["output"] if i["type"] == "function_call"]
        message: dict[str, Any] = {"role": "assistant", "content": text or (None if calls else "")}
        if calls:
            message["tool_calls"] = calls
        return [message]


async def response_events(
    events: AsyncGenerator[ChatEvent | ChatOutcome], encoder: ResponseEncoder,
    on_done: Callable[[], Awaitable[None]],
) -> AsyncIterator[ResponseStreamEvent]:
    """A run's Responses events, start to end; ``on_done`` runs once the response is complete
    (it stores it). Closing this stream closes ``events``, so the model stops at once."""
    for event in encoder.start():
        yield event
    async with contextlib.aclosing(events):
        async for item in events:
            for event in (encoder.finish(item) if isinstance(item, ChatOutcome) else encoder.feed(item)):
                yield event
    await on_done()
