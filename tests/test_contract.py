"""One request contract (agent._contract): the SDK signature, validation, the server and the OpenAPI
document all say the same thing about every field."""

from __future__ import annotations

import inspect
import typing

import pytest

import agent
from agent._client import _AsyncCompletions, _Completions
from agent._contract import FIELDS, REQUIRED, CompletionCreateParams, CompletionCreateParamsBase
from agent._params import build_request
from agent.server import ServerLimits
from agent.server._app import chat_params
from agent.server._openapi import openapi_document
from graphs import SamplingParams

MINIMAL = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def test_the_contract_lists_the_documented_studiolm_and_openai_fields() -> None:
    studiolm = {"model", "messages", "temperature", "max_tokens", "stream", "top_p", "frequency_penalty",
                "presence_penalty", "web_search", "response_format"}
    assert studiolm <= set(FIELDS)
    assert FIELDS["temperature"].default == 0.7 and FIELDS["max_tokens"].default == 1000
    assert (FIELDS["temperature"].minimum, FIELDS["temperature"].maximum) == (0.0, 2.0)
    assert all(param.doc for param in FIELDS.values())


def test_the_sdk_signature_is_the_contract() -> None:
    assert set(typing.get_type_hints(CompletionCreateParamsBase)) | {"stream"} == set(FIELDS)
    assert set(typing.get_type_hints(CompletionCreateParams)) == set(FIELDS)
    for create in (_AsyncCompletions.create, _Completions.create):
        parameters = inspect.signature(create).parameters
        assert list(parameters) == ["self", "stream", "params"]
        assert parameters["params"].kind is inspect.Parameter.VAR_KEYWORD
        assert typing.get_type_hints(create)["params"] == typing.Unpack[CompletionCreateParamsBase]


def test_validation_takes_its_defaults_and_ranges_from_the_contract() -> None:
    request = build_request(MINIMAL)
    assert request.sampling == SamplingParams()
    assert request.sampling.temperature == FIELDS["temperature"].default
    for name in ("temperature", "top_p", "frequency_penalty", "presence_penalty"):
        high = FIELDS[name].maximum
        assert high is not None
        build_request({**MINIMAL, name: high})
        with pytest.raises(agent.BadRequestError) as caught:
            build_request({**MINIMAL, name: high + 0.5})
        assert caught.value.param == name


@pytest.mark.parametrize("name", sorted(set(FIELDS) - {"model", "messages"}))
def test_every_optional_field_accepts_null_as_its_default(name: str) -> None:
    build_request({**MINIMAL, name: None}) if name != "stream" else None
    assert chat_params({**MINIMAL, name: None}, ServerLimits(), None)[name] is None


def test_an_unknown_field_is_refused_by_name_everywhere() -> None:
    with pytest.raises(agent.BadRequestError) as sdk:
        build_request({**MINIMAL, "temprature": 0.5})
    with pytest.raises(agent.BadRequestError) as server:
        chat_params({**MINIMAL, "temprature": 0.5}, ServerLimits(), None)
    assert sdk.value.param == server.value.param == "temprature"


def test_the_openapi_document_is_the_contract() -> None:
    schema = openapi_document(ServerLimits())["components"]["schemas"]["ChatCompletionRequest"]
    assert set(schema["properties"]) == set(FIELDS)
    assert schema["required"] == [name for name, p in FIELDS.items() if p.default is REQUIRED]
    for name, param in FIELDS.items():
        prop = schema["properties"][name]
        assert prop["description"] == param.doc
        if param.default not in (None, REQUIRED):
            assert prop["default"] == param.default, name
        if param.minimum is not None:
            assert prop["minimum"] == param.minimum, name
