"""The search interface the graphs call, and the result types every backend returns."""

from __future__ import annotations

import abc
from dataclasses import dataclass

from tools._exceptions import UnsupportedSearchError

__all__ = [
    "ImageResult",
    "ImageSearchResponse",
    "SearchBackend",
    "SearchFallback",
    "SearchResult",
    "TextSearchResponse",
]


@dataclass(frozen=True, slots=True)
class SearchResult:
    """One text hit. ``source`` names the backend that found it (e.g. ``"duckduckgo"``)."""

    title: str
    url: str
    snippet: str
    source: str


@dataclass(frozen=True, slots=True)
class ImageResult:
    """One image hit."""

    image_url: str
    thumbnail_url: str
    source_url: str
    title: str
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True, slots=True)
class SearchFallback:
    """A backend that was skipped on the way to the answer, and why."""

    backend: str
    reason: str


@dataclass(frozen=True, slots=True)
class TextSearchResponse:
    """Results of a text search, the backend that produced them, and any fallbacks taken.

    ``missing`` lists the names in the query (capitalised words, numbers) that the backend's documents
    never mention: a local index that requires names (``LocalIndex.require_names``, on for the offline
    corpus) returns no results then, rather than matches on the query's other words ("the capital of
    Zembravia" is not answered by articles on other capitals). Other backends leave it empty.
    """

    results: tuple[SearchResult, ...]
    backend: str
    fallbacks: tuple[SearchFallback, ...] = ()
    cached: bool = False
    missing: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ImageSearchResponse:
    """Results of an image search, the backend that produced them, and any fallbacks taken."""

    results: tuple[ImageResult, ...]
    backend: str
    fallbacks: tuple[SearchFallback, ...] = ()
    cached: bool = False


class SearchBackend(abc.ABC):
    """Something that answers text (and maybe image) queries."""

    #: Short name shown in steps, results and errors.
    name: str = "search"

    @abc.abstractmethod
    async def search(self, query: str, *, max_results: int = 5) -> TextSearchResponse:
        """Text search. An empty result is not an error; an unreachable backend is."""

    async def search_images(self, query: str, *, max_results: int = 5) -> ImageSearchResponse:
        """Image search; backends without one raise :class:`UnsupportedSearchError`."""
        raise UnsupportedSearchError(self.name, "image")

    async def aclose(self) -> None:
        """Release held resources. Idempotent."""
        return
