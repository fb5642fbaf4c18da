"""Hostile inputs to the tools layer (issue 10's kin): each gets a clean answer or a clear error,
never a traceback, a hang or unbounded memory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools import Document, LocalIndex, PartialJson, SchemaError, compile_schema, terminal_safe
from tools._json_text import MAX_OUTPUT_DEPTH, json_candidates
from tools._local_index import MAX_QUERY_TERMS, SNIPPET_MAX_CHARS, fts_query


@pytest.mark.parametrize(
    "query",
    ["c++ (a|b)* [x] {2,} \\d+ ^$ .*?", '" OR "" NEAR(a b) -x AND *', "\x00\x1b[2J\u202e", "ß" * 10_000],
)
async def test_queries_full_of_syntax_search_as_words(tmp_path: Path, query: str) -> None:
    document = Document("Regex cheat sheet", "c++ and (a|b)* and [x] explained", "u:1")
    index = await LocalIndex.build(tmp_path / "i.sqlite3", [document])
    response = await index.search(query)
    assert all(len(r.snippet) <= SNIPPET_MAX_CHARS + 1 for r in response.results)


def test_a_pasted_book_is_cut_to_a_bounded_query() -> None:
    match = fts_query(" ".join(f"word{i}" for i in range(200_000)))
    assert match is not None and match.count(" OR ") == MAX_QUERY_TERMS - 1


async def test_escaped_file_names_survive_indexing_and_print_clean(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    name = "\x1b]0;pwned\x07report\x1b[31m.txt"
    (folder / name).write_text("quarterly figures", encoding="utf-8")
    index = LocalIndex.from_folder(folder, db_path=tmp_path / "i.sqlite3")

    title = (await index.search("quarterly")).results[0].title

    assert title == name  # data is not altered by the index
    assert terminal_safe(title) == "report.txt"  # what the CLI prints


@pytest.mark.parametrize("text", ["[" * 200_000, "{" * 200_000 + "}" * 200_000, '{"a":' * 100_000])
def test_deep_or_unbalanced_output_is_an_error_not_a_crash(text: str) -> None:
    values, problem = json_candidates(text)
    assert values == [] and problem
    partial = PartialJson().feed(text)  # a stream of the same: no RecursionError either
    assert partial is None or isinstance(partial, dict | list)


def test_a_megabyte_of_braces_in_prose_is_checked_in_bounded_work() -> None:
    check = compile_schema({"type": "object", "required": ["a"]}).check_text("{} " * 300_000)
    assert not check.valid and check.errors


def test_output_nested_at_the_limit_validates_against_a_recursive_schema() -> None:
    schema = {"$defs": {"n": {"type": "array", "items": {"$ref": "#/$defs/n"}}}, "$ref": "#/$defs/n"}
    value: list[object] = []
    for _ in range(MAX_OUTPUT_DEPTH - 1):
        value = [value]
    assert compile_schema(schema).check_text(json.dumps(value)).valid


@pytest.mark.parametrize(
    "schema",
    [
        {"$ref": "#/$defs/" + "x" * 10_000},
        {"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"},
        {"allOf": [{"$ref": "#"}]},
        {"$dynamicRef": "#nowhere"},
        {"properties": {"\x00\x1b": {"pattern": "(unclosed"}}},
        {"type": "string", "format": "regex", "pattern": "[" * 3000},
    ],
)
def test_malformed_or_looping_schemas_are_schema_errors(schema: dict[str, object]) -> None:
    with pytest.raises(SchemaError) as info:
        compile_schema(schema)
    assert info.value.errors and all("path" in e for e in info.value.errors)
