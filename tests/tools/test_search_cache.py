"""CachedSearch: TTL, LRU bound, single-flight, errors never cached."""

from __future__ import annotations

import asyncio

import pytest

from tools._cache import CachedSearch
from tools._exceptions import SearchUnavailableError, ToolsUsageError
from tools._search import (
    ImageResult,
    ImageSearchResponse,
    SearchBackend,
    SearchResult,
    TextSearchResponse,
)


class Counting(SearchBackend):
    """Answers with the query echoed back; counts calls; can be held at a gate or made to fail."""

    name = "counting"

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int]] = []
        self.gate: asyncio.Event | None = None
        self.error: Exception | None = None

    async def search(self, query: str, *, max_results: int = 5) -> TextSearchResponse:
        self.calls.append(("text", query, max_results))
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        result = SearchResult(query, f"https://e.example/{len(self.calls)}", "", self.name)
        return TextSearchResponse((result,), self.name)

    async def search_images(self, query: str, *, max_results: int = 5) -> ImageSearchResponse:
        self.calls.append(("images", query, max_results))
        image = ImageResult("https://i.example/a.png", "https://i.example/t.png", "https://i.example/", query)
        return ImageSearchResponse((image,), self.name)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def backend() -> Counting:
    return Counting()


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def test_repeat_query_is_served_from_the_cache(backend: Counting, clock: Clock) -> None:
    cache = CachedSearch(backend, ttl=60, clock=clock)

    first = await cache.search("Space  Odyssey")
    second = await cache.search("  space odyssey ")

    assert len(backend.calls) == 1
    assert not first.cached and second.cached
    assert second.results == first.results and second.backend == "counting"
    assert cache.name == "counting"


async def test_entries_expire_after_the_ttl(backend: Counting, clock: Clock) -> None:
    cache = CachedSearch(backend, ttl=60, clock=clock)
    await cache.search("q")

    clock.now = 59.9
    assert (await cache.search("q")).cached
    clock.now = 60.0
    assert not (await cache.search("q")).cached
    assert len(backend.calls) == 2


async def test_key_includes_kind_and_max_results(backend: Counting, clock: Clock) -> None:
    cache = CachedSearch(backend, clock=clock)

    await cache.search("q", max_results=3)
    await cache.search("q", max_results=5)
    await cache.search_images("q", max_results=3)
    await cache.search_images("q", max_results=3)

    assert backend.calls == [("text", "q", 3), ("text", "q", 5), ("images", "q", 3)]


async def test_least_recently_used_entry_is_evicted(backend: Counting, clock: Clock) -> None:
    cache = CachedSearch(backend, max_entries=2, clock=clock)
    await cache.search("a")
    await cache.search("b")
    await cache.search("a")  # touch: b is now the oldest
    await cache.search("c")

    assert (await cache.search("a")).cached
    assert not (await cache.search("b")).cached
    assert [q for _, q, _ in backend.calls] == ["a", "b", "c", "b"]


async def test_concurrent_identical_queries_make_one_call(backend: Counting) -> None:
    backend.gate = asyncio.Event()
    cache = CachedSearch(backend)

    tasks = [asyncio.ensure_future(cache.search("same question")) for _ in range(10)]
    await asyncio.sleep(0)
    backend.gate.set()
    responses = await asyncio.gather(*tasks)

    assert len(backend.calls) == 1
    assert {r.results for r in responses} == {responses[0].results}
    assert sorted(r.cached for r in responses) == [False] + [True] * 9


async def test_concurrent_callers_share_one_error_and_errors_are_not_cached(backend: Counting) -> None:
    backend.gate = asyncio.Event()
    backend.error = SearchUnavailableError("down", backend="counting", query="q")
    cache = CachedSearch(backend)

    tasks = [asyncio.ensure_future(cache.search("q")) for _ in range(5)]
    await asyncio.sleep(0)
    backend.gate.set()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)

    assert all(o is backend.error for o in outcomes)
    assert len(backend.calls) == 1
    backend.error = None
    assert not (await cache.search("q")).cached
    assert len(backend.calls) == 2


async def test_a_cancelled_caller_does_not_cancel_the_shared_search(backend: Counting) -> None:
    backend.gate = asyncio.Event()
    cache = CachedSearch(backend)
    first = asyncio.ensure_future(cache.search("q"))
    second = asyncio.ensure_future(cache.search("q"))
    await asyncio.sleep(0)

    first.cancel()
    backend.gate.set()

    assert (await second).results[0].title == "q"
    assert first.cancelled()
    assert (await cache.search("q")).cached  # the shared search completed and was stored
    assert len(backend.calls) == 1


async def test_bad_max_results_is_rejected_before_the_backend(backend: Counting) -> None:
    with pytest.raises(ToolsUsageError):
        await CachedSearch(backend).search("q", max_results=0)
    assert backend.calls == []
