"""Connection hygiene under uvicorn: what happens before a request reaches the app, on shutdown, and
in the log when something repeats.

* :class:`GuardedH11Protocol` / :class:`GuardedHttpToolsProtocol` (uvicorn's two HTTP/1.1 protocols,
  guarded) enforce, per connection, the limits of :class:`~agent.server._limits.ServerLimits`:

  - at most ``connections()`` open at once: one more gets ``503`` and is closed at once, so a flood
    of idle sockets cannot use up the file descriptors the server needs;
  - the header block must arrive within ``header_timeout`` of the connection opening (or of the
    first byte of a later request on it): idle and half-sent requests (slowloris) get ``408`` and
    are closed; between requests a kept-alive connection is closed silently after ``idle_timeout``
    (uvicorn's keep-alive timeout, longer than common clients keep an idle connection);
  - a header block over ``max_header_bytes`` or with more than ``max_headers`` lines gets ``431``,
    before the HTTP parser sees it (h11 alone would answer 400; httptools has no limit).

  The body deadline (``body_timeout``, 408) is the app's, which reads the body
  (:func:`agent.server._io.read_body`).
* :class:`Shutdown`, the shutdown contract. uvicorn, on SIGTERM/SIGINT, stops accepting, closes idle
  connections and asks each busy one to close after its response; it waits ``shutdown_grace`` seconds
  for them, then cancels what still runs. The guarded protocols tell the app when that starts: open
  streams may then finish for ``shutdown_drain`` seconds, after which each gets one
  ``server_shutting_down`` error event and ends, so no stream is cut without a word.
* :class:`RepeatFilter` keeps the log readable (and the disk free) when the same record comes in a
  burst, e.g. ``accept()`` failing thousands of times a second at the file-descriptor limit.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from agent.server._limits import ServerLimits

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools is optional: without it uvicorn (and we) use h11
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

__all__ = [
    "LOG_REPEAT_BURST",
    "LOG_REPEAT_WINDOW_SECONDS",
    "SHUTDOWN_STATE_KEY",
    "GuardedH11Protocol",
    "GuardedHttpToolsProtocol",
    "RepeatFilter",
    "Shutdown",
    "http_protocol",
]

#: Identical log records (same logger, level and message template) let through per window; the rest
#: are counted and the count is appended to the first record of the next window.
LOG_REPEAT_BURST = 5
LOG_REPEAT_WINDOW_SECONDS = 10.0
#: Most distinct records tracked by :class:`RepeatFilter` (the table is cleared past it), and how much
#: of a record's first line tells records apart.
_LOG_KEYS = 1024
_LOG_KEY_CHARS = 200
#: Where the guarded protocols leave the server's :class:`Shutdown` in the ASGI lifespan state, which
#: every request's ``scope["state"]`` shares.
SHUTDOWN_STATE_KEY = "studiolm.shutdown"
#: The config attribute carrying the :class:`ServerLimits` to the protocols (see :func:`attach_limits`).
_LIMITS_ATTR = "studiolm_limits"


def _raw_response(status: int, reason: str, code: str, message: str) -> bytes:
    error = {"message": message, "type": "invalid_request_error", "param": None, "code": code}
    body = json.dumps({"error": error}, separators=(",", ":")).encode("ascii")
    head = (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n")
    if status == 503:
        head += "retry-after: 2\r\n"
    return head.encode("ascii") + b"\r\n" + body


_TOO_MANY_CONNECTIONS = _raw_response(503, "Service Unavailable", "too_many_connections",
                                      "the server has too many open connections; retry later")
_HEADER_TIMEOUT = _raw_response(408, "Request Timeout", "request_timeout",
                                "the request headers did not arrive in time")


def _headers_too_large(limits: ServerLimits) -> bytes:
    return _raw_response(431, "Request Header Fields Too Large", "request_headers_too_large",
                         f"the request headers are over {limits.max_header_bytes} bytes "
                         f"or {limits.max_headers} lines")


class Shutdown:
    """The server is stopping: open streams get ``drain`` seconds, then are ended (see the module docstring)."""

    def __init__(self, drain: float) -> None:
        self.drain = drain
        self.started = False
        self.ending = False
        self._streams: set[asyncio.Task[Any]] = set()
        self._ended: set[asyncio.Task[Any]] = set()

    def begin(self) -> None:
        """Start the drain (idempotent); called by the protocols when uvicorn starts its shutdown."""
        if not self.started:
            self.started = True
            asyncio.get_running_loop().call_later(self.drain, self._end_streams)

    def _end_streams(self) -> None:
        self.ending = True
        for task in self._streams:
            self._ended.add(task)
            task.cancel()

    @contextmanager
    def stream(self) -> Iterator[None]:
        """Register the current task as an open stream for as long as the block runs."""
        task = asyncio.current_task()
        assert task is not None
        self._streams.add(task)
        if self.ending:  # began after the drain: end at the first await
            self._ended.add(task)
            task.cancel()
        try:
            yield
        finally:
            self._streams.discard(task)

    def ended(self, task: asyncio.Task[Any] | None) -> bool:
        """True (once per task) if ``task`` was cancelled by the shutdown; the cancellation is withdrawn."""
        if task is None or task not in self._ended:
            return False
        self._ended.discard(task)
        task.uncancel()
        return True


class _Guard:
    """What the guarded protocols add to uvicorn's (see the module docstring). Mixed in first, it
    calls into the real protocol with ``super()``."""

    # Set by the protocol classes' __init__; declared for the type checker.
    transport: asyncio.Transport
    connections: set[Any]
    app_state: dict[str, Any]
    cycle: Any

    def _guard_init(self, config: Any) -> None:
        self._limits: ServerLimits = getattr(config, _LIMITS_ATTR, None) or ServerLimits()
        self._max_connections = self._limits.connections()
        self._in_head = True  # reading a header block (not yet complete)
        self._head_bytes = 0
        self._head_lines = 0
        self._tail = b""  # the last bytes seen, to find a "\r\n\r\n" split across two reads
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        if len(self.connections) > self._max_connections:
            self.transport.write(_TOO_MANY_CONNECTIONS)
            self.transport.close()
            return
        state = self.app_state
        if SHUTDOWN_STATE_KEY not in state:
            state[SHUTDOWN_STATE_KEY] = Shutdown(self._limits.shutdown_drain)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    def data_received(self, data: bytes) -> None:
        if self._in_head and self._idle():
            if not self._scan_head(data):
                self._disarm()
                self.transport.write(_headers_too_large(self._limits))
                self.transport.close()
                return
            if self._in_head and self._deadline is None:  # a later request's head began, unfinished
                self._arm()
        super().data_received(data)  # type: ignore[misc]

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        if not self.transport.is_closing():
            # No deadline while the connection idles: uvicorn closes it silently after idle_timeout.
            # A 408 written to an idle connection would be read as the answer to the client's next
            # request if it sent one at that moment.
            self._in_head, self._head_bytes, self._head_lines, self._tail = True, 0, 0, b""

    def shutdown(self) -> None:
        shutdown = self.app_state.get(SHUTDOWN_STATE_KEY)
        if isinstance(shutdown, Shutdown):
            shutdown.begin()
        super().shutdown()  # type: ignore[misc]

    def _idle(self) -> bool:
        """No request in progress (a pipelined one may already be, once a response completes)."""
        return self.cycle is None or bool(self.cycle.response_complete)

    def _scan_head(self, data: bytes) -> bool:
        """Count ``data`` into the header block; False when the block is over a limit."""
        window = self._tail + data
        end = window.find(b"\r\n\r\n")
        part = data if end < 0 else window[len(self._tail):end + 4]
        self._head_bytes += len(part)
        self._head_lines += part.count(b"\n")
        self._tail = window[-3:]
        if self._head_bytes > self._limits.max_header_bytes or self._head_lines > self._limits.max_headers + 2:
            return False  # +2: the request line and the blank line that ends the block
        if end >= 0:
            self._in_head = False
            self._disarm()
        return True

    def _arm(self) -> None:
        self._disarm()
        self._deadline = asyncio.get_running_loop().call_later(self._limits.header_timeout, self._head_late)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _head_late(self) -> None:
        self._deadline = None
        if self._in_head and self._idle() and not self.transport.is_closing():
            self.transport.write(_HEADER_TIMEOUT)
            self.transport.close()


class GuardedH11Protocol(_Guard, H11Protocol):
    """uvicorn's h11 protocol with the connection limits (see the module docstring)."""

    def __init__(self, config: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self._guard_init(config)


if HttpToolsProtocol is not None:

    class GuardedHttpToolsProtocol(_Guard, HttpToolsProtocol):
        """uvicorn's httptools protocol with the connection limits (see the module docstring)."""

        def __init__(self, config: Any, *args: Any, **kwargs: Any) -> None:
            super().__init__(config, *args, **kwargs)
            self._guard_init(config)

else:  # pragma: no cover - httptools missing
    GuardedHttpToolsProtocol = GuardedH11Protocol  # type: ignore[misc,assignment]


def http_protocol() -> str:
    """The import path of the guarded protocol to use: httptools' when installed (faster), else h11's.

    A string, not the class, so a config sent to worker processes stays picklable.
    """
    name = "GuardedHttpToolsProtocol" if HttpToolsProtocol is not None else "GuardedH11Protocol"
    return f"{__name__}:{name}"


def attach_limits(config: Any, limits: ServerLimits) -> None:
    """Hand ``limits`` to the guarded protocols through the uvicorn ``config`` they all receive."""
    setattr(config, _LIMITS_ATTR, limits)


class RepeatFilter(logging.Filter):
    """Lets :data:`LOG_REPEAT_BURST` identical records (same logger, level and first line of the
    message template) through per :data:`LOG_REPEAT_WINDOW_SECONDS`; the first record after a window
    in which some were dropped says how many."""

    def __init__(self, burst: int = LOG_REPEAT_BURST, window: float = LOG_REPEAT_WINDOW_SECONDS) -> None:
        super().__init__()
        self.burst = burst
        self.window = window
        self._seen: dict[tuple[str, int, str], list[float]] = {}  # key -> [window start, count, dropped]

    def filter(self, record: logging.LogRecord) -> bool:
        # The first line names the event; later lines may differ every time (asyncio's "Exception in
        # callback" records quote a timer's due time), which must not make each record new.
        key = (record.name, record.levelno, str(record.msg).partition("\n")[0][:_LOG_KEY_CHARS])
        now = time.monotonic()
        entry = self._seen.get(key)
        if entry is None or now - entry[0] >= self.window:
            if len(self._seen) >= _LOG_KEYS:
                self._seen.clear()
            dropped = int(entry[2]) if entry else 0
            self._seen[key] = [now, 1, 0]
            if dropped:
                record.msg = f"{record.msg} [{dropped} identical messages suppressed]"
            return True
        entry[1] += 1
        if entry[1] <= self.burst:
            return True
        entry[2] += 1
        return False
