"""The OpenAI Agents SDK (``openai-agents``) on its chat-completions model pointed at ``studiolm serve``:
a plain run, a ``function_tool``, ``output_type``, and ``parallel_tool_calls=False``. Tracing is off,
so nothing is exported."""

from __future__ import annotations

import json
from typing import Any

import openai
from agents import Agent, ModelSettings, OpenAIChatCompletionsModel, Runner, function_tool, set_tracing_disabled
from pydantic import BaseModel

from tests.compat.conftest import ANSWER, API_KEY, MODEL, PERSON, Compat, Reply

set_tracing_disabled(True)


class Person(BaseModel):
    """A person and their birth year."""

    name: str
    year: int


CALLS: list[str] = []


@function_tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    CALLS.append(city)
    return json.dumps({"city": city, "sky": "sunny"})


def model(compat: Compat) -> OpenAIChatCompletionsModel:
    client = openai.AsyncOpenAI(base_url=compat.base_url, api_key=API_KEY, max_retries=0)
    return OpenAIChatCompletionsModel(model=MODEL, openai_client=client)


def weather_script(body: dict[str, Any]) -> str | Reply:
    if body["messages"][-1]["role"] == "tool":
        return "Sunny in Paris."
    return Reply(tool_calls=[("get_weather", {"city": "Paris"})])


def test_plain_run_works_today(compat: Compat) -> None:
    result = Runner.run_sync(Agent(name="helper", instructions="Be brief.", model=model(compat)), "Hi")
    assert result.final_output == ANSWER
    assert compat.forwarded[-1]["messages"][0] == {"role": "system", "content": "Be brief."}


def test_function_tool_works_today(compat: Compat) -> None:
    compat.upstream.script = [weather_script]
    CALLS.clear()
    agent = Agent(name="weather", instructions="Use tools.", model=model(compat), tools=[get_weather])
    assert Runner.run_sync(agent, "Weather in Paris?").final_output == "Sunny in Paris."
    assert CALLS == ["Paris"]


def test_function_tool_without_parallel_calls(compat: Compat) -> None:
    compat.upstream.script = [weather_script]
    agent = Agent(name="weather", instructions="Use tools.", model=model(compat), tools=[get_weather],
                  model_settings=ModelSettings(parallel_tool_calls=False))
    assert Runner.run_sync(agent, "Weather in Paris?").final_output == "Sunny in Paris."
    assert compat.forwarded[0]["parallel_tool_calls"] is False


def test_output_type_works_today(compat: Compat) -> None:
    agent = Agent(name="extract", instructions="Extract.", model=model(compat), output_type=Person)
    result = Runner.run_sync(agent, "Who wrote the first program?")
    assert result.final_output == Person(**PERSON)
    schema = compat.sent[-1]["response_format"]["json_schema"]
    assert schema["strict"] is True
    assert compat.forwarded[-1]["response_format"]["json_schema"]["strict"] is True


def test_run_with_model_settings(compat: Compat) -> None:
    settings = ModelSettings(max_tokens=50, store=False, metadata={"run": "compat"}, include_usage=True)
    agent = Agent(name="helper", instructions="Be brief.", model=model(compat), model_settings=settings)
    assert Runner.run_sync(agent, "Hi").final_output == ANSWER
    assert compat.statuses == [200]
