"""The official openai client against a real server running the embedded model (the tiny tier):
OpenAI's sampling fields really change local decoding."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

import agent
from tests.agent.server.server_harness import ServerThread
from tests.embedded import TINY, needs_embedded_model

pytestmark = [pytest.mark.local_model, needs_embedded_model]
KEY = "sk-embedded-compat"
ASK = [{"role": "user", "content": "Write one sentence about the sea."}]


@pytest.fixture(scope="module")
def client() -> Iterator[openai.OpenAI]:
    backend = agent.LlamaBackend()
    sdk = agent.AsyncClient(backend=backend, search="none", response_store=agent.MemoryResponseStore())
    with ServerThread(agent.create_app(sdk, api_keys=[KEY])) as server:
        yield openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0)


def test_a_fixed_seed_repeats_the_answer_at_temperature_one(client: openai.OpenAI) -> None:
    answers = {client.chat.completions.create(model=TINY, messages=ASK, temperature=1.0, seed=1234,  # type: ignore[arg-type]
                                              max_completion_tokens=24).choices[0].message.content
               for _ in range(2)}
    assert len(answers) == 1


def test_stop_and_max_completion_tokens_cut_the_answer(client: openai.OpenAI) -> None:
    long = client.chat.completions.create(model=TINY, messages=ASK, temperature=0, max_completion_tokens=24)  # type: ignore[arg-type]
    text = long.choices[0].message.content or ""
    assert long.usage is not None and long.usage.completion_tokens <= 24
    word = text.split()[2] if len(text.split()) > 2 else text.split()[-1]
    cut = client.chat.completions.create(model=TINY, messages=ASK, temperature=0, max_completion_tokens=24,  # type: ignore[arg-type]
                                         stop=[word])
    assert word not in (cut.choices[0].message.content or "") and len(cut.choices[0].message.content or "") < len(text)


def test_logprobs_come_back_with_the_alternatives_asked_for(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(model=TINY, messages=ASK, temperature=0, max_completion_tokens=8,  # type: ignore[arg-type]
                                              logprobs=True, top_logprobs=2)
    content = response.choices[0].logprobs.content if response.choices[0].logprobs else None
    assert content and all(len(entry.top_logprobs) == 2 and entry.logprob <= 0 for entry in content)
    assert "".join(entry.token for entry in content).strip() in (response.choices[0].message.content or "") + " "
