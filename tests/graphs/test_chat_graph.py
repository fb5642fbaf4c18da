"""The chat graph's state handling: growing keys folded by the graph, the final state run_chat reports."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from graphs import (
    Capabilities,
    ChatDeps,
    ChatOutcome,
    ChatRequest,
    Message,
    ModelBackend,
    ModelEvent,
    ModelRequest,
    ModelResult,
    TextDelta,
    Token,
    ToolCall,
    Usage,
    build_chat_graph,
    run_chat,
)
from graphs._state import ChatState, fold
from tests.fakes import FakeSearch
from tools import SearchResult

QUESTION = (Message(role="user", content="Who directed 2001?"),)
SEARCH_CALL = ToolCall(id="call_1", name="web_search", arguments='{"query": "2001 director"}')


class SearchThenAnswer(ModelBackend):
    """Calls web_search on its first turn, answers on the next; each turn costs 3 + 2 tokens."""

    name = "search-then-answer"

    def __init__(self) -> None:
        self.turns = 0

    async def list_models(self) -> list[str]:
        return ["m"]

    def capabilities(self, model: str) -> Capabilities:
        return Capabilities(tool_calling=True)

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        self.turns += 1
        usage = Usage(prompt_tokens=3, completion_tokens=2)
        if self.turns == 1:
            yield TextDelta("Let me check.")
            yield ModelResult(content="Let me check.", finish_reason="tool_calls", tool_calls=(SEARCH_CALL,),
                              usage=usage)
            return
        for piece in ("Stanley ", "Kubrick [1]."):
            yield TextDelta(piece)
        yield ModelResult(content="Stanley Kubrick [1].", usage=usage)


def _request() -> ChatRequest:
    return ChatRequest(model="m", messages=QUESTION, web_search="auto")


def test_fold_adds_to_growing_keys_and_replaces_the_rest() -> None:
    first = SearchResult("A", "https://a.example", "a", "fake")
    state: ChatState = {"said": ["one"], "model_calls": 1, "usage": Usage(1, 1), "answer": "old"}
    update: ChatState = {"said": ["two"], "model_calls": 1, "usage": Usage(2, 3), "answer": "new", "sources": [first]}

    folded = fold(state, update)

    assert folded == {"said": ["one", "two"], "model_calls": 2, "usage": Usage(3, 4), "answer": "new",
                      "sources": [first]}
    assert state == {"said": ["one"], "model_calls": 1, "usage": Usage(1, 1), "answer": "old"}


async def test_run_chat_reports_every_step_of_a_tool_loop() -> None:
    search = FakeSearch()
    events: list[Any] = [e async for e in run_chat(_request(), ChatDeps(SearchThenAnswer(), search),
                                                    Capabilities(tool_calling=True))]

    outcome = events[-1]
    assert isinstance(outcome, ChatOutcome)
    streamed = "".join(e.text for e in events if isinstance(e, Token))
    assert outcome.content == streamed == "Let me check.\n\nStanley Kubrick [1]."
    assert outcome.finish_reason == "stop"
    assert (outcome.model_calls, outcome.usage) == (2, Usage(prompt_tokens=6, completion_tokens=4))
    assert outcome.queries == ("2001 director",)
    assert outcome.sources == tuple(search.results)
    assert [run.name for run in outcome.tool_runs] == ["web_search"]
    assert outcome.decision is not None and outcome.decision.searched


async def test_the_compiled_graph_run_on_its_own_ends_with_the_answer_and_the_whole_state() -> None:
    search = FakeSearch()
    initial: ChatState = {"request": _request(), "capabilities": Capabilities(tool_calling=True)}

    state = await build_chat_graph().ainvoke(initial, context=ChatDeps(SearchThenAnswer(), search))

    assert state["answer"] == "Let me check.\n\nStanley Kubrick [1]."
    assert (state["model_calls"], state["generations"], state["tool_rounds"], state["search_rounds"]) == (2, 2, 1, 1)
    assert [t.role for t in state["turns"]] == ["assistant", "tool"]
    assert state["sources"] == search.results
    assert state["usage"] == Usage(prompt_tokens=6, completion_tokens=4)
