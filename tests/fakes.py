"""Fakes behind the project's own interfaces, shared by the tests."""

from __future__ import annotations

from tools import (
    ImageResult,
    ImageSearchResponse,
    SearchBackend,
    SearchResult,
    SearchUnavailableError,
    TextSearchResponse,
)


class FakeSearch(SearchBackend):
    """Answers every query from fixed results and records the queries it was asked."""

    name = "fake"

    def __init__(self, results: list[SearchResult] | None = None, images: list[ImageResult] | None = None,
                 fail: bool = False) -> None:
        self.results = results if results is not None else [
            SearchResult("2001: A Space Odyssey", "https://en.wikipedia.org/wiki/2001:_A_Space_Odyssey",
                         "2001: A Space Odyssey is a 1968 film produced and directed by Stanley Kubrick.",
                         "fake"),
            SearchResult("Stanley Kubrick", "https://en.wikipedia.org/wiki/Stanley_Kubrick",
                         "Stanley Kubrick was an American filmmaker.", "fake"),
        ]
        self.images = images if images is not None else [
            ImageResult("https://img.example/monolith.jpg", "https://img.example/monolith-t.jpg",
                        "https://example.org/monolith", "The monolith [replica]", 800, 600),
        ]
        self.fail = fail
        self.queries: list[str] = []

    async def search(self, query: str, *, max_results: int = 5) -> TextSearchResponse:
        self.queries.append(query)
        if self.fail:
            raise SearchUnavailableError("network unreachable", backend=self.name, query=query)
        return TextSearchResponse(tuple(self.results[:max_results]), backend=self.name)

    async def search_images(self, query: str, *, max_results: int = 5) -> ImageSearchResponse:
        self.queries.append(query)
        if self.fail:
            raise SearchUnavailableError("network unreachable", backend=self.name, query=query)
        return ImageSearchResponse(tuple(self.images[:max_results]), backend=self.name)
