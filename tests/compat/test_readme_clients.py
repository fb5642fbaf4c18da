"""The README's client snippets (openai, LangChain, pydantic-ai, LiteLLM, the Responses API and the
Agents SDK) run as written against a real `studiolm serve`, with only the port changed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import agent
from tests.agent.server.server_harness import ServerThread
from tests.fakes import FakeSearch

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
# (the MCP example needs npx and the internet: tests/test_mcp.py runs mcp_server against its own servers)
SERVER_BLOCKS = [b for b in BLOCKS if ("127.0.0.1:8000" in b or "localhost:8000" in b) and '"npx"' not in b]
README_KEY = "sk-local-1"
README_MODEL = "smollm2-135m-instruct"


@pytest.fixture(scope="module")
def readme_server() -> Iterator[ServerThread]:
    model = agent.ScriptedModel(["Stanley Kubrick directed it [1]."], model=README_MODEL)
    client = agent.AsyncClient(backend=model, search=FakeSearch(), response_store=agent.MemoryResponseStore())
    with ServerThread(agent.create_app(client, api_keys=[README_KEY])) as server:
        yield server


def test_the_readme_shows_each_client() -> None:
    joined = "\n".join(SERVER_BLOCKS)
    for client in ("from openai import OpenAI", "langchain_openai", "pydantic_ai", "litellm", "from agents import"):
        assert client in joined, client


@pytest.mark.parametrize("index", range(len(SERVER_BLOCKS)))
def test_readme_client_snippet_runs(readme_server: ServerThread, index: int) -> None:
    code = SERVER_BLOCKS[index].replace("127.0.0.1:8000", f"127.0.0.1:{readme_server.port}")
    code = code.replace("localhost:8000", f"127.0.0.1:{readme_server.port}").replace('api_key="unused"',
                                                                                    f'api_key="{README_KEY}"')
    env = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "OPENAI_AGENTS_DISABLE_TRACING": "1", "OPENAI_API_KEY": "unused"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, **env})
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip(), "the snippet printed nothing"
