"""LiteLLM (``openai/<model>`` with ``api_base``) against ``studiolm serve``: completion, stream, tools,
and the fields it sends. ``LITELLM_LOCAL_MODEL_COST_MAP`` (conftest) keeps it from fetching its cost map."""

from __future__ import annotations

import json
from typing import Any

import litellm
import pytest

from tests.compat.conftest import ANSWER, API_KEY, MODEL, Compat, Reply

QUESTION = [{"role": "user", "content": "Hi"}]
WEATHER: Any = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def complete(compat: Compat, **kwargs: Any) -> Any:
    return litellm.completion(model=f"openai/{MODEL}", api_base=compat.base_url, api_key=API_KEY,
                              messages=QUESTION, num_retries=0, **kwargs)


def test_completion_works_today(compat: Compat) -> None:
    assert complete(compat).choices[0].message.content == ANSWER
    assert compat.sent[-1]["model"] == MODEL


def test_stream_works_today(compat: Compat) -> None:
    text = "".join(chunk.choices[0].delta.content or "" for chunk in complete(compat, stream=True))
    assert text == ANSWER
    assert compat.sent[-1]["stream"] is True


def test_tools_work_today(compat: Compat) -> None:
    compat.upstream.script = [Reply(tool_calls=[("get_weather", {"city": "Paris"})])]
    call = complete(compat, tools=[WEATHER]).choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}


FIELDS = {
    "max_completion_tokens": {"max_completion_tokens": 50},
    "stop": {"stop": ["END"]},
    "seed": {"seed": 7},
    "drop_params": {"max_completion_tokens": 50, "seed": 7, "drop_params": True},
}


@pytest.mark.parametrize("fields", FIELDS.values(), ids=FIELDS.keys())
def test_completion_with_fields(compat: Compat, fields: dict[str, Any]) -> None:
    assert complete(compat, **fields).choices[0].message.content == ANSWER
    assert compat.statuses == [200]
