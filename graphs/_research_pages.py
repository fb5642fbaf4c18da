"""Where the research graph reads a source's full text: the web (through the SSRF-safe
:class:`tools.PageFetcher`) or, offline, the local index's own documents.

The graph hands a reader only URLs that came from search results (or from the user); a reader never
decides what to read.
"""

from __future__ import annotations

import abc

from tools import FetchBlockedError, FetchError, LocalIndex, Page, PageFetcher, ToolsUsageError

__all__ = ["FallbackPages", "IndexPages", "PageReader", "WebPages"]


class PageReader(abc.ABC):
    """Reads one source's page. Raises :class:`tools.FetchError` or :class:`tools.FetchBlockedError`
    when it cannot; the graph reports the failure and goes on without the page."""

    #: Short name shown in steps.
    name: str = "pages"

    @abc.abstractmethod
    async def read(self, url: str) -> Page:
        """The page at ``url``: its title and main text."""


class WebPages(PageReader):
    """Pages fetched from the web by a :class:`tools.PageFetcher` (default: one with its default limits)."""

    name = "web"

    def __init__(self, fetcher: PageFetcher | None = None) -> None:
        self.fetcher = fetcher if fetcher is not None else PageFetcher()

    async def read(self, url: str) -> Page:
        """Fetch ``url`` (every address checked, every redirect re-checked) and extract its main text."""
        return await self.fetcher.fetch(url)


class IndexPages(PageReader):
    """Offline pages: the documents of a :class:`tools.LocalIndex`, found by the URL its results carry."""

    name = "local-index"

    def __init__(self, index: LocalIndex) -> None:
        self.index = index

    async def read(self, url: str) -> Page:
        """The indexed document at ``url``; :class:`tools.FetchError` when the index has none."""
        document = await self.index.document(url)
        if document is None:
            raise FetchError(url, f"the local index {self.index.name!r} has no document with this URL")
        return Page(url=document.url, status=200, content_type="text/plain", title=document.title,
                    text=document.body, size=len(document.body.encode()))


class FallbackPages(PageReader):
    """Tries each reader in turn and returns the first page read; raises the last one's error.

    Put the local index first when searching the web with the offline index as fallback: its URL
    lookup takes a millisecond, and it reads the results the index returned when the web is down.
    """

    name = "fallback"

    def __init__(self, readers: list[PageReader]) -> None:
        if not readers:
            raise ToolsUsageError("FallbackPages needs at least one reader")
        self.readers = list(readers)

    async def read(self, url: str) -> Page:
        """The page from the first reader that has it."""
        error: Exception | None = None
        for reader in self.readers:
            try:
                return await reader.read(url)
            except (FetchError, FetchBlockedError) as exc:
                error = exc
        assert error is not None
        raise error
