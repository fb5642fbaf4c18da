"""The research graph's nodes and routers (module-level functions; :mod:`graphs._research` wires them).

Budgets are checked where work starts: the routers send a run that is out of steps, tokens or time
straight to ``write``, which then writes the report from the notes so far without calling the model;
a node that has to drop work (planned queries past the search budget, sources past the fetch budget)
records why in ``stopped``. Either way the report comes out marked partial, with the reason.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Literal, TypedDict

from langgraph.config import get_stream_writer
from langgraph.runtime import Runtime
from langgraph.types import Send, interrupt

from graphs import _research_prompts as prompts
from graphs._events import SearchCompleted
from graphs._research_events import (
    PageFailed,
    PageRead,
    PlanWritten,
    ReflectionDone,
    ReportWritten,
    ResearchBudgetExhausted,
    SourcesChosen,
)
from graphs._research_state import ResearchDeps, ResearchSource, ResearchState, SearchTask, SubQuestion
from graphs._research_text import (
    attribute,
    choose_sources,
    fallback_report,
    finish_report,
    pick_notes,
    tidy_draft,
)
from graphs._searching import search_text
from graphs.model import Message, ModelRequest, ModelResult, SamplingParams, Usage

__all__ = [
    "SearchInput",
    "choose",
    "exhausted",
    "notes",
    "plan",
    "read",
    "reflect",
    "review",
    "route_after_notes",
    "route_after_plan",
    "route_searches",
    "search",
    "write",
]

# Side calls are deterministic; the report gets room for a few sections.
PLAN_SAMPLING = SamplingParams(temperature=0.0, max_tokens=400)
REFLECTION_SAMPLING = SamplingParams(temperature=0.0, max_tokens=250)
REPORT_MAX_TOKENS = 600


class SearchInput(TypedDict):
    """What the fan-out sends each ``search`` node: one query."""

    task: SearchTask


# --- budget ----------------------------------------------------------------------------------


def exhausted(state: ResearchState, deps: ResearchDeps) -> str | None:
    """Which budget ran out (steps, tokens, wall time), or None."""
    budget = deps.budget
    if state.get("steps", 0) >= budget.max_steps:
        return f"the step budget ({budget.max_steps} steps) ran out"
    if state.get("usage", Usage()).total_tokens >= budget.max_tokens:
        return f"the token budget ({budget.max_tokens} tokens) ran out"
    if time.monotonic() >= deps.deadline:
        return f"the time budget ({budget.max_seconds:g} s) ran out"
    return None


def _tasks(
    state: ResearchState, deps: ResearchDeps, plan: list[SubQuestion], first: int
) -> tuple[list[SearchTask], str | None]:
    """The searches for sub-questions ``first`` onwards, within the search budget (and why some were dropped)."""
    done = {q.casefold() for q in state.get("queries", [])}
    wanted = [SearchTask(q, i) for i, sub in enumerate(plan) if i >= first for q in sub.queries
              if q.casefold() not in done]
    room = max(0, deps.budget.max_searches - state.get("searches", 0))
    if len(wanted) <= room:
        return wanted, None
    dropped = len(wanted) - room
    reason = f"the search budget ({deps.budget.max_searches} searches) ran out; {dropped} queries were not run"
    get_stream_writer()(ResearchBudgetExhausted(reason=reason))
    return wanted[:room], reason


async def _call(deps: ResearchDeps, messages: list[Message], sampling: SamplingParams,
                schema: dict[str, Any] | None) -> ModelResult:
    caps = deps.model.capabilities(deps.model_id)
    return await deps.model.complete(ModelRequest(
        model=deps.model_id, messages=tuple(messages), sampling=sampling,
        json_schema=schema if schema is not None and caps.json_schema else None,
        json_object=schema is not None and (caps.json_object or caps.json_schema),
    ))


# --- routers ---------------------------------------------------------------------------------


def route_searches(state: ResearchState, runtime: Runtime[ResearchDeps]) -> list[Send] | Literal["write"]:
    """Fan the pending searches out in parallel; nothing to search (or out of budget) goes to ``write``."""
    pending = state.get("pending", [])
    if not pending or exhausted(state, runtime.context) is not None:
        return "write"
    return [Send("search", SearchInput(task=task)) for task in pending]


def route_after_plan(state: ResearchState, runtime: Runtime[ResearchDeps]) -> list[Send] | Literal["review", "write"]:
    """A human reviews the plan first when the run asked for it."""
    return "review" if runtime.context.review_plan else route_searches(state, runtime)


def route_after_notes(state: ResearchState, runtime: Runtime[ResearchDeps]) -> Literal["reflect", "write"]:
    """Reflect while reflection rounds and searches remain."""
    deps = runtime.context
    if exhausted(state, deps) is not None or state.get("stopped"):
        return "write"
    if state.get("reflections", 0) >= deps.budget.max_reflections:
        return "write"
    return "reflect" if state.get("searches", 0) < deps.budget.max_searches else "write"


# --- nodes -----------------------------------------------------------------------------------


async def plan(state: ResearchState, runtime: Runtime[ResearchDeps]) -> ResearchState:
    """Sub-questions and queries from the model (JSON), or the question itself when that fails."""
    deps = runtime.context
    question = state["question"]
    update: ResearchState = {"steps": 1}
    sub_questions = None
    if exhausted(state, deps) is None:
        try:
            result = await _call(deps, prompts.plan_messages(question, deps.budget), PLAN_SAMPLING,
                                 prompts.plan_schema(deps.budget))
        except Exception:  # a failing planner must not end the run: the question is a plan too
            result = None
        if result is not None:
            update = {**update, "usage": result.usage, "model_calls": 1}
            sub_questions = prompts.parse_plan(result.content, deps.budget)
    planner: Literal["model", "fallback"] = "model" if sub_questions else "fallback"
    sub_questions = prompts.with_question(sub_questions, question) if sub_questions else prompts.fallback_plan(question)
    return {**update, **_planned(state, deps, sub_questions, planner)}


def _planned(state: ResearchState, deps: ResearchDeps, sub_questions: list[SubQuestion],
             planner: Literal["model", "fallback", "human"]) -> ResearchState:
    get_stream_writer()(PlanWritten(sub_questions=tuple(s.question for s in sub_questions),
                                    queries=tuple(s.queries for s in sub_questions), planner=planner))
    pending, reason = _tasks(state, deps, sub_questions, 0)
    update: ResearchState = {"plan": sub_questions, "planner": planner, "pending": pending}
    if reason:
        update["stopped"] = reason
    return update


async def review(state: ResearchState, runtime: Runtime[ResearchDeps]) -> ResearchState:
    """Pause for a human (LangGraph interrupt; the runner announces it). Resume with True to accept,
    or a list of sub-questions (strings, or ``{"question", "queries"}`` dicts) to replace the plan."""
    answer = interrupt({"sub_questions": [{"question": s.question, "queries": list(s.queries)}
                                          for s in state.get("plan", [])]})
    edited = _edited_plan(answer, runtime.context)
    if edited is None:
        return {"steps": 1}
    return {"steps": 1, **_planned(state, runtime.context, edited, "human")}


def _edited_plan(answer: Any, deps: ResearchDeps) -> list[SubQuestion] | None:
    if answer is None or answer is True or not isinstance(answer, list):
        return None
    items = [{"question": a, "queries": [a]} if isinstance(a, str) else a for a in answer]
    return prompts.parse_plan(json.dumps({"sub_questions": items}), deps.budget)


async def search(task_input: SearchInput, runtime: Runtime[ResearchDeps]) -> ResearchState:
    """One search of the fan-out; its hits become candidates for reading."""
    deps, task = runtime.context, task_input["task"]
    searched = await search_text(deps.search, task.query, deps.budget.results_per_search)
    found = [ResearchSource(r.title, r.url, r.snippet, task.query, task.sub) for r in searched.results]
    if searched.error is None:
        listed = tuple({"title": r.title, "url": r.url, "source": r.source} for r in searched.results)
        get_stream_writer()(SearchCompleted(query=task.query, backend=searched.backend, results=listed,
                                            cached=searched.cached))
    errors = [searched.error] if searched.error else []
    return {"candidates": found, "searches": 1, "queries": [task.query], "search_errors": errors, "steps": 1}


async def choose(state: ResearchState, runtime: Runtime[ResearchDeps]) -> ResearchState:
    """Pick the sources to read: new URLs only, a few per domain, within the fetch budget."""
    budget = runtime.context.budget
    tried = state.get("tried", [])
    room = max(0, budget.max_fetches - len(tried))
    chosen, left = choose_sources(state.get("candidates", []), tried, budget, room)
    get_stream_writer()(SourcesChosen(urls=tuple(s.url for s in chosen), skipped=left))
    update: ResearchState = {"to_read": chosen, "pending": [], "steps": 1}
    if room == 0 and left:
        reason = f"the fetch budget ({budget.max_fetches} pages) ran out; {left} sources were not read"
        update["stopped"] = reason
        get_stream_writer()(ResearchBudgetExhausted(reason=reason))
    return update


async def read(state: ResearchState, runtime: Runtime[ResearchDeps]) -> ResearchState:
    """Read the chosen pages concurrently; each one read gets the next ``[n]``."""
    deps = runtime.context
    gate = asyncio.Semaphore(deps.budget.fetch_concurrency)

    async def one(source: ResearchSource) -> tuple[str, str]:
        async with gate:
            timeout = max(0.0, deps.deadline - time.monotonic())
            try:
                page = await asyncio.wait_for(deps.pages.read(source.url), timeout=min(timeout, 3600.0))
            except TimeoutError:
                return "", "the time budget ran out"
            except Exception as exc:  # refused, failed or broken: the run goes on without this page
                return "", str(exc) or type(exc).__name__
            return (page.text.strip(), "") if page.text.strip() else ("", "the page has no text")

    chosen = state.get("to_read", [])
    outcomes = await asyncio.gather(*(one(s) for s in chosen))
    return _read_update(state, chosen, outcomes)


def _read_update(state: ResearchState, chosen: list[ResearchSource], outcomes: list[tuple[str, str]]) -> ResearchState:
    writer = get_stream_writer()
    sources: list[ResearchSource] = []
    texts: dict[str, str] = {}
    errors: list[str] = []
    next_id = len(state.get("sources", [])) + 1
    for source, (text, error) in zip(chosen, outcomes, strict=True):
        if error:
            errors.append(f"{source.url}: {error}")
            writer(PageFailed(url=source.url, error=error))
            continue
        read_source = ResearchSource(source.title, source.url, source.snippet, source.query, source.sub, next_id)
        sources.append(read_source)
        texts[str(next_id)] = text
        writer(PageRead(id=next_id, url=source.url, title=source.title, chars=len(text)))
        next_id += 1
    return {"sources": sources, "texts": texts, "fetch_errors": errors, "tried": [s.url for s in chosen], "steps": 1}


async def notes(state: ResearchState, runtime: Runtime[ResearchDeps]) -> ResearchState:
    """For each sub-question, the passages of the read pages that bear on it."""
    texts = {int(k): v for k, v in state.get("texts", {}).items()}
    return {"notes": pick_notes(state["question"], state.get("plan", []), texts, runtime.context.budget), "steps": 1}


async def reflect(state: ResearchState, runtime: Runtime[ResearchDeps]) -> ResearchState:
    """Ask the model what the notes leave open; its queries (never URLs) become another search round."""
    deps = runtime.context
    room = max(0, deps.budget.max_searches - state.get("searches", 0))
    messages = prompts.reflection_messages(state["question"], state.get("notes", []), state.get("sources", []),
                                           min(room, prompts.MAX_GAPS))
    update: ResearchState = {"reflections": 1, "steps": 1, "pending": []}
    try:
        result = await _call(deps, messages, REFLECTION_SAMPLING, prompts.REFLECTION_SCHEMA)
    except Exception:  # reflection is optional: without it the run writes what it has
        get_stream_writer()(ReflectionDone(gaps=(), queries=()))
        return update
    gaps, queries = prompts.parse_reflection(result.content, prompts.MAX_GAPS)
    get_stream_writer()(ReflectionDone(gaps=gaps, queries=queries))
    old = state.get("plan", [])
    added = [SubQuestion(gaps[i] if i < len(gaps) else q, (q,)) for i, q in enumerate(queries)]
    pending, reason = _tasks(state, deps, [*old, *added], len(old))
    update = {**update, "usage": result.usage, "model_calls": 1, "plan": [*old, *added], "pending": pending}
    if reason:
        update["stopped"] = reason
    return update


async def write(state: ResearchState, runtime: Runtime[ResearchDeps]) -> ResearchState:
    """Write the report from the notes (by the model, or without it when out of budget or when it
    fails), keep only citations of pages read, and append the numbered source list."""
    deps = runtime.context
    out = exhausted(state, deps)
    reason = state.get("stopped") or out
    if out is not None:
        get_stream_writer()(ResearchBudgetExhausted(reason=out))
    update: ResearchState = {"steps": 1, "stopped": reason}
    draft, attributed = "", 0
    if out is None and state.get("notes"):
        draft, usage = await _model_draft(state, deps)
        update = {**update, "usage": usage, "model_calls": 1} if usage is not None else update
        texts = {int(k): v for k, v in state.get("texts", {}).items()}
        draft, attributed = attribute(draft, texts)
    writer_kind: Literal["model", "fallback"] = "model" if draft.strip() else "fallback"
    if writer_kind == "fallback":
        draft = fallback_report(state["question"], state.get("notes", []), reason)
    elif reason:
        draft = f"*Partial report: {reason}.*\n\n{draft}"
    report, cited, removed = finish_report(draft, state.get("sources", []))
    get_stream_writer()(ReportWritten(cited=cited, removed_citations=removed, writer=writer_kind,
                                      attributed=attributed))
    return {**update, "report": report}


async def _model_draft(state: ResearchState, deps: ResearchDeps) -> tuple[str, Usage | None]:
    """The model's tidied draft and its usage; ``("", None)`` when the call fails."""
    left = deps.budget.max_tokens - state.get("usage", Usage()).total_tokens
    sampling = SamplingParams(temperature=0.2, max_tokens=max(1, min(REPORT_MAX_TOKENS, left)))
    messages = prompts.report_messages(state["question"], state.get("notes", []), state.get("sources", []))
    try:
        result = await _call(deps, messages, sampling, None)
    except Exception:  # a failed model still leaves the notes: the fallback report cites them
        return "", None
    return tidy_draft(result.content), result.usage
