"""``LlamaBackend(json_engine=...)``: which constrained decoding a JSON-schema answer gets.

The local-model tests run the tiny tier (SmolLM2-135M) on a date schema with bounds and a prompt that
pulls it out of them: llama-cpp-python's GBNF converter keeps the object's shape but not the numeric
bounds, llguidance keeps both, so the answer shows which engine constrained it.
"""

from __future__ import annotations

import json
import sys

import jsonschema
import pytest

from agent._exceptions import BadRequestError, ModelError
from agent.models._llama import JSON_ENGINES, LlamaBackend
from graphs.model import Message, ModelRequest, SamplingParams
from tests.embedded import DATE, TINY, needs_embedded_model

PROMPT = "Write the date 45/13/1850 as JSON."


def test_an_unknown_engine_is_a_bad_request_naming_the_parameter() -> None:
    with pytest.raises(BadRequestError) as caught:
        LlamaBackend(json_engine="outlines")
    assert caught.value.param == "json_engine"
    assert all(engine in caught.value.message for engine in JSON_ENGINES)


def test_the_llguidance_engine_without_the_package_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llguidance", None)  # as on an install without the [local] extra
    with pytest.raises(ModelError, match="llguidance"):
        LlamaBackend(json_engine="llguidance")
    LlamaBackend(json_engine="auto")  # auto and gbnf do without it
    LlamaBackend(json_engine="gbnf")


async def _date(engine: str) -> dict[str, int]:
    request = ModelRequest(model=TINY, messages=(Message("user", PROMPT),), sampling=SamplingParams(0.0, 80),
                           json_schema=DATE)
    result = await LlamaBackend(json_engine=engine).complete(request)
    assert result.finish_reason == "stop"
    answer: dict[str, int] = json.loads(result.content)
    return answer


@pytest.mark.local_model
@needs_embedded_model
@pytest.mark.parametrize("engine", ["auto", "llguidance"])
async def test_llguidance_keeps_the_bounds(engine: str) -> None:
    pytest.importorskip("llguidance", reason="llguidance is not installed (pip install 'studiolm-agent[local]')")
    jsonschema.validate(await _date(engine), DATE)


@pytest.mark.local_model
@needs_embedded_model
async def test_gbnf_only_keeps_the_shape() -> None:
    answer = await _date("gbnf")
    assert sorted(answer) == ["day", "month", "year"]
    assert not jsonschema.Draft202012Validator(DATE).is_valid(answer)  # the bounds are not in its grammar
