"""Issue 10 row 16: a run cut by a loop budget says so. The turn after the budget is spent gets no
tools and a ``budget.exhausted`` step naming the budget; a model that still answers nothing ends the
run with ``finish_reason="length"`` and ``incomplete_details`` naming the budget, never an empty
``"stop"``."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import agent as studiolm
from agent import ScriptedCall, ScriptedModel, ScriptedReply
from graphs import ChatLimits
from tests.fakes import FakeSearch

QUESTION = [{"role": "user", "content": "What is the answer?"}]


def tick() -> str:
    """Count once more."""
    return "tick"


async def slow() -> str:
    """Take a while."""
    await asyncio.sleep(0.15)
    return "done"


def forever(name: str, arguments: dict[str, Any] | None = None) -> ScriptedModel:
    """A model that calls ``name`` on every turn, also when no tool is offered any more."""
    return ScriptedModel([ScriptedReply(tool_calls=(ScriptedCall(name, arguments or {}),))])


def run(model: ScriptedModel, limits: ChatLimits, *, stream: bool, **params: Any) -> tuple[str, list[Any], Any]:
    """(answer, step payloads, response body or final chunk) through the SDK."""
    with studiolm.Client(backend=model, search=FakeSearch(), limits=limits) as client:
        result = client.chat.completions.create(model="scripted", messages=QUESTION, stream=stream, **params)
        if not stream:
            return result["choices"][0]["message"]["content"] or "", [], result
        text, steps, final = "", [], None
        for chunk in result:
            text += chunk["choices"][0]["delta"].get("content", "") or "" if chunk["choices"] else ""
            steps += [chunk["step"]] if "step" in chunk else []
            final = chunk if chunk["choices"] and chunk["choices"][0]["finish_reason"] else final
        return text, steps, final


CASES = [
    pytest.param(lambda: forever("tick"), ChatLimits(max_tool_rounds=2), {"tools": [tick]},
                 "max_tool_rounds", 2, id="max_tool_rounds"),
    pytest.param(lambda: forever("slow"), ChatLimits(tool_loop_seconds=0.2, max_tool_rounds=50, step_limit=200),
                 {"tools": [slow]}, "tool_loop_seconds", 0.2, id="tool_loop_seconds"),
    pytest.param(lambda: forever("web_search", {"query": "again"}), ChatLimits(max_search_rounds=2),
                 {"web_search": "auto"}, "max_search_rounds", 2, id="max_search_rounds"),
]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("make_model", "limits", "params", "budget", "limit"), CASES)
def test_a_run_cut_by_a_budget_with_no_answer_says_so(
    make_model: Any, limits: ChatLimits, params: dict[str, Any], budget: str, limit: float, stream: bool
) -> None:
    model = make_model()
    text, steps, body = run(model, limits, stream=stream, **params)
    assert text == ""
    assert model.requests[-1].tools == ()  # the last turn was asked to answer with what it had
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["incomplete_details"] == {"reason": budget, "limit": limit}
    if stream:
        exhausted = [s for s in steps if s["type"] == "budget.exhausted"]
        assert exhausted == [{"type": "budget.exhausted", "budget": budget, "limit": limit}]


@pytest.mark.parametrize("stream", [False, True])
def test_a_model_that_answers_after_the_budget_finishes_normally_and_the_step_says_why(stream: bool) -> None:
    call = ScriptedReply(tool_calls=(ScriptedCall("tick", {}),))
    model = ScriptedModel([call, call, "Forty-two."])
    text, steps, body = run(model, ChatLimits(max_tool_rounds=2), stream=stream, tools=[tick])
    assert text == "Forty-two."
    assert body["choices"][0]["finish_reason"] == "stop"
    assert "incomplete_details" not in body
    if stream:
        assert {"type": "budget.exhausted", "budget": "max_tool_rounds", "limit": 2} in steps


def test_a_run_within_its_budgets_reports_no_budget() -> None:
    model = ScriptedModel([ScriptedReply(tool_calls=(ScriptedCall("tick", {}),)), "Done."])
    text, steps, body = run(model, ChatLimits(max_tool_rounds=2), stream=True, tools=[tick])
    assert text == "Done." and body["choices"][0]["finish_reason"] == "stop"
    assert not [s for s in steps if s["type"] == "budget.exhausted"]
    assert "incomplete_details" not in body


def test_tool_choice_none_is_not_a_budget() -> None:
    model = ScriptedModel(["Fine."])
    text, steps, body = run(model, ChatLimits(max_tool_rounds=0), stream=True, tools=[tick], tool_choice="none")
    assert not [s for s in steps if s["type"] == "budget.exhausted"]
    assert text == "Fine." and body["choices"][0]["finish_reason"] == "stop"
