"""The generation worker of :mod:`agent.models._llama`: one completion in a thread, handed to the loop.

Generation runs in a worker thread, never on the event loop. What it produces (text pieces, then a
:class:`Finished` or an exception) travels through a :class:`Channel`: the worker appends to a list
and wakes the event loop only when no wake-up is on its way and, for text, the last one is at least
``MIN_WAKE_SECONDS`` old; pieces made meanwhile reach the loop in one batch, with one wake-up.
When the consumer goes away (``aclose``, cancellation) a :class:`threading.Event` is set and the
worker stops before the next token.

Logits processors are installed only when a request needs one (log probabilities, an llguidance
mask): with any processor, llama-cpp-python runs a Python sampler that copies the whole
vocabulary's logits at every token. Token usage is counted by the loaded model
(:class:`agent.models._llama_load.TokenCount`) instead.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent._exceptions import ModelError
from agent.models._llama_load import LoadedModel, import_llama_cpp
from agent.models._llguidance import engine_for, schema_grammar
from agent.models._logprobs import LogprobRecorder
from graphs.model import ModelRequest, SamplingParams, ToolSpec, Usage

__all__ = ["WORKER_NAME", "Channel", "Finished", "Item", "Job", "generate"]

WORKER_NAME = "studiolm-llama-worker"
# Text wakes the event loop at most this often; the end of a generation and errors wake it at once.
# Each wake-up costs the loop ~0.3-0.7 ms of CPU (the chat graph passes every delta on), which was
# 4-8 % of SmolLM2's ~9 ms per token; pieces made meanwhile go out with the next wake-up, so text
# is late by at most this long (or one token, when tokens are slower), and the first piece is not.
MIN_WAKE_SECONDS = 0.025


@dataclass(frozen=True, slots=True)
class Job:
    """Everything the worker thread needs, prepared on the event loop.

    ``gbnf`` computes the request's GBNF grammar text (None: unconstrained); it runs in the worker,
    because converting a big schema takes a while in Python.
    """

    request: ModelRequest
    tools: tuple[ToolSpec, ...]
    messages: list[dict[str, Any]]
    options: dict[str, Any]
    gbnf: Callable[[], str | None]
    json_engine: str = "auto"  # LlamaBackend(json_engine=...): auto, llguidance or gbnf


@dataclass(frozen=True, slots=True)
class Finished:
    """The end of a generation: the whole text, why it ended, usage and recorded log probabilities."""

    content: str
    finish_reason: str
    usage: Usage
    logprobs: tuple[dict[str, Any], ...] = ()


Item = str | Finished | BaseException


class Channel:
    """Items from the worker thread to the event loop, one loop wake-up per batch (create on the loop).

    ``stop`` is set when the loop has closed: nobody is listening any more.
    """

    def __init__(self, stop: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = stop
        self._lock = threading.Lock()
        self._items: list[Item] = []
        self._waking = False  # a wake-up is on its way and will take every item put before it runs
        self._woken = float("-inf")  # when the last wake-up was sent (time.monotonic)
        self._ready = asyncio.Event()

    def put(self, item: Item) -> None:
        """Hand ``item`` to the loop (any thread)."""
        with self._lock:
            self._items.append(item)
            if self._waking:
                return
            now = time.monotonic()
            if isinstance(item, str) and now - self._woken < MIN_WAKE_SECONDS:
                return  # the next piece, or the end, wakes the loop
            self._waking, self._woken = True, now
        try:
            self._loop.call_soon_threadsafe(self._ready.set)
        except RuntimeError:  # the loop is closed
            self._stop.set()

    async def get(self) -> list[Item]:
        """Every item handed over since the last wake-up (waits for one; on the loop)."""
        await self._ready.wait()
        with self._lock:
            items, self._items = self._items, []
            self._waking = False
            self._ready.clear()
        return items


def generate(loaded: LoadedModel, job: Job, stop: threading.Event, emit: Callable[[Item], None]) -> None:
    """Worker thread body: stream one completion into ``emit`` until done or ``stop`` is set."""
    try:
        # Converting a big schema takes a while in Python; do it before taking the model's lock.
        mask = _mask_grammar(job)
        gbnf = None if mask is not None or _mask_only(job) else job.gbnf()
        with loaded.lock:
            if not stop.is_set():
                _run(loaded, job, gbnf, stop, emit, mask)
    except Exception as exc:  # handed to the event loop, which raises it as ModelError
        emit(exc)
        return
    if stop.is_set():  # LlamaBackend.aclose() may stop a stream that still has a reader
        emit(ModelError(f"generation with {loaded.path} stopped: the backend was closed"))


def _mask_grammar(job: Job) -> str | None:
    """The llguidance grammar of a JSON-schema answer (no tools), or None to use GBNF instead."""
    if job.tools or job.request.json_schema is None or job.json_engine == "gbnf":
        return None
    return schema_grammar(job.request.json_schema)


def _mask_only(job: Job) -> bool:
    """A JSON-schema answer under ``json_engine="llguidance"``: never GBNF, unconstrained if it cannot compile."""
    return job.json_engine == "llguidance" and not job.tools and job.request.json_schema is not None


def _run(
    loaded: LoadedModel,
    job: Job,
    gbnf: str | None,
    stop: threading.Event,
    emit: Callable[[Item], None],
    mask: str | None = None,
) -> None:
    masker = engine_for(loaded.llama).processor(mask) if mask is not None else None
    if mask is not None and masker is None and not _mask_only(job):  # llguidance refused it for this vocabulary
        gbnf = job.gbnf()
    grammar = loaded.grammar(gbnf) if gbnf is not None else None
    # Log probabilities are recorded first, from the model's own distribution (before any mask).
    recorder = _recorder(loaded, job.request.sampling)
    needed = [p for p in (recorder, masker) if p is not None]
    processors = import_llama_cpp().LogitsProcessorList(needed) if needed else None
    count = loaded.new_count()
    chunks = loaded.llama.create_chat_completion(
        job.messages, stream=True, grammar=grammar, logits_processor=processors, **job.options
    )
    pieces: list[str] = []
    finish_reason = "stop"
    try:
        for chunk in chunks:
            if stop.is_set():
                return
            choice = chunk["choices"][0]
            if text := choice["delta"].get("content"):
                pieces.append(text)
                emit(text)
            finish_reason = choice["finish_reason"] or finish_reason
    finally:
        chunks.close()  # stops llama's token generator at once
    # The end-of-turn token is sampled but is not part of the answer (llama-cpp counts it the same way).
    completion = count.sampled - 1 if finish_reason == "stop" else count.sampled
    usage = Usage(count.prompt, max(completion, 0))
    content = "".join(pieces)
    logprobs = recorder.finish(content) if recorder is not None else ()
    emit(Finished(content, finish_reason, usage, logprobs))


def _recorder(loaded: LoadedModel, sampling: SamplingParams) -> LogprobRecorder | None:
    if not sampling.logprobs:
        return None
    llama = loaded.llama

    def tokenize(text: bytes) -> list[int]:
        return list(llama.tokenize(text, add_bos=False, special=False))

    return LogprobRecorder(lambda ids: bytes(llama.detokenize(ids)), tokenize, sampling.top_logprobs or 0)
