"""The sync side of the clients: a private event loop on a thread, and sync iterators over async streams.

Written once for every sync wrapper (:class:`~agent.Client`'s chat and responses, extraction): the
async core does the work on the loop; these only carry calls and items across.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Awaitable, Iterator
from typing import Generic, Protocol, TypeVar

from agent._exceptions import UsageError

__all__ = ["LOOP_JOIN_SECONDS", "AsyncEvents", "SyncStream"]

T = TypeVar("T")
E_co = TypeVar("E_co", covariant=True)
E = TypeVar("E")
#: How long closing a sync client waits for its loop thread (a run still finishing its cleanup).
LOOP_JOIN_SECONDS = 5.0


class AsyncEvents(Protocol[E_co]):
    """An async stream that can be stopped: :class:`~agent.AsyncStream`, ``AsyncResponseStream``."""

    def __anext__(self) -> Awaitable[E_co]: ...

    async def aclose(self) -> None: ...


class _Loop:
    """A private event loop on a daemon thread: the sync client's bridge to the async core."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="studiolm-client", daemon=True)
        self._thread.start()

    def run(self, awaitable: Awaitable[T]) -> T:
        coroutine = _as_coroutine(awaitable)
        if self._loop.is_closed():
            coroutine.close()
            if inspect.iscoroutine(awaitable):
                awaitable.close()  # never started: close it so Python does not warn it was never awaited
            raise UsageError("this client is closed; create a new Client")
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # e.g. KeyboardInterrupt: stop the work, don't leave it running
            raise

    @property
    def closed(self) -> bool:
        return self._loop.is_closed()

    def close(self) -> None:
        """Stop the loop, wait for its thread, close it. Idempotent."""
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=LOOP_JOIN_SECONDS)
        if not self._thread.is_alive():
            self._loop.close()


async def _as_coroutine(awaitable: Awaitable[T]) -> T:
    return await awaitable


class SyncStream(Generic[E]):
    """A sync iterator over an async stream run on ``loop``; ``close()`` (or leaving ``with``) stops it."""

    def __init__(self, loop: _Loop, stream: AsyncEvents[E]) -> None:
        self._loop = loop
        self._stream = stream

    def __iter__(self) -> Iterator[E]:
        return self

    def __next__(self) -> E:
        try:
            return self._loop.run(self._stream.__anext__())
        except StopAsyncIteration:
            raise StopIteration from None

    def close(self) -> None:
        """Stop the run and release the model."""
        self._loop.run(self._stream.aclose())

    def __enter__(self) -> SyncStream[E]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
