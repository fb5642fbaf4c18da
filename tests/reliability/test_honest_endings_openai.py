"""Issue 10 row 16 through the official ``openai`` SDK against a real server: a run cut by its tool
budget parses (``finish_reason`` is a value the SDK's Literal accepts) and names the budget."""

from __future__ import annotations

import openai
import pytest

from agent import ScriptedCall, ScriptedModel, ScriptedReply
from agent.server import ServerLimits
from tests.agent.server.server_harness import API_KEY, MODEL
from tests.fakes import FakeSearch
from tests.reliability.conftest import StartServer


@pytest.mark.parametrize("stream", [False, True])
def test_a_cut_run_parses_in_the_openai_sdk_and_names_its_budget(start_server: StartServer, stream: bool) -> None:
    forever = ScriptedModel([ScriptedReply(tool_calls=(ScriptedCall("web_search", {"query": "again"}),))], model=MODEL)
    server = start_server(forever, search=FakeSearch(), api_keys=[API_KEY], limits=ServerLimits())
    client = openai.OpenAI(api_key=API_KEY, base_url=f"{server.url}/v1", max_retries=0)
    extra = {"web_search": "auto"}
    if not stream:
        completion = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "q"}],
                                                    extra_body=extra)
        assert completion.choices[0].finish_reason == "length"
        assert (completion.model_extra or {})["incomplete_details"]["reason"] == "max_search_rounds"
        return
    chunks = list(client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "q"}],
                                                 extra_body=extra, stream=True))
    final = [c for c in chunks if c.choices and c.choices[0].finish_reason][-1]
    assert final.choices[0].finish_reason == "length"
    assert (final.model_extra or {})["incomplete_details"]["reason"] == "max_search_rounds"
    steps = [(c.model_extra or {}).get("step") for c in chunks]
    assert any(s and s["type"] == "budget.exhausted" for s in steps)
