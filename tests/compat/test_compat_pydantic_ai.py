"""pydantic-ai (``pydantic-ai-slim[openai]``) with its OpenAI provider pointed at ``studiolm serve``:
``run``, ``run_stream``, a tool, ``output_type``, and the model settings users set."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from pydantic import BaseModel
from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

from tests.compat.conftest import ANSWER, API_KEY, MODEL, PERSON, Compat, Reply


class Person(BaseModel):
    """A person and their birth year."""

    name: str
    year: int


def model(compat: Compat) -> OpenAIChatModel:
    return OpenAIChatModel(MODEL, provider=OpenAIProvider(base_url=compat.base_url, api_key=API_KEY))


def test_run_works_today(compat: Compat) -> None:
    result = Agent(model(compat)).run_sync("Hi")
    assert result.output == ANSWER
    assert compat.statuses == [200]


SETTINGS = {
    "max_tokens": {"max_tokens": 50},
    "seed": {"seed": 7},
    "stop_sequences": {"stop_sequences": ["END"]},
    "parallel_tool_calls": {"parallel_tool_calls": False},
}


@pytest.mark.parametrize("settings", SETTINGS.values(), ids=SETTINGS.keys())
def test_run_with_model_settings(compat: Compat, settings: dict[str, Any]) -> None:
    agent = Agent(model(compat), model_settings=settings)  # type: ignore[arg-type]

    @agent.tool_plain
    def get_weather(city: str) -> str:
        """Current weather for a city."""
        return "sunny"

    assert agent.run_sync("Hi").output == ANSWER
    assert compat.statuses == [200]


def test_run_stream_works_today(compat: Compat) -> None:
    async def main() -> list[str]:
        async with Agent(model(compat)).run_stream("Hi") as run:
            return [text async for text in run.stream_text(delta=True)]

    pieces = asyncio.run(main())
    assert "".join(pieces) == ANSWER
    assert compat.sent[-1]["stream"] is True


def weather_script(body: dict[str, Any]) -> str | Reply:
    if body["messages"][-1]["role"] == "tool":
        return "Sunny in Paris."
    return Reply(tool_calls=[("get_weather", {"city": "Paris"})])


def test_tool_works_today(compat: Compat) -> None:
    compat.upstream.script = [weather_script]
    agent = Agent(model(compat))
    calls: list[str] = []

    @agent.tool_plain
    def get_weather(city: str) -> str:
        """Current weather for a city."""
        calls.append(city)
        return json.dumps({"sky": "sunny"})

    assert agent.run_sync("Weather in Paris?").output == "Sunny in Paris."
    assert calls == ["Paris"]
    assert compat.forwarded[-1]["messages"][-1]["content"] == json.dumps({"sky": "sunny"})


def test_output_type_works_today(compat: Compat) -> None:
    # pydantic-ai's default output mode is a `final_result` tool the model calls.
    compat.upstream.script = [Reply(tool_calls=[("final_result", PERSON)])]
    result = Agent(model(compat), output_type=Person).run_sync("Who wrote the first program?")
    assert result.output == Person(**PERSON)
    assert compat.forwarded[-1]["tools"][0]["function"]["name"] == "final_result"
