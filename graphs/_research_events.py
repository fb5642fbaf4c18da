"""The step events a research run emits (besides the shared ``search.*`` events of :mod:`graphs._events`).

Each is a small frozen dataclass with a ``type`` literal; :func:`graphs.event_payload` turns one into
a plain dict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from graphs._events import SearchCompleted, SearchFailed, SearchFallbackTaken, SearchStarted

__all__ = [
    "ResearchBudgetExhausted",
    "PageFailed",
    "PageRead",
    "PlanReviewRequested",
    "PlanWritten",
    "ReflectionDone",
    "ReportWritten",
    "ResearchEvent",
    "SourcesChosen",
]


@dataclass(frozen=True, slots=True)
class PlanWritten:
    """The sub-questions and their queries, and who wrote them (the model, or the fallback from the question)."""

    sub_questions: tuple[str, ...]
    queries: tuple[tuple[str, ...], ...]
    planner: Literal["model", "fallback", "human"]
    type: Literal["research.plan"] = "research.plan"


@dataclass(frozen=True, slots=True)
class PlanReviewRequested:
    """The run paused for a human to accept or edit the plan (resume with the same run id)."""

    run_id: str
    sub_questions: tuple[str, ...]
    type: Literal["research.review"] = "research.review"


@dataclass(frozen=True, slots=True)
class SourcesChosen:
    """The search hits picked for reading (deduplicated, a few per domain)."""

    urls: tuple[str, ...]
    skipped: int
    type: Literal["research.sources"] = "research.sources"


@dataclass(frozen=True, slots=True)
class PageRead:
    """A source's page was read; it is cited as ``[id]``."""

    id: int
    url: str
    title: str
    chars: int
    type: Literal["page.read"] = "page.read"


@dataclass(frozen=True, slots=True)
class PageFailed:
    """A page could not be read (refused by the SSRF checks, failed, or empty); the run goes on."""

    url: str
    error: str
    type: Literal["page.failed"] = "page.failed"


@dataclass(frozen=True, slots=True)
class ReflectionDone:
    """The reflection step looked for gaps; ``queries`` are the extra searches it asked for."""

    gaps: tuple[str, ...]
    queries: tuple[str, ...]
    type: Literal["research.reflection"] = "research.reflection"


@dataclass(frozen=True, slots=True)
class ResearchBudgetExhausted:
    """A budget ran out: the run writes the best report it can and marks it partial."""

    reason: str
    type: Literal["budget.exhausted"] = "budget.exhausted"


@dataclass(frozen=True, slots=True)
class ReportWritten:
    """The report is done: the ``[n]`` it cites, the citations of unread sources removed, how it was
    written (model or fallback), and how many uncited sentences were attributed to a read page."""

    cited: tuple[int, ...]
    removed_citations: int
    writer: Literal["model", "fallback"]
    attributed: int = 0
    type: Literal["research.report"] = "research.report"


ResearchEvent = (
    PlanWritten
    | PlanReviewRequested
    | SearchStarted
    | SearchFallbackTaken
    | SearchCompleted
    | SearchFailed
    | SourcesChosen
    | PageRead
    | PageFailed
    | ReflectionDone
    | ResearchBudgetExhausted
    | ReportWritten
)
