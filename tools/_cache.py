"""A TTL + LRU cache in front of any search backend, with single-flight for identical queries.

Single-flight: when N callers ask the same question at once, one underlying search runs and all N
get its result, or all N get its exception. Exceptions are never cached: the next call tries again.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Literal

from tools._search import ImageSearchResponse, SearchBackend, TextSearchResponse
from tools._searchutil import check_max_results

__all__ = ["CACHE_MAX_ENTRIES", "CACHE_TTL_SECONDS", "CachedSearch"]

#: How long a response is served from the cache.
CACHE_TTL_SECONDS = 300.0
#: Most responses kept; the least recently used one is evicted beyond this.
CACHE_MAX_ENTRIES = 256

_Response = TextSearchResponse | ImageSearchResponse
_Key = tuple[str, Literal["text", "images"], str, int]


def normalize_query(query: str) -> str:
    """Case- and whitespace-insensitive form of a query: the cache treats these spellings as one."""
    return " ".join(query.split()).casefold()


class CachedSearch(SearchBackend):
    """Wraps ``backend``; responses served from the cache (or shared in flight) have ``cached=True``.

    Keyed by (backend name, kind, normalised query, max_results). ``clock`` is injectable for tests.
    """

    def __init__(
        self,
        backend: SearchBackend,
        *,
        ttl: float = CACHE_TTL_SECONDS,
        max_entries: int = CACHE_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backend = backend
        self.name = backend.name
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[_Key, tuple[float, _Response]] = OrderedDict()
        self._inflight: dict[_Key, asyncio.Task[_Response]] = {}

    async def search(self, query: str, *, max_results: int = 5) -> TextSearchResponse:
        """Cached :meth:`SearchBackend.search` of the wrapped backend."""
        key = self._key("text", query, max_results)
        response = await self._get(key, lambda: self.backend.search(query, max_results=max_results))
        assert isinstance(response, TextSearchResponse)  # keys of kind "text" only ever hold these
        return response

    async def search_images(self, query: str, *, max_results: int = 5) -> ImageSearchResponse:
        """Cached :meth:`SearchBackend.search_images` of the wrapped backend."""
        key = self._key("images", query, max_results)
        response = await self._get(key, lambda: self.backend.search_images(query, max_results=max_results))
        assert isinstance(response, ImageSearchResponse)
        return response

    def clear(self) -> None:
        """Drop every cached response (searches in flight are unaffected)."""
        self._entries.clear()

    async def aclose(self) -> None:
        """Drop the cache and close the wrapped backend."""
        self.clear()
        await self.backend.aclose()

    def _key(self, kind: Literal["text", "images"], query: str, max_results: int) -> _Key:
        return (self.backend.name, kind, normalize_query(query), check_max_results(max_results))

    async def _get(self, key: _Key, call: Callable[[], Awaitable[_Response]]) -> _Response:
        if (hit := self._lookup(key)) is not None:
            return replace(hit, cached=True)
        task = self._inflight.get(key)
        if task is not None:  # someone is already asking this: share their answer
            return replace(await asyncio.shield(task), cached=True)
        task = asyncio.ensure_future(self._fill(key, call))
        task.add_done_callback(_retrieve_exception)
        self._inflight[key] = task
        # shield: if this caller is cancelled, the search goes on for the others sharing it.
        return await asyncio.shield(task)

    async def _fill(self, key: _Key, call: Callable[[], Awaitable[_Response]]) -> _Response:
        try:
            response = await call()
        finally:
            del self._inflight[key]
        self._store(key, response)
        return response

    def _lookup(self, key: _Key) -> _Response | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at, response = entry
        if self._clock() >= expires_at:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return response

    def _store(self, key: _Key, response: _Response) -> None:
        self._entries[key] = (self._clock() + self.ttl, response)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


def _retrieve_exception(task: asyncio.Task[_Response]) -> None:
    # When every caller sharing a search was cancelled nobody awaits its exception; mark it seen
    # so asyncio does not log "Task exception was never retrieved".
    if not task.cancelled():
        task.exception()
