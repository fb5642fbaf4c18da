"""The OpenAI Agents SDK on its default provider (the Responses API) against a real loopback server:
a ``function_tool``, an ``output_type`` and a streamed run, with tracing off and no internet."""

from __future__ import annotations

import pydantic
import pytest

from agent import AsyncClient, ScriptedModel
from agent._response_store import MemoryResponseStore
from agent.models import ScriptedCall, ScriptedReply
from agent.server._app import create_app
from tests.agent.server.server_harness import API_KEY, MODEL, StartServer

agents = pytest.importorskip("agents")
openai = pytest.importorskip("openai")


class Weather(pydantic.BaseModel):
    city: str
    forecast: str


@agents.function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


async def test_agents_sdk_streamed_run_with_function_tool_and_output_type(start_server: StartServer) -> None:
    agents.set_tracing_disabled(True)
    model = ScriptedModel([ScriptedReply(tool_calls=(ScriptedCall("get_weather", {"city": "Paris"}),)),
                           '{"city": "Paris", "forecast": "sunny"}'], model=MODEL)
    store = MemoryResponseStore()
    server = start_server(app=create_app(AsyncClient(backend=model, response_store=store), api_keys=[API_KEY]))
    http = openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key=API_KEY, max_retries=0)
    provider = agents.OpenAIProvider(openai_client=http)  # its default: the Responses API
    helper = agents.Agent(name="weather", instructions="Answer with the weather.", model=MODEL,
                          tools=[get_weather], output_type=Weather)
    result = agents.Runner.run_streamed(helper, "Weather in Paris?",
                                        run_config=agents.RunConfig(model_provider=provider))
    raw = [e.data.type async for e in result.stream_events() if e.type == "raw_response_event"]
    assert result.final_output == Weather(city="Paris", forecast="sunny")
    assert raw.count("response.completed") == 2  # the tool turn, then the answer
    assert "response.function_call_arguments.done" in raw and "response.output_text.delta" in raw
    ids = [r.response_id for r in result.raw_responses]  # our resp_ ids: it posted to /v1/responses
    assert len(ids) == 2 and all(ids)
    assert [await store.get(i) is not None for i in ids if i] == [True, True]
    second = model.requests[-1].messages
    assert [m.role for m in second] == ["system", "user", "assistant", "tool"]
    assert second[-1].content == "sunny in Paris"
    await http.close()
