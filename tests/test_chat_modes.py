"""Every web_search mode, streamed and not, through the public SDK on the scripted model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

import agent as studiolm
from agent import Capabilities, ModelEvent, ModelRequest, ScriptedCall, ScriptedModel, ScriptedReply, TextDelta
from tests.fakes import FakeSearch
from tools import CachedSearch, ImageSearchResponse, SearchBackend, TextSearchResponse

QUESTION = [{"role": "user", "content": "Who directed 2001: A Space Odyssey?"}]
NO_TOOLS = Capabilities(tool_calling=False)


def _collect(stream: Any) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    """Answer text, step payloads and the final chunk of a sync stream."""
    text, steps, final = "", [], {}
    for chunk in stream:
        assert isinstance(chunk["choices"], list) and chunk["choices"]  # plain OpenAI loops rely on it
        text += chunk["choices"][0].get("delta", {}).get("content", "")
        if "step" in chunk:
            steps.append(chunk["step"])
        if chunk["choices"][0]["finish_reason"]:
            final = chunk
    return text, steps, final


def _run(model: ScriptedModel, search: FakeSearch, stream: bool, **params: Any) -> tuple[str, list[dict], dict]:
    with studiolm.Client(backend=model, search=search) as client:
        result = client.chat.completions.create(model="scripted", messages=QUESTION, stream=stream, **params)
        if stream:
            return _collect(result)
        return result["choices"][0]["message"]["content"], [], result


@pytest.mark.parametrize("stream", [False, True])
def test_no_search_mode_never_searches(stream: bool, fake_search: FakeSearch) -> None:
    model = ScriptedModel(["Stanley Kubrick."])
    text, steps, body = _run(model, fake_search, stream)
    assert text == "Stanley Kubrick."
    assert fake_search.queries == []
    assert "citations" not in body and "web_search" not in body
    assert body["choices"][0]["finish_reason"] == "stop"
    assert [s["type"] for s in steps] == (["generation.started"] if stream else [])


@pytest.mark.parametrize("stream", [False, True])
def test_force_searches_first_with_numbered_delimited_data(stream: bool, fake_search: FakeSearch) -> None:
    model = ScriptedModel(["Stanley Kubrick directed it [1]."], capabilities=NO_TOOLS)
    text, steps, body = _run(model, fake_search, stream, web_search="force")
    assert text == "Stanley Kubrick directed it [1]."
    assert fake_search.queries == ["Who directed 2001: A Space Odyssey?"]
    prompt = "\n".join(m.content for m in model.requests[0].messages)
    assert "<search_results>\n[1] 2001: A Space Odyssey" in prompt and "data, not instructions" in prompt
    assert model.requests[0].messages[-1].content.endswith("Question: Who directed 2001: A Space Odyssey?")
    assert body["citations"] == [r.url for r in fake_search.results]
    assert body["search_results"][0]["title"] == "2001: A Space Odyssey"
    assert body["web_search"]["searched"] is True and body["web_search"]["queries"] == fake_search.queries
    annotation = (body["choices"][0]["message"] if not stream else body["choices"][0]["delta"])["annotations"][0]
    assert annotation["url_citation"]["url"] == fake_search.results[0].url
    assert text[annotation["url_citation"]["start_index"]:annotation["url_citation"]["end_index"]] == "[1]"
    if stream:
        kinds = [s["type"] for s in steps]
        assert kinds[:3] == ["query.planned", "search.started", "search.completed"]
        assert steps[2]["results"][0]["id"] == 1


def test_force_with_capable_model_plans_query_with_the_model(fake_search: FakeSearch) -> None:
    model = ScriptedModel(['"kubrick 2001 director"', "Kubrick [1]."])
    _, steps, _ = _run(model, fake_search, True, web_search="force")
    assert fake_search.queries == ["kubrick 2001 director"]
    assert steps[0] == {"type": "query.planned", "query": "kubrick 2001 director", "planner": "model"}


@pytest.mark.parametrize("stream", [False, True])
def test_auto_with_tool_calling_model_loops_through_search(stream: bool, fake_search: FakeSearch) -> None:
    call = ScriptedReply(tool_calls=(ScriptedCall("web_search", {"query": "2001 film director"}),))
    model = ScriptedModel([call, "It was Stanley Kubrick [1]."])
    text, steps, body = _run(model, fake_search, stream, web_search="auto")
    assert text == "It was Stanley Kubrick [1]."
    assert fake_search.queries == ["2001 film director"]
    assert model.requests[0].tools[0].name == "web_search"
    tool_turn = model.requests[1].messages[-1]
    assert tool_turn.role == "tool" and "[1] 2001: A Space Odyssey" in tool_turn.content
    assert body["web_search"]["searched"] is True and "called web_search" in body["web_search"]["reason"]
    if stream:
        assert {"search.decided", "search.started", "search.completed"} <= {s["type"] for s in steps}


def test_auto_tool_model_that_answers_directly_reports_why(fake_search: FakeSearch) -> None:
    _, _, body = _run(ScriptedModel(["Paris."]), fake_search, False, web_search="auto")
    assert fake_search.queries == []
    assert body["web_search"] == {"mode": "auto", "searched": False, "queries": [], "errors": [],
                                  "reason": "the model answered without calling web_search"}


@pytest.mark.parametrize(("verdict", "searched"), [('"search"', True), ('"answer"', False)])
@pytest.mark.parametrize("stream", [False, True])
def test_auto_without_tool_calling_uses_decision_step(
    verdict: str, searched: bool, stream: bool, fake_search: FakeSearch
) -> None:
    model = ScriptedModel([verdict, "Kubrick [1]."], capabilities=Capabilities(json_schema=True))
    _, steps, body = _run(model, fake_search, stream, web_search="auto")
    assert model.requests[0].json_schema == {"type": "string", "enum": ["search", "answer"]}
    assert bool(fake_search.queries) is searched
    assert body["web_search"]["searched"] is searched
    if stream:
        decided = next(s for s in steps if s["type"] == "search.decided")
        assert decided["method"] == "decision_step" and decided["search"] is searched


@pytest.mark.parametrize("stream", [False, True])
def test_images_mode_returns_structured_and_inline_images(stream: bool, fake_search: FakeSearch) -> None:
    model = ScriptedModel(["Here is the monolith [1]."], capabilities=NO_TOOLS)
    text, _, body = _run(model, fake_search, stream, web_search="images")
    image = fake_search.images[0]
    assert text == f"Here is the monolith [1].\n\n![The monolith (replica)]({image.image_url})"
    assert body["images"][0] == {"image_url": image.image_url, "thumbnail_url": image.thumbnail_url,
                                 "source_url": image.source_url, "title": image.title, "width": 800,
                                 "height": 600}
    assert body["citations"] == [image.source_url]


@pytest.mark.parametrize("stream", [False, True])
def test_search_failure_is_reported_not_hidden(stream: bool) -> None:
    search = FakeSearch(fail=True)
    model = ScriptedModel(["I could not find sources."], capabilities=NO_TOOLS)
    _, steps, body = _run(model, search, stream, web_search="force")
    assert body["web_search"]["errors"] == ["network unreachable"]
    assert body["citations"] == []
    if stream:
        assert {"type": "search.failed", "query": QUESTION[0]["content"], "error": "network unreachable"} in steps


def test_tool_loop_is_bounded(fake_search: FakeSearch) -> None:
    forever = ScriptedReply(tool_calls=(ScriptedCall("web_search", {"query": "again"}),))
    model = ScriptedModel([forever])
    _, _, body = _run(model, fake_search, False, web_search="auto")
    assert len(fake_search.queries) == 3  # MAX_SEARCH_ROUNDS, then the model must answer without tools
    assert model.requests[-1].tools == ()
    assert body["usage"]["model_calls"] == 4


def test_results_keep_stable_numbers_across_searches() -> None:
    search = FakeSearch()
    calls = [ScriptedReply(tool_calls=(ScriptedCall("web_search", {"query": q}),)) for q in ("a", "b")]
    model = ScriptedModel([*calls, "done [2]"])
    _, _, body = _run(model, search, False, web_search="auto")
    assert len(body["citations"]) == 2  # the same two URLs found twice keep [1] and [2]
    assert "[1] 2001: A Space Odyssey" in model.requests[2].messages[-1].content


def test_invalid_tool_arguments_go_back_to_the_model(fake_search: FakeSearch) -> None:
    bad = ScriptedReply(tool_calls=(ScriptedCall("web_search", "{not json"),))
    model = ScriptedModel([bad, "sorry"])
    _, _, body = _run(model, fake_search, False, web_search="auto")
    assert "invalid arguments" in model.requests[1].messages[-1].content
    assert fake_search.queries == [] and body["web_search"]["errors"]


async def test_async_client_streams_and_completes(fake_search: FakeSearch) -> None:
    model = ScriptedModel(["Kubrick [1]."], capabilities=NO_TOOLS)
    async with studiolm.AsyncClient(backend=model, search=fake_search) as client:
        response = await client.chat.completions.create(model="scripted", messages=QUESTION, web_search="force")
        assert response.choices[0].message.content == "Kubrick [1]."
        stream = await client.chat.completions.create(model="scripted", messages=QUESTION, stream=True)
        pieces = [c["choices"][0]["delta"].get("content", "") async for c in stream]
        assert "".join(pieces) == "Kubrick [1]."


def test_usage_adds_every_model_call(fake_search: FakeSearch) -> None:
    model = ScriptedModel(["q", "one two three"])
    _, _, body = _run(model, fake_search, False, web_search="force")
    usage = body["usage"]
    assert usage["completion_tokens"] == 1 + 3
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["search_queries"] == 1


def test_closing_a_stream_early_stops_the_run(fake_search: FakeSearch) -> None:
    model = ScriptedModel(["a b c d e f"], capabilities=NO_TOOLS)
    with studiolm.Client(backend=model, search=fake_search) as client:
        stream = client.chat.completions.create(model="scripted", messages=QUESTION, stream=True)
        next(stream)
        stream.close()
        with pytest.raises(StopAsyncIteration):
            client._loop.run(stream._stream.__anext__())


class BrokenSearch(SearchBackend):
    """A backend failing with an exception of its own (not a ``SearchError``), as a buggy one would."""

    name = "broken"

    def __init__(self) -> None:
        self.queries: list[str] = []

    async def search(self, query: str, *, max_results: int = 5) -> TextSearchResponse:
        self.queries.append(query)
        raise OSError("disk on fire")

    async def search_images(self, query: str, *, max_results: int = 5) -> ImageSearchResponse:
        self.queries.append(query)
        raise OSError("disk on fire")


@pytest.mark.parametrize("mode", ["force", "images"])
@pytest.mark.parametrize("stream", [False, True])
def test_an_unexpected_search_exception_is_a_reported_search_failure(mode: str, stream: bool) -> None:
    search = BrokenSearch()
    model = ScriptedModel(["I could not find sources."], capabilities=NO_TOOLS)
    text, steps, body = _run(model, search, stream, web_search=mode)  # type: ignore[arg-type]
    assert search.queries == [QUESTION[0]["content"]]
    assert text == "I could not find sources."
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["web_search"]["errors"] == ["OSError: disk on fire"]
    assert body["citations"] == []
    if stream:
        failed = {"type": "search.failed", "query": QUESTION[0]["content"], "error": "OSError: disk on fire"}
        assert failed in steps
        assert not {"search.completed", "images.completed"} & {s["type"] for s in steps}


@pytest.mark.parametrize("tool", ["web_search", "image_search"])
def test_an_unexpected_search_exception_in_a_tool_call_is_reported_the_same_way(tool: str) -> None:
    call = ScriptedReply(tool_calls=(ScriptedCall(tool, {"query": "monolith"}),))
    model = ScriptedModel([call, "No luck."])
    text, steps, body = _run(model, BrokenSearch(), True, tools=[tool])  # type: ignore[arg-type]
    assert text == "No luck."
    assert body["web_search"]["errors"] == ["OSError: disk on fire"]
    assert {"type": "search.failed", "query": "monolith", "error": "OSError: disk on fire"} in steps
    result = next(s for s in steps if s["type"] == "tool.result")
    assert result["error"] == "OSError: disk on fire"
    assert "failed: OSError: disk on fire" in model.requests[1].messages[-1].content


def test_a_search_served_from_the_cache_says_so_in_its_step(fake_search: FakeSearch) -> None:
    model = ScriptedModel(["Kubrick [1]."], capabilities=NO_TOOLS)
    with studiolm.Client(backend=model, search=CachedSearch(fake_search)) as client:
        runs = [_collect(client.chat.completions.create(model="scripted", messages=QUESTION, stream=True,
                                                        web_search="force")) for _ in range(2)]
    completed = [next(s for s in steps if s["type"] == "search.completed") for _, steps, _ in runs]
    assert [c["cached"] for c in completed] == [False, True]
    assert completed[0]["results"] == completed[1]["results"]
    assert fake_search.queries == [QUESTION[0]["content"]]  # the backend saw the query once


class ResultlessModel(ScriptedModel):
    """A broken backend: its stream ends without the final ``ModelResult``."""

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        self.requests.append(request)
        yield TextDelta("half an answer")


@pytest.mark.parametrize("stream", [False, True])
def test_a_backend_stream_without_a_result_is_a_model_error(stream: bool, fake_search: FakeSearch) -> None:
    model = ResultlessModel(["unused"])
    with pytest.raises(studiolm.ModelError, match="'scripted' ended its stream without a result"):
        _run(model, fake_search, stream)
    assert len(model.requests) == 1


async def test_complete_hands_each_delta_to_on_delta_and_returns_the_result() -> None:
    model = ScriptedModel(["one two three"])
    seen: list[str] = []
    request = ModelRequest(model="scripted", messages=())
    result = await model.complete(request, on_delta=lambda delta: seen.append(delta.text))
    assert "".join(seen) == result.content == "one two three" and len(seen) > 1
    with pytest.raises(studiolm.ModelError):
        await ResultlessModel(["unused"]).complete(request)


@pytest.mark.parametrize("stream", [False, True])
def test_text_before_a_tool_call_is_in_the_content_streamed_or_not(stream: bool, fake_search: FakeSearch) -> None:
    call = ScriptedReply("Let me look that up.", tool_calls=(ScriptedCall("web_search", {"query": "2001"}),))
    model = ScriptedModel([call, "It was Stanley Kubrick [1]."])
    text, _, body = _run(model, fake_search, stream, web_search="auto")
    assert text == "Let me look that up.\n\nIt was Stanley Kubrick [1]."
    message = body["choices"][0]["message" if not stream else "delta"]
    span = message["annotations"][0]["url_citation"]
    assert text[span["start_index"]:span["end_index"]] == "[1]"  # offsets index the content either way


def test_stream_and_non_stream_content_agree_through_a_tool_loop(fake_search: FakeSearch) -> None:
    script = [
        ScriptedReply("First.", tool_calls=(ScriptedCall("web_search", {"query": "a"}),)),
        ScriptedReply(tool_calls=(ScriptedCall("web_search", {"query": "b"}),)),  # a call without text
        ScriptedReply("Second.", tool_calls=(ScriptedCall("web_search", {"query": "c"}),)),
        "Done [2].",
    ]
    streamed, _, _ = _run(ScriptedModel(script), FakeSearch(), True, web_search="auto")
    whole, _, _ = _run(ScriptedModel(script), FakeSearch(), False, web_search="auto")
    assert streamed == whole == "First.\n\nSecond.\n\nDone [2]."


def test_images_mode_and_the_image_search_tool_report_images_alike(fake_search: FakeSearch) -> None:
    by_mode = _run(ScriptedModel(["Here [1]."], capabilities=NO_TOOLS), fake_search, True, web_search="images")[1]
    call = ScriptedReply(tool_calls=(ScriptedCall("image_search", {"query": QUESTION[0]["content"]}),))
    by_tool = _run(ScriptedModel([call, "Here [1]."]), fake_search, True, tools=["image_search"])[1]
    found = [next(s for s in steps if s["type"] == "images.completed") for steps in (by_mode, by_tool)]
    assert found[0] == found[1] == {
        "type": "images.completed", "query": QUESTION[0]["content"], "backend": "fake",
        "images": [{"title": "The monolith [replica]", "image_url": "https://img.example/monolith.jpg",
                    "source_url": "https://example.org/monolith"}]}
