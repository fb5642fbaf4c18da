"""Structured extraction over many documents: ``extract`` / ``aextract`` / ``extract_events``.

Each document runs through the per-document pipeline of :mod:`graphs` (:func:`graphs.run_extraction`:
chunk, JSON mode through the chat graph with its validation and re-asks, merge). Around it this module
adds what a corpus needs:

* **Inputs** of every kind (:mod:`agent._extract_io`), read lazily, so a corpus never sits in memory.
* **Schema**: a pydantic model class, a JSON Schema dict (or an OpenAI ``response_format`` dict), a path
  to a ``.json`` schema file, or ``"module:Class"`` naming a pydantic model.
* **Output**: with ``output=`` each record goes to a JSONL line (``{"id", "record", "provenance"}``);
  with ``errors=`` each failure to another (``{"id", "source", "reason", "message", "attempts"}``).
  Every input ends up in exactly one of the two. Lines are written whole and synced as each document
  finishes, not when the consumer reads it.
* **Resume**: ``resume=True`` skips every id already in either file (a torn last line is dropped and
  its input runs again), so a crashed or interrupted run completes with no duplicates and no loss.
* **Concurrency**: at most ``concurrency`` documents in flight (:data:`DEFAULT_CONCURRENCY`); inputs
  are read only as slots free up.
* **Summary**: counts, failures by reason, tokens, time (:class:`ExtractSummary`).

Ids must be unique within a run: a repeated id raises :class:`UsageError` (what was written stays,
and the run can be resumed once the inputs are fixed).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict, Unpack

import pydantic

from agent._client import AsyncClient, Client
from agent._exceptions import BadRequestError, FetchBlockedError, StudiolmError, UsageError
from agent._extract_io import Item, JsonlLog, iter_inputs, read_document
from agent._response_format import parse_response_format
from agent._sync import _Loop
from agent.models import DEFAULT_LOCAL_MODEL
from graphs import (
    CHUNK_CHARS,
    ChatDeps,
    ExtractFailure,
    ExtractOutcome,
    ExtractRequest,
    JsonFormat,
    Usage,
    WebSearchMode,
    run_extraction,
)
from tools import PageFetcher

__all__ = [
    "DEFAULT_CONCURRENCY",
    "ExtractJob",
    "ExtractOptions",
    "ExtractReport",
    "ExtractSkipped",
    "ExtractSummary",
    "Extraction",
    "MAX_CONCURRENCY",
    "aextract",
    "default_model",
    "extract",
    "extract_events",
    "extract_item",
    "failure_line",
    "outcome_line",
    "parse_schema",
    "web_search_mode",
]

# Documents in flight at once. An HTTP upstream takes many more; the embedded model serves one at a
# time anyway, and more in flight would only hold more documents in memory.
DEFAULT_CONCURRENCY = 4
MAX_CONCURRENCY = 1024
_MODULE_CLASS = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_WEB_SEARCH: dict[Any, WebSearchMode] = {False: "off", None: "off", "off": "off", "auto": "auto",
                                         "force": "force", "images": "images"}


@dataclass(frozen=True, slots=True)
class ExtractSkipped:
    """An input skipped on resume: its id is already in the output or errors file."""

    id: str


#: What :func:`extract_events` yields, one per input.
Extraction = ExtractOutcome | ExtractFailure | ExtractSkipped


@dataclass(slots=True)
class ExtractSummary:
    """Counts for a run: ok, failed (by reason), skipped (resume), tokens, seconds."""

    ok: int = 0
    failed: int = 0
    skipped: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    usage: Usage = field(default_factory=Usage)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        """Inputs seen (ok + failed + skipped)."""
        return self.ok + self.failed + self.skipped

    def add(self, result: Extraction) -> None:
        """Count one result."""
        if isinstance(result, ExtractSkipped):
            self.count("skipped")
        elif isinstance(result, ExtractOutcome):
            self.count("ok", usage=result.usage)
        else:
            self.count("failed", result.reason, result.usage)

    def count(self, kind: str, reason: str | None = None, usage: Usage | None = None) -> None:
        """Count one result of ``kind`` ``"ok"``, ``"failed"`` (with its ``reason``) or ``"skipped"``."""
        self.usage = self.usage + (usage or Usage())
        if kind == "ok":
            self.ok += 1
        elif kind == "failed":
            self.failed += 1
            self.failures[reason or "unknown"] += 1
        else:
            self.skipped += 1

    def __str__(self) -> str:
        rate = (self.ok + self.failed) / self.seconds if self.seconds > 0 else 0.0
        lines = [f"{self.total} inputs: {self.ok} ok, {self.failed} failed, {self.skipped} skipped (already done)",
                 f"tokens: {self.usage.total_tokens} ({self.usage.prompt_tokens} prompt + "
                 f"{self.usage.completion_tokens} completion); {self.seconds:.1f} s, {rate:.2f} documents/s"]
        lines += [f"  failed, {reason}: {count}" for reason, count in self.failures.most_common()]
        return "\n".join(lines)


@dataclass(slots=True)
class ExtractReport:
    """What :func:`extract` returns: every result (skipped ones aside) and the summary."""

    results: list[ExtractOutcome | ExtractFailure]
    summary: ExtractSummary

    @property
    def records(self) -> list[Any]:
        """The records of the successful results, in completion order."""
        return [r.record for r in self.results if isinstance(r, ExtractOutcome)]


class ExtractOptions(TypedDict, total=False):
    """The keyword options of :func:`extract` and :func:`aextract` (those of :func:`extract_events`)."""

    client: AsyncClient | Client | None
    model: str | None
    output: str | Path | None
    errors: str | Path | None
    resume: bool
    overwrite: bool
    concurrency: int
    web_search: Any
    evidence: bool
    chunk_chars: int
    text_field: str
    id_field: str
    fetcher: PageFetcher | None


@dataclass(slots=True)
class ExtractJob:
    """What every document of a run shares: the client, model, compiled schema, options, and the logs."""

    client: AsyncClient
    model: str
    spec: JsonFormat
    web_search: WebSearchMode
    evidence: bool
    chunk_chars: int
    fetcher: PageFetcher
    output: JsonlLog | None = None
    errors: JsonlLog | None = None


# --- public API --------------------------------------------------------------------------------


async def extract_events(
    inputs: Any, schema: Any, *, client: AsyncClient | Client | None = None, model: str | None = None,
    output: str | Path | None = None, errors: str | Path | None = None, resume: bool = False,
    overwrite: bool = False, concurrency: int = DEFAULT_CONCURRENCY, web_search: Any = False,
    evidence: bool = True, chunk_chars: int = CHUNK_CHARS, text_field: str = "text", id_field: str = "id",
    fetcher: PageFetcher | None = None,
) -> AsyncIterator[Extraction]:
    """Extract a record from each input, yielding each input's result as it finishes (see the module docstring).

    ``client``: whose model backend (and search backend, for ``web_search``) to use; default a new
    :class:`AsyncClient` from the environment (the embedded model without one), closed at the end.
    ``model``: default the client's first listed model (:data:`agent.DEFAULT_LOCAL_MODEL` if listed).
    ``web_search``: ``False``, ``"auto"``, ``"force"`` or ``"images"``, as in ``create()``; the sources
    become ``provenance.citations``. ``evidence``: ask for a supporting quote per field. ``fetcher``:
    the :class:`PageFetcher` for URL inputs (default: one refusing every non-public address).
    """
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise BadRequestError(f"must be between 1 and {MAX_CONCURRENCY}, got {concurrency!r}", param="concurrency")
    items = iter_inputs(inputs, text_field=text_field, id_field=id_field)
    spec = parse_schema(schema)
    mode = web_search_mode(web_search)
    async with contextlib.AsyncExitStack() as stack:
        job = await _job(stack, client, model, spec, mode, evidence, chunk_chars, fetcher, output, errors, resume,
                         overwrite)
        async for result in _run(job, items, concurrency):
            yield result


async def aextract(
    inputs: Any, schema: Any, *, progress: bool = False, **options: Unpack[ExtractOptions]
) -> ExtractReport:
    """Run :func:`extract_events` to the end; returns every result and the :class:`ExtractSummary`.

    ``progress=True`` shows a progress bar (done, failed, rate, ETA; ``tqdm.auto``, so a widget in
    notebooks). ``options`` are :func:`extract_events`'s keywords.
    """
    summary = ExtractSummary()
    results: list[ExtractOutcome | ExtractFailure] = []
    started = time.monotonic()
    bar = _progress_bar(inputs, options) if progress else None
    try:
        async for result in extract_events(inputs, schema, **options):
            summary.add(result)
            if not isinstance(result, ExtractSkipped):
                results.append(result)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(ok=summary.ok, failed=summary.failed, skipped=summary.skipped, refresh=False)
    finally:
        summary.seconds = time.monotonic() - started
        if bar is not None:
            bar.close()
    return ExtractReport(results, summary)


def extract(inputs: Any, schema: Any, *, progress: bool = False, **options: Unpack[ExtractOptions]) -> ExtractReport:
    """Synchronous :func:`aextract` (same arguments); works inside a running event loop (notebooks) too.

    Example::

        report = agent.extract("docs/", Invoice, output="invoices.jsonl", errors="failed.jsonl", progress=True)
        print(report.summary)
    """
    client = options.get("client")
    if isinstance(client, Client):
        return client._loop.run(aextract(inputs, schema, progress=progress, **options))
    loop = _Loop()
    try:
        return loop.run(aextract(inputs, schema, progress=progress, **options))
    finally:
        loop.close()


def parse_schema(schema: Any) -> JsonFormat:
    """The compiled JSON-mode spec for an extraction ``schema`` (see the module docstring)."""
    if isinstance(schema, str | Path) and not isinstance(schema, Mapping):
        schema = _load_schema(schema)
    if isinstance(schema, Mapping) and schema.get("type") != "json_schema":
        name = re.sub(r"[^a-zA-Z0-9_-]", "_", str(schema.get("title") or "record"))[:64]
        schema = {"type": "json_schema", "json_schema": {"name": name, "schema": dict(schema)}}
    if not isinstance(schema, Mapping) and not (isinstance(schema, type) and issubclass(schema, pydantic.BaseModel)):
        raise BadRequestError("must be a pydantic model class, a JSON Schema dict, a .json file or 'module:Class'; "
                              f"got {type(schema).__name__}", param="schema")
    try:
        spec = parse_response_format(schema)
    except BadRequestError as exc:
        raise BadRequestError(exc.message, param="schema") from exc
    assert spec is not None
    return spec


def outcome_line(outcome: ExtractOutcome) -> dict[str, Any]:
    """The output JSONL line of a record."""
    return {"id": outcome.id, "record": outcome.record, "provenance": outcome.provenance()}


def failure_line(failure: ExtractFailure) -> dict[str, Any]:
    """The errors JSONL line of a failure."""
    return {"id": failure.id, "source": failure.source, "reason": failure.reason, "message": failure.message,
            "attempts": list(failure.attempts)}


# --- the run -----------------------------------------------------------------------------------


async def _job(stack: contextlib.AsyncExitStack, client: AsyncClient | Client | None, model: str | None,
               spec: JsonFormat, mode: WebSearchMode, evidence: bool, chunk_chars: int,
               fetcher: PageFetcher | None, output: str | Path | None, errors: str | Path | None,
               resume: bool, overwrite: bool) -> ExtractJob:
    if chunk_chars < 1:
        raise BadRequestError(f"must be positive, got {chunk_chars!r}", param="chunk_chars")
    if isinstance(client, Client):
        client = client._async
    if client is None:
        client = AsyncClient(search=None if mode != "off" else "none")
        stack.push_async_callback(client.aclose)
    chosen = model or await default_model(client)
    await client.backend.check_model(chosen)
    # Opened last: a mistake above must not have emptied an output file already.
    logs = [JsonlLog(p, resume=resume, overwrite=overwrite, param=n) if p is not None else None
            for n, p in (("output", output), ("errors", errors))]
    for log in logs:
        if log is not None:
            stack.callback(log.close)
    return ExtractJob(client, chosen, spec, mode, evidence, chunk_chars, fetcher or PageFetcher(), logs[0], logs[1])


async def _run(job: ExtractJob, items: Iterator[Item], concurrency: int) -> AsyncIterator[Extraction]:
    done = (job.output.ids if job.output else set()) | (job.errors.ids if job.errors else set())
    seen: set[str] = set()
    slots = asyncio.Semaphore(concurrency)
    running: set[asyncio.Task[ExtractOutcome | ExtractFailure]] = set()
    try:
        for item in items:
            if item.id in seen:
                raise UsageError(f"inputs: the id {item.id!r} appears twice; ids must be unique "
                                 "(give dicts or JSONL lines an 'id', or rename the file)")
            seen.add(item.id)
            if item.id in done:
                yield ExtractSkipped(item.id)
                continue
            await slots.acquire()
            task = asyncio.create_task(_one(job, item))
            task.add_done_callback(lambda _: slots.release())
            running.add(task)
            for finished in [t for t in running if t.done()]:
                running.discard(finished)
                yield finished.result()
        while running:
            finished_set, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for finished in finished_set:
                running.discard(finished)
                yield finished.result()
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)


async def _one(job: ExtractJob, item: Item) -> ExtractOutcome | ExtractFailure:
    """Extract one input and write its line (before anyone reads the result)."""
    result = await extract_item(job, item)
    if isinstance(result, ExtractOutcome):
        if job.output is not None:
            job.output.write(outcome_line(result))
    elif job.errors is not None:
        job.errors.write(failure_line(result))
    return result


async def extract_item(job: ExtractJob, item: Item) -> ExtractOutcome | ExtractFailure:
    """The per-document function of both engines: read or fetch the input, then run the pipeline."""
    if item.problem is not None:
        return ExtractFailure(item.id, item.source, "bad_input", item.problem)
    try:
        text = await _text(job, item)
    except FetchBlockedError as exc:
        return ExtractFailure(item.id, item.source, "fetch_blocked", exc.message)
    except StudiolmError as exc:
        return ExtractFailure(item.id, item.source, exc.code or type(exc).__name__, exc.message)
    except (OSError, ValueError) as exc:
        return ExtractFailure(item.id, item.source, "read_failed", f"{type(exc).__name__}: {exc}")
    request = ExtractRequest(id=item.id, text=text, model=job.model, response_format=job.spec, source=item.source,
                             web_search=job.web_search, chunk_chars=job.chunk_chars, evidence=job.evidence)
    deps = ChatDeps(model=job.client.backend, search=job.client.search, limits=job.client.limits)
    return await run_extraction(request, deps)


async def _text(job: ExtractJob, item: Item) -> str:
    if item.text is not None:
        return item.text
    if item.url is not None:
        page = await job.fetcher.fetch(item.url)
        return f"{page.title}\n\n{page.text}" if page.title else page.text
    assert item.path is not None
    return await asyncio.to_thread(read_document, item.path)


# --- helpers -----------------------------------------------------------------------------------


async def default_model(client: AsyncClient) -> str:
    """The client's default model id: the embedded default if listed, else the first listed."""
    ids = await client.backend.list_models()
    if not ids:
        raise UsageError(f"model: the backend {client.backend.name!r} lists no models; pass model=")
    return DEFAULT_LOCAL_MODEL if DEFAULT_LOCAL_MODEL in ids else ids[0]


def web_search_mode(value: Any) -> WebSearchMode:
    """The graph's mode for a ``web_search`` argument (as ``create()`` takes it)."""
    mode = _WEB_SEARCH.get(value) if isinstance(value, str | bool) or value is None else None
    if mode is None:
        raise BadRequestError(f"must be false, 'auto', 'force' or 'images', got {value!r}", param="web_search")
    return mode


def _load_schema(spec: str | Path) -> Any:
    text = str(spec)
    if not Path(text).exists() and _MODULE_CLASS.match(text):
        module_name, _, name = text.partition(":")
        try:
            found = getattr(importlib.import_module(module_name), name)
        except (ImportError, AttributeError) as exc:
            raise BadRequestError(f"cannot import {text!r}: {exc}", param="schema") from exc
        if not (isinstance(found, type) and issubclass(found, pydantic.BaseModel)):
            raise BadRequestError(f"{text!r} is not a pydantic model class", param="schema")
        return found
    try:
        return json.loads(Path(text).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BadRequestError(f"cannot read a JSON Schema from {text!r}: {exc}", param="schema") from exc


def _progress_bar(inputs: Any, options: Mapping[str, Any]) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=_count(inputs, options), unit="doc", desc="extract", dynamic_ncols=True)


def _count(inputs: Any, options: Mapping[str, Any]) -> int | None:
    """How many inputs there are (for the ETA), when they can be listed twice (not a one-shot iterator)."""
    if isinstance(inputs, Iterator):
        return None
    fields = {k: options[k] for k in ("text_field", "id_field") if k in options}
    try:
        return sum(1 for _ in iter_inputs(inputs, **fields))
    except (StudiolmError, OSError):
        return None  # the run itself reports it
