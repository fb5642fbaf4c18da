"""Real clients against a real server: the official ``openai`` package, the studiolm docs' ``requests``
and ``fetch`` loops (copied from docs/streaming.txt, only the URL changed), and ``curl``. They all
print the same answer."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import openai
import pytest
import requests

from agent import AsyncClient
from tests.agent.server.server_harness import (
    ANSWER,
    API_KEY,
    MODEL,
    QUERY,
    ServerThread,
    docs_fetch_loop,
    docs_requests_loop,
    scripted_model,
)
from tools import SearchBackend

QUESTION = [{"role": "user", "content": "Who directed 2001: A Space Odyssey?"}]


def test_openai_package_streams_the_answer_with_web_search(docs_server: ServerThread) -> None:
    client = openai.OpenAI(base_url=f"{docs_server.url}/v1", api_key=API_KEY, max_retries=0)
    stream = client.chat.completions.create(model=MODEL, messages=QUESTION, stream=True,  # type: ignore[arg-type]
                                            extra_body={"web_search": "force"})
    chunks = list(stream)
    printed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert printed == ANSWER
    steps = [c.model_extra["step"]["type"] for c in chunks if c.model_extra and "step" in c.model_extra]
    assert steps[:3] == ["query.planned", "search.started", "search.completed"]
    final = chunks[-1]
    assert final.choices[0].finish_reason == "stop"
    assert final.model_extra is not None and final.model_extra["citations"][0].startswith("https://en.wikipedia")


def test_openai_package_non_streaming_with_web_search(docs_server: ServerThread) -> None:
    client = openai.OpenAI(base_url=f"{docs_server.url}/v1", api_key=API_KEY, max_retries=0)
    response = client.chat.completions.create(model=MODEL, messages=QUESTION,  # type: ignore[arg-type]
                                              extra_body={"web_search": "force"})
    assert response.choices[0].message.content == ANSWER
    extra = response.model_extra or {}
    assert extra["web_search"]["queries"] == [QUERY]
    assert extra["search_results"][0]["title"] == "2001: A Space Odyssey"
    assert [m.id for m in client.models.list()] == [MODEL]


def test_openai_package_sees_errors_with_their_status(docs_server: ServerThread) -> None:
    client = openai.OpenAI(base_url=f"{docs_server.url}/v1", api_key=API_KEY, max_retries=0)
    with pytest.raises(openai.NotFoundError) as not_found:
        client.chat.completions.create(model="gpt-nope", messages=QUESTION)  # type: ignore[arg-type]
    assert MODEL in str(not_found.value)
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model=MODEL, messages=QUESTION, temperature=3)  # type: ignore[arg-type]
    assert bad.value.param == "temperature"
    wrong_key = openai.OpenAI(base_url=f"{docs_server.url}/v1", api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong_key.models.list()


# --- The studiolm docs' samples (server_harness has them as written, only the URL changed) ---------

def test_docs_requests_loop_prints_the_answer(docs_server: ServerThread, capsys: pytest.CaptureFixture[str]) -> None:
    namespace: dict[str, object] = {}
    exec(docs_requests_loop(docs_server.url), namespace)
    namespace["stream_chat"](API_KEY, QUESTION)  # type: ignore[operator]
    assert capsys.readouterr().out == ANSWER + "\n"


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_docs_fetch_loop_prints_the_answer_under_node(docs_server: ServerThread, tmp_path: Path) -> None:
    script = tmp_path / "stream_chat.mjs"
    call = f"await streamChat({json.dumps(API_KEY)}, {json.dumps(QUESTION)});\nprocess.stdout.write('\\n');\n"
    script.write_text(docs_fetch_loop(docs_server.url) + call)
    done = subprocess.run(["node", str(script)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ANSWER + "\n"


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_streams_and_answers(docs_server: ServerThread) -> None:
    def curl(body: dict[str, object]) -> str:
        done = subprocess.run(
            ["curl", "-sSN", "--fail-with-body", f"{docs_server.url}/v1/chat/completions",
             "-H", f"Authorization: Bearer {API_KEY}", "-H", "Content-Type: application/json",
             "-d", json.dumps(body)],
            capture_output=True, text=True, timeout=60, check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    body = {"model": MODEL, "messages": QUESTION}
    assert json.loads(curl(body))["choices"][0]["message"]["content"] == ANSWER
    events = [line[6:] for line in curl({**body, "stream": True}).split("\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    printed = "".join(json.loads(e)["choices"][0]["delta"].get("content", "") for e in events[:-1])
    assert printed == ANSWER


def test_requests_non_streaming_body_is_the_sdk_response(docs_server: ServerThread) -> None:
    response = requests.post(f"{docs_server.url}/v1/chat/completions", timeout=30,
                             headers={"Authorization": f"Bearer {API_KEY}"},
                             json={"model": MODEL, "messages": QUESTION, "web_search": "force"})
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == ANSWER
    assert body["choices"][0]["message"]["annotations"][0]["url_citation"]["url"] == body["citations"][0]
    assert set(body["usage"]) >= {"prompt_tokens", "completion_tokens", "total_tokens"}


@pytest.mark.parametrize("web_search", [False, "force", "images"])
def test_bodies_and_chunks_are_exactly_the_sdk_s(docs_server: ServerThread, fake_search: SearchBackend,
                                                  web_search: object) -> None:
    """The server adds nothing and drops nothing: its JSON is the SDK's objects, but for id/created."""

    async def sdk() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        client = AsyncClient(backend=scripted_model(), search=fake_search)
        params: dict[str, Any] = {"model": MODEL, "messages": QUESTION, "web_search": web_search}
        response = await client.chat.completions.create(**params)
        chunks = [chunk.to_dict() async for chunk in await client.chat.completions.create(**params, stream=True)]
        return response.to_dict(), chunks

    def strip(body: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in body.items() if k not in ("id", "created")}

    expected_response, expected_chunks = asyncio.run(sdk())
    headers = {"Authorization": f"Bearer {API_KEY}"}
    body = {"model": MODEL, "messages": QUESTION, "web_search": web_search}
    url = f"{docs_server.url}/v1/chat/completions"
    response = requests.post(url, json=body, headers=headers, timeout=30).json()
    assert strip(response) == strip(expected_response)
    text = requests.post(url, json={**body, "stream": True}, headers=headers, timeout=30).text
    events = [e.removeprefix("data: ") for e in text.split("\n\n") if e]
    assert events[-1] == "[DONE]"
    assert [strip(json.loads(e)) for e in events[:-1]] == [strip(c) for c in expected_chunks]
