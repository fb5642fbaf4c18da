"""The research graph: a question in, a cited markdown report out, every step streamed.

::

    START ─► plan ─┬─ (review: human interrupt) ─┐
                   └──────────────────────────────┴─► search x N (parallel Send) ─► choose ─► read ─► notes
    notes ─┬─ gaps, budget left ─► reflect ─► search x M ─► choose ─► read ─► notes   (bounded rounds)
           └─ otherwise ─► write ─► END

Every router sends a run that is out of steps, tokens or wall time to ``write``, which writes the
best report it can from the notes so far, marked partial. A checkpointer (LangGraph's; SQLite or
Postgres, or in memory by default) saves the state after every step under the run id, so a run that
crashed or paused for review resumes where it stopped.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncGenerator
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.errors import GraphRecursionError
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command

from graphs._research_events import PlanReviewRequested, ResearchEvent
from graphs._research_nodes import (
    choose,
    notes,
    plan,
    read,
    reflect,
    review,
    route_after_notes,
    route_after_plan,
    route_searches,
    search,
    write,
)
from graphs._research_state import (
    Passage,
    ResearchDeps,
    ResearchNote,
    ResearchReport,
    ResearchSource,
    ResearchState,
    SearchTask,
    SubQuestion,
)
from graphs.errors import GraphLimitError
from graphs.model import Usage
from tools import BadRequestError

__all__ = ["build_research_graph", "research_serializer", "run_research"]

# LangGraph's own recursion limit: a last line of defence above what the step budget allows.
RECURSION_MARGIN = 10

Graph = CompiledStateGraph[ResearchState, ResearchDeps, ResearchState, ResearchState]


def research_serializer() -> JsonPlusSerializer:
    """The checkpoint serializer for research state: it restores our state types and nothing else
    (give it to the checkpointer you pass to :func:`run_research`)."""
    return JsonPlusSerializer(allowed_msgpack_modules=[SubQuestion, SearchTask, ResearchSource, Passage,
                                                       ResearchNote, Usage])


def build_research_graph(checkpointer: BaseCheckpointSaver[Any] | None = None) -> Graph:
    """Build and compile the research graph (see the module docstring for its shape)."""
    graph = StateGraph(ResearchState, context_schema=ResearchDeps)
    for name, node in [("plan", plan), ("review", review), ("search", search), ("choose", choose),
                       ("read", read), ("notes", notes), ("reflect", reflect), ("write", write)]:
        graph.add_node(name, node)  # type: ignore[call-overload]
    graph.add_edge(START, "plan")
    graph.add_conditional_edges("plan", route_after_plan, ["review", "search", "write"])
    graph.add_conditional_edges("review", route_searches, ["search", "write"])
    graph.add_edge("search", "choose")
    graph.add_edge("choose", "read")
    graph.add_edge("read", "notes")
    graph.add_conditional_edges("notes", route_after_notes, ["reflect", "write"])
    graph.add_conditional_edges("reflect", route_searches, ["search", "write"])
    graph.add_edge("write", END)
    return graph.compile(checkpointer=checkpointer)


async def run_research(
    question: str | None,
    deps: ResearchDeps,
    *,
    run_id: str | None = None,
    checkpointer: BaseCheckpointSaver[Any] | None = None,
    review_answer: Any = None,
) -> AsyncGenerator[ResearchEvent | ResearchReport]:
    """Run (or resume) a research run: yield every step event, then one :class:`ResearchReport`.

    A new ``run_id`` starts a run of ``question``. An existing one (in ``checkpointer``) resumes it
    from its last completed step; a run paused for plan review resumes with ``review_answer``
    (None or True accepts the plan, a list of sub-questions replaces it). A finished run just returns
    its report again.
    """
    saver = checkpointer if checkpointer is not None else InMemorySaver(serde=research_serializer())
    graph = build_research_graph(saver)
    run_id = run_id or uuid.uuid4().hex
    config: Any = {"configurable": {"thread_id": run_id}, "recursion_limit": deps.budget.max_steps + RECURSION_MARGIN}
    deps.deadline = time.monotonic() + deps.budget.max_seconds
    run_input = await _input(graph, config, question, review_answer)
    steps: list[Any] = []
    if run_input is not None or (await graph.aget_state(config)).next:
        stream: AsyncGenerator[Any] = graph.astream(  # type: ignore[assignment]
            run_input, config, context=deps, stream_mode="custom"
        )
        try:
            async for event in stream:
                steps.append(event)
                yield event
        except GraphRecursionError as exc:
            raise GraphLimitError(f"the research graph did not finish within {deps.budget.max_steps} steps",
                                  limit=deps.budget.max_steps) from exc
        finally:
            await stream.aclose()
    snapshot = await graph.aget_state(config)
    if snapshot.interrupts:
        plan = snapshot.values.get("plan", [])
        steps.append(PlanReviewRequested(run_id=run_id, sub_questions=tuple(s.question for s in plan)))
        yield steps[-1]
    yield await _report(graph, config, run_id, steps)


async def _input(graph: Graph, config: Any, question: str | None, review_answer: Any) -> Any:
    """What to run the graph with: a new question, a resume command, or None (continue / finished)."""
    snapshot = await graph.aget_state(config)
    if not snapshot.values:
        if not isinstance(question, str) or not question.strip():
            raise BadRequestError("give a question to research (or the run id of an existing run)", param="question")
        return {"question": question.strip()}
    if snapshot.interrupts:
        # None would read as "no resume value" to LangGraph; True means the same to the review node.
        return Command(resume=True if review_answer is None else review_answer)
    return None


async def _report(graph: Graph, config: Any, run_id: str, steps: list[Any]) -> ResearchReport:
    snapshot = await graph.aget_state(config)
    state: ResearchState = snapshot.values  # type: ignore[assignment]
    waiting = bool(snapshot.interrupts)
    stopped = state.get("stopped")
    return ResearchReport(
        question=state.get("question", ""),
        report=state.get("report", ""),
        sources=tuple(state.get("sources", [])),
        notes=tuple(state.get("notes", [])),
        plan=tuple(state.get("plan", [])),
        steps=tuple(steps),
        partial=bool(stopped) or (not waiting and not state.get("report")),
        reason=stopped or (None if waiting or state.get("report") else "the run stopped before its report"),
        run_id=run_id,
        usage=state.get("usage", Usage()),
        model_calls=state.get("model_calls", 0),
        status="awaiting_review" if waiting else "done",
    )
