"""Search steps shared by the search nodes and the tool node: run a search with its step events,
give results their stable ``[n]`` numbers, and write a search as a tool result.
"""

from __future__ import annotations

from langgraph.config import get_stream_writer

from graphs import _prompts as prompts
from graphs._events import SearchCompleted, SearchFailed, SearchFallbackTaken, SearchStarted
from tools import ImageResult, SearchBackend, SearchError, SearchResult, ToolsUsageError

__all__ = ["emit_completed", "image_result_text", "number", "search_images", "search_text", "tool_result_text"]


async def search_text(
    backend: SearchBackend | None, query: str, max_results: int
) -> tuple[list[SearchResult], str, str | None]:
    """Results, the backend that answered, and the error (None on success); every step is emitted."""
    writer = get_stream_writer()
    writer(SearchStarted(query=query, kind="text"))
    try:
        if not query:
            raise SearchError("nothing to search for: the conversation has no user text", backend="none",
                              query=query)
        if backend is None:
            raise SearchError("no search backend is configured", backend="none", query=query)
        response = await backend.search(query, max_results=max_results)
    except (SearchError, ToolsUsageError) as exc:
        writer(SearchFailed(query=query, error=str(exc)))
        return [], "none", str(exc)
    for fallback in response.fallbacks:
        writer(SearchFallbackTaken(backend=fallback.backend, reason=fallback.reason))
    return list(response.results), response.backend, None


async def search_images(
    backend: SearchBackend | None, query: str, max_results: int
) -> tuple[list[ImageResult], str, str | None]:
    """Image results, the backend that answered, and the error (None on success); steps are emitted."""
    writer = get_stream_writer()
    writer(SearchStarted(query=query, kind="images"))
    try:
        if backend is None:
            raise SearchError("no search backend is configured", backend="none", query=query)
        response = await backend.search_images(query, max_results=max_results)
    except (SearchError, ToolsUsageError) as exc:
        writer(SearchFailed(query=query, error=str(exc)))
        return [], "none", str(exc)
    for fallback in response.fallbacks:
        writer(SearchFallbackTaken(backend=fallback.backend, reason=fallback.reason))
    return list(response.results), response.backend, None


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


def emit_completed(
    query: str, backend: str, new: list[SearchResult], ids: list[int], known: list[SearchResult],
    error: str | None,
) -> None:
    """The ``search.completed`` step, listing each result under its ``[n]`` id (nothing after a failure)."""
    if error is not None:
        return
    everything = [*known, *new]
    listed = tuple(
        {"id": n, "title": everything[n - 1].title, "url": everything[n - 1].url,
         "source": everything[n - 1].source}
        for n in ids
    )
    get_stream_writer()(SearchCompleted(query=query, backend=backend, results=listed))


def tool_result_text(results: list[SearchResult], ids: list[int], error: str | None) -> str:
    """A text search as the result of a search tool call: numbered, delimited data."""
    if error is not None:
        return f"Search failed: {error}"
    items = [f"[{n}] {r.title}\nURL: {r.url}\n{r.snippet}" for n, r in zip(ids, results, strict=True)]
    block = "\n\n".join(items) or "(no results)"
    return f"<search_results>\n{block}\n</search_results>\n\n{prompts.DATA_NOTE} {prompts.SEARCH_INSTRUCTIONS}"


def image_result_text(images: list[ImageResult], error: str | None) -> str:
    """An image search as the result of an ``image_search`` call (the images reach the user separately)."""
    if error is not None:
        return f"Image search failed: {error}"
    items = [f"- {i.title}\nImage: {i.image_url}\nSource: {i.source_url}" for i in images]
    block = "\n\n".join(items) or "(no results)"
    return (f"<image_results>\n{block}\n</image_results>\n\n{prompts.DATA_NOTE} "
            "These images are shown to the user with your answer.")
