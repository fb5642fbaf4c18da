"""Every bad parameter is a BadRequestError naming it, raised before any model call."""

from __future__ import annotations

from typing import Any

import pytest

import agent as studiolm
from agent import BadRequestError, NotFoundError, ScriptedModel

GOOD: dict[str, Any] = {"model": "scripted", "messages": [{"role": "user", "content": "hi"}]}

BAD_CASES = [
    ("temperature", {"temperature": 2.5}),
    ("temperature", {"temperature": -0.1}),
    ("temperature", {"temperature": "hot"}),
    ("temperature", {"temperature": True}),
    ("temperature", {"temperature": float("nan")}),
    ("top_p", {"top_p": 1.5}),
    ("top_p", {"top_p": -1}),
    ("frequency_penalty", {"frequency_penalty": 2.01}),
    ("presence_penalty", {"presence_penalty": -3}),
    ("max_tokens", {"max_tokens": 0}),
    ("max_tokens", {"max_tokens": 1.5}),
    ("max_tokens", {"max_tokens": "100"}),
    ("web_search", {"web_search": "sometimes"}),
    ("web_search", {"web_search": True}),
    ("web_search", {"web_search": 1}),
    ("stream", {"stream": "yes"}),
    ("messages", {"messages": []}),
    ("messages", {"messages": "hello"}),
    ("messages", {"messages": {"role": "user", "content": "hi"}}),
    ("messages[0]", {"messages": ["hi"]}),
    ("messages[0].role", {"messages": [{"role": "robot", "content": "hi"}]}),
    ("messages[0].role", {"messages": [{"content": "hi"}]}),
    ("messages[0].content", {"messages": [{"role": "user"}]}),
    ("messages[0].content", {"messages": [{"role": "user", "content": 42}]}),
    ("messages[0].content[0].image_url", {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}),
    ("messages[0].content[0]", {"messages": [{"role": "user", "content": [{"type": "video"}]}]}),
    # An unhashable type was a 500 (found by the server fuzz test).
    ("messages[0].content[0]", {"messages": [{"role": "user", "content": [{"type": ["image_url"], "text": "x"}]}]}),
    ("messages[0].content[0]", {"messages": [{"role": "user", "content": [{"type": {"a": 1}}]}]}),
    ("messages[0].tool_call_id", {"messages": [{"role": "tool", "content": "x"}]}),
    ("model", {"model": ""}),
    ("model", {"model": 7}),
    ("response_format", {"response_format": "xml"}),
]


@pytest.mark.parametrize(("param", "override"), BAD_CASES)
def test_bad_parameter_is_named(param: str, override: dict[str, Any]) -> None:
    model = ScriptedModel(["never said"])
    with studiolm.Client(backend=model, search="none") as client, pytest.raises(BadRequestError) as info:
        client.chat.completions.create(**{**GOOD, **override})
    assert info.value.param == param
    assert str(info.value).startswith(f"{param}: ")
    assert model.requests == []  # nothing reached the model


def test_unknown_model_lists_available_models() -> None:
    client = studiolm.Client(backend=ScriptedModel(["x"], model="tiny"), search="none")
    with client, pytest.raises(NotFoundError) as info:
        client.chat.completions.create(**{**GOOD, "model": "gpt-9"})
    assert info.value.available == ["tiny"]
    assert "gpt-9" in str(info.value) and "tiny" in str(info.value)


def test_bad_search_choice_is_named() -> None:
    with pytest.raises(BadRequestError) as info:
        studiolm.Client(backend=ScriptedModel(["x"]), search="bing")
    assert info.value.param == "search"


def test_text_content_parts_and_boundaries_are_accepted() -> None:
    model = ScriptedModel(["ok"])
    with studiolm.Client(backend=model, search="none") as client:
        parts = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
        client.chat.completions.create(
            model="scripted", messages=[{"role": "user", "content": parts}], temperature=0, top_p=0,
            frequency_penalty=-2, presence_penalty=2, max_tokens=1, web_search=False,
        )
    assert model.requests[0].messages[0].content == "ab"
    assert model.requests[0].sampling.temperature == 0.0


@pytest.mark.parametrize(("param", "message"), [
    ("messages[0].tool_calls", {"role": "user", "content": "hi", "tool_calls": [{"bogus": 1}]}),
    ("messages[0].tool_call_id", {"role": "user", "content": "hi", "tool_call_id": "x"}),
    ("messages[0].colour", {"role": "user", "content": "hi", "colour": "blue"}),
])
def test_fields_a_message_cannot_carry_are_refused_not_dropped(param: str, message: dict[str, Any]) -> None:
    model = ScriptedModel(["never said"])
    with studiolm.Client(backend=model, search="none") as client, pytest.raises(BadRequestError) as info:
        client.chat.completions.create(model="scripted", messages=[message])
    assert info.value.param == param and model.requests == []


def test_null_fields_echoed_by_openai_clients_are_accepted() -> None:
    echoed = {"role": "assistant", "content": "Paris.", "refusal": None, "tool_calls": None, "annotations": None}
    model = ScriptedModel(["ok"])
    with studiolm.Client(backend=model, search="none") as client:
        client.chat.completions.create(model="scripted", messages=[{"role": "user", "content": "hi"}, echoed,
                                                                   {"role": "user", "content": "and?"}])
    assert [m.content for m in model.requests[0].messages] == ["hi", "Paris.", "and?"]


def _client_threads() -> int:
    import threading

    return sum(t.name == "studiolm-client" for t in threading.enumerate())


def test_a_closed_client_refuses_work_and_closing_twice_is_harmless() -> None:
    before = _client_threads()
    client = studiolm.Client(backend=ScriptedModel(["ok"]), search="none")
    client.close()
    client.close()
    with pytest.raises(studiolm.UsageError, match="closed"):
        client.chat.completions.create(**GOOD)
    assert _client_threads() == before


def test_a_bad_argument_leaves_no_thread_behind() -> None:
    before = _client_threads()
    for _ in range(3):
        with pytest.raises(BadRequestError):
            studiolm.Client(backend=ScriptedModel(["ok"]), search="bogus")
    assert _client_threads() == before
