"""Tools over HTTP: the official ``openai`` package's tool-calling loop, unchanged, against our server on
loopback (non-stream and stream), web_search beside the caller's tools, server-side Python tools,
and the errors and OpenAPI document for ``tools`` / ``tool_choice``."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
import requests

from agent import AsyncClient, ModelRequest, ScriptedCall, ScriptedModel, ScriptedReply
from agent.server._app import create_app
from tests.agent.server.server_harness import API_KEY, MODEL, StartServer
from tests.fakes import FakeSearch

WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
QUESTION: Any = [{"role": "user", "content": "What is the weather in Paris?"}]


def weather_model() -> ScriptedModel:
    """Calls get_weather (and web_search, when offered) until it has a tool result, then answers from it."""

    def reply(request: ModelRequest) -> str | ScriptedReply:
        last = request.messages[-1]
        if last.role == "tool":
            return f"The weather service says: {last.content}"
        wanted = [ScriptedCall("get_weather", {"city": "Paris"})]
        if any(t.name == "web_search" for t in request.tools):
            wanted.insert(0, ScriptedCall("web_search", {"query": "paris weather"}))
        return ScriptedReply(tool_calls=tuple(wanted))

    return ScriptedModel([reply], model=MODEL)


def get_weather(city: str) -> str:
    return json.dumps({"city": city, "sky": "sunny"})


def openai_client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=API_KEY, max_retries=0)


def test_the_openai_tool_loop_works_unchanged(start_server: StartServer) -> None:
    server = start_server(weather_model(), search=FakeSearch(), api_keys=[API_KEY])
    client = openai_client(server.url)
    messages = list(QUESTION)
    # The loop from OpenAI's function-calling guide, as written.
    response = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER_TOOL])
    assert response.choices[0].finish_reason == "tool_calls"
    message = response.choices[0].message
    messages.append(message)  # type: ignore[arg-type]
    for tool_call in message.tool_calls or []:
        assert tool_call.type == "function"
        arguments = json.loads(tool_call.function.arguments)  # type: ignore[union-attr]
        messages.append({"role": "tool", "tool_call_id": tool_call.id, "content": get_weather(**arguments)})
    final = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER_TOOL])
    assert final.choices[0].finish_reason == "stop"
    assert final.choices[0].message.content == 'The weather service says: {"city": "Paris", "sky": "sunny"}'
    assert final.choices[0].message.tool_calls is None


def test_the_openai_streaming_tool_loop_works_unchanged(start_server: StartServer) -> None:
    server = start_server(weather_model(), search=FakeSearch(), api_keys=[API_KEY])
    client = openai_client(server.url)
    stream = client.chat.completions.create(model=MODEL, messages=QUESTION, tools=[WEATHER_TOOL], stream=True)
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in stream:  # the usual accumulation of streamed tool-call deltas
        if not chunk.choices:
            continue
        for delta in chunk.choices[0].delta.tool_calls or []:
            entry = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            entry["id"] = delta.id or entry["id"]
            if delta.function is not None:
                entry["name"] = delta.function.name or entry["name"]
                entry["arguments"] += delta.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls"
    (entry,) = calls.values()
    assert entry["name"] == "get_weather" and json.loads(entry["arguments"]) == {"city": "Paris"}
    messages = [*QUESTION,
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": entry["id"], "type": "function",
                     "function": {"name": entry["name"], "arguments": entry["arguments"]}}]},
                {"role": "tool", "tool_call_id": entry["id"], "content": get_weather("Paris")}]
    stream = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER_TOOL], stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == 'The weather service says: {"city": "Paris", "sky": "sunny"}'


def test_the_openai_stream_helper_accumulates_our_tool_calls(start_server: StartServer) -> None:
    server = start_server(weather_model(), search=FakeSearch(), api_keys=[API_KEY])
    client = openai_client(server.url)
    with client.chat.completions.stream(model=MODEL, messages=QUESTION, tools=[WEATHER_TOOL]) as stream:
        for _ in stream:
            pass
        completion = stream.get_final_completion()
    (tool_call,) = completion.choices[0].message.tool_calls or []
    assert tool_call.function.name == "get_weather" and json.loads(tool_call.function.arguments) == {"city": "Paris"}
    assert completion.choices[0].finish_reason == "tool_calls"


def test_web_search_runs_on_the_server_while_the_callers_tool_goes_back(start_server: StartServer) -> None:
    search = FakeSearch()
    server = start_server(weather_model(), search=search, api_keys=[API_KEY])
    client = openai_client(server.url)
    response = client.chat.completions.create(model=MODEL, messages=QUESTION, tools=[WEATHER_TOOL],
                                              extra_body={"web_search": "auto"})
    assert search.queries == ["paris weather"]
    assert [c.function.name for c in response.choices[0].message.tool_calls or []] == ["get_weather"]  # type: ignore[union-attr]
    extra = response.model_extra or {}
    assert extra["citations"] == [r.url for r in search.results]
    assert [run["name"] for run in extra["tool_runs"]] == ["web_search"]


def test_server_side_python_tools_run_inside_the_server(start_server: StartServer) -> None:
    ran: list[str] = []

    def get_weather(city: str) -> dict[str, str]:  # the server's own implementation
        """Current weather for a city."""
        ran.append(city)
        return {"city": city, "sky": "rain"}

    client = AsyncClient(backend=weather_model(), search=FakeSearch(), tools=[get_weather])
    server = start_server(app=create_app(client, api_keys=[API_KEY]))
    response = openai_client(server.url).chat.completions.create(model=MODEL, messages=QUESTION)
    assert ran == ["Paris"]
    assert response.choices[0].finish_reason == "stop"
    assert response.choices[0].message.content == 'The weather service says: {"city":"Paris","sky":"rain"}'


def test_tool_errors_are_400_naming_the_parameter(start_server: StartServer) -> None:
    server = start_server(weather_model(), search=FakeSearch(), api_keys=[API_KEY])
    client = openai_client(server.url)
    with pytest.raises(openai.BadRequestError) as bad_tool:
        client.chat.completions.create(model=MODEL, messages=QUESTION,
                                       tools=[{"type": "function", "function": {"name": "no spaces"}}])
    assert bad_tool.value.param == "tools[0].function.name"
    with pytest.raises(openai.BadRequestError) as bad_choice:
        client.chat.completions.create(model=MODEL, messages=QUESTION, tools=[WEATHER_TOOL],
                                       tool_choice={"type": "function", "function": {"name": "other"}})
    assert bad_choice.value.param == "tool_choice"


@pytest.mark.parametrize("stream", [False, True])
def test_built_in_tools_by_name_over_plain_http(start_server: StartServer, stream: bool) -> None:
    search = FakeSearch()
    model = ScriptedModel([ScriptedReply(tool_calls=(ScriptedCall("web_search", {"query": "kubrick"}),)),
                           "Kubrick [1]."], model=MODEL)
    server = start_server(model, search=search, api_keys=[API_KEY])
    response = requests.post(f"{server.url}/v1/chat/completions", timeout=30,
                             headers={"Authorization": f"Bearer {API_KEY}"},
                             json={"model": MODEL, "messages": QUESTION, "tools": ["web_search"], "stream": stream})
    assert response.status_code == 200
    assert search.queries == ["kubrick"]
    if stream:
        events = [json.loads(line[6:]) for line in response.text.split("\n")
                  if line.startswith("data: ") and line != "data: [DONE]"]
        steps = [e["step"]["type"] for e in events if "step" in e]
        assert steps.index("tool.called") < steps.index("search.completed") < steps.index("tool.result")
        assert events[-1]["citations"] == [r.url for r in search.results]
    else:
        assert response.json()["citations"] == [r.url for r in search.results]


def test_the_openapi_document_describes_tools(start_server: StartServer) -> None:
    server = start_server(weather_model(), search=FakeSearch(), api_keys=[API_KEY])
    document = requests.get(f"{server.url}/openapi.json", timeout=10).json()
    properties = document["components"]["schemas"]["ChatCompletionRequest"]["properties"]
    forms = properties["tools"]["items"]["oneOf"]
    assert forms[0] == {"enum": ["web_search", "image_search", "local_search"]}
    assert forms[2]["properties"]["function"]["required"] == ["name"]
    assert {"enum": ["auto", "none", "required", None]} in properties["tool_choice"]["oneOf"]
    assert properties["tool_choice"]["default"] == "auto"
