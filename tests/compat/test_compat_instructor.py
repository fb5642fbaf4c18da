"""instructor (over the openai package) against ``studiolm serve``: JSON and TOOLS modes, and
``create_partial`` streaming."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from pydantic import BaseModel

from tests.compat.conftest import API_KEY, MODEL, PERSON, Compat, Reply

# Installed by the Makefile with --no-deps (see pyproject's dev extra); a bare `pip install .[dev]` lacks it.
instructor = pytest.importorskip("instructor")

QUESTION = [{"role": "user", "content": "Who wrote the first program?"}]


class Person(BaseModel):
    """A person and their birth year."""

    name: str
    year: int


def call_offered_tool(body: dict[str, Any]) -> Reply:
    """Call the tool instructor offered (``Person``, or ``PartialPerson`` when streaming partials)."""
    return Reply(tool_calls=[(body["tools"][0]["function"]["name"], PERSON)])


def patched(compat: Compat, mode: instructor.Mode) -> instructor.Instructor:
    client = openai.OpenAI(base_url=compat.base_url, api_key=API_KEY, max_retries=0)
    return instructor.from_openai(client, mode=mode)  # type: ignore[return-value]


def test_json_mode_works_today(compat: Compat) -> None:
    person = patched(compat, instructor.Mode.JSON).chat.completions.create(
        model=MODEL, response_model=Person, messages=QUESTION, max_retries=0)  # type: ignore[arg-type]
    assert person.model_dump() == PERSON
    assert compat.sent[-1]["response_format"] == {"type": "json_object"}


def test_tools_mode_works_today(compat: Compat) -> None:
    compat.upstream.script = [Reply(tool_calls=[("Person", PERSON)])]
    person = patched(compat, instructor.Mode.TOOLS).chat.completions.create(
        model=MODEL, response_model=Person, messages=QUESTION, max_retries=0)  # type: ignore[arg-type]
    assert person.model_dump() == PERSON
    assert compat.sent[-1]["tool_choice"] == {"type": "function", "function": {"name": "Person"}}
    assert compat.forwarded[-1]["tools"][0]["function"]["name"] == "Person"


def test_tools_mode_with_max_completion_tokens(compat: Compat) -> None:
    compat.upstream.script = [Reply(tool_calls=[("Person", PERSON)])]
    person = patched(compat, instructor.Mode.TOOLS).chat.completions.create(
        model=MODEL, response_model=Person, messages=QUESTION, max_retries=0,  # type: ignore[arg-type]
        max_completion_tokens=100)
    assert person.model_dump() == PERSON


def test_create_partial_json_mode_works_today(compat: Compat) -> None:
    partials = list(patched(compat, instructor.Mode.JSON).chat.completions.create_partial(
        model=MODEL, response_model=Person, messages=QUESTION, max_retries=0))  # type: ignore[arg-type]
    assert partials[-1].model_dump() == PERSON
    # In JSON mode the content is the validated document (attempts stream as steps), so instructor
    # sees it whole: no partial from a rejected attempt can ever reach it.
    assert all(p.model_dump() == PERSON or not any(p.model_dump().values()) for p in partials)
    assert compat.sent[-1]["stream"] is True


def test_create_partial_tools_mode_works_today(compat: Compat) -> None:
    compat.upstream.script = [call_offered_tool]
    partials = list(patched(compat, instructor.Mode.TOOLS).chat.completions.create_partial(
        model=MODEL, response_model=Person, messages=QUESTION, max_retries=0))  # type: ignore[arg-type]
    assert partials[-1].model_dump() == PERSON
