"""WireObject: dict and attribute access on every level, nested objects wrapped when first read."""

from __future__ import annotations

import json

import pytest

from agent import ChatCompletion, WireObject


def body() -> dict[str, object]:
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    message = {"role": "assistant", "content": "hi", "tool_calls": [call]}
    return {"id": "chatcmpl-1", "choices": [{"index": 0, "message": message}], "usage": {"total_tokens": 3}}


def test_every_level_reads_as_dict_and_as_attributes() -> None:
    response = ChatCompletion(body())
    assert response.choices[0].message.tool_calls[0].function.name == "f"
    assert response["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "f"
    assert response["choices"][0].message["content"] == response.get("choices")[0].message.content == "hi"
    assert response.get("usage").total_tokens == 3 and response.get("missing", 7) == 7
    assert isinstance(response.choices[0], WireObject) and isinstance(response.choices, list)


def test_it_encodes_as_the_plain_body_before_and_after_reading() -> None:
    raw = body()
    response = ChatCompletion(raw)
    assert json.loads(json.dumps(response)) == raw
    _ = response.choices[0].message.tool_calls[0].function
    assert json.loads(json.dumps(response)) == raw == response.to_dict()
    assert type(response.to_dict()["choices"][0]) is dict


def test_edits_through_a_read_object_stick_and_leave_the_source_alone() -> None:
    raw = body()
    response = ChatCompletion(raw)
    response.choices[0].message["content"] = "changed"
    assert response["choices"][0]["message"]["content"] == "changed"
    assert raw["choices"][0]["message"]["content"] == "hi"  # type: ignore[index]


def test_a_missing_field_is_an_attribute_error_naming_it() -> None:
    with pytest.raises(AttributeError, match="'nope'"):
        _ = ChatCompletion(body()).nope
