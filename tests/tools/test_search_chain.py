"""SearchChain: first backend that answers wins; the skipped ones are reported."""

from __future__ import annotations

from pathlib import Path

import primp
import pytest

from tests.tools.ddgs_fake import FakeWeb
from tools._chain import SearchChain
from tools._corpus import Document
from tools._ddg import CircuitBreaker, DuckDuckGoSearch
from tools._exceptions import (
    SearchError,
    SearchRateLimitedError,
    SearchUnavailableError,
    ToolsUsageError,
    UnsupportedSearchError,
)
from tools._local_index import LocalIndex
from tools._search import (
    ImageResult,
    ImageSearchResponse,
    SearchBackend,
    SearchFallback,
    SearchResult,
    TextSearchResponse,
)


class Scripted(SearchBackend):
    """A backend that answers with one result or raises the given error; counts its calls."""

    def __init__(self, name: str, error: Exception | None = None, *, images: bool = True) -> None:
        self.name = name
        self.error = error
        self.images = images
        self.calls = 0
        self.closed = False

    async def search(self, query: str, *, max_results: int = 5) -> TextSearchResponse:
        self.calls += 1
        if self.error is not None:
            raise self.error
        result = SearchResult(f"{self.name} on {query}", f"https://{self.name}.example/", "…", self.name)
        return TextSearchResponse((result,), self.name, (SearchFallback("inner", "own fallback"),))

    async def search_images(self, query: str, *, max_results: int = 5) -> ImageSearchResponse:
        if not self.images:
            return await super().search_images(query, max_results=max_results)
        self.calls += 1
        if self.error is not None:
            raise self.error
        image = ImageResult("https://i.example/a.png", "https://i.example/t.png", "https://i.example/", "a")
        return ImageSearchResponse((image,), self.name)

    async def aclose(self) -> None:
        self.closed = True


def unavailable(name: str) -> SearchUnavailableError:
    return SearchUnavailableError(f"{name} is unreachable", backend=name, query="q")


def rate_limited(name: str) -> SearchRateLimitedError:
    return SearchRateLimitedError(f"{name} says slow down", backend=name, query="q", retry_after=7.5)


async def test_first_backend_that_answers_wins() -> None:
    first, second = Scripted("web"), Scripted("local")
    chain = SearchChain([first, second])

    response = await chain.search("q")

    assert response.backend == "web" and response.results[0].source == "web"
    assert response.fallbacks == (SearchFallback("inner", "own fallback"),)
    assert (first.calls, second.calls) == (1, 0)
    assert chain.name == "auto"


async def test_unreachable_and_rate_limited_backends_are_skipped_and_recorded() -> None:
    chain = SearchChain([Scripted("web", unavailable("web")), Scripted("news", rate_limited("news")),
                         Scripted("local")])

    response = await chain.search("q")

    assert response.backend == "local"
    assert response.fallbacks == (
        SearchFallback("web", "web is unreachable"),
        SearchFallback("news", "news says slow down"),
        SearchFallback("inner", "own fallback"),
    )


async def test_when_all_fail_the_last_error_type_is_raised_with_every_reason() -> None:
    chain = SearchChain([Scripted("web", rate_limited("web")), Scripted("local", unavailable("local"))])

    with pytest.raises(SearchUnavailableError) as caught:
        await chain.search("q")

    assert not isinstance(caught.value, SearchRateLimitedError)
    assert caught.value.backend == "auto" and caught.value.query == "q"
    assert "web: web says slow down" in str(caught.value)
    assert "local: local is unreachable" in str(caught.value)
    assert isinstance(caught.value.__cause__, SearchUnavailableError)


async def test_all_failing_with_a_rate_limit_last_keeps_its_retry_after() -> None:
    chain = SearchChain([Scripted("local", unavailable("local")), Scripted("web", rate_limited("web"))])

    with pytest.raises(SearchRateLimitedError) as caught:
        await chain.search("q")

    assert caught.value.retry_after == 7.5


async def test_other_errors_are_not_fallen_through() -> None:
    later = Scripted("local")
    usage = SearchChain([Scripted("web", ToolsUsageError("bad")), later])
    broken = SearchChain([Scripted("web", SearchError("parser broke", backend="web", query="q")), later])

    with pytest.raises(ToolsUsageError):
        await usage.search("q")
    with pytest.raises(SearchError, match="parser broke"):
        await broken.search("q")
    assert later.calls == 0


async def test_image_search_skips_text_only_backends() -> None:
    chain = SearchChain([Scripted("local", images=False), Scripted("web")])

    response = await chain.search_images("q")

    assert response.backend == "web"
    assert response.fallbacks == (
        SearchFallback("local", "search backend 'local' does not support image search"),
    )


async def test_image_search_with_no_capable_backend_is_unsupported() -> None:
    chain = SearchChain([Scripted("a", images=False), Scripted("b", images=False)])

    with pytest.raises(UnsupportedSearchError) as caught:
        await chain.search_images("q")

    assert caught.value.backend == "auto"


async def test_image_search_failure_mixed_with_unsupported_raises_the_failure() -> None:
    chain = SearchChain([Scripted("web", unavailable("web")), Scripted("local", images=False)])

    with pytest.raises(SearchUnavailableError, match="does not support image search"):
        await chain.search_images("q")


async def test_offline_web_falls_back_to_the_local_index(fake_web: FakeWeb, tmp_path: Path) -> None:
    fake_web.default = primp.DNSError("error sending request > error resolving DNS > DNS error: no records")
    local = await LocalIndex.build(
        tmp_path / "i.sqlite3",
        [Document("Monolith", "A black slab found on the Moon in 2001: A Space Odyssey.", "file:///m.txt")],
    )
    chain = SearchChain([DuckDuckGoSearch(circuit_breaker=CircuitBreaker()), local])

    response = await chain.search("What is the monolith?")

    assert response.backend == "local"
    assert [r.title for r in response.results] == ["Monolith"]
    assert [f.backend for f in response.fallbacks] == ["duckduckgo"]
    assert "DNS error" in response.fallbacks[0].reason


async def test_close_closes_every_backend() -> None:
    backends = [Scripted("a"), Scripted("b")]

    await SearchChain(backends).aclose()

    assert all(b.closed for b in backends)


def test_empty_chain_is_a_usage_error() -> None:
    with pytest.raises(ToolsUsageError):
        SearchChain([])
