"""The title and main text of an HTML page: trafilatura when installed, else a small stdlib extractor.

trafilatura (the ``research`` extra) finds the article in a page and drops navigation, ads and
boilerplate. Without it, :class:`_TextParser` keeps the text of ``<main>``/``<article>`` when the page
has them (else of the whole ``<body>``), skipping scripts, styles, navigation, headers, footers,
asides and forms. Both are synchronous and CPU-bound: the fetcher runs them in a worker thread on
HTML already cut to :data:`tools._fetch.MAX_EXTRACT_CHARS`.
"""

from __future__ import annotations

import importlib
import re
from functools import cache
from html.parser import HTMLParser
from types import ModuleType

__all__ = ["extract_html", "extract_with_stdlib"]

# Elements whose text is never main text.
_SKIPPED = frozenset({
    "script", "style", "noscript", "template", "svg", "canvas", "iframe", "object",
    "head", "nav", "header", "footer", "aside", "form", "button", "select", "textarea",
})
# Elements that hold the main content when a page marks it up.
_MAIN = frozenset({"main", "article"})
# Elements that end a line of text.
_BLOCKS = frozenset({
    "p", "div", "br", "li", "ul", "ol", "dl", "dt", "dd", "tr", "table", "section", "blockquote",
    "pre", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "figcaption", "main", "article", "body",
})
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")


def extract_html(html: str) -> tuple[str, str]:
    """``(title, main text)`` of ``html``; ``""`` for a part the page does not have."""
    trafilatura = _trafilatura()
    if trafilatura is not None:
        document = trafilatura.bare_extraction(html, with_metadata=True, include_comments=False)
        text = (getattr(document, "text", None) or "").strip()
        if text:
            title = str(getattr(document, "title", None) or "").strip()
            return title or _stdlib_title(html), text
    # trafilatura finds nothing in very short or unusual pages; the plain extractor still reads them.
    return extract_with_stdlib(html)


def extract_with_stdlib(html: str) -> tuple[str, str]:
    """``(title, main text)`` of ``html`` with :mod:`html.parser` only."""
    parser = _TextParser()
    parser.feed(html)
    parser.close()
    return parser.title(), parser.text()


def _stdlib_title(html: str) -> str:
    return extract_with_stdlib(html)[0]


@cache
def _trafilatura() -> ModuleType | None:
    try:
        return importlib.import_module("trafilatura")
    except ImportError:  # not installed, or a broken install (lxml without lxml_html_clean)
        return None


class _TextParser(HTMLParser):
    """Collects ``<title>``, all visible body text, and the text inside ``<main>``/``<article>``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._skip_depth = 0
        self._main_depth = 0
        self._in_title = False
        self._title: list[str] = []
        self._all: list[str] = []
        self._main: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in _SKIPPED:
            self._skip_depth += 1
        elif tag in _MAIN:
            self._main_depth += 1
        self._break(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in _SKIPPED:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag in _MAIN:
            self._main_depth = max(0, self._main_depth - 1)
        self._break(tag)

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self._title.append(data)
        elif self._skip_depth == 0:
            self._all.append(data)
            if self._main_depth:
                self._main.append(data)

    def _break(self, tag: str) -> None:
        if tag in _BLOCKS:
            self._all.append("\n")
            if self._main_depth:
                self._main.append("\n")

    def title(self) -> str:
        return _SPACES.sub(" ", "".join(self._title)).strip()

    def text(self) -> str:
        main = _lines(self._main)
        return main or _lines(self._all)


def _lines(parts: list[str]) -> str:
    lines = (_SPACES.sub(" ", line).strip() for line in "".join(parts).split("\n"))
    return "\n".join(line for line in lines if line)
