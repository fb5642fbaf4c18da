"""The HTTP server's hard limits (named constants, gathered in :class:`ServerLimits`) and the admission
control that bounds concurrent generations.

Every request that generates holds one *slot* for its whole life (for a stream, until the last event
is written or the client goes away). When all slots are busy a request waits in a short queue; when
the queue is full it is refused at once with 429, and when it waited ``queue_timeout`` seconds
without getting a slot it is refused with 503. Both carry ``Retry-After``.

How many slots and queue places a server has depends on what generates (:func:`generation_slots`):
an HTTP upstream spends its time waiting on the network, so hundreds of requests may be in flight; a
local model decodes one request at a time, so it gets a short queue in front of two slots (one decodes
while the other prepares its prompt). ``--max-concurrency``/``--max-queue``/``--queue-timeout`` or
``STUDIOLM_MAX_CONCURRENCY``/``STUDIOLM_MAX_QUEUE``/``STUDIOLM_QUEUE_TIMEOUT`` override them
(:func:`limits_from_env`).

The connection limits (header and body deadlines, header size and count, open connections) and the
shutdown contract are enforced by :mod:`agent.server._conn`; their values live here too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import os
from collections.abc import Mapping
from dataclasses import dataclass

from agent._exceptions import BadRequestError
from agent.models import LlamaBackend, OpenAICompatibleBackend
from graphs import ModelBackend

__all__ = [
    "BODY_TIMEOUT_SECONDS",
    "HEADER_TIMEOUT_SECONDS",
    "IDLE_TIMEOUT_SECONDS",
    "KEEPALIVE_SECONDS",
    "LIMIT_ENV_VARS",
    "MAX_CONNECTIONS",
    "MAX_HEADERS",
    "MAX_HEADER_BYTES",
    "MAX_BODY_BYTES",
    "MAX_CONCURRENT_GENERATIONS",
    "MAX_MAX_TOKENS",
    "MAX_MESSAGES",
    "MAX_QUEUED_GENERATIONS",
    "QUEUE_TIMEOUT_SECONDS",
    "RETRY_AFTER_SECONDS",
    "SHUTDOWN_DRAIN_SECONDS",
    "SHUTDOWN_GRACE_SECONDS",
    "SLOTS_BY_BACKEND",
    "STREAM_HOLD_SECONDS",
    "WORKER_HEALTHCHECK_SECONDS",
    "GenerationLimiter",
    "Refusal",
    "ServerLimits",
    "generation_slots",
    "limits_from_env",
]

#: Largest request body accepted (bytes); larger ones get 413 before the rest is read.
MAX_BODY_BYTES = 4 * 1024 * 1024
#: Most messages in one conversation.
MAX_MESSAGES = 500
#: Largest ``max_tokens`` a caller may ask for.
MAX_MAX_TOKENS = 32_768
#: Generations running at once / requests waiting for a slot (one more is refused with 429), by the kind
#: of backend: an HTTP upstream mostly waits on the network; a local model decodes one request at a
#: time (a lock per loaded model), so a long queue would only turn into long waits.
SLOTS_BY_BACKEND: dict[str, tuple[int, int]] = {
    "upstream": (256, 1024),
    "local": (2, 16),
    "other": (16, 64),  # ScriptedModel and custom backends: no idea of their cost, a middle ground
}
#: The defaults for backends of unknown kind (kept for callers that import the old names).
MAX_CONCURRENT_GENERATIONS, MAX_QUEUED_GENERATIONS = SLOTS_BY_BACKEND["other"]
#: How long a queued request waits for a slot before it is refused with 503: short, so a client
#: under overload hears so quickly (with ``Retry-After``) instead of hanging on a queue.
QUEUE_TIMEOUT_SECONDS = 5.0
#: The ``Retry-After`` hint (seconds) sent with 429 and 503.
RETRY_AFTER_SECONDS = 2
#: Seconds of silence after which a stream gets a ``: keep-alive`` comment.
KEEPALIVE_SECONDS = 5.0
#: A stream's first chunks (role chunk, early steps) wait up to this long for the first token before
#: the 200 headers go out, so a failure in that window still gets its real status (502, 504...).
STREAM_HOLD_SECONDS = 0.5
#: On shutdown, requests still running after this long are cancelled (which stops their generation).
SHUTDOWN_GRACE_SECONDS = 10
#: On shutdown, open streams may finish for this long; then each gets one ``server_shutting_down``
#: error event and ends (well inside the grace, so no stream is cut without a word).
SHUTDOWN_DRAIN_SECONDS = 3.0
#: A connection must send a request's whole header block this long after it opens (or after the
#: first byte of a later request on it): idle and half-sent requests (slowloris) get 408 and close.
HEADER_TIMEOUT_SECONDS = 10.0
#: A kept-alive connection with no request in progress is closed (silently) after this long. Above
#: the 4-5 s after which common clients (httpx, the openai SDK, Node's fetch) stop reusing an idle
#: connection, so a client never sends a request on a connection we are closing at that moment.
IDLE_TIMEOUT_SECONDS = 15
#: A request body must arrive whole within this long after its headers, else 408.
BODY_TIMEOUT_SECONDS = 30.0
#: Largest header block (request line and headers) and most header lines; more is answered 431.
MAX_HEADER_BYTES = 32 * 1024
MAX_HEADERS = 100
#: Open connections per server process; past it a new connection gets 503 and is closed at once.
#: Lowered further when the process's file-descriptor limit is lower (two descriptors a request:
#: the client's connection and, for an HTTP upstream, ours).
MAX_CONNECTIONS = 4096
#: How long a worker process (``--workers``) may take to answer its supervisor's health check before
#: it is replaced: importing the stack (and loading a local model) takes seconds on a busy machine.
WORKER_HEALTHCHECK_SECONDS = 60
#: The environment variables that override the generation limits (read by :func:`limits_from_env`).
LIMIT_ENV_VARS = {
    "max_concurrent": "STUDIOLM_MAX_CONCURRENCY",
    "max_queued": "STUDIOLM_MAX_QUEUE",
    "queue_timeout": "STUDIOLM_QUEUE_TIMEOUT",
    "max_connections": "STUDIOLM_MAX_CONNECTIONS",
}


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """The limits one server enforces; the defaults are the module constants.

    ``max_concurrent`` and ``max_queued`` left ``None`` are chosen by the kind of backend
    (:func:`generation_slots`); ``max_connections`` left ``None`` is :data:`MAX_CONNECTIONS`, lowered
    to fit the file-descriptor limit.
    """

    max_body_bytes: int = MAX_BODY_BYTES
    max_messages: int = MAX_MESSAGES
    max_tokens: int = MAX_MAX_TOKENS
    max_concurrent: int | None = None
    max_queued: int | None = None
    queue_timeout: float = QUEUE_TIMEOUT_SECONDS
    retry_after: int = RETRY_AFTER_SECONDS
    keepalive: float = KEEPALIVE_SECONDS
    stream_hold: float = STREAM_HOLD_SECONDS
    header_timeout: float = HEADER_TIMEOUT_SECONDS
    idle_timeout: int = IDLE_TIMEOUT_SECONDS
    body_timeout: float = BODY_TIMEOUT_SECONDS
    max_header_bytes: int = MAX_HEADER_BYTES
    max_headers: int = MAX_HEADERS
    max_connections: int | None = None
    shutdown_drain: float = SHUTDOWN_DRAIN_SECONDS
    shutdown_grace: int = SHUTDOWN_GRACE_SECONDS

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_messages", "max_tokens", "max_concurrent", "retry_after",
                     "max_header_bytes", "max_headers", "max_connections", "shutdown_grace"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise BadRequestError("must be at least 1", param=f"limits.{name}")
        for name in ("max_queued", "queue_timeout", "stream_hold", "shutdown_drain"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise BadRequestError("must be >= 0", param=f"limits.{name}")
        for name in ("keepalive", "header_timeout", "idle_timeout", "body_timeout"):
            if getattr(self, name) <= 0:
                raise BadRequestError("must be > 0", param=f"limits.{name}")
        if self.shutdown_drain >= self.shutdown_grace:
            raise BadRequestError("must be less than limits.shutdown_grace", param="limits.shutdown_drain")

    def connections(self) -> int:
        """The open-connection cap: ``max_connections``, else :data:`MAX_CONNECTIONS` within the fd limit."""
        if self.max_connections is not None:
            return self.max_connections
        try:
            import resource

            soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        except (ImportError, OSError):  # not on POSIX
            return MAX_CONNECTIONS
        if soft == resource.RLIM_INFINITY:
            return MAX_CONNECTIONS
        return max(1, min(MAX_CONNECTIONS, (soft - _RESERVED_FDS) // 2))


#: Descriptors kept free for everything but client connections (listening socket, logs, model files).
_RESERVED_FDS = 64


def backend_kind(backend: ModelBackend) -> str:
    """``"upstream"`` (an OpenAI-compatible HTTP endpoint), ``"local"`` (llama.cpp in-process) or ``"other"``."""
    if isinstance(backend, OpenAICompatibleBackend):
        return "upstream"
    if isinstance(backend, LlamaBackend):
        return "local"
    return "other"


def generation_slots(limits: ServerLimits, backend: ModelBackend) -> tuple[int, int]:
    """``(max_concurrent, max_queued)`` for a server of ``backend``: the limits' values, or the
    defaults for the backend's kind (:data:`SLOTS_BY_BACKEND`) where they are ``None``."""
    concurrent, queued = SLOTS_BY_BACKEND[backend_kind(backend)]
    return (concurrent if limits.max_concurrent is None else limits.max_concurrent,
            queued if limits.max_queued is None else limits.max_queued)


def limits_from_env(limits: ServerLimits | None = None, env: Mapping[str, str] | None = None) -> ServerLimits:
    """``limits`` (default: :class:`ServerLimits()`) with the fields it leaves at their default taken
    from :data:`LIMIT_ENV_VARS` when set. A value that is not a number is a :class:`BadRequestError`
    naming the variable."""
    limits = limits or ServerLimits()
    env = os.environ if env is None else env
    changes: dict[str, float | int] = {}
    defaults = ServerLimits()
    for field, var in LIMIT_ENV_VARS.items():
        raw = env.get(var, "").strip()
        if not raw or getattr(limits, field) != getattr(defaults, field):
            continue
        try:
            changes[field] = float(raw) if field == "queue_timeout" else int(raw)
        except ValueError:
            raise BadRequestError(f"must be a number, got {raw!r}", param=var) from None
    try:
        return dataclasses.replace(limits, **changes)  # type: ignore[arg-type]
    except BadRequestError as exc:
        field = (exc.param or "").removeprefix("limits.")
        if field not in changes:
            raise
        raise BadRequestError(str(exc).partition(": ")[2], param=LIMIT_ENV_VARS[field]) from None


class Refusal(enum.Enum):
    """Why a request got no generation slot."""

    QUEUE_FULL = "queue_full"  # -> 429
    TIMED_OUT = "timed_out"  # -> 503


class GenerationLimiter:
    """At most ``max_concurrent`` holders, at most ``max_queued`` waiters (see the module docstring)."""

    def __init__(self, max_concurrent: int, max_queued: int, queue_timeout: float) -> None:
        self._slots = asyncio.Semaphore(max_concurrent)
        self._max_queued = max_queued
        self._queue_timeout = queue_timeout
        self.active = 0
        self.waiting = 0

    async def acquire(self) -> Refusal | None:
        """Take a slot (``None``), or say why not. A granted slot must be given back with :meth:`release`."""
        if self._slots.locked():
            if self.waiting >= self._max_queued:
                return Refusal.QUEUE_FULL
            self.waiting += 1
            try:
                async with asyncio.timeout(self._queue_timeout):
                    await self._slots.acquire()
            except TimeoutError:
                return Refusal.TIMED_OUT
            finally:
                self.waiting -= 1
        else:
            await self._slots.acquire()  # free: returns at once
        self.active += 1
        return None

    def release(self) -> None:
        """Give a slot back."""
        self.active -= 1
        self._slots.release()
