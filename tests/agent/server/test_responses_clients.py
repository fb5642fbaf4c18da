"""The Responses API with the official ``openai`` package against a real loopback server:
``responses.create`` / ``stream`` / ``parse`` / ``retrieve`` / ``delete``, web search items and events,
annotations on the ``[n]`` markers, and a function-tool loop through ``previous_response_id``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import openai
import pydantic
import pytest
from openai.types.responses import response_create_params

from agent import AsyncClient, ModelError, OpenAICompatibleBackend, ScriptedModel, ServerLimits
from agent._response_store import MemoryResponseStore, SqliteResponseStore
from agent.models import ScriptedCall, ScriptedReply
from agent.server._app import create_app
from tests.agent.server.server_harness import (
    ANSWER,
    API_KEY,
    MODEL,
    QUERY,
    FakeUpstream,
    ServerThread,
    SlowModel,
    StartServer,
    scripted_model,
)
from tests.fakes import FakeSearch

QUESTION = "Who directed 2001: A Space Odyssey?"
SEARCH = {"tools": [{"type": "web_search"}], "tool_choice": {"type": "web_search"}}
WEATHER_TOOL = {"type": "function", "name": "get_weather", "description": "The weather in a city.",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def _serve(start_server: StartServer, backend: Any, search: Any = None, store: Any = None) -> openai.OpenAI:
    client = AsyncClient(backend=backend, search=search, response_store=store or MemoryResponseStore())
    server = start_server(app=create_app(client, api_keys=[API_KEY]))
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=API_KEY, max_retries=0)


@pytest.fixture
def searching(start_server: StartServer, fake_search: FakeSearch) -> openai.OpenAI:
    return _serve(start_server, scripted_model(), fake_search)


def _markers(text: str, annotations: list[Any]) -> list[str]:
    return [text[a.start_index:a.end_index] for a in annotations]


def test_create_with_web_search_returns_search_item_message_and_citations(
    searching: openai.OpenAI, fake_search: FakeSearch
) -> None:
    response = searching.responses.create(model=MODEL, input=QUESTION, include=["web_search_call.action.sources"],
                                          **SEARCH)  # type: ignore[arg-type]
    search, message = response.output
    assert search.type == "web_search_call" and search.status == "completed"
    assert search.action.type == "search" and search.action.query == QUERY
    assert [s.url for s in search.action.sources or []] == [r.url for r in fake_search.results]
    assert message.type == "message" and response.output_text == ANSWER
    annotations = message.content[0].annotations  # type: ignore[union-attr]
    assert _markers(ANSWER, annotations) == ["[1]"]
    assert annotations[0].url == fake_search.results[0].url
    assert response.status == "completed" and response.incomplete_details is None
    assert response.usage is not None and response.usage.total_tokens == (
        response.usage.input_tokens + response.usage.output_tokens) > 0


def test_stream_sends_semantic_events_in_order(searching: openai.OpenAI) -> None:
    with searching.responses.stream(model=MODEL, input=QUESTION, **SEARCH) as stream:  # type: ignore[arg-type]
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert kinds[:7] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.web_search_call.in_progress", "response.web_search_call.searching",
                         "response.web_search_call.completed", "response.output_item.done"]
    assert kinds[7:9] == ["response.output_item.added", "response.content_part.added"]
    assert kinds[-5:] == ["response.output_text.done", "response.output_text.annotation.added",
                          "response.content_part.done", "response.output_item.done", "response.completed"]
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == ANSWER == final.output_text
    added = [e for e in events if e.type == "response.output_text.annotation.added"]
    assert _markers(final.output_text, [a.annotation for a in added]) == ["[1]"]
    assert final.output[0].type == "web_search_call"


def test_stream_is_framed_as_openai_frames_it(searching: openai.OpenAI) -> None:
    body = {"model": MODEL, "input": QUESTION, "stream": True, **SEARCH}
    with httpx.Client(base_url=str(searching.base_url)) as http:
        reply = http.post("/responses", json=body, headers={"Authorization": f"Bearer {API_KEY}"})
    assert reply.headers["content-type"].startswith("text/event-stream")
    frames = [f for f in reply.text.split("\n\n") if f and not f.startswith(":")]
    for frame in frames:
        event, data = frame.split("\n")
        assert event.startswith("event: ") and data.startswith("data: ")
        assert json.loads(data.removeprefix("data: "))["type"] == event.removeprefix("event: ")
    assert "[DONE]" not in reply.text


class Person(pydantic.BaseModel):
    name: str
    born: int


def test_parse_with_pydantic_model_validates_and_reasks(start_server: StartServer) -> None:
    model = ScriptedModel(['{"name": "Stanley Kubrick"}', '{"name": "Stanley Kubrick", "born": 1928}'], model=MODEL)
    client = _serve(start_server, model)
    response = client.responses.parse(model=MODEL, input="Who directed 2001?", text_format=Person)
    assert response.output_parsed == Person(name="Stanley Kubrick", born=1928)
    assert len(model.requests) == 2  # the first answer lacked "born": asked again
    assert model.requests[0].json_schema_name == "Person"  # text.format reached the model as its schema


def test_function_tool_loop_with_previous_response_id(start_server: StartServer) -> None:
    model = ScriptedModel([ScriptedReply(tool_calls=(ScriptedCall("get_weather", {"city": "Paris"}),)),
                           "It is sunny in Paris."], model=MODEL)
    client = _serve(start_server, model)
    first = client.responses.create(model=MODEL, input="Weather in Paris?", tools=[WEATHER_TOOL])  # type: ignore[list-item]
    (call,) = first.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Paris"}
    second = client.responses.create(
        model=MODEL, previous_response_id=first.id, tools=[WEATHER_TOOL],  # type: ignore[list-item]
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 24 C"}])
    assert second.output_text == "It is sunny in Paris."
    assert second.previous_response_id == first.id
    sent = model.requests[-1].messages
    assert [m.role for m in sent] == ["user", "assistant", "tool"]
    assert sent[1].tool_calls[0].id == call.call_id and sent[2].content == "sunny, 24 C"


def test_streamed_function_call_sends_argument_events(start_server: StartServer) -> None:
    model = ScriptedModel([ScriptedReply(tool_calls=(ScriptedCall("get_weather", {"city": "Oslo"}),))], model=MODEL)
    client = _serve(start_server, model)
    with client.responses.stream(model=MODEL, input="Weather?", tools=[WEATHER_TOOL]) as stream:  # type: ignore[list-item]
        events = list(stream)
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    deltas = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    assert json.loads(done.arguments) == json.loads(deltas) == {"city": "Oslo"}


def test_retrieve_and_delete_a_stored_response(searching: openai.OpenAI) -> None:
    response = searching.responses.create(model=MODEL, input=QUESTION, metadata={"run": "7"})
    again = searching.responses.retrieve(response.id)
    assert again.output_text == response.output_text and again.metadata == {"run": "7"}
    searching.responses.delete(response.id)
    with pytest.raises(openai.NotFoundError):
        searching.responses.retrieve(response.id)
    with pytest.raises(openai.NotFoundError):
        searching.responses.delete(response.id)


def test_store_false_keeps_nothing(searching: openai.OpenAI) -> None:
    response = searching.responses.create(model=MODEL, input=QUESTION, store=False)
    with pytest.raises(openai.NotFoundError):
        searching.responses.retrieve(response.id)
    with pytest.raises(openai.BadRequestError) as caught:
        searching.responses.create(model=MODEL, input="more", previous_response_id=response.id)
    assert caught.value.body["param"] == "previous_response_id"  # type: ignore[index]


@pytest.mark.parametrize(("fields", "param"), [
    ({"max_output_tokens": 0}, "max_output_tokens"),
    ({"text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "nope"}}}}, "text.format.schema"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]}, "input[0].content[0]"),
    ({"tools": [{"type": "function", "name": "bad name"}]}, "tools[0].name"),
    ({"tools": [{"type": "file_search", "vector_store_ids": ["v"]}]}, "tools[0]"),
    ({"tools": [{"type": "web_search", "filters": {"allowed_domains": ["x.org"]}}]}, "tools[0].filters"),
    ({"background": True}, "background"),
    ({"temperature": 3}, "temperature"),
    ({"include": ["everything"]}, "include[0]"),
    ({"metadata": {"k": 1}}, "metadata.k"),
    ({"max_output_tokens": 10**9}, "max_output_tokens"),
])
def test_bad_fields_are_a_400_naming_them(searching: openai.OpenAI, fields: dict[str, Any], param: str) -> None:
    body = {"model": MODEL, "input": QUESTION, **fields}
    with pytest.raises(openai.BadRequestError) as caught:
        searching.post("/responses", body=body, cast_to=httpx.Response)
    assert caught.value.body["param"] == param  # type: ignore[index]


def test_openai_documented_no_op_fields_are_accepted(searching: openai.OpenAI) -> None:
    response = searching.responses.create(
        model=MODEL, input=QUESTION, user="u1", safety_identifier="s1", prompt_cache_key="k", service_tier="auto",
        truncation="disabled", reasoning={"effort": "low"}, parallel_tool_calls=False, max_tool_calls=3,
        top_logprobs=0, background=False, text={"verbosity": "low"})
    assert response.output_text == ANSWER and response.parallel_tool_calls is False


def test_the_openapi_document_lists_the_routes(searching: openai.OpenAI) -> None:
    document = httpx.get(str(searching.base_url).removesuffix("v1/") + "openapi.json").json()
    assert {"/v1/responses", "/v1/responses/{response_id}"} <= set(document["paths"])
    accepted = set(document["components"]["schemas"]["ResponseCreateRequest"]["properties"])
    params = response_create_params.ResponseCreateParamsBase
    assert params.__required_keys__ | params.__optional_keys__ <= accepted | {"stream"}


def test_default_store_is_sqlite_under_the_cache_dir(start_server: StartServer, monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    monkeypatch.setenv("STUDIOLM_CACHE_DIR", str(tmp_path))
    server = start_server(app=create_app(AsyncClient(backend=scripted_model(), search=FakeSearch())))
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
    response = client.responses.create(model=MODEL, input=QUESTION)
    assert (tmp_path / "responses.sqlite3").exists()
    assert client.responses.retrieve(response.id).id == response.id
    assert isinstance(SqliteResponseStore().path, Path)



def test_a_failure_mid_stream_ends_with_error_and_response_failed(start_server: StartServer) -> None:
    model = SlowModel(["Stanley ", "Kubrick."], fail_after=1, error=ModelError("the local model crashed"))
    client = AsyncClient(backend=model, response_store=MemoryResponseStore())
    server = start_server(app=create_app(client, api_keys=[API_KEY], limits=ServerLimits(stream_hold=0.0)))
    openai_client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=API_KEY, max_retries=0)
    events = list(openai_client.responses.create(model=MODEL, input="hi", stream=True))
    assert [e.type for e in events[-2:]] == ["error", "response.failed"]
    assert events[-2].message == "the local model crashed"  # type: ignore[union-attr]
    assert events[-1].response.status == "failed"  # type: ignore[union-attr]
    assert any(e.type == "response.output_text.delta" for e in events)


def test_a_failure_before_the_first_token_keeps_its_status(start_server: StartServer) -> None:
    client = AsyncClient(backend=SlowModel(fail_after=0), response_store=MemoryResponseStore())
    server = start_server(app=create_app(client, api_keys=[API_KEY]))
    reply = httpx.post(f"{server.url}/v1/responses", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30,
                       json={"model": MODEL, "input": "hi", "stream": True})
    assert reply.status_code == 500 and reply.json()["error"]["code"] == "model_error"


def test_responses_need_the_api_key(searching: openai.OpenAI) -> None:
    anonymous = openai.OpenAI(base_url=str(searching.base_url), api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        anonymous.responses.create(model=MODEL, input=QUESTION)
    with pytest.raises(openai.AuthenticationError):
        anonymous.responses.retrieve("resp_x")


def test_an_upstream_that_speaks_only_chat_completions_serves_responses(
    start_server: StartServer, upstream: tuple[FakeUpstream, ServerThread]
) -> None:
    fake, fake_server = upstream
    backend = OpenAICompatibleBackend("sk-up", f"{fake_server.url}/v1", max_retries=0)
    client = _serve(start_server, backend)
    response = client.responses.create(model=MODEL, input=QUESTION, instructions="Be brief.")
    assert response.output_text == ANSWER
    sent = fake.calls[-1].body
    assert sent["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": QUESTION}]
