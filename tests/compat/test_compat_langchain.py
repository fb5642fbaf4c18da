"""LangChain's ``ChatOpenAI`` (langchain-openai) and a LangGraph prebuilt ReAct agent on it, against
``studiolm serve`` over the scripted upstream."""

from __future__ import annotations

import json
from typing import Any

from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from tests.compat.conftest import ANSWER, API_KEY, MODEL, PERSON, Compat, Reply


class Person(BaseModel):
    """A person and their birth year."""

    name: str
    year: int


@tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return json.dumps({"city": city, "sky": "sunny"})


def chat(compat: Compat, **options: Any) -> ChatOpenAI:
    return ChatOpenAI(model=MODEL, base_url=compat.base_url, api_key=API_KEY, max_retries=0,  # type: ignore[arg-type]
                      **options)


def test_invoke_works_today(compat: Compat) -> None:
    assert chat(compat).invoke("Hi").content == ANSWER
    assert set(compat.sent[-1]) == {"model", "messages", "stream"}


def test_invoke_with_max_tokens(compat: Compat) -> None:
    assert chat(compat, max_tokens=50).invoke("Hi").content == ANSWER
    assert compat.sent[-1]["max_completion_tokens"] == 50
    assert 50 in (compat.forwarded[-1].get("max_completion_tokens"), compat.forwarded[-1].get("max_tokens"))


def test_invoke_with_stop_and_seed(compat: Compat) -> None:
    assert chat(compat, stop=["END"], seed=7).invoke("Hi").content == ANSWER
    assert compat.forwarded[-1]["stop"] == ["END"]
    assert compat.forwarded[-1]["seed"] == 7


def test_stream_works_today(compat: Compat) -> None:
    assert "".join(str(c.content) for c in chat(compat).stream("Hi")) == ANSWER
    assert compat.sent[-1]["stream"] is True


def test_stream_with_max_tokens_and_usage(compat: Compat) -> None:
    chunks = list(chat(compat, max_tokens=50, stream_usage=True).stream("Hi"))
    assert "".join(str(c.content) for c in chunks) == ANSWER
    usage = [c.usage_metadata for c in chunks if c.usage_metadata]
    assert len(usage) == 1 and usage[0]["total_tokens"] > 0
    assert compat.sent[-1]["stream_options"] == {"include_usage": True}


def test_bind_tools_works_today(compat: Compat) -> None:
    compat.upstream.script = [Reply(tool_calls=[("get_weather", {"city": "Paris"})])]
    message = chat(compat).bind_tools([get_weather]).invoke("Weather in Paris?")
    assert message.tool_calls[0]["name"] == "get_weather"  # type: ignore[attr-defined]
    assert message.tool_calls[0]["args"] == {"city": "Paris"}  # type: ignore[attr-defined]
    assert compat.forwarded[-1]["tools"][0]["function"]["name"] == "get_weather"


def test_bind_tools_without_parallel_calls(compat: Compat) -> None:
    compat.upstream.script = [Reply(tool_calls=[("get_weather", {"city": "Paris"})])]
    message = chat(compat).bind_tools([get_weather], parallel_tool_calls=False).invoke("Weather in Paris?")
    assert len(message.tool_calls) == 1  # type: ignore[attr-defined]
    assert compat.forwarded[-1]["parallel_tool_calls"] is False


def test_structured_output_json_schema_works_today(compat: Compat) -> None:
    person = chat(compat).with_structured_output(Person, method="json_schema").invoke("Who wrote the first program?")
    assert person == Person(**PERSON)
    assert compat.sent[-1]["response_format"]["type"] == "json_schema"
    assert compat.forwarded[-1]["response_format"]["json_schema"]["name"] == "Person"


def test_structured_output_function_calling(compat: Compat) -> None:
    compat.upstream.script = [Reply(tool_calls=[("Person", PERSON)])]
    structured = chat(compat).with_structured_output(Person, method="function_calling")
    assert structured.invoke("Who wrote the first program?") == Person(**PERSON)
    assert compat.sent[-1]["parallel_tool_calls"] is False
    assert compat.forwarded[-1]["tool_choice"]["function"]["name"] == "Person"


def react_script(body: dict[str, Any]) -> str | Reply:
    if body["messages"][-1]["role"] == "tool":
        return "It is sunny in Paris."
    return Reply(tool_calls=[("get_weather", {"city": "Paris"})])


def test_langgraph_react_agent_works_today(compat: Compat) -> None:
    from langgraph.prebuilt import create_react_agent

    compat.upstream.script = [react_script]
    graph = create_react_agent(chat(compat), tools=[get_weather])
    state = graph.invoke({"messages": [("user", "Weather in Paris?")]})
    assert state["messages"][-1].content == "It is sunny in Paris."
    tool_result = compat.forwarded[-1]["messages"][-1]
    assert tool_result["role"] == "tool" and json.loads(tool_result["content"])["sky"] == "sunny"


def test_langgraph_react_agent_with_max_tokens(compat: Compat) -> None:
    from langgraph.prebuilt import create_react_agent

    compat.upstream.script = [react_script]
    graph = create_react_agent(chat(compat, max_tokens=200), tools=[get_weather])
    state = graph.invoke({"messages": [("user", "Weather in Paris?")]})
    assert state["messages"][-1].content == "It is sunny in Paris."
    assert all(body["max_completion_tokens"] == 200 for body in compat.sent)
