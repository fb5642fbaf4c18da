"""Search steps shared by the search nodes and the tool node: run a search with its step events,
give results their stable ``[n]`` numbers, and write a search as a tool result.

Every search path (``web_search="force"``/``"images"`` and the search tools) goes through
:func:`search_text` / :func:`search_images`, so a failure is reported the same way wherever it
happens: a ``search.failed`` step and an entry in ``web_search.errors``, and the run goes on
without the results. That holds for any exception a backend raises, not only our own
:class:`tools.SearchError` (an unexpected one is reported with its type, e.g. ``"OSError: ..."``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from langgraph.config import get_stream_writer

from graphs import _prompts as prompts
from graphs._events import ImagesFound, SearchCompleted, SearchFailed, SearchFallbackTaken, SearchStarted
from tools import (
    ImageResult,
    ImageSearchResponse,
    SearchBackend,
    SearchError,
    SearchResult,
    TextSearchResponse,
    ToolsUsageError,
)

__all__ = [
    "Searched",
    "emit_completed",
    "emit_images",
    "image_result_text",
    "number",
    "search_images",
    "search_text",
    "tool_result_text",
]

_R = TypeVar("_R", SearchResult, ImageResult)
_Response = TypeVar("_Response", TextSearchResponse, ImageSearchResponse)


@dataclass(frozen=True, slots=True)
class Searched(Generic[_R]):
    """What one search came to: its results, the backend that answered, whether a cache served it,
    and the error (None on success)."""

    results: list[_R] = field(default_factory=list)
    backend: str = "none"
    cached: bool = False
    error: str | None = None


async def search_text(backend: SearchBackend | None, query: str, max_results: int) -> Searched[SearchResult]:
    """A text search with every step emitted (started, fallbacks, failed)."""
    response = await _search("text", backend, query, lambda b: b.search(query, max_results=max_results))
    if isinstance(response, str):
        return Searched(error=response)
    return Searched(list(response.results), response.backend, response.cached)


async def search_images(backend: SearchBackend | None, query: str, max_results: int) -> Searched[ImageResult]:
    """An image search with every step emitted (started, fallbacks, failed); see :func:`emit_images`."""
    response = await _search("images", backend, query, lambda b: b.search_images(query, max_results=max_results))
    if isinstance(response, str):
        return Searched(error=response)
    return Searched(list(response.results), response.backend, response.cached)


async def _search(
    kind: Literal["text", "images"], backend: SearchBackend | None, query: str,
    call: Callable[[SearchBackend], Awaitable[_Response]],
) -> _Response | str:
    """The backend's response, or the error message after a ``search.failed`` step."""
    writer = get_stream_writer()
    writer(SearchStarted(query=query, kind=kind))
    try:
        if not query:
            raise SearchError("nothing to search for: the conversation has no user text", backend="none",
                              query=query)
        if backend is None:
            raise SearchError("no search backend is configured", backend="none", query=query)
        response = await call(backend)
    except (SearchError, ToolsUsageError) as exc:
        error = str(exc)
    except Exception as exc:  # a backend's own bug or I/O failure is a failed search, never the end of the run
        error = f"{type(exc).__name__}: {exc}"
    else:
        for fallback in response.fallbacks:
            writer(SearchFallbackTaken(backend=fallback.backend, reason=fallback.reason))
        return response
    writer(SearchFailed(query=query, error=error))
    return error


def number(known: list[SearchResult], results: list[SearchResult]) -> tuple[list[SearchResult], list[int]]:
    """New sources to append (a URL seen before keeps its number) and the ``[n]`` id of each result."""
    index = {r.url: i for i, r in enumerate(known, 1)}
    new: list[SearchResult] = []
    ids: list[int] = []
    for result in results:
        if result.url not in index:
            new.append(result)
            index[result.url] = len(known) + len(new)
        ids.append(index[result.url])
    return new, ids


def emit_completed(query: str, searched: Searched[SearchResult], ids: list[int], sources: list[SearchResult]) -> None:
    """The ``search.completed`` step, listing each result under its ``[n]`` id in ``sources`` (every
    source numbered so far); nothing after a failure (``search.failed`` was emitted instead)."""
    if searched.error is not None:
        return
    listed = tuple(
        {"id": n, "title": sources[n - 1].title, "url": sources[n - 1].url, "source": sources[n - 1].source}
        for n in ids
    )
    get_stream_writer()(SearchCompleted(query=query, backend=searched.backend, results=listed,
                                        cached=searched.cached))


def emit_images(query: str, searched: Searched[ImageResult]) -> None:
    """The ``images.completed`` step; nothing after a failure."""
    if searched.error is not None:
        return
    listed = tuple(_image_dict(i) for i in searched.results)
    get_stream_writer()(ImagesFound(query=query, backend=searched.backend, images=listed))


def tool_result_text(results: list[SearchResult], ids: list[int], error: str | None, abstains: bool = True) -> str:
    """A text search as the result of a search tool call: numbered, delimited data, then the grounded
    instruction (:func:`graphs._prompts.search_instructions`)."""
    if error is not None:
        return f"Search failed: {error}"
    instructions = prompts.search_instructions(abstains, found=bool(results))
    return f"{prompts.format_results(results, ids)}\n\n{prompts.DATA_NOTE} {instructions}"


def image_result_text(images: list[ImageResult], error: str | None) -> str:
    """An image search as the result of an ``image_search`` call (the images reach the user separately)."""
    if error is not None:
        return f"Image search failed: {error}"
    items = [prompts.escape_data(f"- {i.title}\nImage: {i.image_url}\nSource: {i.source_url}") for i in images]
    block = "\n\n".join(items) or "(no results)"
    return (f"<image_results>\n{block}\n</image_results>\n\n{prompts.DATA_NOTE} "
            "These images are shown to the user with your answer.")


def _image_dict(image: ImageResult) -> dict[str, Any]:
    return {"title": image.title, "image_url": image.image_url, "source_url": image.source_url}
