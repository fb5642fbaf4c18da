"""The HTTP server's hard limits (named constants, gathered in :class:`ServerLimits`) and the admission
control that bounds concurrent generations.

Every request that generates holds one *slot* for its whole life (for a stream, until the last event
is written or the client goes away). When all slots are busy a request waits in a short queue; when
the queue is full it is refused at once with 429, and when it waited ``queue_timeout`` seconds
without getting a slot it is refused with 503. Both carry ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass

from agent._exceptions import BadRequestError

__all__ = [
    "KEEPALIVE_SECONDS",
    "MAX_BODY_BYTES",
    "MAX_CONCURRENT_GENERATIONS",
    "MAX_MAX_TOKENS",
    "MAX_MESSAGES",
    "MAX_QUEUED_GENERATIONS",
    "QUEUE_TIMEOUT_SECONDS",
    "RETRY_AFTER_SECONDS",
    "SHUTDOWN_GRACE_SECONDS",
    "STREAM_HOLD_SECONDS",
    "GenerationLimiter",
    "Refusal",
    "ServerLimits",
]

#: Largest request body accepted (bytes); larger ones get 413 before the rest is read.
MAX_BODY_BYTES = 4 * 1024 * 1024
#: Most messages in one conversation.
MAX_MESSAGES = 500
#: Largest ``max_tokens`` a caller may ask for.
MAX_MAX_TOKENS = 32_768
#: Generations running at once.
MAX_CONCURRENT_GENERATIONS = 4
#: Requests allowed to wait for a slot; one more is refused with 429.
MAX_QUEUED_GENERATIONS = 16
#: How long a queued request waits for a slot before it is refused with 503.
QUEUE_TIMEOUT_SECONDS = 10.0
#: The ``Retry-After`` hint (seconds) sent with 429 and 503.
RETRY_AFTER_SECONDS = 2
#: Seconds of silence after which a stream gets a ``: keep-alive`` comment.
KEEPALIVE_SECONDS = 5.0
#: A stream's first chunks (role chunk, early steps) wait up to this long for the first token before
#: the 200 headers go out, so a failure in that window still gets its real status (502, 504...).
STREAM_HOLD_SECONDS = 0.5
#: On shutdown, requests still running after this long are cancelled (which stops their generation).
SHUTDOWN_GRACE_SECONDS = 10


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """The limits one server enforces; the defaults are the module constants."""

    max_body_bytes: int = MAX_BODY_BYTES
    max_messages: int = MAX_MESSAGES
    max_tokens: int = MAX_MAX_TOKENS
    max_concurrent: int = MAX_CONCURRENT_GENERATIONS
    max_queued: int = MAX_QUEUED_GENERATIONS
    queue_timeout: float = QUEUE_TIMEOUT_SECONDS
    retry_after: int = RETRY_AFTER_SECONDS
    keepalive: float = KEEPALIVE_SECONDS
    stream_hold: float = STREAM_HOLD_SECONDS

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_messages", "max_tokens", "max_concurrent", "retry_after"):
            if getattr(self, name) < 1:
                raise BadRequestError("must be at least 1", param=f"limits.{name}")
        for name in ("max_queued", "queue_timeout", "stream_hold"):
            if getattr(self, name) < 0:
                raise BadRequestError("must be >= 0", param=f"limits.{name}")
        if self.keepalive <= 0:
            raise BadRequestError("must be > 0", param="limits.keepalive")


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
