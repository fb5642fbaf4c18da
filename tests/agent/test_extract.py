"""Structured extraction (agent.extract / aextract / extract_events) with scripted and fake models."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pydantic
import pytest

import agent
from agent import (
    AsyncClient,
    BadRequestError,
    Capabilities,
    ExtractFailure,
    ExtractOutcome,
    ModelBackend,
    ModelEvent,
    ModelRequest,
    ModelResult,
    PageFetcher,
    ScriptedModel,
    UsageError,
)
from benchmarks.fake_upstream import key_value_reply
from graphs import chunk_text, merge_records

PERSON_SCHEMA: dict[str, Any] = {
    "title": "Person",
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}, "tags": {"type": "array"}},
    "required": ["name", "age"],
}


class Person(pydantic.BaseModel):
    """A person (module:Class target for the CLI tests too)."""

    name: str
    age: int
    tags: list[str] = []


def kv_model(**kwargs: Any) -> ScriptedModel:
    """Answers each prompt with the ``key: value`` lines of its document (see benchmarks.fake_upstream)."""
    def reply(request: ModelRequest) -> str:
        return key_value_reply([{"role": m.role, "content": m.content} for m in request.messages])

    return ScriptedModel([reply], **kwargs)


def client_for(model: ModelBackend) -> AsyncClient:
    return AsyncClient(backend=model, search="none")


async def run(inputs: Any, schema: Any = PERSON_SCHEMA, model: ModelBackend | None = None,
              **options: Any) -> agent.ExtractReport:
    async with client_for(model or kv_model()) as client:
        return await agent.aextract(inputs, schema, client=client, **options)


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# --- the whole run -----------------------------------------------------------------------------


async def test_every_input_ends_in_exactly_one_file(tmp_path: Path) -> None:
    inputs = ["name: Ada\nage: 36", "name: Bob\nage: 7", "UNPARSEABLE", {"id": "d1", "text": "name: Cy\nage: 5"},
              {"id": "d2"}, "name: Dee"]  # no age: never valid; d2 has no text
    out, err = tmp_path / "out.jsonl", tmp_path / "errors.jsonl"
    report = await run(inputs, output=out, errors=err)
    ok, bad = lines(out), lines(err)
    assert len(ok) + len(bad) == len(inputs)
    assert {r["id"] for r in ok} | {r["id"] for r in bad} == {"item-0", "item-1", "item-2", "d1", "d2", "item-5"}
    assert not {r["id"] for r in ok} & {r["id"] for r in bad}
    assert {r["id"]: r["record"] for r in ok}["d1"] == {"name": "Cy", "age": 5}
    reasons = {r["id"]: r["reason"] for r in bad}
    assert reasons == {"item-2": "output_validation_failed", "d2": "bad_input", "item-5": "output_validation_failed"}
    unparseable = next(r for r in bad if r["id"] == "item-2")
    assert len(unparseable["attempts"]) == 3 and all("cannot find" in a["output"] for a in unparseable["attempts"])
    failure = next(r for r in report.results if r.id == "item-2")
    assert isinstance(failure, ExtractFailure) and failure.usage.completion_tokens == 3 * 6  # 3 attempts counted
    assert report.summary.ok == 3 and report.summary.failed == 3
    assert dict(report.summary.failures) == {"output_validation_failed": 2, "bad_input": 1}
    assert report.summary.usage.total_tokens > 0


async def test_provenance_names_model_chunks_attempts_and_verified_quotes(tmp_path: Path) -> None:
    def reply(request: ModelRequest) -> str:
        return json.dumps({"record": {"name": "Ada", "age": 36},
                           "evidence": {"name": "Ada  LOVELACE", "age": "she was 99"}})

    report = await run([{"id": "a", "text": "Ada Lovelace was born in 1815."}], model=ScriptedModel([reply]))
    outcome = report.results[0]
    assert isinstance(outcome, ExtractOutcome)
    provenance = outcome.provenance()
    assert provenance["model"] == "scripted" and provenance["input_id"] == "a" and provenance["attempts"] == 1
    assert provenance["chunks"] == [{"id": "a#0", "span": [0, 30], "attempts": 1}]
    assert provenance["evidence"] == {"name": "Ada  LOVELACE"}  # found, whitespace and case aside
    assert provenance["unverified_evidence"] == ["age"]


async def test_without_evidence_the_schema_is_asked_for_as_is() -> None:
    model = kv_model()
    report = await run(["name: Ada\nage: 36"], model=model, evidence=False)
    assert report.records == [{"name": "Ada", "age": 36}]
    assert '"record"' not in model.requests[0].messages[0].content


async def test_long_document_is_chunked_and_merged_by_the_rule() -> None:
    text = ("name: Ada\ntags: [math]\n\n" + "filler words here\n\n" * 5
            + "age: 36\nname: Someone Else\ntags: [math, logic]")
    model = kv_model()
    report = await run([{"id": "long", "text": text}], model=model, chunk_chars=60)
    outcome = report.results[0]
    assert isinstance(outcome, ExtractOutcome), outcome
    assert outcome.record == {"name": "Ada", "age": 36, "tags": ["math", "logic"]}
    assert len(outcome.chunks) == len(model.requests) > 2
    assert [c.id for c in outcome.chunks] == [f"long#{n}" for n in range(len(outcome.chunks))]
    assert outcome.conflicts == ({"path": "/name", "kept": "Ada", "dropped": "Someone Else",
                                  "chunk": outcome.chunks[-1].id},)
    for chunk in outcome.chunks:  # each span is a piece of the document
        assert text[chunk.start:chunk.end].strip() and chunk.end - chunk.start <= 60


async def test_chunks_may_miss_required_fields_but_the_merged_record_may_not() -> None:
    text = "name: Ada\n\n" + "nothing\n\n" * 3 + "tags: [x]"
    report = await run([{"id": "x", "text": text}], chunk_chars=20)
    failure = report.results[0]
    assert isinstance(failure, ExtractFailure)
    assert failure.reason == "merged_record_invalid" and "age" in failure.message
    assert len(failure.attempts) > 1 and all(a["valid"] for a in failure.attempts)


def test_merge_rule() -> None:
    merged, conflicts = merge_records(
        [{"a": None, "b": 1, "l": [1, {"k": 1}], "o": {"x": 1}},
         {"a": 2, "b": 1, "l": [{"k": 1}, 3], "o": {"x": 2, "y": None}},
         {"b": 5, "o": {"y": [1]}}], ["c0", "c1", "c2"])
    assert merged == {"a": 2, "b": 1, "l": [1, {"k": 1}, 3], "o": {"x": 1, "y": [1]}}
    assert conflicts == [{"path": "/o/x", "kept": 1, "dropped": 2, "chunk": "c1"},
                         {"path": "/b", "kept": 1, "dropped": 5, "chunk": "c2"}]


def test_chunks_cut_at_blank_lines_then_whitespace_and_cover_the_text() -> None:
    text = "one two three\n\nfour five\n\n" + "x" * 25
    spans = chunk_text(text, 20)
    assert [text[a:b] for a, b in spans] == ["one two three", "four five", "x" * 20, "x" * 5]


# --- schemas -----------------------------------------------------------------------------------


async def test_pydantic_model_json_schema_file_and_module_class(tmp_path: Path) -> None:
    schema_file = tmp_path / "person.json"
    schema_file.write_text(json.dumps(PERSON_SCHEMA))
    for schema in (Person, PERSON_SCHEMA, str(schema_file), schema_file, "tests.agent.test_extract:Person"):
        report = await run(["name: Ada\nage: 36"], schema=schema)
        assert report.records == [{"name": "Ada", "age": 36} if isinstance(schema, dict | Path)
                                  or schema == str(schema_file) else {"name": "Ada", "age": 36, "tags": []}]


async def test_pydantic_validators_apply_to_the_record() -> None:
    class Adult(pydantic.BaseModel):
        name: str
        age: int

        @pydantic.field_validator("age")
        @classmethod
        def adult(cls, value: int) -> int:
            if value < 18:
                raise ValueError("must be an adult")
            return value

    report = await run(["name: Ada\nage: 36", "name: Kid\nage: 7"], schema=Adult)
    assert report.records == [{"name": "Ada", "age": 36}]
    failure = next(r for r in report.results if isinstance(r, ExtractFailure))
    assert failure.reason == "merged_record_invalid" and "adult" in failure.message


@pytest.mark.parametrize("schema", [42, "no/such/file.json", "no_such_module:Thing", {"type": "nonsense"},
                                    "tests.agent.test_extract:PERSON_SCHEMA"])
async def test_a_bad_schema_is_a_usage_error_naming_schema(schema: Any) -> None:
    with pytest.raises(BadRequestError) as caught:
        await run(["x"], schema=schema)
    assert caught.value.param == "schema"


# --- inputs ------------------------------------------------------------------------------------


async def test_files_folders_globs_jsonl_and_html(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.txt").write_text("name: Ada\nage: 36")
    (docs / "sub" / "b.md").write_text("name: Bob\nage: 7")
    (docs / "sub" / "c.html").write_text("<html><body><p>name: Cy</p><p>age: 5</p></body></html>")
    (docs / "skip.bin").write_bytes(b"\0")
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"id": "r1", "body": "name: Di\\nage: 4"}\n{"body": "name: Ed\\nage: 3"}\nnot json\n')
    report = await run([docs, rows], text_field="body")
    by_id = {r.id: r for r in report.results}
    assert set(by_id) == {str(docs / "a.txt"), str(docs / "sub" / "b.md"), str(docs / "sub" / "c.html"),
                          "r1", f"{rows}:2", f"{rows}:3"}
    assert isinstance(by_id[str(docs / "sub" / "c.html")], ExtractOutcome)
    assert by_id[str(docs / "sub" / "c.html")].record == {"name": "Cy", "age": 5}  # type: ignore[union-attr]
    assert isinstance(by_id[f"{rows}:3"], ExtractFailure) and by_id[f"{rows}:3"].reason == "bad_input"
    globbed = await run(str(docs / "**" / "*.md"))
    assert [r.id for r in globbed.results] == [str(docs / "sub" / "b.md")]


async def test_a_missing_path_is_refused_before_anything_runs(tmp_path: Path) -> None:
    model = kv_model()
    with pytest.raises(BadRequestError) as caught:
        await run(tmp_path / "nope", model=model)
    assert caught.value.param == "inputs" and model.requests == []


async def test_repeated_ids_are_a_usage_error() -> None:
    with pytest.raises(UsageError, match="appears twice"):
        await run([{"id": "same", "text": "name: A\nage: 1"}, {"id": "same", "text": "name: B\nage: 2"}])


@pytest.fixture
def pages(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "ada.html").write_text("<html><head><title>Ada</title></head><body><p>name: Ada</p>"
                                       "<p>age: 36</p></body></html>")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


async def test_url_inputs_are_fetched_through_the_safe_fetcher(pages: str) -> None:
    urls = [{"id": "ada", "url": f"{pages}/ada.html"}, {"id": "gone", "url": f"{pages}/missing.html"}]
    report = await run(urls, fetcher=PageFetcher(allowed_networks=["127.0.0.0/8"]))
    by_id = {r.id: r for r in report.results}
    assert isinstance(by_id["ada"], ExtractOutcome) and by_id["ada"].record == {"name": "Ada", "age": 36}
    assert by_id["ada"].source == f"{pages}/ada.html"
    assert isinstance(by_id["gone"], ExtractFailure) and by_id["gone"].reason == "fetch_failed"
    blocked = await run(f"{pages}/ada.html")  # the default fetcher refuses loopback
    assert isinstance(blocked.results[0], ExtractFailure) and blocked.results[0].reason == "fetch_blocked"


# --- files and resume --------------------------------------------------------------------------


async def test_resume_skips_written_ids_and_drops_a_torn_last_line(tmp_path: Path) -> None:
    out, err = tmp_path / "out.jsonl", tmp_path / "err.jsonl"
    inputs = [{"id": f"d{n}", "text": f"name: P{n}\nage: {n}"} for n in range(6)]
    await run(inputs[:3], output=out, errors=err)
    with out.open("a") as handle:
        handle.write('{"id": "d3", "record": {"na')  # a writer killed mid-line
    model = kv_model()
    report = await run(inputs, model=model, output=out, errors=err, resume=True)
    assert report.summary.skipped == 3 and report.summary.ok == 3 and len(model.requests) == 3
    ids = [r["id"] for r in lines(out)]
    assert sorted(ids) == [f"d{n}" for n in range(6)] and len(ids) == len(set(ids))


async def test_existing_output_is_neither_appended_to_nor_wiped_silently(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text('{"id": "old"}\n')
    with pytest.raises(UsageError, match="already exists"):
        await run(["name: A\nage: 1"], output=out)
    assert out.read_text() == '{"id": "old"}\n'
    await run(["name: A\nage: 1"], output=out, overwrite=True)
    assert [r["id"] for r in lines(out)] == ["item-0"]


# --- concurrency -------------------------------------------------------------------------------


class SlowModel(ModelBackend):
    """A fixed-delay model that counts how many calls overlap."""

    name = "slow"

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.in_flight = 0
        self.max_in_flight = 0
        self.calls = 0

    async def list_models(self) -> list[str]:
        return ["slow"]

    def capabilities(self, model: str) -> Capabilities:
        return Capabilities(json_schema=True)

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        self.calls += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        yield ModelResult(content=key_value_reply([{"role": m.role, "content": m.content} for m in request.messages]))


@pytest.mark.parametrize("concurrency", [1, 3, 8])
async def test_concurrency_overlaps_calls_up_to_the_bound(concurrency: int) -> None:
    model = SlowModel(delay=0.05)
    report = await run([f"name: P{n}\nage: {n}" for n in range(8)], model=model, concurrency=concurrency)
    assert report.summary.ok == 8 and model.calls == 8
    assert model.max_in_flight == concurrency


def test_sync_extract_with_a_progress_bar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with agent.Client(backend=kv_model(), search="none") as client:
        report = agent.extract(["name: A\nage: 1", "UNPARSEABLE"], Person, client=client, progress=True)
    assert report.summary.ok == 1 and report.summary.failed == 1
    assert "2/2" in capsys.readouterr().err
    assert "2 inputs: 1 ok, 1 failed" in str(report.summary)


async def test_web_search_sources_become_citations(fake_search: Any) -> None:
    async with AsyncClient(backend=kv_model(), search=fake_search) as client:
        report = await agent.aextract(["name: Ada\nage: 36"], PERSON_SCHEMA, client=client, web_search="force")
    outcome = report.results[0]
    assert isinstance(outcome, ExtractOutcome), outcome
    assert fake_search.queries
    assert [c["url"] for c in outcome.provenance()["citations"]] == [r.url for r in fake_search.results]


async def test_bad_options_name_their_parameter() -> None:
    for options, param in (({"concurrency": 0}, "concurrency"), ({"web_search": "sometimes"}, "web_search"),
                           ({"chunk_chars": 0}, "chunk_chars")):
        with pytest.raises(BadRequestError) as caught:
            await run(["x"], **options)
        assert caught.value.param == param
