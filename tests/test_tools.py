"""Tool use through the public SDK on the scripted model: Python tools, built-ins, the caller's own
function tools, tool_choice, the decision step of models without native tool calling, and bounds."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Sequence
from typing import Annotated, Any

import pytest
from pydantic import Field

import agent as studiolm
from agent import Capabilities, ModelRequest, ScriptedCall, ScriptedModel, ScriptedReply
from agent._exceptions import BadRequestError, ToolsetError
from graphs import ChatLimits
from tests.fakes import FakeSearch
from tools import SearchResult
from tools._functions import FunctionTool, ToolDefinition, ToolOutput, Toolset

QUESTION = [{"role": "user", "content": "What is the weather in Paris?"}]
NATIVE = Capabilities(tool_calling=True)
CONSTRAINED = Capabilities(tool_calling=False, json_schema=True)  # like the embedded SmolLM2
CALLER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_user_location",
        "description": "The user's current city.",
        "parameters": {"type": "object", "properties": {}, "additionalProperties": False},
    },
}


def call(name: str, arguments: dict[str, Any] | str) -> ScriptedReply:
    return ScriptedReply(tool_calls=(ScriptedCall(name, arguments),))


def calls(*pairs: tuple[str, dict[str, Any] | str]) -> ScriptedReply:
    return ScriptedReply(tool_calls=tuple(ScriptedCall(n, a) for n, a in pairs))


class Weather:
    """A Python tool that records its calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def get_weather(self, city: Annotated[str, Field(description="City name")], unit: str = "C") -> dict[str, Any]:
        """Current weather for a city."""
        self.calls.append(city)
        return {"city": city, "temperature": 21, "unit": unit}


def run(model: ScriptedModel, *, stream: bool = False, search: Any = None, client_options: dict[str, Any] | None = None,
        **params: Any) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    """(answer text, step payloads, response body or final chunk) of one request."""
    with studiolm.Client(backend=model, search=search or FakeSearch(), **(client_options or {})) as client:
        result = client.chat.completions.create(model="scripted", messages=params.pop("messages", QUESTION),
                                                stream=stream, **params)
        if not stream:
            return result["choices"][0]["message"]["content"] or "", [], result
        text, steps, final, deltas = "", [], {}, []
        for chunk in result:
            delta = chunk["choices"][0]["delta"]
            text += delta.get("content", "") or ""
            deltas += delta.get("tool_calls", [])
            steps += [chunk["step"]] if "step" in chunk else []
            final = chunk if chunk["choices"][0]["finish_reason"] else final
        final = {**final, "tool_call_deltas": deltas}
        return text, steps, final


def tool_message(request: ModelRequest) -> str:
    assert request.messages[-1].role == "tool"
    return request.messages[-1].content


# --- Python tools ---------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_one_python_tool_is_described_called_and_its_result_read(stream: bool) -> None:
    weather = Weather()
    model = ScriptedModel([call("get_weather", {"city": "Paris"}), "It is 21 degrees in Paris."])
    text, steps, body = run(model, stream=stream, tools=[weather.get_weather])
    assert text == "It is 21 degrees in Paris."
    assert weather.calls == ["Paris"]
    (spec,) = model.requests[0].tools
    assert spec.name == "get_weather" and spec.description == "Current weather for a city."
    assert spec.parameters["properties"]["city"] == {"type": "string", "description": "City name"}
    assert spec.parameters["required"] == ["city"]
    assert json.loads(tool_message(model.requests[1])) == {"city": "Paris", "temperature": 21, "unit": "C"}
    assert body["choices"][0]["finish_reason"] == "stop"
    (record,) = body["tool_runs"]
    assert record["name"] == "get_weather" and record["error"] is None and '"temperature":21' in record["preview"]
    assert "web_search" not in body  # no search happened, so no search fields
    if stream:
        called = next(s for s in steps if s["type"] == "tool.called")
        result = next(s for s in steps if s["type"] == "tool.result")
        assert called == {"type": "tool.called", "name": "get_weather", "arguments": '{"city": "Paris"}',
                          "call_id": result["call_id"], "runs_on": "graph"}
        assert result["error"] is None and result["duration_ms"] >= 0
        assert steps.index(called) < steps.index(result)


def test_calls_of_one_turn_run_concurrently_sync_and_async() -> None:
    spans: dict[str, tuple[float, float]] = {}

    async def fetch_a(x: int) -> int:
        """Slow async tool."""
        began = time.monotonic()
        await asyncio.sleep(0.3)
        spans["a"] = (began, time.monotonic())
        return x

    async def fetch_b(x: int) -> int:
        """Another slow async tool."""
        began = time.monotonic()
        await asyncio.sleep(0.3)
        spans["b"] = (began, time.monotonic())
        return x

    def blocking(x: int) -> int:
        """Slow sync tool: runs in a worker thread, so it does not hold up the others."""
        began = time.monotonic()
        time.sleep(0.3)
        spans["sync"] = (began, time.monotonic())
        return x

    model = ScriptedModel([calls(("fetch_a", {"x": 1}), ("fetch_b", {"x": 2}), ("blocking", {"x": 3})), "done"])
    _, steps, _ = run(model, stream=True, tools=[fetch_a, fetch_b, blocking])
    assert set(spans) == {"a", "b", "sync"}
    latest_start = max(start for start, _ in spans.values())
    earliest_end = min(end for _, end in spans.values())
    assert latest_start < earliest_end, f"the calls did not overlap: {spans}"
    assert [m.content for m in model.requests[1].messages[-3:]] == ["1", "2", "3"]  # results in call order
    assert [s["type"] for s in steps].count("tool.result") == 3


def test_a_tool_that_raises_becomes_an_error_result_and_a_step() -> None:
    def lookup(city: str) -> str:
        """Look a city up."""
        raise ValueError(f"no such city: {city}")

    model = ScriptedModel([call("lookup", {"city": "Atlantis"}), "Sorry, I could not find it."])
    text, steps, body = run(model, stream=True, tools=[lookup])
    assert text == "Sorry, I could not find it."
    assert tool_message(model.requests[1]) == "Error: ValueError: no such city: Atlantis"
    result = next(s for s in steps if s["type"] == "tool.result")
    assert result["error"] == "ValueError: no such city: Atlantis"
    assert body["choices"][0]["finish_reason"] == "stop"


def test_a_tool_that_times_out_is_abandoned_and_the_run_goes_on() -> None:
    release = threading.Event()

    async def slow_async(q: str) -> str:
        """Never answers in time."""
        await asyncio.sleep(30)
        return "late"

    def slow_sync(q: str) -> str:
        """Blocks its worker thread until released."""
        release.wait(30)
        return "late"

    tools = [FunctionTool(slow_async, timeout=0.2), slow_sync]
    model = ScriptedModel([calls(("slow_async", {"q": "a"}), ("slow_sync", {"q": "b"})), "Both timed out."])
    try:
        began = time.monotonic()
        text, steps, body = run(model, stream=True, tools=tools,
                                client_options={"limits": ChatLimits(tool_timeout=0.3)})
        took = time.monotonic() - began
    finally:
        release.set()
    assert text == "Both timed out."
    assert took < 5
    errors = {s["name"]: s["error"] for s in steps if s["type"] == "tool.result"}
    assert errors == {"slow_async": "timed out after 0.2 s", "slow_sync": "timed out after 0.3 s"}
    assert [m.content for m in model.requests[1].messages[-2:]] == [
        "Error: timed out after 0.2 s", "Error: timed out after 0.3 s"]
    assert {r["name"]: r["duration_ms"] >= 200 for r in body["tool_runs"]} == {"slow_async": True, "slow_sync": True}


def test_invalid_arguments_from_the_model_go_back_to_it_and_the_tool_is_not_called() -> None:
    weather = Weather()
    model = ScriptedModel([
        calls(("get_weather", {"town": "Paris"}), ("get_weather", "{not json"), ("get_wether", {"city": "x"})),
        call("get_weather", {"city": "Paris"}),
        "21 degrees.",
    ])
    text, _, body = run(model, tools=[weather.get_weather])
    assert text == "21 degrees."
    assert weather.calls == ["Paris"]  # only the corrected call ran
    bad_field, bad_json, unknown = (m.content for m in model.requests[1].messages[-3:])
    assert bad_field.startswith("Error: invalid arguments for get_weather:")
    assert "/city: Field required" in bad_field and "/town: Extra inputs are not permitted" in bad_field
    assert bad_json.startswith("Error: invalid arguments '{not json': not valid JSON")
    assert bad_json.endswith("write them as a JSON object")
    assert unknown == "Error: no tool 'get_wether' is available now; the tools are: get_weather"
    assert [r["error"] is None for r in body["tool_runs"]] == [False, False, False, True]


def test_a_model_that_never_stops_calling_tools_is_bounded_by_rounds() -> None:
    counter = {"calls": 0}

    def tick() -> int:
        """Count."""
        counter["calls"] += 1
        return counter["calls"]

    model = ScriptedModel([call("tick", {})])  # repeats forever
    _, _, body = run(model, tools=[tick], client_options={"limits": ChatLimits(max_tool_rounds=3)})
    assert counter["calls"] == 3
    assert [bool(r.tools) for r in model.requests] == [True, True, True, False]
    assert body["usage"]["model_calls"] == 4
    # Cut short with no answer: said so (issue 10 row 16); the ignored calls of the last turn are not pending.
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["incomplete_details"] == {"reason": "max_tool_rounds", "limit": 3}
    assert "tool_calls" not in body["choices"][0]["message"]


def test_the_tool_loop_is_bounded_by_wall_time() -> None:
    async def wait() -> str:
        """Take a while."""
        await asyncio.sleep(0.2)
        return "ok"

    model = ScriptedModel([call("wait", {})])
    limits = ChatLimits(tool_loop_seconds=0.3, max_tool_rounds=50, step_limit=200)
    _, _, body = run(model, tools=[wait], client_options={"limits": limits})
    assert 1 <= len(body["tool_runs"]) <= 2
    assert model.requests[-1].tools == ()


def test_long_results_are_clipped_with_a_note() -> None:
    def dump() -> str:
        """A lot of text."""
        return "x" * 100

    model = ScriptedModel([call("dump", {}), "ok"])
    run(model, tools=[dump], client_options={"limits": ChatLimits(max_tool_result_chars=10)})
    assert tool_message(model.requests[1]) == "xxxxxxxxxx\n… (clipped: 90 more characters)"


def test_tools_given_to_the_client_are_offered_in_every_request_and_closed_with_it() -> None:
    weather = Weather()
    closed: list[str] = []

    class Tracked(FunctionTool):
        async def aclose(self) -> None:
            closed.append(self.name)

    model = ScriptedModel([call("get_weather", {"city": "Oslo"}), "Cold."])
    with studiolm.Client(backend=model, search=FakeSearch(), tools=[Tracked(weather.get_weather)]) as client:
        response = client.chat.completions.create(model="scripted", messages=QUESTION)
        assert response["choices"][0]["message"]["content"] == "Cold."
    assert weather.calls == ["Oslo"] and closed == ["get_weather"]


# --- toolsets (the interface MCP servers plug into) ----------------------------------------------


class Calculator(Toolset):
    """A toolset with two tools, behind one object, validating its own arguments."""

    name = "calculator"

    def __init__(self, *, broken: bool = False) -> None:
        self.broken = broken
        self.listed = 0

    async def list_tools(self) -> Sequence[ToolDefinition]:
        self.listed += 1
        if self.broken:
            raise ConnectionError("server went away")
        number = {"type": "number"}
        schema = {"type": "object", "properties": {"a": number, "b": number}, "required": ["a", "b"]}
        return [ToolDefinition("add", "Add two numbers.", schema), ToolDefinition("div", "Divide a by b.", schema)]

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolOutput:
        a, b = arguments["a"], arguments["b"]
        if name == "div" and b == 0:
            return ToolOutput("division by zero", is_error=True)
        return ToolOutput(str(a + b if name == "add" else a / b))


def test_a_toolset_lists_its_tools_and_runs_their_calls() -> None:
    calculator = Calculator()
    model = ScriptedModel([calls(("add", {"a": 2, "b": 3}), ("div", {"a": 1, "b": 0})), "5, and 1/0 fails."])
    _, steps, final = run(model, stream=True, tools=[calculator])
    assert [t.name for t in model.requests[0].tools] == ["add", "div"]
    assert [r["name"] for r in final["tool_runs"]] == ["add", "div"]
    assert [m.content for m in model.requests[1].messages[-2:]] == ["5", "division by zero"]
    errors = [s["error"] for s in steps if s["type"] == "tool.result"]
    assert errors == [None, "division by zero"]
    assert calculator.listed == 1


def test_a_toolset_that_cannot_list_its_tools_fails_the_request_clearly() -> None:
    model = ScriptedModel(["unused"])
    with pytest.raises(ToolsetError) as info:
        run(model, tools=[Calculator(broken=True)])
    assert info.value.toolset == "calculator" and "ConnectionError: server went away" in str(info.value)
    assert model.requests == []


# --- tool_choice ------------------------------------------------------------------------------------


@pytest.mark.parametrize("choice", ["required", {"type": "function", "function": {"name": "get_weather"}}])
def test_a_forced_tool_choice_applies_to_the_first_turn_only(choice: Any) -> None:
    weather = Weather()
    model = ScriptedModel([call("get_weather", {"city": "Rome"}), "Warm."])
    text, _, _ = run(model, tools=[weather.get_weather], tool_choice=choice)
    expected = "required" if choice == "required" else "get_weather"
    assert [r.tool_choice for r in model.requests] == [expected, "auto"]
    assert weather.calls == ["Rome"] and text == "Warm."


def test_tool_choice_none_offers_no_tool_at_all() -> None:
    weather = Weather()
    model = ScriptedModel(["I will not look it up."])
    _, _, body = run(model, tools=[weather.get_weather, "local_search"], tool_choice="none", web_search="auto")
    assert model.requests[0].tools == ()
    assert weather.calls == []
    assert body["web_search"]["searched"] is False


@pytest.mark.parametrize(
    ("choice", "message"),
    [
        ({"type": "function", "function": {"name": "nope"}}, "names no tool of this request: 'nope'"),
        ("always", 'must be "auto", "none", "required"'),
        ({"type": "function"}, "must name the tool"),
    ],
)
def test_a_bad_tool_choice_is_refused_naming_the_parameter(choice: Any, message: str) -> None:
    with pytest.raises(BadRequestError) as info:
        run(ScriptedModel(["x"]), tools=[Weather().get_weather], tool_choice=choice)
    assert info.value.param.startswith("tool_choice") and message in str(info.value)


def test_forcing_a_tool_without_tools_is_refused() -> None:
    with pytest.raises(BadRequestError) as info:
        run(ScriptedModel(["x"]), tool_choice="required")
    assert info.value.param == "tool_choice"


# --- models without native tool calling ------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_a_model_without_tool_calling_decides_then_makes_a_constrained_call(stream: bool) -> None:
    weather = Weather()
    model = ScriptedModel(
        ['"get_weather"', call("get_weather", {"city": "Lima"}), '"answer"', "It is 21 degrees in Lima."],
        capabilities=CONSTRAINED,
    )
    text, steps, _ = run(model, stream=stream, tools=[weather.get_weather])
    decide, generate_call, decide_again, answer = model.requests
    assert decide.json_schema == {"type": "string", "enum": ["answer", "get_weather"]}
    assert "- get_weather: Current weather for a city." in decide.messages[0].content
    assert (generate_call.tool_choice, [t.name for t in generate_call.tools]) == ("get_weather", ["get_weather"])
    assert "Result of get_weather" in decide_again.messages[-1].content  # the decision sees the result
    assert answer.tools == ()
    assert weather.calls == ["Lima"] and text == "It is 21 degrees in Lima."
    if stream:
        decided = [s for s in steps if s["type"] == "tool.decided"]
        assert [d["tool"] for d in decided] == ["get_weather", None]


def test_a_decision_step_model_that_repeats_a_call_is_made_to_answer() -> None:
    weather = Weather()
    again = call("get_weather", {"city": "Lima"})
    model = ScriptedModel(['"get_weather"', again, '"get_weather"', again, "21 degrees."], capabilities=CONSTRAINED)
    text, _, _ = run(model, tools=[weather.get_weather])
    assert weather.calls == ["Lima", "Lima"]
    assert [r.json_schema is not None for r in model.requests] == [True, False, True, False, False]
    assert model.requests[-1].tools == () and text == "21 degrees."


def test_a_forced_choice_skips_the_decision_step() -> None:
    weather = Weather()
    model = ScriptedModel([call("get_weather", {"city": "Kyiv"}), '"answer"', "Mild."], capabilities=CONSTRAINED)
    run(model, tools=[weather.get_weather], tool_choice={"type": "function", "function": {"name": "get_weather"}})
    assert model.requests[0].tool_choice == "get_weather" and model.requests[0].json_schema is None
    assert model.requests[1].json_schema is not None  # later turns decide again
    assert weather.calls == ["Kyiv"]


def test_a_decision_that_names_no_tool_answers_without_one() -> None:
    model = ScriptedModel(['"maybe later"', "Hello."], capabilities=Capabilities())
    _, steps, _ = run(model, stream=True, tools=[Weather().get_weather])
    assert model.requests[0].json_schema is None  # no constrained decoding: the reply is parsed leniently
    decided = next(s for s in steps if s["type"] == "tool.decided")
    assert decided["tool"] is None and "names no tool" in decided["reason"]
    assert model.requests[1].tools == ()


def test_web_search_alone_keeps_its_search_decision_step(fake_search: FakeSearch) -> None:
    model = ScriptedModel(['"search"', "Kubrick [1]."], capabilities=CONSTRAINED)
    run(model, search=fake_search, web_search="auto")
    assert model.requests[0].json_schema == {"type": "string", "enum": ["search", "answer"]}


def test_web_search_beside_other_tools_is_one_choice_of_the_tool_decision(fake_search: FakeSearch) -> None:
    model = ScriptedModel(['"web_search"', call("web_search", {"query": "paris weather"}), '"answer"', "Sunny [1]."],
                          capabilities=CONSTRAINED)
    _, _, body = run(model, search=fake_search, web_search="auto", tools=[Weather().get_weather])
    assert model.requests[0].json_schema == {"type": "string", "enum": ["answer", "web_search", "get_weather"]}
    assert fake_search.queries == ["paris weather"]
    assert body["web_search"]["searched"] is True
    assert body["web_search"]["reason"] == "the decision step chose web_search"
    assert body["citations"][0] == fake_search.results[0].url


# --- the caller's own function tools ----------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_caller_tools_come_back_as_tool_calls_and_the_conversation_continues(stream: bool) -> None:
    model = ScriptedModel([call("get_user_location", {}), "You are in Lyon, where it is sunny."])
    _, steps, body = run(model, stream=stream, tools=[CALLER_TOOL])
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    call_id = "call_1_0"  # the scripted model's id for the first call of its first reply
    if stream:
        assert body["tool_call_deltas"] == [
            {"index": 0, "id": call_id, "type": "function", "function": {"name": "get_user_location", "arguments": ""}},
            {"index": 0, "function": {"arguments": "{}"}},
        ]
        assert {"type": "tool.called", "name": "get_user_location", "arguments": "{}", "call_id": call_id,
                "runs_on": "caller"} in steps
        assert not [s for s in steps if s["type"] == "tool.result"]
    else:
        message = body["choices"][0]["message"]
        assert message["content"] is None
        assert message["tool_calls"] == [{"id": call_id, "type": "function",
                                          "function": {"name": "get_user_location", "arguments": "{}"}}]
    follow_up = [*QUESTION, {"role": "assistant", "content": None, "tool_calls": [
        {"id": call_id, "type": "function", "function": {"name": "get_user_location", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": call_id, "content": "Lyon"}]
    text, _, final = run(model, stream=stream, tools=[CALLER_TOOL], messages=follow_up)
    assert text == "You are in Lyon, where it is sunny."
    assert final["choices"][0]["finish_reason"] == "stop"
    assert model.requests[-1].messages[-1].content == "Lyon" and model.requests[-1].messages[-1].role == "tool"


def test_ours_run_and_theirs_return_when_one_turn_calls_both(fake_search: FakeSearch) -> None:
    weather = Weather()
    model = ScriptedModel([calls(("web_search", {"query": "weather today"}), ("get_weather", {"city": "Nice"}),
                                 ("get_user_location", {}))])
    _, _, body = run(model, search=fake_search, web_search="auto", tools=[weather.get_weather, CALLER_TOOL])
    assert fake_search.queries == ["weather today"] and weather.calls == ["Nice"]
    message = body["choices"][0]["message"]
    assert [c["function"]["name"] for c in message["tool_calls"]] == ["get_user_location"]
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    assert [r["name"] for r in body["tool_runs"]] == ["web_search", "get_weather"]
    assert body["citations"] == [r.url for r in fake_search.results]


# --- built-in tools by name ---------------------------------------------------------------------------


def test_local_search_searches_the_local_index_and_numbers_its_results() -> None:
    notes = FakeSearch(results=[SearchResult("Llamas", "file:///notes/llamas.md", "Llamas hum.", "local")])
    model = ScriptedModel([call("local_search", {"query": "llamas"}), "They hum [1]."])
    _, _, body = run(model, tools=["local_search"], client_options={"local_index": notes})
    assert notes.queries == ["llamas"]
    assert "[1] Llamas" in tool_message(model.requests[1])
    assert body["citations"] == ["file:///notes/llamas.md"]
    assert body["choices"][0]["message"]["annotations"][0]["url_citation"]["url"] == "file:///notes/llamas.md"
    assert body["web_search"]["searched"] is True and body["web_search"]["queries"] == ["llamas"]


def test_image_search_tool_returns_images(fake_search: FakeSearch) -> None:
    model = ScriptedModel([call("image_search", {"query": "monolith"}), "Here it is."])
    _, _, body = run(model, search=fake_search, tools=[{"type": "image_search"}])
    assert body["images"][0]["image_url"] == fake_search.images[0].image_url
    assert "Image: https://img.example/monolith.jpg" in tool_message(model.requests[1])


def test_web_search_by_name_turns_on_auto(fake_search: FakeSearch) -> None:
    model = ScriptedModel([call("web_search", {"query": "kubrick"}), "Kubrick [1]."])
    _, _, body = run(model, search=fake_search, tools=["web_search"])
    assert [t.name for t in model.requests[0].tools] == ["web_search"]
    assert body["web_search"]["mode"] == "auto" and body["web_search"]["searched"] is True


# --- parameter validation -------------------------------------------------------------------------------


def _lambda_tool(x: int) -> int:
    return x


@pytest.mark.parametrize(
    ("tools", "param", "message"),
    [
        ("web_search", "tools", "must be a list of tools"),
        ([5], "tools[0]", "unsupported tool 'int'"),
        (["fetch_url"], "tools[0]", "'fetch_url' is not available yet"),
        (["browser"], "tools[0]", "unknown built-in tool 'browser'"),
        ([{"type": "function", "function": {"name": "bad name"}}], "tools[0].function.name", "1-64 of"),
        ([{"type": "function", "function": {"name": "f", "parameters": {"type": "nope"}}}],
         "tools[0].function.parameters", "not a usable JSON schema"),
        ([{"type": "function", "function": {"name": "f", "extra": 1}}], "tools[0].function.extra", "unknown field"),
        ([{"type": "function"}], "tools[0].function", "must be an object"),
        ([CALLER_TOOL, CALLER_TOOL], "tools", "two tools are named 'get_user_location'"),
        ([lambda x: x], "tools[0]", "pass name="),
        (["web_search", {"type": "function", "function": {"name": "web_search"}}], "tools", "two tools are named"),
    ],
)
def test_bad_tools_are_refused_naming_the_parameter(tools: Any, param: str, message: str) -> None:
    model = ScriptedModel(["x"])
    with pytest.raises(BadRequestError) as info:
        run(model, tools=tools)
    assert info.value.param == param and message in str(info.value)
    assert model.requests == []
