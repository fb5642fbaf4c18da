"""A search backend that tries several backends in order (e.g. live web, then the local index)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import TypeVar

from tools._exceptions import (
    SearchError,
    SearchRateLimitedError,
    SearchUnavailableError,
    ToolsUsageError,
    UnsupportedSearchError,
)
from tools._search import ImageSearchResponse, SearchBackend, SearchFallback, TextSearchResponse

__all__ = ["SearchChain"]

_Response = TypeVar("_Response", TextSearchResponse, ImageSearchResponse)

# Failures that mean "this backend cannot answer right now, another one might". Anything else (a
# caller mistake, an unexpected SearchError) propagates unchanged.
_FALL_THROUGH = (SearchUnavailableError, SearchRateLimitedError)


class SearchChain(SearchBackend):
    """Tries ``backends`` in order; the first that answers wins, with the ones skipped on the way
    recorded as :class:`SearchFallback` entries of the response.

    A backend is skipped when it is unreachable or rate limited (and, for images, when it cannot
    search images at all). When every backend fails, the last backend's error type is raised with
    ``backend="auto"`` and a message listing every backend's reason.
    """

    name = "auto"

    def __init__(self, backends: Sequence[SearchBackend], *, name: str = "auto") -> None:
        if not backends:
            raise ToolsUsageError("SearchChain needs at least one backend")
        self.backends = tuple(backends)
        self.name = name

    async def search(self, query: str, *, max_results: int = 5) -> TextSearchResponse:
        """Text search on the first backend that can answer."""
        return await self._first(query, lambda b: b.search(query, max_results=max_results), "text")

    async def search_images(self, query: str, *, max_results: int = 5) -> ImageSearchResponse:
        """Image search on the first backend that can answer; text-only backends are skipped."""
        return await self._first(query, lambda b: b.search_images(query, max_results=max_results), "image")

    async def aclose(self) -> None:
        """Close every backend of the chain."""
        for backend in self.backends:
            await backend.aclose()

    async def _first(
        self, query: str, call: Callable[[SearchBackend], Awaitable[_Response]], kind: str
    ) -> _Response:
        fallbacks: list[SearchFallback] = []
        last_error: SearchError | None = None
        for backend in self.backends:
            try:
                response: _Response = await call(backend)
            except UnsupportedSearchError as exc:
                fallbacks.append(SearchFallback(backend.name, str(exc)))
            except _FALL_THROUGH as exc:
                fallbacks.append(SearchFallback(backend.name, str(exc)))
                last_error = exc
            else:
                return replace(response, fallbacks=(*fallbacks, *response.fallbacks))
        raise self._all_failed(query, kind, fallbacks, last_error) from last_error

    def _all_failed(
        self, query: str, kind: str, fallbacks: list[SearchFallback], last: SearchError | None
    ) -> Exception:
        if last is None:  # nobody even supports this kind of search
            return UnsupportedSearchError(self.name, kind)
        reasons = "; ".join(f"{f.backend}: {f.reason}" for f in fallbacks)
        message = f"every {kind} search backend failed ({reasons})"
        if isinstance(last, SearchRateLimitedError):
            retry_after = last.retry_after
            return SearchRateLimitedError(message, backend=self.name, query=query, retry_after=retry_after)
        return SearchUnavailableError(message, backend=self.name, query=query)
