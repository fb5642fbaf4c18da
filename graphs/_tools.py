"""Tool calling in the chat graph: what each model turn is offered, the decision step for models
without native tool calling, and the node that runs a turn's calls.

::

    generate ─► tools ─┬─ the caller's own calls pending ─► finish  (finish_reason "tool_calls")
                       ├─ model calls tools natively ─────► generate
                       └─ otherwise ─► decide_tool ─► generate  (tool_choice = the chosen tool, or no tools)

* **Offered tools** (:func:`available_tools`): the request's built-ins (``web_search`` also under
  ``web_search="auto"``), its toolsets' tools and the caller's function tools; nothing under
  ``tool_choice="none"``. The search built-ins leave once ``max_search_rounds`` searches ran; every
  tool leaves once ``max_tool_rounds`` turns ran tools or ``tool_loop_seconds`` passed since the run
  began, so the model must then answer with what it has. That turn (:func:`exhausted_budget`)
  emits a ``budget.exhausted`` step naming the budget; if the model still answers nothing, the run
  ends with ``finish_reason="length"`` and the budget in the outcome's ``incomplete``.
* **A forced** ``tool_choice`` (``"required"`` or a tool's name) applies to the run's first model
  turn only; later turns are ``"auto"``, or a loop that forces a call on every turn could never end
  (the OpenAI Agents SDK resets it the same way). Forcing skips the decision step.
* **Models without native tool calling** (``Capabilities.tool_calling`` false, like the embedded
  SmolLM2) get a constrained decision first: "which tool, or answer" (a JSON-schema enum). A chosen
  tool is then asked for with ``tool_choice=<its name>``, which the llama.cpp backend turns into a
  grammar, so the call is well-formed. After a tool round the decision runs again (bounded as
  above), unless every call of the round repeated an earlier call of the run (same tool, same
  arguments): then the model has those results and answers (measured: SmolLM2 otherwise repeats
  one call until the round budget is spent). ``web_search="auto"`` with no other tool keeps its own
  search/answer step (:func:`graphs._nodes.decide_search`).
* **Running calls** (:func:`run_tools`): every call of a turn runs concurrently, each under its
  timeout (the tool's own, else ``ChatLimits.tool_timeout``, never past the loop's wall time). Bad
  JSON, invalid arguments, an unknown tool, an exception, a timeout: each becomes an error result
  the model reads and a ``tool.result`` step with ``error`` set. Results are clipped to
  ``max_tool_result_chars``. A search call's results get their ``[n]`` numbers when it finishes
  (after every source known before; a URL seen before keeps its number), and the results go back
  to the model in call order.
* **The caller's tools**: their calls are not run. When a turn has any, the graph runs its own calls
  of that turn (their steps and search results are reported), then ends the run with the caller's
  calls as ``tool_calls``. The caller's ``tool`` messages continue the conversation in the next
  request; our own calls of that turn are not part of it (the model calls them again if it still
  needs them; searches are cached), which keeps the server stateless and the conversation valid
  OpenAI.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from langgraph.config import get_stream_writer
from langgraph.runtime import Runtime

from graphs import _prompts as prompts
from graphs._events import BudgetExhausted, SearchDecided, ToolCalled, ToolDecided, ToolResult
from graphs._searching import (
    Searched,
    emit_completed,
    emit_images,
    image_result_text,
    number,
    search_images,
    search_text,
    tool_result_text,
)
from graphs._state import ChatDeps, ChatLimits, ChatState, SearchDecision, ToolDecision, ToolRun, results_wanted
from graphs._toolbox import BUILTIN_TOOLS, SEARCH_BUILTINS
from graphs.model import Message, ModelRequest, SamplingParams, ToolCall, ToolSpec
from tools import ImageResult, SearchResult, ToolArgumentsError

__all__ = [
    "available_tools",
    "decide_tool",
    "exhausted_budget",
    "offered_tools",
    "route_after_tools",
    "route_to_model",
    "run_tools",
    "uses_search_decision",
]

# The decision is one enum value; tool names can take a dozen tokens.
TOOL_DECISION_SAMPLING = SamplingParams(temperature=0.0, max_tokens=24)
#: Characters of a tool's result shown in its ``tool.result`` step and in ``tool_runs``.
PREVIEW_CHARS = 200
#: Characters of an unusable decision-step reply quoted in the decision's reason.
DECISION_REPLY_CHARS = 80

_Kind = Literal["function", "search", "images"]


# --- what a turn is offered ------------------------------------------------------------------


def available_tools(state: ChatState, deps: ChatDeps, *, clock: bool = True) -> tuple[ToolSpec, ...]:
    """Every tool the next model turn may call, after ``tool_choice="none"`` and the budgets
    (``clock=False``: not the wall-time budget, which the calls of a turn offered in time only
    shorten, through their timeouts)."""
    request = state["request"]
    config = request.tools
    if config.choice == "none" or _loop_spent(state, deps.limits, clock=clock):
        return ()
    if state.get("repeated_round") and not state["capabilities"].tool_calling:
        return ()  # a decision-step model repeating itself: it has the results, it must answer
    specs = config.specs(web_search=request.web_search == "auto")
    if state.get("search_rounds", 0) >= deps.limits.max_search_rounds:
        specs = tuple(s for s in specs if s.name not in BUILTIN_TOOLS)
    return specs


def offered_tools(state: ChatState, deps: ChatDeps) -> tuple[tuple[ToolSpec, ...], str]:
    """The tools handed to the model for the next turn, and the ``tool_choice`` that goes with them."""
    specs = available_tools(state, deps)
    if not specs:
        return (), "auto"
    choice = _forced_choice(state, specs)
    if state["capabilities"].tool_calling or choice != "auto":
        return specs, choice
    decision = state.get("tool_decision")
    if decision is not None and decision.round == state.get("tool_rounds", 0) and decision.tool is not None:
        return specs, decision.tool
    return (), "auto"  # no native tool calling and no decision for a tool: answer


def uses_search_decision(state: ChatState, deps: ChatDeps) -> bool:
    """``web_search="auto"`` alone on a model without native tool calling: the search/answer step."""
    if state["capabilities"].tool_calling or state["request"].web_search != "auto":
        return False
    specs = available_tools(state, deps)
    return [s.name for s in specs] == ["web_search"] and _forced_choice(state, specs) == "auto"


def route_to_model(state: ChatState, runtime: Runtime[ChatDeps]) -> Literal["decide_tool", "generate"]:
    """Before a model turn: the tool decision step when the model needs one, else generate."""
    return "decide_tool" if _needs_decision(state, runtime.context) else "generate"


def route_after_tools(state: ChatState, runtime: Runtime[ChatDeps]) -> Literal["finish", "decide_tool", "generate"]:
    """Hand the caller's calls back, or go on to the next model turn."""
    if state.get("pending_calls"):
        return "finish"
    return route_to_model(state, runtime)


def _needs_decision(state: ChatState, deps: ChatDeps) -> bool:
    if state["capabilities"].tool_calling or uses_search_decision(state, deps):
        return False
    specs = available_tools(state, deps)
    if not specs or _forced_choice(state, specs) != "auto":
        return False
    decision = state.get("tool_decision")
    return decision is None or decision.round != state.get("tool_rounds", 0)


def _forced_choice(state: ChatState, specs: tuple[ToolSpec, ...]) -> str:
    choice = state["request"].tools.choice
    if choice in ("auto", "none") or state.get("tool_rounds", 0) > 0:
        return "auto"
    return choice if choice == "required" or choice in {s.name for s in specs} else "auto"


def exhausted_budget(state: ChatState, deps: ChatDeps) -> BudgetExhausted | None:
    """The loop budget that leaves the next turn without the tools it would otherwise be offered."""
    config, limits = state["request"].tools, deps.limits
    specs = config.specs(web_search=state["request"].web_search == "auto")
    if config.choice == "none" or not specs or available_tools(state, deps):
        return None
    if state.get("tool_rounds", 0) >= limits.max_tool_rounds:
        return BudgetExhausted(budget="max_tool_rounds", limit=limits.max_tool_rounds)
    if _loop_spent(state, limits, clock=True):
        return BudgetExhausted(budget="tool_loop_seconds", limit=limits.tool_loop_seconds)
    if state.get("search_rounds", 0) >= limits.max_search_rounds:
        return BudgetExhausted(budget="max_search_rounds", limit=limits.max_search_rounds)
    return None  # withdrawn for another reason (a decision-step model repeating itself)


def _loop_spent(state: ChatState, limits: ChatLimits, *, clock: bool) -> bool:
    if state.get("tool_rounds", 0) >= limits.max_tool_rounds:
        return True
    return clock and time.monotonic() - state.get("started_at", time.monotonic()) >= limits.tool_loop_seconds


# --- the decision step -----------------------------------------------------------------------


async def decide_tool(state: ChatState, runtime: Runtime[ChatDeps]) -> ChatState:
    """For a model without native tool calling: a constrained "which tool, or answer" decision."""
    deps, request = runtime.context, state["request"]
    specs = list(available_tools(state, deps))
    names = [s.name for s in specs]
    schema = prompts.tool_decision_schema(specs) if state["capabilities"].json_schema else None
    messages = prompts.tool_decision_messages([*request.messages, *state.get("turns", [])], specs)
    result = await deps.model.complete(
        ModelRequest(model=request.model, messages=tuple(messages), sampling=TOOL_DECISION_SAMPLING,
                     json_schema=schema)
    )
    tool = prompts.parse_tool_decision(result.content, names)
    reason = _decision_reason(tool, result.content)
    writer = get_stream_writer()
    writer(ToolDecided(tool=tool, reason=reason))
    update: ChatState = {"tool_decision": ToolDecision(state.get("tool_rounds", 0), tool),
                              "usage": result.usage, "model_calls": 1}
    if "web_search" in names and state.get("decision") is None:
        update["decision"] = SearchDecision(tool == "web_search", reason)
        writer(SearchDecided(search=tool == "web_search", reason=reason, method="decision_step"))
    return update


def _decision_reason(tool: str | None, reply: str) -> str:
    if tool is not None:
        return f"the decision step chose {tool}"
    if prompts.parse_tool_decision(reply, [prompts.NO_TOOL]) is not None:
        return "the decision step chose to answer without a tool"
    quoted = reply.strip()[:DECISION_REPLY_CHARS]
    return f"the decision step answered {quoted!r}, which names no tool; answering without one"


# --- running a turn's calls ------------------------------------------------------------------


@dataclass(slots=True)
class _Run:
    """One call the graph ran, and what came of it."""

    call: ToolCall
    kind: _Kind
    content: str = ""
    error: str | None = None
    duration_ms: int = 0
    query: str = ""
    text_search: Searched[SearchResult] = field(default_factory=Searched)
    image_search: Searched[ImageResult] = field(default_factory=Searched)
    new_sources: list[SearchResult] = field(default_factory=list)


@dataclass(slots=True)
class _Turn:
    """What the calls of one turn share: the sources known so far, so each search finishing numbers
    its results after those (a URL seen before keeps its number)."""

    sources: list[SearchResult]
    abstains: bool = True  # Capabilities.abstains: may the search instruction offer "not in the results"


async def run_tools(state: ChatState, runtime: Runtime[ChatDeps]) -> ChatState:
    """Run the last turn's calls of our tools concurrently; set the caller's calls aside for the caller."""
    deps, config = runtime.context, state["request"].tools
    calls = state["turns"][-1].tool_calls
    writer = get_stream_writer()
    for call in calls:
        runs_on: Literal["graph", "caller"] = "caller" if config.is_external(call.name) else "graph"
        writer(ToolCalled(name=call.name, arguments=call.arguments, call_id=call.id, runs_on=runs_on))
    offered = {s.name for s in available_tools(state, deps, clock=False)}
    ours = [c for c in calls if not config.is_external(c.name)]
    turn = _Turn(list(state.get("sources", [])), state["capabilities"].abstains)
    runs = await asyncio.gather(*(_run(c, i, offered, turn, state, deps) for i, c in enumerate(ours)))
    update = _merge(runs)
    update["pending_calls"] = tuple(c for c in calls if config.is_external(c.name))
    earlier = {(r.name, _canonical(r.arguments)) for r in state.get("tool_runs", [])}
    update["repeated_round"] = bool(ours) and all((c.name, _canonical(c.arguments)) in earlier for c in ours)
    return update


def _canonical(arguments: str) -> str:
    try:
        return json.dumps(json.loads(arguments), sort_keys=True)
    except ValueError:
        return arguments


async def _run(
    call: ToolCall, index: int, offered: set[str], turn: _Turn, state: ChatState, deps: ChatDeps
) -> _Run:
    limits = deps.limits
    run = _Run(call, _kind(call.name))
    bound = state["request"].tools.find(call.name)
    remaining = state.get("started_at", time.monotonic()) + limits.tool_loop_seconds - time.monotonic()
    timeout = max(0.0, min(bound.timeout if bound and bound.timeout else limits.tool_timeout, remaining))
    timer = asyncio.timeout(timeout)
    started = time.monotonic()
    try:
        if index >= limits.max_tool_calls_per_turn:
            raise _Refused(f"too many calls in one turn: only the first {limits.max_tool_calls_per_turn} run")
        if call.name not in offered:
            raise _Refused(f"no tool {call.name!r} is available now; the tools are: "
                          f"{', '.join(sorted(offered)) or '(none)'}")
        arguments = _arguments(call)
        async with timer:
            await _dispatch(run, arguments, state, deps)
    except (ToolArgumentsError, _Refused) as exc:
        run.error = str(exc)
    except TimeoutError as exc:
        run.error = f"timed out after {timeout:.3g} s" if timer.expired() else f"TimeoutError: {exc}"
    except Exception as exc:  # a failing tool is a result the model reads, never the end of the run
        run.error = f"{type(exc).__name__}: {exc}"
    run.duration_ms = round((time.monotonic() - started) * 1000)
    _result_content(run, turn)
    get_stream_writer()(ToolResult(name=call.name, call_id=call.id, duration_ms=run.duration_ms,
                                   error=run.error, preview=_preview(run)))
    return run


class _Refused(Exception):
    """A call the graph does not run (unknown tool, over the per-turn limit); its message is the result."""


def _kind(name: str) -> _Kind:
    if name in SEARCH_BUILTINS:
        return "search"
    return "images" if name == "image_search" else "function"


def _arguments(call: ToolCall) -> dict[str, Any]:
    shown = call.arguments if len(call.arguments) <= PREVIEW_CHARS else call.arguments[:PREVIEW_CHARS] + "…"
    try:
        value = json.loads(call.arguments or "{}")
    except ValueError as exc:
        message = f"invalid arguments {shown!r}: not valid JSON ({exc}); write them as a JSON object"
        raise ToolArgumentsError(message, tool=call.name, errors=[{"path": "", "message": str(exc)}]) from None
    if not isinstance(value, dict):
        message = f"invalid arguments {shown!r}: they must be a JSON object"
        raise ToolArgumentsError(message, tool=call.name, errors=[{"path": "", "message": "not an object"}])
    return value


async def _dispatch(run: _Run, arguments: dict[str, Any], state: ChatState, deps: ChatDeps) -> None:
    name, limits = run.call.name, deps.limits
    if run.kind == "search":
        run.query = _query(run.call, arguments)
        backend = deps.search if name == "web_search" else deps.local_search
        run.text_search = await search_text(backend, run.query, results_wanted(state, limits))
        run.error = run.text_search.error
    elif run.kind == "images":
        run.query = _query(run.call, arguments)
        run.image_search = await search_images(deps.search, run.query, limits.max_images)
        run.error = run.image_search.error
        emit_images(run.query, run.image_search)
    else:
        bound = state["request"].tools.find(name)
        assert bound is not None, "only offered tools are dispatched"
        output = await bound.toolset.call_tool(name, arguments)
        run.content = _clip(output.content, limits.max_tool_result_chars)
        if output.is_error:
            run.error = output.content[:PREVIEW_CHARS] or "the tool reported an error"


def _query(call: ToolCall, arguments: dict[str, Any]) -> str:
    query = arguments.get("query")
    if not isinstance(query, str) or not prompts.sanitize_query(query):
        raise ToolArgumentsError(f'invalid arguments {call.arguments[:PREVIEW_CHARS]!r}: expected {{"query": "..."}}',
                                 tool=call.name, errors=[{"path": "/query", "message": "a non-empty string"}])
    return prompts.sanitize_query(query)


def _result_content(run: _Run, turn: _Turn) -> None:
    """The text the model reads for a finished call; a search's results get their ``[n]`` numbers here."""
    if run.kind == "search":
        new, ids = number(turn.sources, run.text_search.results)
        turn.sources += new
        run.new_sources = new
        if run.error is None:  # a failed call (search, arguments, timeout) has no results to list
            emit_completed(run.query, run.text_search, ids, turn.sources)
        run.content = tool_result_text(run.text_search.results, ids, run.error, turn.abstains)
    elif run.kind == "images":
        run.content = image_result_text(run.image_search.results, run.error)
    elif run.error is not None and not run.content:
        run.content = f"Error: {run.error}"


def _merge(runs: list[_Run]) -> ChatState:
    """The state update for a finished turn: new sources, tool messages, search bookkeeping, records."""
    update: ChatState = {"turns": [], "sources": [], "queries": [], "search_errors": [], "images": [],
                              "tool_runs": [], "tool_rounds": 1}
    for run in runs:
        update["sources"] += run.new_sources
        update["images"] += run.image_search.results
        if run.kind != "function":
            update["queries"] += [run.query] if run.query else []
            update["search_errors"] += [run.error] if run.error else []
            update["search_rounds"] = 1 if run.query else update.get("search_rounds", 0)
        update["turns"].append(Message(role="tool", content=run.content, tool_call_id=run.call.id, name=run.call.name))
        update["tool_runs"].append(ToolRun(run.call.id, run.call.name, run.call.arguments, run.duration_ms,
                                           run.error, _preview(run)))
    return update


def _preview(run: _Run) -> str:
    if run.kind == "search" and run.error is None:
        return f"{len(run.text_search.results)} results from {run.text_search.backend}"
    if run.kind == "images" and run.error is None:
        return f"{len(run.image_search.results)} images from {run.image_search.backend}"
    text = run.content or run.error or ""
    return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS] + "…"


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n… (clipped: {len(text) - limit} more characters)"
