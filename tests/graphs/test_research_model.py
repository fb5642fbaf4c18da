"""The ``studiolm-research`` model id: any chat-completions client runs a research job and streams its steps."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import agent
from agent import RESEARCH_MODEL, AsyncClient, LocalIndex, create_app
from tests.agent.server.server_harness import ServerThread
from tests.graphs.test_research import DOCUMENTS, QUESTION, TWO_PARTS, scripted

ANSWER = "The Danube ends in the Black Sea [1]; the Rhine in the North Sea [2]."
MESSAGES = [{"role": "user", "content": QUESTION}]


@pytest.fixture
async def client(tmp_path: Path) -> AsyncClient:
    index = await LocalIndex.build(tmp_path / "index.sqlite3", DOCUMENTS)
    return AsyncClient(backend=scripted(TWO_PARTS, ANSWER), search=index)


async def test_a_completion_is_the_report_with_its_sources(client: AsyncClient) -> None:
    response = await client.chat.completions.create(model=RESEARCH_MODEL, messages=MESSAGES)  # type: ignore[arg-type]
    content = response["choices"][0]["message"]["content"]
    assert content.startswith(ANSWER) and "## Sources" in content
    assert sorted(response["citations"]) == ["https://en.wikipedia.org/wiki/Danube",
                                             "https://en.wikipedia.org/wiki/Rhine"]
    annotations = response["choices"][0]["message"]["annotations"]
    assert [a["url_citation"]["url"] for a in annotations[:2]] == response["citations"]
    assert response["model"] == RESEARCH_MODEL
    assert response["usage"]["model_calls"] == 3  # plan, reflection, report


async def test_a_stream_carries_the_steps_then_the_report(client: AsyncClient) -> None:
    stream = await client.chat.completions.create(model=RESEARCH_MODEL, messages=MESSAGES, stream=True)  # type: ignore[arg-type]
    chunks = [chunk async for chunk in stream]
    steps = [c["step"]["type"] for c in chunks if "step" in c]
    assert steps[0] == "research.plan" and "page.read" in steps and steps[-1] == "research.report"
    content = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert content.startswith(ANSWER) and "\n\n## Sources\n\n1. [" in content
    final = await client.chat.completions.create(model=RESEARCH_MODEL, messages=MESSAGES)  # type: ignore[arg-type]
    assert content == final["choices"][0]["message"]["content"]  # the same report, streamed or not


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerThread]:
    import asyncio

    index = asyncio.run(LocalIndex.build(tmp_path / "index.sqlite3", DOCUMENTS))
    with ServerThread(create_app(agent.AsyncClient(backend=scripted(TWO_PARTS, ANSWER), search=index))) as running:
        yield running


def test_over_http_with_streamed_steps(server: ServerThread) -> None:
    body = {"model": RESEARCH_MODEL, "messages": MESSAGES, "stream": True}
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=body, timeout=60) as response:
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert response.status_code == 200
    assert any('"type": "research.plan"' in line or '"type":"research.plan"' in line for line in lines)
    assert lines[-1] == "data: [DONE]"


async def test_the_responses_api_runs_research_too(tmp_path: Path) -> None:
    index = await LocalIndex.build(tmp_path / "index.sqlite3", DOCUMENTS)
    client = AsyncClient(backend=scripted(TWO_PARTS, ANSWER), search=index, response_store=agent.MemoryResponseStore())
    response = await client.responses.create(model=RESEARCH_MODEL, input=QUESTION)  # type: ignore[arg-type]
    assert response["status"] == "completed" and response.output_text.startswith(ANSWER)
    message = [item for item in response["output"] if item["type"] == "message"][-1]
    cited = {a["url"] for a in message["content"][0]["annotations"]}
    assert cited == {"https://en.wikipedia.org/wiki/Danube", "https://en.wikipedia.org/wiki/Rhine"}
