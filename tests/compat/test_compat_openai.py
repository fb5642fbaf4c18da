"""The official ``openai`` package against ``studiolm serve`` (over the scripted upstream): the fields SDK
users set, the ``developer`` role, ``models.retrieve``, streaming with ``include_usage``, and a cited
answer's assistant message sent back in the next turn."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.compat.conftest import ANSWER, API_KEY, MODEL, Compat, Reply

USER: Any = [{"role": "user", "content": "Hi"}]
WEATHER: Any = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def client(compat: Compat) -> openai.OpenAI:
    return openai.OpenAI(base_url=compat.base_url, api_key=API_KEY, max_retries=0)


def test_plain_create_works_today(compat: Compat) -> None:
    response = client(compat).chat.completions.create(model=MODEL, messages=USER)
    assert response.choices[0].message.content == ANSWER
    assert compat.sent == [{"model": MODEL, "messages": USER}]


FIELD_CASES = {
    "max_completion_tokens": {"max_completion_tokens": 50},
    "seed": {"seed": 7},
    "stop": {"stop": ["END"]},
    "parallel_tool_calls": {"tools": [WEATHER], "parallel_tool_calls": False},
    "store": {"store": False},
    "logprobs": {"logprobs": True, "top_logprobs": 2},
    "metadata": {"metadata": {"run": "compat"}},
}


@pytest.mark.parametrize("fields", FIELD_CASES.values(), ids=FIELD_CASES.keys())
def test_create_with_fields_sdk_users_set(compat: Compat, fields: dict[str, Any]) -> None:
    response = client(compat).chat.completions.create(model=MODEL, messages=USER, **fields)
    assert response.choices[0].message.content == ANSWER
    assert compat.sent[-1] == {"model": MODEL, "messages": USER, **fields}
    forwarded = compat.forwarded[-1]
    for name, value in fields.items():
        if name == "max_completion_tokens":
            assert value in (forwarded.get("max_completion_tokens"), forwarded.get("max_tokens"))
        elif name != "tools":
            assert forwarded[name] == value


def test_developer_role(compat: Compat) -> None:
    messages: Any = [{"role": "developer", "content": "Answer briefly."}, *USER]
    response = client(compat).chat.completions.create(model=MODEL, messages=messages)
    assert response.choices[0].message.content == ANSWER
    first = compat.forwarded[-1]["messages"][0]
    assert first["role"] in ("developer", "system")
    assert first["content"] == "Answer briefly."


def test_models_retrieve(compat: Compat) -> None:
    model = client(compat).models.retrieve(MODEL)
    assert model.id == MODEL
    assert model.object == "model"


def test_models_list_works_today(compat: Compat) -> None:
    assert [m.id for m in client(compat).models.list()] == [MODEL]


def test_stream_works_today(compat: Compat) -> None:
    stream = client(compat).chat.completions.create(model=MODEL, messages=USER, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == ANSWER


def test_stream_include_usage_as_openai_sends_it(compat: Compat) -> None:
    stream = client(compat).chat.completions.create(model=MODEL, messages=USER, stream=True,
                                                    stream_options={"include_usage": True})
    chunks = list(stream)
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    assert all(c.usage is None for c in chunks[:-1])
    assert "".join(c.choices[0].delta.content or "" for c in chunks[:-1] if c.choices) == ANSWER


def test_stream_helper_works_today(compat: Compat) -> None:
    with client(compat).chat.completions.stream(model=MODEL, messages=USER,
                                                stream_options={"include_usage": True}) as stream:
        text = "".join(e.delta for e in stream if e.type == "content.delta")
        final = stream.get_final_completion()
    assert text == ANSWER
    assert final.usage is not None and final.usage.total_tokens > 0
    assert compat.sent[-1]["stream"] is True


def test_system_fingerprint(compat: Compat) -> None:
    response = client(compat).chat.completions.create(model=MODEL, messages=USER)
    assert response.system_fingerprint


def cited_upstream(body: dict[str, Any]) -> str:
    return "Kubrick directed it [1]." if body["messages"][-1]["role"] == "user" else "2001 director"


def test_cited_answer_sent_back_next_turn(compat: Compat) -> None:
    compat.upstream.script = [cited_upstream]
    api = client(compat)
    messages: list[Any] = [{"role": "user", "content": "Who directed 2001?"}]
    first = api.chat.completions.create(model=MODEL, messages=messages, extra_body={"web_search": "force"})
    message = first.choices[0].message
    assert message.annotations and message.annotations[0].type == "url_citation"
    messages += [message, {"role": "user", "content": "Thanks. And the year?"}]
    second = api.chat.completions.create(model=MODEL, messages=messages)
    assert second.choices[0].message.content
    echoed = compat.sent[-1]["messages"][1]
    assert "annotations" in echoed  # the SDK sends the whole message back, annotations included
    assert compat.forwarded[-1]["messages"][1]["content"].startswith("Kubrick directed it")


def test_tool_call_loop_works_today(compat: Compat) -> None:
    compat.upstream.script = [Reply(tool_calls=[("get_weather", {"city": "Paris"})]), "Sunny in Paris."]
    api = client(compat)
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = api.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER])
    call = (first.choices[0].message.tool_calls or [])[0]
    assert json.loads(call.function.arguments) == {"city": "Paris"}  # type: ignore[union-attr]
    messages += [first.choices[0].message, {"role": "tool", "tool_call_id": call.id, "content": "sunny"}]
    second = api.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER])
    assert second.choices[0].message.content == "Sunny in Paris."
    assert compat.forwarded[-1]["messages"][-1] == {"role": "tool", "tool_call_id": call.id, "content": "sunny"}
