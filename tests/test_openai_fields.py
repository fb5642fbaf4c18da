"""OpenAI's request fields through the SDK: what each does to the model request, n choices,
include_usage, messages OpenAI clients send, and bad text (real clients over HTTP: tests/compat)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

import agent as studiolm
from agent import BadRequestError, ScriptedCall, ScriptedModel, ScriptedReply
from tests.fakes import FakeSearch

USER = [{"role": "user", "content": "Who directed 2001: A Space Odyssey?"}]


def _create(model: ScriptedModel, search: Any = "none", **params: Any) -> Any:
    with studiolm.Client(backend=model, search=search) as client:
        return client.chat.completions.create(model="scripted", messages=params.pop("messages", USER), **params)


def test_sampling_fields_reach_the_model() -> None:
    model = ScriptedModel(["ok"])
    _create(model, stop=["END"], seed=7, logit_bias={"42": -100}, top_k=20, min_p=0.1, repetition_penalty=1.2,
            max_completion_tokens=33, logprobs=True, top_logprobs=2)
    sampling = model.requests[0].sampling
    assert (sampling.stop, sampling.seed, sampling.logit_bias) == (("END",), 7, ((42, -100.0),))
    assert (sampling.top_k, sampling.min_p, sampling.repetition_penalty) == (20, 0.1, 1.2)
    assert (sampling.max_tokens, sampling.logprobs, sampling.top_logprobs) == (33, True, 2)
    assert model.requests[0].max_tokens_field == "max_completion_tokens"


def test_openai_service_fields_are_passed_on_and_change_nothing_locally() -> None:
    model = ScriptedModel(["ok"])
    body = _create(model, store=True, metadata={"team": "a"}, service_tier="auto", reasoning_effort="low",
                   prediction=None, user="u1", safety_identifier="s1", prompt_cache_key="k")
    assert body["choices"][0]["message"]["content"] == "ok"
    assert dict(model.requests[0].extra) == {"store": True, "metadata": {"team": "a"}, "service_tier": "auto",
                                            "reasoning_effort": "low", "user": "u1", "safety_identifier": "s1",
                                            "prompt_cache_key": "k"}


@pytest.mark.parametrize(("params", "param"), [
    ({"audio": {"format": "wav", "voice": "alloy"}, "modalities": ["text", "audio"]}, "audio"),
    ({"modalities": ["text", "audio"]}, "modalities"),
    ({"moderation": {"model": "omni-moderation-latest"}}, "moderation"),
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": "what is this?"},
                                                {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]},
     "messages[0].content[1]"),
])
def test_what_a_local_model_cannot_honour_is_a_400_naming_it(params: dict[str, Any], param: str) -> None:
    model = ScriptedModel(["never said"])
    with pytest.raises(BadRequestError) as info:
        _create(model, **params)
    assert info.value.param == param and model.requests == []


def test_parallel_tool_calls_false_runs_one_call_per_turn(fake_search: FakeSearch) -> None:
    two = ScriptedReply(tool_calls=(ScriptedCall("lookup", {"q": "a"}), ScriptedCall("lookup", {"q": "b"})))
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    body = _create(ScriptedModel([two]), tools=[tool], parallel_tool_calls=False)
    calls = body["choices"][0]["message"]["tool_calls"]
    assert len(calls) == 1 and json.loads(calls[0]["function"]["arguments"]) == {"q": "a"}
    model = ScriptedModel([two])
    _create(model, tools=[tool])
    assert model.requests[0].parallel_tool_calls is True


def test_n_choices_share_one_search(fake_search: FakeSearch) -> None:
    # A model without tool calling: the query is planned from the conversation, the same for both runs.
    model = ScriptedModel(["Kubrick [1].", "Stanley Kubrick [1]."], capabilities=studiolm.Capabilities())
    body = _create(model, fake_search, web_search="force", n=2)
    assert [c["index"] for c in body["choices"]] == [0, 1]
    assert [c["message"]["content"] for c in body["choices"]] == ["Kubrick [1].", "Stanley Kubrick [1]."]
    assert len(fake_search.queries) == 1  # one search, two generations
    assert body["usage"]["completion_tokens"] == 2 + 3


def test_n_choices_stream_one_after_the_other_with_one_usage_chunk(fake_search: FakeSearch) -> None:
    with studiolm.Client(backend=ScriptedModel(["first", "second"]), search="none") as client:
        chunks = list(client.chat.completions.create(model="scripted", messages=USER, n=2, stream=True,
                                                      stream_options={"include_usage": True}))
    text: dict[int, str] = {}
    for chunk in chunks[:-1]:
        for choice in chunk["choices"]:
            text[choice["index"]] = text.get(choice["index"], "") + (choice["delta"].get("content") or "")
    assert text == {0: "first", 1: "second"}
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 2
    assert not any("usage" in c for c in chunks[:-1])


def test_include_usage_is_a_last_chunk_without_choices() -> None:
    with studiolm.Client(backend=ScriptedModel(["hello there"]), search="none") as client:
        chunks = list(client.chat.completions.create(model="scripted", messages=USER, stream=True,
                                                      stream_options={"include_usage": True}))
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 2
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop" and "usage" not in chunks[-2]
    assert all(c["system_fingerprint"].startswith("fp_studiolm_") for c in chunks)


def test_messages_openai_clients_send() -> None:
    model = ScriptedModel(["ok"])
    answer = _create(ScriptedModel(["Kubrick."]))["choices"][0]["message"]
    messages = [
        {"role": "developer", "content": "Be brief."},
        *USER,
        {**answer, "refusal": None, "annotations": [], "audio": None},  # a returned message, sent back as is
        {"role": "assistant", "content": None, "function_call": {"name": "lookup", "arguments": "{}"}},
        {"role": "function", "name": "lookup", "content": "42"},
        {"role": "user", "content": [{"type": "text", "text": "and "}, {"type": "text", "text": "then?"}]},
    ]
    _create(model, messages=messages)
    sent = model.requests[0].messages
    assert [m.role for m in sent][:6] == ["system", "user", "assistant", "assistant", "tool", "user"]
    assert sent[4].tool_call_id == sent[3].tool_calls[0].id and sent[5].content == "and then?"


def test_the_deprecated_functions_field_becomes_the_callers_tools() -> None:
    call = ScriptedReply(tool_calls=(ScriptedCall("lookup", {"q": "x"}),))
    body = _create(ScriptedModel([call]), functions=[{"name": "lookup", "parameters": {"type": "object"}}],
                   function_call={"name": "lookup"})
    assert body["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "lookup"


@pytest.mark.parametrize(("params", "param"), [
    ({"messages": [{"role": "user", "content": "x\ud800y"}]}, "messages[0].content"),
    ({"metadata": {"k": "\udfff"}}, "metadata.k"),
    ({"tools": [{"type": "function", "function": {"name": "f", "description": "\ud800"}}]},
     "tools[0].function.description"),
])
def test_text_that_is_not_unicode_is_a_400_naming_where(params: dict[str, Any], param: str) -> None:
    with pytest.raises(BadRequestError) as info:
        _create(ScriptedModel(["never"]), **params)
    assert info.value.param == param


@pytest.mark.parametrize("value", [1, object(), [1, 2], {"a": 1}])
def test_no_error_message_quotes_a_python_object(value: Any) -> None:
    with pytest.raises(BadRequestError) as info:
        _create(ScriptedModel(["never"]), web_search=value)
    assert "object at 0x" not in str(info.value) and info.value.param == "web_search"


async def test_an_upstream_that_refuses_max_tokens_gets_max_completion_tokens() -> None:
    bodies: list[dict[str, Any]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        if "max_tokens" in bodies[-1]:
            error = {"message": "Unsupported parameter: 'max_tokens' is not supported with this model. "
                                "Use 'max_completion_tokens' instead.", "param": "max_tokens"}
            return httpx.Response(400, json={"error": error})
        chunk = {"choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}]}
        return httpx.Response(200, text=f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n",
                              headers={"content-type": "text/event-stream"})

    http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    backend = studiolm.OpenAICompatibleBackend("sk-test-upstream", "https://upstream.test/v1", http_client=http,
                                               max_retries=0)
    result = await backend.complete(studiolm.ModelRequest(model="o3", messages=(studiolm.Message("user", "x"),)))
    assert result.content == "hi"
    assert "max_tokens" in bodies[0] and bodies[1]["max_completion_tokens"] == 1000 and "max_tokens" not in bodies[1]
    await http.aclose()
