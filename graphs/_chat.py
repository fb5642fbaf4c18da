"""The chat-completions graph: builder and runner.

::

    START ─┬─ off ─────────────────────────────────────► (decide_tool) ─► generate ─► (validate) ─► finish
           ├─ force ──► plan_query ─► web_search ───────► (decide_tool) ─► generate
           ├─ images ─► plan_query ─► image_search ─────► (decide_tool) ─► generate
           └─ auto ─┬─ tool-calling model ──────────────► generate
                    ├─ other models, other tools too ───► decide_tool ─► generate
                    └─ other models, web_search alone ─► decide_search ─┬─ search ─► plan_query ─► …
                                                                        └─ answer ─► generate

    generate ─┬─ tool calls ─► tools ─┬─ the caller's own calls ─► finish (finish_reason "tool_calls")
              │                       └─ ours only ─► (decide_tool) ─► generate   (loop, bounded)
              ├─ JSON mode ─► validate
              └─ finish

``decide_tool`` runs for models without native tool calling when tools are on offer (see
:mod:`graphs._tools`).

In LangGraph terms each node routes itself: its router runs in the same graph step, on the state
after the node's update, and the node returns a :class:`~langgraph.types.Command` (:func:`_step`).
``finish`` is no graph step of its own but part of the step that ends the run, and the first node
runs as the graph's ``start`` step (:func:`_first_step`). So the plain path is two graph steps
(LangGraph's input step, then ``start`` running ``generate``), and no step copies the state for a
conditional edge. Measured on the plain path with an in-memory model: about half the CPU of
conditional edges, a separate ``finish`` step, reducer channels and ``values`` streaming.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from functools import cache
from typing import Any, Literal, cast, get_args, get_type_hints

from langgraph.errors import GraphRecursionError
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import Command

from graphs._events import ChatEvent
from graphs._nodes import (
    decide_search,
    finish,
    generate,
    image_search,
    plan_query,
    route_after_decision,
    route_after_generate,
    route_after_plan,
    route_start,
    web_search,
)
from graphs._state import ChatDeps, ChatOutcome, ChatRequest, ChatState, fold
from graphs._tools import decide_tool, route_after_tools, route_to_model, run_tools
from graphs._validate import route_after_validate, validate
from graphs.errors import GraphLimitError
from graphs.model import Capabilities, Usage

__all__ = ["build_chat_graph", "last_outcome", "run_chat"]

_Node = Callable[[ChatState, Runtime[ChatDeps]], Awaitable[ChatState]]
_Step = Callable[[ChatState, Runtime[ChatDeps]], Awaitable[Command[str]]]


def build_chat_graph() -> CompiledStateGraph[ChatState, ChatDeps, ChatState, ChatState]:
    """Build and compile the chat graph (see the module docstring for its shape)."""
    graph = StateGraph(ChatState, context_schema=ChatDeps)
    steps: list[tuple[str, _Node, Callable[..., str]]] = [
        ("decide_search", decide_search, route_after_decision),
        ("decide_tool", decide_tool, _to_generate),
        ("tools", run_tools, route_after_tools),
        ("plan_query", plan_query, route_after_plan),
        ("web_search", web_search, route_to_model),
        ("image_search", image_search, route_to_model),
        ("generate", generate, route_after_generate),
        ("validate", validate, route_after_validate),
    ]
    built = {name: _step(node, router) for name, node, router in steps}
    reachable = set(_destinations(*(router for _, _, router in steps)))  # decide_search only ever runs first
    for name, _, router in steps:
        if name in reachable:
            graph.add_node(name, built[name], destinations=_destinations(router))  # type: ignore[call-overload]
    firsts = _destinations(route_start)
    graph.add_node(  # type: ignore[call-overload]
        "start", _first_step(built), destinations=_destinations(*(r for n, _, r in steps if n in firsts))
    )
    graph.add_edge(START, "start")
    return graph.compile()


def _first_step(steps: Mapping[str, _Step]) -> _Step:
    """The run's first step: the node :func:`route_start` picks, run as this graph step (a conditional
    edge from START would cost a copy of every channel and a traced runnable on every run)."""

    async def start(state: ChatState, runtime: Runtime[ChatDeps]) -> Command[str]:
        return await steps[route_start(state, runtime)](state, runtime)

    return start


def _step(node: _Node, router: Callable[..., str]) -> _Step:
    """``node`` followed by ``router`` in one graph step: the node's update folded into the state
    (:func:`graphs._state.fold`), then routed on the state after it.

    Routing inside the node (a :class:`Command`), not by conditional edges, saves LangGraph a copy of
    every channel and a traced runnable per route on every step. ``"finish"`` is not a node either:
    the final answer (:func:`graphs._nodes.finish`) is added to the last node's update, which then
    ends the run, a graph step fewer on every path.
    """
    takes_runtime = len(inspect.signature(router).parameters) > 1

    async def step(state: ChatState, runtime: Runtime[ChatDeps]) -> Command[str]:
        update = fold(state, await node(state, runtime))
        after = cast(ChatState, {**state, **update})
        goto = router(after, runtime) if takes_runtime else router(after)
        if goto == "finish":
            update.update(finish(after))
            goto = END
        return Command(update=update, goto=goto)

    return step


def _destinations(*routers: Callable[..., str]) -> tuple[str, ...]:
    """Where the ``routers`` can send the run, from their ``Literal`` return types (for drawing the graph)."""
    names = [name for router in routers for name in get_args(get_type_hints(router)["return"])]
    return tuple(dict.fromkeys(END if name == "finish" else name for name in names))


def _to_generate(state: ChatState) -> Literal["generate"]:
    return "generate"


@cache
def _compiled() -> CompiledStateGraph[ChatState, ChatDeps, ChatState, ChatState]:
    # Compiling is pure and the compiled graph is stateless between runs, so one serves all.
    return build_chat_graph()


async def last_outcome(events: AsyncGenerator[Any]) -> ChatOutcome:
    """Drain a :func:`run_chat` stream (its step events unread) and return its :class:`ChatOutcome`."""
    outcome: ChatOutcome | None = None
    async for event in events:
        if isinstance(event, ChatOutcome):
            outcome = event
    assert outcome is not None, "run_chat always ends with an outcome"
    return outcome


async def run_chat(
    request: ChatRequest, deps: ChatDeps, capabilities: Capabilities
) -> AsyncGenerator[ChatEvent | ChatOutcome]:
    """Run the graph: yield every step event as it happens, then one :class:`ChatOutcome`."""
    initial: ChatState = {"request": request, "capabilities": capabilities, "usage": Usage(),
                          "started_at": time.monotonic()}
    final: dict[str, Any] = dict(initial)
    stream: AsyncGenerator[Any] = _compiled().astream(  # type: ignore[assignment]
        initial,
        {"recursion_limit": deps.limits.step_limit},
        context=deps,
        # Each step's update, not the whole state after every step ("values"): the nodes write whole
        # values (see _step), so the final state is the input with every update laid over it.
        stream_mode=["custom", "updates"],
    )
    try:
        async for mode, item in stream:
            if mode == "custom":
                yield item
            else:
                for update in item.values():
                    final.update(update or {})
    except GraphRecursionError as exc:
        raise GraphLimitError(
            f"the chat graph did not finish within {deps.limits.step_limit} steps", limit=deps.limits.step_limit
        ) from exc
    finally:
        await stream.aclose()
    yield _outcome(request, cast(ChatState, final))


def _outcome(request: ChatRequest, state: ChatState) -> ChatOutcome:
    result = state.get("result")
    pending = tuple(state.get("pending_calls", ()))
    finish_reason = result.finish_reason if result is not None else "stop"
    if pending:
        finish_reason = "tool_calls"
    elif finish_reason == "tool_calls":
        finish_reason = "stop"  # calls the graph ran, or made after the tools were withdrawn: none is pending
    budget = state.get("budget_exhausted")
    incomplete = budget if budget is not None and not pending and not state.get("answer") else None
    if incomplete is not None:
        # Cut short by a loop budget with no answer: never an empty "stop". "length" is the OpenAI
        # value clients know for "cut short" (their types accept no other); `incomplete` names the budget.
        finish_reason = "length"
    return ChatOutcome(
        content=state.get("answer", ""),
        finish_reason=finish_reason,
        model=request.model,
        mode=request.web_search,
        sources=tuple(state.get("sources", [])),
        images=tuple(state.get("images", [])),
        queries=tuple(state.get("queries", [])),
        decision=state.get("decision"),
        search_errors=tuple(state.get("search_errors", [])),
        usage=state.get("usage", Usage()),
        model_calls=state.get("model_calls", 0),
        validation=tuple(state.get("validation", [])),
        parsed=state.get("parsed"),
        tool_calls=pending,
        tool_runs=tuple(state.get("tool_runs", [])),
        logprobs=result.logprobs if result is not None else (),
        incomplete=incomplete,
    )
