"""``client.responses`` in process: the sync wrapper, streams, input items, the response stores."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from agent import AsyncClient, BadRequestError, Client, ScriptedModel
from agent._response_store import MemoryResponseStore, SqliteResponseStore, StoredResponse
from agent._responses import FIELDS, input_messages
from agent._responses_wire import Response
from agent.models import ScriptedCall, ScriptedReply
from tests.agent.server.server_harness import ANSWER, MODEL, scripted_model
from tests.fakes import FakeSearch


def test_sync_client_creates_streams_and_continues_a_response() -> None:
    with Client(backend=scripted_model(), search=FakeSearch(), response_store=MemoryResponseStore()) as client:
        first = client.responses.create(model=MODEL, input="Who directed 2001?", instructions="Be brief.")
        assert isinstance(first, Response) and first.output_text == ANSWER
        assert json.loads(json.dumps(first))["output"][0]["content"][0]["text"] == ANSWER  # a plain JSON body
        with client.responses.create(model=MODEL, input="And who wrote it?", previous_response_id=first.id,
                                     stream=True) as stream:
            events = list(stream)
        assert events[-1]["type"] == "response.completed"
        assert client.responses.retrieve(first.id)["id"] == first.id
        assert client.responses.delete(first.id) is True
        with pytest.raises(BadRequestError) as caught:
            client.responses.retrieve(first.id)
        assert caught.value.param == "response_id"


async def test_previous_response_carries_the_conversation_but_not_the_instructions() -> None:
    model = scripted_model()
    async with AsyncClient(backend=model, response_store=MemoryResponseStore()) as client:
        first = await client.responses.create(model=MODEL, input="one", instructions="Old rules.")
        await client.responses.create(model=MODEL, input="two", previous_response_id=first.id, instructions="New.")
    sent = [(m.role, m.content) for m in model.requests[-1].messages]
    assert sent == [("system", "New."), ("user", "one"), ("assistant", ANSWER), ("user", "two")]


async def test_max_output_tokens_cut_makes_an_incomplete_response() -> None:
    model = ScriptedModel([ScriptedReply("Stanley", finish_reason="length")], model=MODEL)
    async with AsyncClient(backend=model, response_store=MemoryResponseStore()) as client:
        response = await client.responses.create(model=MODEL, input="Who?", max_output_tokens=1)
    assert response.status == "incomplete"
    assert response.incomplete_details == {"reason": "max_output_tokens"}


def test_input_items_become_chat_messages() -> None:
    items = [
        {"role": "developer", "content": "Rules."},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
        {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
         "content": [{"type": "output_text", "text": "Let me look.", "annotations": []}]},
        {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"type": "search", "query": "q"}},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call", "call_id": "c2", "name": "g", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "one"},
        {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "two"}]},
    ]
    messages = input_messages(items)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "tool"]
    assert messages[2]["content"] == "Let me look."
    assert [c["id"] for c in messages[2]["tool_calls"]] == ["c1", "c2"]
    assert messages[4]["content"] == "two"


@pytest.mark.parametrize(("value", "param"), [
    (42, "input"),
    ([{"type": "reasoning", "summary": []}], "input[0].type"),
    ([{"role": "user", "content": "x", "extra": 1}], "input[0].extra"),
    ([{"type": "function_call", "name": "f", "arguments": "{}"}], "input[0].call_id"),
    ([{"role": ["user"], "content": "x"}], "input[0].role"),  # an unhashable role was a TypeError
])
def test_bad_input_items_are_named(value: object, param: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        input_messages(value)
    assert caught.value.param == param


def test_every_openai_responses_field_has_a_handling() -> None:
    from openai.types.responses.response_create_params import ResponseCreateParamsBase

    documented = ResponseCreateParamsBase.__required_keys__ | ResponseCreateParamsBase.__optional_keys__
    assert documented <= set(FIELDS)


RECORD = StoredResponse({"id": "resp_1", "output": []}, [{"role": "user", "content": "hi"}])


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_stores_keep_expire_and_bound(kind: str, tmp_path: Path) -> None:
    def make(**bounds: float) -> MemoryResponseStore | SqliteResponseStore:
        return MemoryResponseStore(**bounds) if kind == "memory" else SqliteResponseStore(tmp_path / "r.db", **bounds)  # type: ignore[arg-type]

    store = make()
    assert await store.put("resp_1", RECORD) and await store.get("resp_1") == RECORD
    assert await store.delete("resp_1") and not await store.delete("resp_1")
    await store.aclose()
    bounded = make(max_items=2)
    for name in ("a", "b", "c"):
        await bounded.put(name, RECORD)
        await asyncio.sleep(0.01)  # distinct write times: the oldest goes first
    assert [await bounded.get(n) is not None for n in ("a", "b", "c")] == [False, True, True]
    await bounded.aclose()
    expired = make(ttl=0.0)
    await expired.put("old", RECORD)
    await asyncio.sleep(0.01)
    assert await expired.get("old") is None
    await expired.aclose()


async def test_sqlite_store_creates_no_file_until_written(tmp_path: Path) -> None:
    store = SqliteResponseStore(tmp_path / "sub" / "responses.sqlite3")
    assert await store.get("resp_x") is None and not await store.delete("resp_x")
    assert not store.path.exists()
    await store.aclose()


async def test_pydantic_text_format_in_the_sdk() -> None:
    import pydantic

    class Person(pydantic.BaseModel):
        name: str

    model = ScriptedModel(['{"name": "Stanley Kubrick"}'], model=MODEL)
    async with AsyncClient(backend=model, response_store=MemoryResponseStore()) as client:
        response = await client.responses.create(model=MODEL, input="Who?", text={"format": Person})
    assert json.loads(response.output_text) == {"name": "Stanley Kubrick"}
    assert response.text["format"]["name"] == "Person" and json.dumps(response)


async def test_auto_search_and_python_tools_run_inside_the_graph() -> None:
    calls: list[str] = []

    def population(city: str) -> str:
        """The population of a city."""
        calls.append(city)
        return "2.1 million"

    model = ScriptedModel([
        ScriptedReply(tool_calls=(ScriptedCall("web_search", {"query": "Paris population"}),)),
        ScriptedReply(tool_calls=(ScriptedCall("population", {"city": "Paris"}),)),
        "Paris has 2.1 million people [1].",
    ], model=MODEL)
    async with AsyncClient(backend=model, search=FakeSearch(), response_store=MemoryResponseStore()) as client:
        stream = await client.responses.create(model=MODEL, input="How many people live in Paris?", stream=True,
                                               tools=[{"type": "web_search"}, population])
        events = [event async for event in stream]
    final = events[-1]["response"]
    assert [item["type"] for item in final["output"]] == ["web_search_call", "message"]
    assert final["output"][0]["action"]["query"] == "Paris population"
    assert calls == ["Paris"] and [run["name"] for run in final["tool_runs"]] == ["web_search", "population"]
    assert "response.web_search_call.completed" in [e["type"] for e in events]


@pytest.mark.parametrize(("size", "searched"), [(None, 1), ("high", 8)])
def test_the_web_search_tools_search_context_size_sets_the_results_per_search(size: str | None,
                                                                              searched: int) -> None:
    from graphs import Capabilities
    from tools import SearchResult

    found = [SearchResult(f"R{i}", f"https://example.org/{i}", f"text {i}", "fake") for i in range(1, 9)]
    model = ScriptedModel(["R1 [1]."], capabilities=Capabilities(results_read=1))
    tool = {"type": "web_search", **({"search_context_size": size} if size else {})}
    with Client(backend=model, search=FakeSearch(found), response_store=MemoryResponseStore()) as client:
        client.responses.create(model="scripted", input="Which one?", tools=[tool], tool_choice={"type": "web_search"})
    prompt = model.requests[-1].messages[-1].content
    assert f"[{searched}] R{searched}\n" in prompt and f"[{searched + 1}]" not in prompt
