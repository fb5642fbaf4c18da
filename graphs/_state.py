"""The chat graph's input, state, dependencies and output: small typed objects, no wire formats."""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypedDict

from agent._models import Capabilities, Message, ModelBackend, ModelResult, SamplingParams, Usage
from tools import ImageResult, SearchBackend, SearchResult

__all__ = [
    "ChatDeps",
    "ChatLimits",
    "ChatOutcome",
    "ChatRequest",
    "ChatState",
    "SearchDecision",
    "WebSearchMode",
]

WebSearchMode = Literal["off", "auto", "force", "images"]

# Loop bounds. LangGraph's own recursion limit is a last line of defence set just above what
# these budgets can reach, so a runaway loop ends as our clear error, not after ~10k steps.
MAX_SEARCH_ROUNDS = 3
MAX_RESULTS_PER_SEARCH = 5
MAX_IMAGES = 6
GRAPH_STEP_LIMIT = 40


@dataclass(frozen=True, slots=True)
class ChatLimits:
    """Budgets for one run."""

    max_search_rounds: int = MAX_SEARCH_ROUNDS
    max_results: int = MAX_RESULTS_PER_SEARCH
    max_images: int = MAX_IMAGES
    step_limit: int = GRAPH_STEP_LIMIT


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A validated chat-completions request, as the graph sees it.

    ``response_format`` is an opaque compiled JSON-mode spec (see :mod:`graphs._json_mode`) or None.
    """

    model: str
    messages: tuple[Message, ...]
    sampling: SamplingParams = field(default_factory=SamplingParams)
    web_search: WebSearchMode = "off"
    response_format: Any = None


@dataclass(frozen=True, slots=True)
class SearchDecision:
    """Whether the run searched, and why (reported in the response)."""

    searched: bool
    reason: str


@dataclass(slots=True)
class ChatDeps:
    """What the nodes call: the model, the search backend and the budgets (LangGraph run context)."""

    model: ModelBackend
    search: SearchBackend | None
    limits: ChatLimits = field(default_factory=ChatLimits)


def _keep_last(_old: Any, new: Any) -> Any:
    return new


class ChatState(TypedDict, total=False):
    """State of one chat run. Lists grow through their reducers; ``sources`` order is the ``[n]`` order."""

    request: ChatRequest
    capabilities: Capabilities
    turns: Annotated[list[Message], operator.add]
    queries: Annotated[list[str], operator.add]
    sources: Annotated[list[SearchResult], operator.add]
    images: Annotated[list[ImageResult], operator.add]
    search_errors: Annotated[list[str], operator.add]
    decision: Annotated[SearchDecision | None, _keep_last]
    result: Annotated[ModelResult | None, _keep_last]
    answer: Annotated[str, _keep_last]
    usage: Annotated[Usage, operator.add]
    model_calls: Annotated[int, operator.add]
    generations: Annotated[int, operator.add]
    search_rounds: Annotated[int, operator.add]
    validation: Annotated[list[Any], operator.add]
    parsed: Annotated[Any, _keep_last]


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
    validation: tuple[Any, ...] = ()
    parsed: Any = None
    type: Literal["outcome"] = "outcome"
