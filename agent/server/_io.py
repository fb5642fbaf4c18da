"""ASGI plumbing for the HTTP server: responses, the error envelope and its status, the request body
under a cap, Server-Sent Events with keep-alives, and cancelling work when the client goes away.

Bodies are never built here: responses and chunks come from the SDK (:mod:`agent._wire` through
:class:`~agent._client.AsyncClient`), errors from :func:`agent._wire.error_body`.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import math
import traceback
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from starlette.types import Message, Receive, Send

from agent._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    BadRequestError,
    NotFoundError,
    OutputValidationError,
    RateLimitError,
    ServerRefusal,
    StudiolmError,
    ToolsetError,
    UpstreamBadRequestError,
    UsageError,
)
from agent._wire import error_body

if TYPE_CHECKING:
    from agent.server._conn import Shutdown

__all__ = [
    "CHAT_SSE",
    "SSE_HEADERS",
    "BodyProblem",
    "EventStream",
    "SseFormat",
    "Sender",
    "as_error",
    "dumps",
    "error_headers",
    "internal_error",
    "log_unexpected",
    "problem",
    "pump_sse",
    "read_body",
    "run_until_disconnect",
    "send_error",
    "send_json",
    "shutting_down",
    "status_for",
]

logger = logging.getLogger("studiolm.server")

Headers = Sequence[tuple[bytes, bytes]]

#: Chunks produced ahead of a slow reader; past this the generation waits (backpressure).
SSE_BUFFERED_CHUNKS = 16
KEEPALIVE = b": keep-alive\n\n"
DONE = b"data: [DONE]\n\n"
SSE_HEADERS: Headers = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # tell nginx-style proxies not to hold events back
)

# Which status each error gets. First match wins, so subclasses come before their bases.
_STATUSES: tuple[tuple[type[StudiolmError], int], ...] = (
    (NotFoundError, 404),
    (BadRequestError, 400),
    (UpstreamBadRequestError, 400),
    (OutputValidationError, 422),
    (RateLimitError, 429),
    (APITimeoutError, 504),
    (APIConnectionError, 502),
    (APIStatusError, 502),
    (ToolsetError, 502),
    (UsageError, 400),
)


def status_for(error: StudiolmError) -> int:
    """The HTTP status for ``error`` (anything unlisted is a 500 with the envelope)."""
    if isinstance(error, ServerRefusal):
        return error.status_code
    return next((s for kind, s in _STATUSES if isinstance(error, kind)), 500)


def problem(message: str, *, status: int, error_type: str, code: str, param: str | None = None) -> StudiolmError:
    """An error the server itself reports (auth, size, overload…), ready for :func:`send_error`.

    It is never raised: the server sends it as the error envelope with ``status``.
    """
    return ServerRefusal(message, status_code=status, error_type=error_type, code=code, param=param)


def log_unexpected(exc: BaseException, where: str) -> None:
    """Log a bug: the exception type and the stack, not its message, which may quote request data."""
    stack = "".join(traceback.format_tb(exc.__traceback__))
    logger.error("unexpected %s while serving %s (message withheld)\n%s", type(exc).__qualname__, where, stack)


def as_error(exc: Exception, where: str) -> StudiolmError:
    """``exc`` if it is one of ours, else a generic 500 (after logging it with :func:`log_unexpected`)."""
    if isinstance(exc, StudiolmError):
        return exc
    log_unexpected(exc, where)
    return internal_error()


def shutting_down(retry_after: int = 2) -> StudiolmError:
    """What a stream still open when the shutdown drain ends gets (an SSE error event, or a 503)."""
    error = problem("the server is shutting down; retry the request", status=503, error_type="server_error",
                    code="server_shutting_down")
    error.retry_after = retry_after  # type: ignore[attr-defined]
    return error


def internal_error() -> StudiolmError:
    """The generic 500: no detail of what went wrong reaches the caller."""
    return problem("internal server error; the server log has the details", status=500,
                   error_type="server_error", code="internal_error")


def dumps(body: Any) -> bytes:
    """Compact ASCII JSON: no raw newline can end up inside an SSE line, no UTF-8 can be split.

    orjson writes it (it escapes control characters, so never a raw newline); text beyond ASCII, and
    what orjson refuses (integers past 64 bits), go through the json module's ``\\u`` escapes.
    """
    try:
        data = orjson.dumps(body)
        if data.isascii():
            return data
    except TypeError:  # orjson.JSONEncodeError
        pass
    return json.dumps(body, separators=(",", ":"), allow_nan=False).encode("ascii")


class Sender:
    """Wraps ASGI ``send``; knows whether the response has started and whether it is complete."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False
        self.complete = False
        self.status = 0

    async def start(self, status: int, headers: Headers) -> None:
        """Send the status line and headers."""
        self.started, self.status = True, status
        await self._send({"type": "http.response.start", "status": status, "headers": list(headers)})

    async def body(self, data: bytes, *, more: bool = True) -> None:
        """Send one piece of the body, in one write (``more=False`` ends the response)."""
        self.complete = not more
        await self._send({"type": "http.response.body", "body": data, "more_body": more})


async def send_json(sender: Sender, status: int, body: Any, headers: Headers = ()) -> None:
    """A whole JSON response."""
    payload = dumps(body)
    await sender.start(status, [(b"content-type", b"application/json"),
                                (b"content-length", str(len(payload)).encode()), *headers])
    await sender.body(payload, more=False)


async def send_error(sender: Sender, error: StudiolmError, headers: Headers = ()) -> None:
    """The error envelope with its status (and ``Retry-After`` when the error has a hint)."""
    await send_json(sender, status_for(error), error_body(error), [*headers, *error_headers(error)])


def error_headers(error: StudiolmError) -> Headers:
    """``Retry-After`` when the error carries a ``retry_after`` hint."""
    seconds = getattr(error, "retry_after", None)
    if isinstance(seconds, int | float) and math.isfinite(seconds) and seconds >= 0:
        return [(b"retry-after", str(max(1, math.ceil(seconds))).encode())]
    return []


class BodyProblem(enum.Enum):
    """Why :func:`read_body` has no body to give."""

    TOO_LARGE = "too_large"
    DISCONNECTED = "disconnected"
    TIMED_OUT = "timed_out"


async def read_body(receive: Receive, limit: int, deadline: float | None = None) -> bytes | BodyProblem:
    """The request body, read piece by piece; stops as soon as it passes ``limit`` bytes, or when it
    has not all arrived ``deadline`` seconds after the first read (a client trickling a body)."""
    try:
        async with asyncio.timeout(deadline):
            return await _read_body(receive, limit)
    except TimeoutError:
        return BodyProblem.TIMED_OUT


async def _read_body(receive: Receive, limit: int) -> bytes | BodyProblem:
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return BodyProblem.DISCONNECTED
        body += message.get("body", b"")
        if len(body) > limit:
            return BodyProblem.TOO_LARGE
        if not message.get("more_body", False):
            return bytes(body)


async def run_until_disconnect(receive: Receive, work: Coroutine[Any, Any, None], finished: Callable[[], bool]) -> None:
    """Run ``work``, cancelling it when the client disconnects before ``finished()``.

    The request body must have been read: from then on the only message ``receive`` can bring is
    ``http.disconnect``, which servers send as soon as the connection drops (and, harmlessly, once
    the response is complete, which ``finished`` tells apart).
    """
    task = asyncio.ensure_future(work)
    gone = False

    async def watch() -> None:
        nonlocal gone
        message: Message = {"type": ""}
        while message["type"] != "http.disconnect":
            message = await receive()
        if not finished():
            gone = True
            task.cancel()

    watcher = asyncio.ensure_future(watch())
    try:
        await task
    except asyncio.CancelledError:
        if not gone:
            raise
    finally:
        watcher.cancel()
        task.cancel()
        await asyncio.gather(task, watcher, return_exceptions=True)


class EventStream(Protocol):
    """What :func:`pump_sse` sends: an async iterator of events that ``aclose()`` stops."""

    def __aiter__(self) -> AsyncIterator[Any]: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class SseFormat:
    """How a kind of stream is framed: one event, whether it may wait before the headers go out
    (a step, not yet content), a failure after the headers, and the end marker."""

    encode: Callable[[Any], bytes]
    held: Callable[[Any], bool]
    error: Callable[[StudiolmError], bytes]
    done: bytes


#: Chat completions: ``data: {chunk}`` events, steps held back, ``data: [DONE]`` at the end.
CHAT_SSE = SseFormat(encode=lambda chunk: b"data: " + dumps(chunk) + b"\n\n", held=lambda chunk: "step" in chunk,
                     error=lambda error: b"data: " + dumps(error_body(error)) + b"\n\n", done=DONE)


async def pump_sse(stream: EventStream, sender: Sender, *, keepalive: float, hold: float, where: str,
                   fmt: SseFormat = CHAT_SSE, shutdown: Shutdown | None = None) -> None:
    """Send ``stream`` as Server-Sent Events: complete ``data:`` events, those ready together in one write.

    The first chunks (the role chunk, early steps) are held back until the first token or for
    ``hold`` seconds, so a failure that comes first (the upstream is down) still gets its real HTTP
    status. Then every ``keepalive`` seconds of silence bring a ``: keep-alive`` comment. A failure
    after the headers is one ``data: {"error": …}`` event, then the end; a normal end is
    ``data: [DONE]``. A server shutdown (``shutdown``) that outlasts its drain ends the stream the same
    way, with :func:`shutting_down`.
    """
    queue: asyncio.Queue[Any] = asyncio.Queue(SSE_BUFFERED_CHUNKS)
    producer = asyncio.ensure_future(_produce(stream, queue, where))
    try:
        with shutdown.stream() if shutdown is not None else contextlib.nullcontext():
            await _pump(queue, sender, keepalive, hold, fmt)
    except asyncio.CancelledError:
        if shutdown is None or not shutdown.ended(asyncio.current_task()):
            raise
        await _fail(sender, shutting_down(), fmt)
    finally:
        producer.cancel()
        await asyncio.gather(producer, return_exceptions=True)


async def _pump(queue: asyncio.Queue[Any], sender: Sender, keepalive: float, hold: float, fmt: SseFormat) -> None:
    held: list[bytes] = []  # encoded events not yet written
    commit_at = asyncio.get_running_loop().time() + hold
    while True:
        if queue.empty():
            try:
                async with asyncio.timeout_at(None if sender.started else commit_at):
                    async with asyncio.timeout(keepalive):
                        item = await queue.get()
            except TimeoutError:
                if held or not sender.started:
                    await _flush(sender, held)
                else:
                    await sender.body(KEEPALIVE)
                continue
        else:
            item = queue.get_nowait()  # ready already: no timers to set up
        if isinstance(item, StudiolmError):
            if sender.started:
                await _flush(sender, held)  # what came before the failure, then the failure
            await _fail(sender, item, fmt)
            return
        if item is None:
            held.append(fmt.done)
            await _flush(sender, held, more=False)
            return
        held.append(fmt.encode(item))
        if not sender.started and len(held) > 1 and not fmt.held(item):
            await sender.start(200, SSE_HEADERS)  # committed: from here on a failure is an event
        # Events already queued go out with this one, in one write; an event is never held back to
        # wait for another (only what is ready is joined).
        if sender.started and queue.empty():
            await _flush(sender, held)


async def _produce(stream: EventStream, queue: asyncio.Queue[Any], where: str) -> None:
    try:
        async for chunk in stream:
            await queue.put(chunk)
    except Exception as exc:
        await queue.put(as_error(exc, where))
    else:
        await queue.put(None)
    finally:
        await stream.aclose()  # stops the run, also when this task is cancelled


async def _flush(sender: Sender, held: list[bytes], *, more: bool = True) -> None:
    if not sender.started:
        await sender.start(200, SSE_HEADERS)
    if held or not more:
        await sender.body(b"".join(held), more=more)
    held.clear()


async def _fail(sender: Sender, error: StudiolmError, fmt: SseFormat) -> None:
    if sender.started:
        await sender.body(fmt.error(error), more=False)
    else:
        await send_error(sender, error)
