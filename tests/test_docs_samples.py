"""The studiolm docs' Python SDK samples run as written (``import studiolm`` → ``import agent as studiolm``).

They run in a subprocess whose ``STUDIOLM_BASE_URL`` points at a loopback fake of an
OpenAI-compatible upstream, so ``studiolm.Client(api_key="sk-...")`` is exercised exactly as printed.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

DOCS = Path(__file__).resolve().parents[2] / "shared" / "studiolm-docs"
ANSWER = "Paris is the capital of France."
JSON_ANSWER = '{"languages": ["Python", "Rust", "Go"]}'
# Lines that continue a Python sample in the docs' plain-text rendering.
CODE_STARTS = ("import ", "client =", "response =", "for chunk", "print(", ")", "#")


def docs_samples(name: str) -> list[str]:
    """Python SDK samples of one docs page: blocks starting at ``import studiolm``/``response =``/``for chunk``."""
    lines = (DOCS / name).read_text().splitlines()
    samples, current = [], None
    for line in lines:
        starts = line.startswith(("import studiolm", "response = client", "for chunk in client"))
        if current is None and starts:
            current = [line]
        elif current is not None and (line.startswith((" ", "\t", *CODE_STARTS)) or not line.strip()):
            current.append(line)
        elif current is not None:
            samples.append("\n".join(current))
            current = None
    if current:
        samples.append("\n".join(current))
    return [s for s in samples if "studiolm" in s or "client." in s]


async def _models(_: Request) -> Response:
    data = [{"id": m, "object": "model", "owned_by": "fake"} for m in ("gemma-3-12b-it-qat", "gemma-3-27b-it-qat")]
    return JSONResponse({"object": "list", "data": data})


async def _chat(request: Request) -> Response:
    body = await request.json()
    text = JSON_ANSWER if body.get("response_format") else ANSWER

    async def events() -> Any:
        for word in text.split(" "):
            chunk = {"id": "x", "object": "chat.completion.chunk", "choices": [
                {"index": 0, "delta": {"content": word + " "}, "finish_reason": None}]}
            yield f"data: {json.dumps(chunk)}\n\n"
        end = {"id": "x", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
               "usage": {"prompt_tokens": 9, "completion_tokens": 7, "total_tokens": 16}}
        yield f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


@pytest.fixture(scope="module")
def upstream_url() -> Iterator[str]:
    app = Starlette(routes=[Route("/v1/models", _models), Route("/v1/chat/completions", _chat, methods=["POST"])])
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}/v1"
    server.should_exit = True
    thread.join(timeout=5)


def run_sample(code: str, base_url: str) -> str:
    program = code.replace("import studiolm", "import agent as studiolm")
    if "studiolm.Client(" not in program:
        program = 'import agent as studiolm\nclient = studiolm.Client(api_key="sk-...")\n' + program
    if program.rstrip().endswith(")") and "print(" not in program:
        program += "\nprint(response['choices'][0]['message']['content'])"
    env = {**os.environ, "STUDIOLM_BASE_URL": base_url, "STUDIOLM_SEARCH": "none"}
    env.pop("STUDIOLM_API_KEY", None)
    done = subprocess.run(
        [sys.executable, "-c", program], check=False, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.skipif(not DOCS.is_dir(), reason="../shared/studiolm-docs is not present")
@pytest.mark.parametrize("page", ["chat-completions.txt", "streaming.txt"])
def test_docs_python_sdk_samples_run_as_written(page: str, upstream_url: str) -> None:
    samples = docs_samples(page)
    assert samples, f"no SDK samples found in {page}"
    for sample in samples:
        out = run_sample(sample, upstream_url).strip()
        expected = JSON_ANSWER if "response_format" in sample else ANSWER
        assert out == expected, sample
