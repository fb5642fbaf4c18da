"""The chat graph's input, state, dependencies and output: small typed objects, no wire formats."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict, cast

from graphs._events import BudgetExhausted
from graphs._json_format import JsonFormat
from graphs._toolbox import ToolConfig
from graphs.model import Capabilities, Message, ModelBackend, ModelResult, SamplingParams, ToolCall, Usage
from tools import ImageResult, SearchBackend, SearchResult

__all__ = [
    "GROWING",
    "ChatDeps",
    "ChatLimits",
    "ChatOutcome",
    "ChatRequest",
    "ChatState",
    "SearchDecision",
    "ToolDecision",
    "ToolRun",
    "ValidationRecord",
    "WebSearchMode",
    "fold",
    "results_wanted",
]

WebSearchMode = Literal["off", "auto", "force", "images"]

# Loop bounds. LangGraph's own recursion limit is a last line of defence set just above what
# these budgets can reach, so a runaway loop ends as our clear error, not after ~10k steps.
MAX_SEARCH_ROUNDS = 3
MAX_RESULTS_PER_SEARCH = 5
MAX_IMAGES = 6
# JSON mode: invalid output is sent back to the model this many times (so 3 attempts in all).
MAX_REASKS = 2
# Tool loop: model turns whose calls the graph runs (each costs two graph steps, three for a model
# without native tool calling), wall time after which no tool is offered any more, the default
# timeout of one call, calls run per turn (more are answered with an error), and the characters of
# one tool result the model sees (the rest is clipped, with a note saying so).
MAX_TOOL_ROUNDS = 6
TOOL_LOOP_SECONDS = 120.0
TOOL_TIMEOUT_SECONDS = 30.0
MAX_TOOL_CALLS_PER_TURN = 16
MAX_TOOL_RESULT_CHARS = 8000
GRAPH_STEP_LIMIT = 40


@dataclass(frozen=True, slots=True)
class ChatLimits:
    """Budgets for one run."""

    max_search_rounds: int = MAX_SEARCH_ROUNDS
    #: Results per text search; ``None``: what the model reads well (``Capabilities.results_read``),
    #: else ``MAX_RESULTS_PER_SEARCH``. A request's ``search_context_size`` wins over both.
    max_results: int | None = None
    max_images: int = MAX_IMAGES
    #: JSON mode: re-asks after an invalid output (each costs two graph steps; past ~12, raise
    #: ``step_limit`` too).
    max_reasks: int = MAX_REASKS
    #: Tool loop bounds (see the constants above); past ~10 rounds, raise ``step_limit`` too.
    max_tool_rounds: int = MAX_TOOL_ROUNDS
    tool_loop_seconds: float = TOOL_LOOP_SECONDS
    tool_timeout: float = TOOL_TIMEOUT_SECONDS
    max_tool_calls_per_turn: int = MAX_TOOL_CALLS_PER_TURN
    max_tool_result_chars: int = MAX_TOOL_RESULT_CHARS
    step_limit: int = GRAPH_STEP_LIMIT


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A validated chat-completions request, as the graph sees it.

    ``response_format`` is the compiled JSON-mode spec (:class:`JsonFormat`), None for plain text.
    ``tools`` holds the request's tools and ``tool_choice`` (see :mod:`graphs._toolbox`).
    """

    model: str
    messages: tuple[Message, ...]
    sampling: SamplingParams = field(default_factory=SamplingParams)
    web_search: WebSearchMode = "off"
    response_format: JsonFormat | None = None
    tools: ToolConfig = field(default_factory=ToolConfig)
    #: False: at most one tool call per model turn.
    parallel_tool_calls: bool = True
    #: Fields passed to upstream models as the caller sent them (see ``ModelRequest.extra``).
    extra: tuple[tuple[str, Any], ...] = ()
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    #: Answers to generate (one search, ``n`` generations).
    n: int = 1
    #: Results read per search, when the request says (else ``ChatLimits.max_results``).
    max_results: int | None = None


def results_wanted(state: ChatState, limits: ChatLimits) -> int:
    """Results per text search: the request's, else the client's ``limits.max_results``, else what the
    model reads well (:attr:`graphs.Capabilities.results_read`), else ``MAX_RESULTS_PER_SEARCH``."""
    return (state["request"].max_results or limits.max_results or state["capabilities"].results_read
            or MAX_RESULTS_PER_SEARCH)


@dataclass(frozen=True, slots=True)
class SearchDecision:
    """Whether the run searched, and why (reported in the response)."""

    searched: bool
    reason: str


@dataclass(slots=True)
class ChatDeps:
    """What the nodes call: the model, the search backends and the budgets (LangGraph run context).

    ``local_search`` is the index the built-in ``local_search`` tool searches.
    """

    model: ModelBackend
    search: SearchBackend | None
    limits: ChatLimits = field(default_factory=ChatLimits)
    local_search: SearchBackend | None = None


@dataclass(frozen=True, slots=True)
class ToolDecision:
    """A decision step's choice for tool round ``round`` (``tool`` None: answer without a tool)."""

    round: int
    tool: str | None


@dataclass(frozen=True, slots=True)
class ValidationRecord:
    """One JSON-mode attempt: its number, whether it validated, how it ended, the raw output, the errors.

    ``errors`` are ``{"path": <JSON Pointer into the output>, "message"}``; :meth:`as_dict` is the
    shape the response's ``validation.history`` and :class:`OutputValidationError` carry.
    """

    attempt: int
    valid: bool
    finish_reason: str
    output: str
    errors: tuple[dict[str, str], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The wire shape."""
        return {"attempt": self.attempt, "valid": self.valid, "finish_reason": self.finish_reason,
                "output": self.output, "errors": [dict(e) for e in self.errors]}


@dataclass(frozen=True, slots=True)
class ToolRun:
    """A tool call the graph ran: which, with what, how long, how it failed, and a preview of its result."""

    id: str
    name: str
    arguments: str
    duration_ms: int
    error: str | None
    preview: str

    def as_dict(self) -> dict[str, Any]:
        """The wire shape of the response's ``tool_runs`` items."""
        return {"id": self.id, "name": self.name, "arguments": self.arguments, "duration_ms": self.duration_ms,
                "error": self.error, "preview": self.preview}


class ChatState(TypedDict, total=False):
    """State of one chat run; ``sources`` order is the ``[n]`` order.

    Every key is a plain LangGraph channel (the last value written). The keys in :data:`GROWING` grow
    instead: a node returns what it adds (new list items, a count, the usage of its call) and the
    graph folds it into the state (:func:`fold`) before LangGraph sees it. Not LangGraph reducers: each
    node's router needs the state after the update within the same step (see
    :func:`graphs._chat.build_chat_graph`), and with whole values in every update the runner gets the
    final state by laying the updates over the input, without a copy of the state after every step.
    """

    request: ChatRequest
    capabilities: Capabilities
    turns: list[Message]
    reask_turns: list[Message]
    queries: list[str]
    sources: list[SearchResult]
    images: list[ImageResult]
    search_errors: list[str]
    decision: SearchDecision | None
    result: ModelResult | None
    #: The text each model turn streamed, in order (with its separator): outside JSON mode, the answer.
    said: list[str]
    answer: str
    usage: Usage
    model_calls: int
    generations: int
    search_rounds: int
    validation: list[ValidationRecord]
    parsed: Any
    started_at: float
    planned_search: bool
    tool_rounds: int
    tool_decision: ToolDecision | None
    tool_runs: list[ToolRun]
    pending_calls: tuple[ToolCall, ...]
    repeated_round: bool
    budget_exhausted: BudgetExhausted | None


#: The keys whose updates add to the state rather than replace it, each with its value before any
#: update (a node returns ``{"turns": [new_turn], "model_calls": 1}``, never the whole list or count).
GROWING: dict[str, Any] = {
    "turns": [], "reask_turns": [], "queries": [], "sources": [], "images": [], "search_errors": [],
    "said": [], "validation": [], "tool_runs": [],
    "usage": Usage(), "model_calls": 0, "generations": 0, "search_rounds": 0, "tool_rounds": 0,
}


def fold(state: ChatState, update: ChatState) -> ChatState:
    """``update``'s values as they stand after it is applied to ``state``: the :data:`GROWING` keys with
    their additions added (``state`` itself is left as it is), every other key as written."""
    before, folded = cast("dict[str, Any]", state), {}
    for key, value in update.items():
        zero = GROWING.get(key, _REPLACE)
        folded[key] = value if zero is _REPLACE else before.get(key, zero) + value
    return cast(ChatState, folded)


_REPLACE = object()


@dataclass(frozen=True, slots=True)
class ChatOutcome:
    """The finished run: the answer and everything the response reports about how it was made."""

    content: str
    finish_reason: str
    model: str
    mode: WebSearchMode
    sources: tuple[SearchResult, ...]
    images: tuple[ImageResult, ...]
    queries: tuple[str, ...]
    decision: SearchDecision | None
    search_errors: tuple[str, ...]
    usage: Usage
    model_calls: int
    validation: tuple[ValidationRecord, ...] = ()
    parsed: Any = None
    #: The caller's own tool calls, when the run ended to hand them back (``finish_reason="tool_calls"``).
    tool_calls: tuple[ToolCall, ...] = ()
    #: The tool calls the graph ran.
    tool_runs: tuple[ToolRun, ...] = ()
    #: The answer's per-token log probabilities, when the request asked for them.
    logprobs: tuple[dict[str, Any], ...] = ()
    #: The loop budget that cut the run short (``finish_reason="length"``, no answer), else ``None``.
    incomplete: BudgetExhausted | None = None
    type: Literal["outcome"] = "outcome"
