"""The research graph's budget, dependencies, state and result: small typed objects.

Everything kept in :class:`ResearchState` is a plain dataclass or a builtin, so a checkpointer can
store a run after every step and a crashed run can resume from the last one.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypedDict

from graphs._research_pages import PageReader
from graphs.model import ModelBackend, Usage
from tools import BadRequestError, SearchBackend

__all__ = [
    "ResearchNote",
    "Passage",
    "ResearchBudget",
    "ResearchDeps",
    "ResearchReport",
    "ResearchState",
    "SearchTask",
    "ResearchSource",
    "SubQuestion",
]

# Budget defaults: a run plans at most MAX_SUB_QUESTIONS x QUERIES_PER_SUB_QUESTION queries, and
# one reflection round may add MAX_REFLECTION_QUERIES more; the search budget covers both.
MAX_SEARCHES = 12
MAX_FETCHES = 8
# Node runs (every parallel search counts as one); LangGraph's recursion limit sits above it.
MAX_STEPS = 60
# Prompt + completion tokens of every model call together (checked before each call).
MAX_TOKENS = 60_000
# Wall time of one invocation (a resumed run gets its own).
MAX_SECONDS = 600.0
MAX_SUB_QUESTIONS = 4
QUERIES_PER_SUB_QUESTION = 2
RESULTS_PER_SEARCH = 5
MAX_REFLECTIONS = 1
MAX_REFLECTION_QUERIES = 3
# Sources of one domain read per run: diversity over ten pages of one site.
MAX_PER_DOMAIN = 2
# Passages kept per sub-question, and their size (a small model's context is a few thousand tokens).
PASSAGES_PER_QUESTION = 3
PASSAGE_CHARS = 700
# Pages read at once.
FETCH_CONCURRENCY = 4


@dataclass(frozen=True, slots=True)
class ResearchBudget:
    """Bounds of one research run; running out of any yields the report so far, marked partial."""

    max_searches: int = MAX_SEARCHES
    max_fetches: int = MAX_FETCHES
    max_steps: int = MAX_STEPS
    max_tokens: int = MAX_TOKENS
    max_seconds: float = MAX_SECONDS
    max_sub_questions: int = MAX_SUB_QUESTIONS
    queries_per_sub_question: int = QUERIES_PER_SUB_QUESTION
    results_per_search: int = RESULTS_PER_SEARCH
    max_reflections: int = MAX_REFLECTIONS
    max_per_domain: int = MAX_PER_DOMAIN
    passages_per_question: int = PASSAGES_PER_QUESTION
    passage_chars: int = PASSAGE_CHARS
    fetch_concurrency: int = FETCH_CONCURRENCY

    def __post_init__(self) -> None:
        for name in ("max_steps", "max_tokens", "max_seconds", "max_sub_questions", "queries_per_sub_question",
                     "results_per_search", "max_per_domain", "passages_per_question", "passage_chars",
                     "fetch_concurrency"):
            if not getattr(self, name) > 0:
                raise BadRequestError(f"must be positive, got {getattr(self, name)!r}", param=f"budget.{name}")
        for name in ("max_searches", "max_fetches", "max_reflections"):
            if getattr(self, name) < 0:
                raise BadRequestError(f"must be 0 or more, got {getattr(self, name)!r}", param=f"budget.{name}")


@dataclass(slots=True)
class ResearchDeps:
    """What the nodes call (LangGraph run context): the model, search, page reader and budget.

    ``deadline`` is the ``time.monotonic()`` past which no new step starts; ``review_plan`` pauses the
    run after planning (a LangGraph interrupt) until a human accepts or edits the plan.
    """

    model: ModelBackend
    model_id: str
    search: SearchBackend | None
    pages: PageReader
    budget: ResearchBudget = field(default_factory=ResearchBudget)
    deadline: float = float("inf")
    review_plan: bool = False


@dataclass(frozen=True, slots=True)
class SubQuestion:
    """One part of the question and the search queries that should answer it."""

    question: str
    queries: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SearchTask:
    """One fan-out search: the query, and the sub-question (index into the plan) it serves."""

    query: str
    sub: int


@dataclass(frozen=True, slots=True)
class ResearchSource:
    """A search hit the run considered. ``id`` is its ``[n]`` once its page was read (0 before)."""

    title: str
    url: str
    snippet: str
    query: str
    sub: int
    id: int = 0


@dataclass(frozen=True, slots=True)
class Passage:
    """A piece of a read page, the ``[n]`` of its source, and its relevance score."""

    source_id: int
    text: str
    score: float


@dataclass(frozen=True, slots=True)
class ResearchNote:
    """The passages picked for one sub-question."""

    question: str
    passages: tuple[Passage, ...]


def _keep_last(_old: Any, new: Any) -> Any:
    return new


class ResearchState(TypedDict, total=False):
    """State of one research run. Lists grow through their reducers."""

    question: str
    plan: Annotated[list[SubQuestion], _keep_last]
    planner: Annotated[str, _keep_last]
    #: Searches scheduled but not yet run (set by plan/reflect, consumed by the fan-out router).
    pending: Annotated[list[SearchTask], _keep_last]
    queries: Annotated[list[str], operator.add]
    searches: Annotated[int, operator.add]
    candidates: Annotated[list[ResearchSource], operator.add]
    #: The sources chosen for the next read step.
    to_read: Annotated[list[ResearchSource], _keep_last]
    search_errors: Annotated[list[str], operator.add]
    #: URLs already tried (read or failed), so a later round never fetches one twice.
    tried: Annotated[list[str], operator.add]
    #: Sources whose pages were read, in ``[n]`` order.
    sources: Annotated[list[ResearchSource], operator.add]
    #: Page text by ``[n]`` id (as a string: checkpoint keys stay JSON-friendly).
    texts: Annotated[dict[str, str], operator.or_]
    fetch_errors: Annotated[list[str], operator.add]
    notes: Annotated[list[ResearchNote], _keep_last]
    reflections: Annotated[int, operator.add]
    report: Annotated[str, _keep_last]
    usage: Annotated[Usage, operator.add]
    model_calls: Annotated[int, operator.add]
    steps: Annotated[int, operator.add]
    #: Why the run stopped early (the first budget that ran out), or None.
    stopped: Annotated[str | None, _keep_last]


@dataclass(frozen=True, slots=True)
class ResearchReport:
    """A finished (or paused) research run.

    ``report`` is markdown whose ``[n]`` citations point only at ``sources`` (the pages actually
    read), followed by the numbered source list. ``partial`` is True when a budget ran out, with
    ``reason`` saying which. ``status`` is ``"awaiting_review"`` when the run paused for a human to
    review ``plan`` (resume it with the same ``run_id``).
    """

    question: str
    report: str
    sources: tuple[ResearchSource, ...]
    notes: tuple[ResearchNote, ...]
    plan: tuple[SubQuestion, ...]
    steps: tuple[Any, ...]
    partial: bool
    reason: str | None
    run_id: str
    usage: Usage = field(default_factory=Usage)
    model_calls: int = 0
    status: Literal["done", "awaiting_review"] = "done"
    type: Literal["report"] = "report"
