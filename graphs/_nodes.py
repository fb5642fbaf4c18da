"""The chat graph's nodes and routers (module-level functions; the builder in ``_chat`` wires them).

What a stream shows and what the final content is
--------------------------------------------------

Every model turn of :func:`generate` streams its text as ``token`` events, preceded by a
``generation.started`` step (``attempt`` counts the turns). The side calls (search decision,
query planning, tool decision) are never streamed. Two rules follow:

* **Text before a tool call.** A model may write some text and then call a tool ("Let me look
  that up."). That text was streamed, and outside JSON mode it stays in the answer: the final
  content is the visible text of every model turn, in order, each later turn's text separated
  from the text before it by a blank line (:data:`TURN_SEPARATOR`, streamed as a token too).
  So a non-streamed response's ``content`` equals the concatenated content deltas of the same
  run streamed, and ``[n]`` annotation offsets index into both.
* **JSON mode.** The content is the validated JSON alone: the last attempt's output,
  normalised. Each attempt's tokens were streamed as they came; an attempt that fails validation
  is followed by a ``validation.failed`` step, and a stream consumer must treat the content
  received since the last ``generation.started`` step as superseded when ``validation.failed``
  arrives (the next attempt starts with a new ``generation.started``). Text a JSON-mode turn
  wrote before a tool call is likewise not part of the content; only the text after the last
  ``generation.started`` is the answer (``validation.passed`` confirms it).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from langgraph.config import get_stream_writer
from langgraph.runtime import Runtime

from graphs import _prompts as prompts
from graphs._events import GenerationStarted, QueryPlanned, SearchDecided, Token
from graphs._searching import emit_completed, emit_images, number, search_images, search_text
from graphs._state import ChatDeps, ChatState, SearchDecision, results_wanted
from graphs._tools import exhausted_budget, offered_tools, route_to_model, uses_search_decision
from graphs._validate import json_mode_messages
from graphs.model import Message, ModelRequest, ModelResult, SamplingParams, TextDelta, ToolCall
from tools import PartialJson

__all__ = [
    "decide_search",
    "finish",
    "generate",
    "image_search",
    "plan_query",
    "route_after_decision",
    "route_after_generate",
    "route_after_plan",
    "route_start",
    "web_search",
]

# Planning and deciding are short, deterministic side calls.
PLANNER_SAMPLING = SamplingParams(temperature=0.0, max_tokens=32)
DECISION_SAMPLING = SamplingParams(temperature=0.0, max_tokens=8)
#: Streamed (and kept in the answer) between the text of one model turn and the next, outside JSON mode.
TURN_SEPARATOR = "\n\n"


def conversation(state: ChatState) -> list[Message]:
    """The caller's messages plus the turns the graph added (tool calls and their results)."""
    return [*state["request"].messages, *state.get("turns", [])]


# --- routers ---------------------------------------------------------------------------------


def route_start(
    state: ChatState, runtime: Runtime[ChatDeps]
) -> Literal["generate", "plan_query", "decide_search", "decide_tool"]:
    """Pick the first node from the ``web_search`` mode, the tools and the model's tool-calling ability."""
    if state["request"].web_search in ("force", "images"):
        return "plan_query"
    if uses_search_decision(state, runtime.context):
        return "decide_search"
    return route_to_model(state, runtime)


def route_after_decision(state: ChatState) -> Literal["plan_query", "generate"]:
    """Search when the decision step said so."""
    decision = state.get("decision")
    return "plan_query" if decision is not None and decision.searched else "generate"


def route_after_plan(state: ChatState) -> Literal["image_search", "web_search"]:
    """Images mode searches images; every other mode searches text."""
    return "image_search" if state["request"].web_search == "images" else "web_search"


def route_after_generate(state: ChatState) -> Literal["tools", "validate", "finish"]:
    """Loop through the tools while the model calls them, then validate JSON mode, then finish."""
    turns = state.get("turns", [])
    if turns and turns[-1].role == "assistant" and turns[-1].tool_calls:
        return "tools"
    if state["request"].response_format is not None:
        return "validate"
    return "finish"


# --- nodes -----------------------------------------------------------------------------------


async def decide_search(state: ChatState, runtime: Runtime[ChatDeps]) -> ChatState:
    """``auto`` for models without tool calling: a constrained search/answer decision."""
    request = state["request"]
    schema = prompts.DECISION_SCHEMA if state["capabilities"].json_schema else None
    result = await runtime.context.model.complete(
        ModelRequest(
            model=request.model,
            messages=tuple(prompts.decision_messages(list(request.messages))),
            sampling=DECISION_SAMPLING,
            json_schema=schema,
        )
    )
    verdict = prompts.parse_decision(result.content)
    if verdict is None:
        searched, reason = True, f"the decision step answered {result.content.strip()!r}; searching to be safe"
    else:
        searched = verdict
        reason = "the model decided " + ("to search" if verdict else "to answer without searching")
    get_stream_writer()(SearchDecided(search=searched, reason=reason, method="decision_step"))
    return {"decision": SearchDecision(searched, reason), "usage": result.usage, "model_calls": 1}


async def plan_query(state: ChatState, runtime: Runtime[ChatDeps]) -> ChatState:
    """Write the search query: by the model when it is capable, else from the conversation."""
    messages = conversation(state)
    update: ChatState = {}
    query, planner = "", "conversation"
    if state["capabilities"].tool_calling:
        result = await runtime.context.model.complete(
            ModelRequest(
                model=state["request"].model,
                messages=tuple(prompts.planner_messages(messages)),
                sampling=PLANNER_SAMPLING,
            )
        )
        query, planner = prompts.sanitize_query(result.content), "model"
        update = {"usage": result.usage, "model_calls": 1}
    if not query:
        query, planner = prompts.conversation_query(messages), "conversation"
    get_stream_writer()(QueryPlanned(query=query, planner=planner))  # type: ignore[arg-type]
    return {**update, "queries": [query]}


async def web_search(state: ChatState, runtime: Runtime[ChatDeps]) -> ChatState:
    """Search the planned query (the model's own ``web_search`` calls run in the ``tools`` node)."""
    deps = runtime.context
    known = list(state.get("sources", []))
    query = state.get("queries", [""])[-1]
    searched = await search_text(deps.search, query, results_wanted(state, deps.limits))
    new, ids = number(known, searched.results)
    emit_completed(query, searched, ids, [*known, *new])
    errors = [searched.error] if searched.error else []
    return {"sources": new, "search_rounds": 1, "search_errors": errors, "planned_search": True}


async def image_search(state: ChatState, runtime: Runtime[ChatDeps]) -> ChatState:
    """Search images for the planned query."""
    deps = runtime.context
    query = state.get("queries", [""])[-1]
    searched = await search_images(deps.search, query, deps.limits.max_images)
    emit_images(query, searched)
    errors = [searched.error] if searched.error else []
    return {"images": searched.results, "search_rounds": 1, "search_errors": errors}


async def generate(state: ChatState, runtime: Runtime[ChatDeps]) -> ChatState:
    """Call the model with the conversation and whatever data the run gathered; stream its tokens."""
    request = state["request"]
    tools, tool_choice = offered_tools(state, runtime.context)
    attempt = state.get("generations", 0) + 1
    writer = get_stream_writer()
    budget = None if tools else exhausted_budget(state, runtime.context)
    if budget is not None and state.get("budget_exhausted") is None:
        writer(budget)  # before the turn: the model now answers with what it has
    writer(GenerationStarted(model=request.model, attempt=attempt))
    model_request = ModelRequest(
        model=request.model,
        messages=tuple(json_mode_messages(state, _model_messages(state))),
        sampling=request.sampling,
        tools=tools,
        tool_choice=tool_choice,
        parallel_tool_calls=request.parallel_tool_calls,
        extra=request.extra,
        max_tokens_field=request.max_tokens_field,
        **_json_mode_kwargs(state),
    )
    json_mode = request.response_format is not None
    separator = "" if json_mode or not "".join(state.get("said", [])) else TURN_SEPARATOR
    result = await _stream(runtime.context, model_request, json_mode=json_mode, separator=separator)
    if not request.parallel_tool_calls and len(result.tool_calls) > 1:
        # The caller allowed one call per turn; a model that made more (one without native support
        # for the flag) gets its first one run, as OpenAI's own models would have made only that.
        result = dataclasses.replace(result, tool_calls=result.tool_calls[:1])
    update: ChatState = {"result": result, "usage": result.usage, "model_calls": 1, "generations": 1,
                         "said": [separator + result.content if result.content else ""]}
    if budget is not None and state.get("budget_exhausted") is None:
        update["budget_exhausted"] = budget
    if tools and result.tool_calls:
        update["turns"] = [Message(role="assistant", content=result.content, tool_calls=result.tool_calls)]
    if request.web_search == "auto" and state.get("decision") is None:
        decision = _tool_decision(result.tool_calls if tools else ())
        update["decision"] = decision
        writer(SearchDecided(search=decision.searched, reason=decision.reason, method="tool_call"))
    return update


def finish(state: ChatState) -> ChatState:
    """Final answer text (see the module docstring); in images mode the images are appended inline as markdown.

    Not a node of its own: the graph adds it to the update of the step that ends the run (see
    :func:`graphs._chat.build_chat_graph`)."""
    if state["request"].response_format is not None:
        result = state.get("result")
        # The validated JSON alone; the images stay in the response's `images` field (markdown would break it).
        return {"answer": result.content if result is not None else ""}
    content = "".join(state.get("said", []))  # every turn's streamed text, so stream and non-stream agree
    images = state.get("images", [])
    if state["request"].web_search == "images" and images:
        suffix = "\n\n" + "\n".join(f"![{_md_text(i.title)}]({i.image_url})" for i in images)
        get_stream_writer()(Token(text=suffix))
        content += suffix
    return {"answer": content}


# --- helpers ---------------------------------------------------------------------------------


def _model_messages(state: ChatState) -> list[Message]:
    request = state["request"]
    messages = conversation(state)
    if not state["capabilities"].tool_calling:
        messages = prompts.fold_tool_turns(messages)  # tool results as data in front of the question
    if request.web_search == "images":
        block = prompts.format_images(state.get("images", []))
        return prompts.grounded_messages(messages, block, prompts.IMAGE_INSTRUCTIONS)
    if state.get("planned_search"):
        block = prompts.format_results(state.get("sources", []))
        # A failed search is reported as such (search.failed, web_search.errors), not as "found nothing".
        found = bool(state.get("sources") or state.get("search_errors"))
        instructions = prompts.search_instructions(state["capabilities"].abstains, found)
        return prompts.grounded_messages(messages, block, instructions)
    return messages


def _json_mode_kwargs(state: ChatState) -> dict[str, Any]:
    spec = state["request"].response_format
    if spec is None:
        return {}
    caps = state["capabilities"]
    schema = getattr(spec, "schema", None)
    return {
        "json_schema": schema if caps.json_schema else None,
        "json_object": caps.json_object or caps.json_schema,
        # The caller's names for the schema go upstream with it (OpenAI's response_format.json_schema).
        "json_schema_name": getattr(spec, "name", "response"),
        "json_schema_description": getattr(spec, "description", None),
        "json_schema_strict": bool(getattr(spec, "strict", False)),
    }


async def _stream(deps: ChatDeps, request: ModelRequest, *, json_mode: bool, separator: str) -> ModelResult:
    """The model's result, its text streamed as tokens (after ``separator``, once, if any text comes)."""
    writer = get_stream_writer()
    partial = PartialJson() if json_mode else None  # JSON mode: each token carries the object so far
    pending = separator

    def on_delta(delta: TextDelta) -> None:
        nonlocal pending
        text, pending = pending + delta.text, ""
        writer(Token(text=text, partial=partial.feed(delta.text) if partial is not None else None))

    return await deps.model.complete(request, on_delta=on_delta)


def _tool_decision(calls: tuple[ToolCall, ...]) -> SearchDecision:
    searches = [c for c in calls if c.name == prompts.WEB_SEARCH_TOOL.name]
    if not searches:
        return SearchDecision(False, "the model answered without calling web_search")
    return SearchDecision(True, f"the model called web_search({searches[0].arguments})")


def _md_text(text: str) -> str:
    # Brackets in a title would end the markdown alt text early.
    return text.replace("[", "(").replace("]", ")").replace("\n", " ")
