"""The Ray Data engine for extraction: the same per-document function, on a cluster (the ``ray`` extra).

::

    dataset rows ─► map_batches(_ExtractActor, ActorPoolStrategy(size=actors)) ─► result rows ─► driver
    {id, text | url | path}   each actor: its own client and event loop;              writes each line to
                              ≤ ceil(concurrency / actors) documents in flight          the same JSONL files

* **Same function.** Each row runs :func:`agent._extract.extract_item` (read or fetch, then
  :func:`graphs.run_extraction`), exactly as the local engine does, so the records are the same.
* **Concurrency** is bounded cluster-wide: ``actors`` actors (default ``min(concurrency, 4)``), each
  with at most ``ceil(concurrency / actors)`` documents in flight, and Ray runs one batch per actor at
  a time: never more than ``actors * ceil(concurrency / actors)`` calls against the endpoint.
* **Output and resume** are the local engine's: the driver appends each result row to the output or
  errors JSONL as its block arrives (one whole, synced line each) and, with ``resume=True``, the actors
  skip every id already in either file. Only results travel to the driver, never document text.
* **The model** is built inside each actor by ``backend_factory`` (a picklable callable returning a
  :class:`ModelBackend`), because an HTTP client or a loaded GGUF model cannot be shipped between
  processes. The default builds what ``AsyncClient()`` would build *from the driver's environment*
  (``STUDIOLM_BASE_URL``, ``STUDIOLM_API_KEY``, ``STUDIOLM_MODEL_PATH``, read when the run starts and
  sent to the actors: workers of a running cluster do not share the driver's environment). On a
  cluster, start with ``ray.init(address="auto")`` (or ``RAY_ADDRESS``), and make the schema (a
  pydantic class) importable on every node (``runtime_env={"py_modules": [...]}``).

Dataset rows need an id column (``id_field``) and a text column (``text_field``) or a ``url``.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import math
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from agent._client import AsyncClient
from agent._config import resolve_model_backend
from agent._exceptions import BadRequestError, UsageError
from agent._extract import (
    DEFAULT_CONCURRENCY,
    MAX_CONCURRENCY,
    ExtractJob,
    ExtractSummary,
    default_model,
    extract_item,
    failure_line,
    outcome_line,
    parse_schema,
    web_search_mode,
)
from agent._extract_io import Item, JsonlLog, iter_inputs
from agent.models import DEFAULT_MAX_RETRIES
from graphs import CHUNK_CHARS, ExtractOutcome, ModelBackend, Usage
from tools import PageFetcher

__all__ = [
    "ACTOR_CPUS",
    "BACKEND_ENV",
    "DEFAULT_ACTORS",
    "RAY_INSTALL_HINT",
    "EnvBackendFactory",
    "extract_dataset",
    "extract_with_ray",
    "items_dataset",
]

#: Actors (each with its own client) unless ``actors=`` says otherwise; at most ``concurrency``.
DEFAULT_ACTORS = 4
# Rows per batch handed to an actor (at least twice its in-flight slots, so they stay busy): small
# enough that a block's results reach the output files soon after they are made.
ROWS_PER_BATCH = 16
# CPUs reserved per actor: extraction actors mostly wait on the model endpoint. Raise it (``actor_cpus=``)
# when each actor runs a local model itself.
ACTOR_CPUS = 0.25
#: The environment the default backend factory takes from the driver to the actors.
BACKEND_ENV = ("STUDIOLM_API_KEY", "STUDIOLM_BASE_URL", "STUDIOLM_MODEL_PATH")
RAY_INSTALL_HINT = "the Ray engine needs Ray Data: pip install 'studiolm-agent[ray]'"


def extract_dataset(
    dataset: Any, schema: Any, *, output: str | Path, errors: str | Path, resume: bool = False,
    overwrite: bool = False, model: str | None = None, concurrency: int = DEFAULT_CONCURRENCY,
    actors: int | None = None, actor_cpus: float = ACTOR_CPUS,
    backend_factory: Callable[[], ModelBackend] | None = None, web_search: Any = False,
    evidence: bool = True, chunk_chars: int = CHUNK_CHARS, text_field: str = "text", id_field: str = "id",
    fetch_allowed_networks: Iterable[str] = (),
) -> ExtractSummary:
    """Extract a record per row of a ``ray.data.Dataset`` (see the module docstring); returns the summary.

    Records and failures go to ``output`` and ``errors`` (JSONL, as :func:`agent.extract` writes
    them). ``fetch_allowed_networks``: non-public networks URL rows may reach (the actors' fetchers).
    """
    ray_data = _ray_data()
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise BadRequestError(f"must be between 1 and {MAX_CONCURRENCY}, got {concurrency!r}", param="concurrency")
    parse_schema(schema)  # a bad schema fails here, not inside every actor
    web_search_mode(web_search)
    pool = min(actors or DEFAULT_ACTORS, concurrency)
    logs = [JsonlLog(path, resume=resume, overwrite=overwrite, param=name)
            for name, path in (("output", output), ("errors", errors))]
    try:
        factory = backend_factory or EnvBackendFactory({k: os.environ[k] for k in BACKEND_ENV if k in os.environ})
        in_flight = math.ceil(concurrency / pool)
        settings = {"schema": schema, "model": model, "backend_factory": factory, "web_search": web_search,
                    "evidence": evidence, "chunk_chars": chunk_chars, "text_field": text_field,
                    "id_field": id_field, "in_flight": in_flight,
                    "done": logs[0].ids | logs[1].ids, "allowed_networks": list(fetch_allowed_networks)}
        results = dataset.map_batches(_ExtractActor, fn_constructor_kwargs={"settings": settings},
                                      compute=ray_data.ActorPoolStrategy(size=pool),
                                      batch_size=max(ROWS_PER_BATCH, 2 * in_flight),
                                      batch_format="pandas", num_cpus=actor_cpus)
        return _collect(results, logs[0], logs[1])
    finally:
        for log in logs:
            log.close()


def items_dataset(inputs: Any, *, text_field: str = "text", id_field: str = "id") -> Any:
    """A ``ray.data.Dataset`` of the inputs :func:`agent.extract` takes (paths and URLs stay references:
    the actors read and fetch them)."""
    rows = [_row(item) for item in iter_inputs(inputs, text_field=text_field, id_field=id_field)]
    return _ray_data().from_items(rows)


def extract_with_ray(inputs: Any, schema: Any, **options: Any) -> ExtractSummary:
    """:func:`extract_dataset` over the inputs :func:`agent.extract` takes (the ``--engine ray`` path)."""
    fields = {"text_field": options.pop("text_field", "text"), "id_field": options.pop("id_field", "id")}
    return extract_dataset(items_dataset(inputs, **fields), schema, **options)  # rows use "text" and "id"


class EnvBackendFactory:
    """Builds the backend ``AsyncClient()`` would build, from a given environment (picklable)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = dict(env)

    def __call__(self) -> ModelBackend:
        return resolve_model_backend(backend=None, api_key=None, base_url=None, http_client=None, timeout=None,
                                     max_retries=DEFAULT_MAX_RETRIES, env=self.env)


# --- driver side -------------------------------------------------------------------------------


def _collect(results: Any, output: JsonlLog, errors: JsonlLog) -> ExtractSummary:
    summary = ExtractSummary()
    written = set(output.ids | errors.ids)
    for row in results.iter_rows():
        kind, usage = row["kind"], Usage(int(row["prompt_tokens"]), int(row["completion_tokens"]))
        if kind != "skipped":
            if row["id"] in written:
                raise UsageError(f"inputs: the id {row['id']!r} appears twice; ids must be unique")
            written.add(row["id"])
            (output if kind == "ok" else errors).write(json.loads(row["line"]))
        summary.count(kind, row["reason"] or None, usage)
    return summary


def _row(item: Item) -> dict[str, Any]:
    return {"id": item.id, "text": item.text, "url": item.url, "problem": item.problem,
            "path": str(item.path) if item.path is not None else None}


def _ray_data() -> Any:
    try:
        return importlib.import_module("ray.data")
    except ImportError as exc:
        raise UsageError(RAY_INSTALL_HINT) from exc


# --- actor side --------------------------------------------------------------------------------


class _ExtractActor:
    """One Ray actor: a client and event loop of its own; extracts a batch of rows at a time."""

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self._settings = settings
        self._loop = asyncio.new_event_loop()
        self._job = self._loop.run_until_complete(self._open_job())

    async def _open_job(self) -> ExtractJob:
        settings = self._settings
        mode = web_search_mode(settings["web_search"])
        client = AsyncClient(backend=settings["backend_factory"](), search=None if mode != "off" else "none")
        model = settings["model"] or await default_model(client)
        await client.backend.check_model(model)
        return ExtractJob(client, model, parse_schema(settings["schema"]), mode, settings["evidence"],
                          settings["chunk_chars"], PageFetcher(allowed_networks=settings["allowed_networks"]))

    def __call__(self, batch: Any) -> Any:
        rows = batch.to_dict("records")
        results = self._loop.run_until_complete(self._extract(rows))
        return type(batch)(results, columns=["id", "kind", "reason", "line", "prompt_tokens", "completion_tokens"])

    async def _extract(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        slots = asyncio.Semaphore(self._settings["in_flight"])

        async def one(row: dict[str, Any]) -> dict[str, Any]:
            item = _item(row, self._settings["text_field"], self._settings["id_field"])
            if item.id in self._settings["done"]:
                return _result(item.id, "skipped")
            async with slots:
                result = await extract_item(self._job, item)
            if isinstance(result, ExtractOutcome):
                return _result(item.id, "ok", outcome_line(result), result.usage)
            return _result(item.id, "failed", failure_line(result), result.usage, result.reason)

        return list(await asyncio.gather(*(one(row) for row in rows)))


def _item(row: Mapping[str, Any], text_field: str, id_field: str) -> Item:
    def text(name: str) -> str | None:
        value = row.get(name)
        return value if isinstance(value, str) else None

    path = text("path")
    item_id = row.get(id_field)
    if item_id is None or (isinstance(item_id, float) and math.isnan(item_id)):
        return Item(id=str(row), problem=f"the row has no {id_field!r} column value")
    if text(text_field) is None and text("url") is None and path is None:
        return Item(id=str(item_id), problem=text("problem") or f"no string {text_field!r} (or 'url') value")
    return Item(id=str(item_id), text=text(text_field), url=text("url"), path=Path(path) if path else None,
                problem=text("problem"))


def _result(item_id: str, kind: str, line: Mapping[str, Any] | None = None, usage: Usage | None = None,
            reason: str = "") -> dict[str, Any]:
    usage = usage or Usage()
    return {"id": item_id, "kind": kind, "reason": reason, "line": json.dumps(line, ensure_ascii=False, default=str),
            "prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens}
