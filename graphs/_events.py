"""The step events a graph run emits, as one union. Encoding (SSE, JSON chunks) happens at the edge.

Every event is a small frozen dataclass with a ``type`` literal; :func:`event_payload` turns one into
the plain dict that goes into a stream chunk's ``step`` field.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "BudgetExhausted",
    "ChatEvent",
    "GenerationStarted",
    "ImagesFound",
    "QueryPlanned",
    "SearchCompleted",
    "SearchDecided",
    "SearchFailed",
    "SearchFallbackTaken",
    "SearchStarted",
    "StepEvent",
    "Token",
    "ToolCalled",
    "ToolDecided",
    "ToolResult",
    "ValidationFailed",
    "ValidationPassed",
    "event_payload",
]


@dataclass(frozen=True, slots=True)
class Token:
    """A piece of the answer text (``partial`` is the JSON object parsed so far, in JSON mode)."""

    text: str
    partial: Any = None
    type: Literal["token"] = "token"


@dataclass(frozen=True, slots=True)
class SearchDecided:
    """In ``auto`` mode: whether the run searches, how that was decided, and why."""

    search: bool
    reason: str
    method: Literal["tool_call", "decision_step"]
    type: Literal["search.decided"] = "search.decided"


@dataclass(frozen=True, slots=True)
class QueryPlanned:
    """The query a search will run, and who wrote it (the model or the conversation heuristic)."""

    query: str
    planner: Literal["model", "conversation"]
    type: Literal["query.planned"] = "query.planned"


@dataclass(frozen=True, slots=True)
class SearchStarted:
    """A search is starting."""

    query: str
    kind: Literal["text", "images"]
    type: Literal["search.started"] = "search.started"


@dataclass(frozen=True, slots=True)
class SearchFallbackTaken:
    """A search backend was skipped (unreachable, rate limited…) and the next one used."""

    backend: str
    reason: str
    type: Literal["search.fallback"] = "search.fallback"


@dataclass(frozen=True, slots=True)
class SearchCompleted:
    """A search finished: where the results came from and the ``[n]`` ids they were given."""

    query: str
    backend: str
    results: tuple[dict[str, Any], ...]
    cached: bool = False
    type: Literal["search.completed"] = "search.completed"


@dataclass(frozen=True, slots=True)
class ImagesFound:
    """An image search finished."""

    query: str
    backend: str
    images: tuple[dict[str, Any], ...]
    type: Literal["images.completed"] = "images.completed"


@dataclass(frozen=True, slots=True)
class SearchFailed:
    """A search failed; the answer goes on without its results."""

    query: str
    error: str
    type: Literal["search.failed"] = "search.failed"


@dataclass(frozen=True, slots=True)
class GenerationStarted:
    """The model is being called (``attempt`` counts JSON-mode re-asks and tool-loop turns)."""

    model: str
    attempt: int
    type: Literal["generation.started"] = "generation.started"


@dataclass(frozen=True, slots=True)
class ToolDecided:
    """For a model without native tool calling: which tool (or none) its decision step chose, and why."""

    tool: str | None
    reason: str
    method: Literal["decision_step"] = "decision_step"
    type: Literal["tool.decided"] = "tool.decided"


@dataclass(frozen=True, slots=True)
class ToolCalled:
    """The model called a tool. ``runs_on`` says who runs it: the graph, or the caller (whose own
    function tools come back as ``tool_calls`` with ``finish_reason="tool_calls"``)."""

    name: str
    arguments: str
    call_id: str
    runs_on: Literal["graph", "caller"] = "graph"
    type: Literal["tool.called"] = "tool.called"


@dataclass(frozen=True, slots=True)
class ToolResult:
    """A tool the graph ran has finished: how long it took, and its error or the start of its result."""

    name: str
    call_id: str
    duration_ms: int
    error: str | None = None
    preview: str = ""
    type: Literal["tool.result"] = "tool.result"


@dataclass(frozen=True, slots=True)
class ValidationFailed:
    """JSON-mode output failed validation; the model will be asked again if attempts remain."""

    attempt: int
    errors: tuple[dict[str, str], ...]
    will_retry: bool
    type: Literal["validation.failed"] = "validation.failed"


@dataclass(frozen=True, slots=True)
class ValidationPassed:
    """JSON-mode output validated."""

    attempt: int
    type: Literal["validation.passed"] = "validation.passed"


@dataclass(frozen=True, slots=True)
class BudgetExhausted:
    """A loop budget withdrew the tools: ``budget`` names it (``max_tool_rounds``,
    ``tool_loop_seconds``, ``max_search_rounds``), ``limit`` is its value. The model answers with
    what it has; if it still answers nothing, the run ends with ``finish_reason="length"`` and the
    response's ``incomplete_details`` names the budget."""

    budget: Literal["max_tool_rounds", "tool_loop_seconds", "max_search_rounds"]
    limit: float
    type: Literal["budget.exhausted"] = "budget.exhausted"


StepEvent = (
    SearchDecided
    | QueryPlanned
    | SearchStarted
    | SearchFallbackTaken
    | SearchCompleted
    | ImagesFound
    | SearchFailed
    | GenerationStarted
    | ToolDecided
    | ToolCalled
    | ToolResult
    | ValidationFailed
    | ValidationPassed
    | BudgetExhausted
)
ChatEvent = Token | StepEvent


def event_payload(event: StepEvent) -> dict[str, Any]:
    """The event as a plain JSON-ready dict, ``type`` first."""
    data = dataclasses.asdict(event)
    return {"type": data.pop("type"), **{k: _plain(v) for k, v in data.items()}}


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value
