"""Tool calls written as text (Qwen's ``<tool_call>`` blocks, bare or fenced JSON), parsed without a model."""

from __future__ import annotations

import json

import pytest

from agent.models._tool_call_parse import ParsedReply, parse_tool_calls, streamable_length

NAMES = {"web_search", "add"}
SEARCH = ("web_search", json.dumps({"query": "president of Brazil"}))
CALL = '{"name": "web_search", "arguments": {"query": "president of Brazil"}}'


@pytest.mark.parametrize(
    "text",
    [
        f"<tool_call>\n{CALL}\n</tool_call>",
        f"<tool_call>\n{CALL}",  # the closing tag never came (end of turn, or max_tokens)
        f"<tool_call>\n```json\n{CALL}\n```\n</tool_call>",
        CALL,
        f"  {CALL}\n",
        f"```json\n{CALL}\n```",
        f"```\n{CALL}\n```",
        '{"tool": "web_search", "arguments": {"query": "president of Brazil"}}',  # our grammar's shape
        '{"name": "web_search", "parameters": {"query": "president of Brazil"}}',
        '{"name": "web_search", "arguments": "{\\"query\\": \\"president of Brazil\\"}"}',
        '{"function": {"name": "web_search", "arguments": {"query": "president of Brazil"}}}',
        f"[{CALL}]",
    ],
)
def test_one_call_in_any_of_the_shapes_models_write(text: str) -> None:
    assert parse_tool_calls(text, NAMES) == ParsedReply("", (SEARCH,))


def test_text_before_a_call_is_the_content_and_several_calls_are_kept_in_order() -> None:
    add = '{"name": "add", "arguments": {"a": 1, "b": 2}}'
    text = f"Let me look that up.\n<tool_call>\n{CALL}\n</tool_call>\n<tool_call>\n{add}\n</tool_call>"
    parsed = parse_tool_calls(text, NAMES)
    assert parsed.content == "Let me look that up."
    assert parsed.calls == (SEARCH, ("add", json.dumps({"a": 1, "b": 2})))
    assert parse_tool_calls(f"{CALL}\n{add}", NAMES).calls == parsed.calls


@pytest.mark.parametrize(
    "text",
    [
        "The president of Brazil is Lula.",
        '{"name": "search_the_web", "arguments": {"query": "x"}}',  # an invented tool name
        '{"name": "Bob", "age": 42}',  # a JSON answer, not a call
        f'{CALL}\n{{"name": "Bob", "age": 42}}',  # bare JSON counts only when every object is a call
        '{"name": "web_search", "arguments": ["not", "an", "object"]}',
        '{"name": "web_search", "arguments": "not json"}',
        '{"name": ["web_search"], "arguments": {}}',
        "<tool_call>\n{broken json\n</tool_call>",
        "```python\nprint({'name': 'web_search'})\n```",
    ],
)
def test_anything_else_is_an_ordinary_answer(text: str) -> None:
    assert parse_tool_calls(text, NAMES) == ParsedReply(text, ())


def test_no_offered_tools_means_no_calls() -> None:
    assert parse_tool_calls(CALL, ()) == ParsedReply(CALL, ())


def test_a_valid_tagged_call_survives_an_invalid_neighbour() -> None:
    text = f"<tool_call>\n{{\"name\": \"nope\", \"arguments\": {{}}}}\n</tool_call>\n<tool_call>\n{CALL}\n</tool_call>"
    assert parse_tool_calls(text, NAMES).calls == (SEARCH,)


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("The answer is 4", 15),
        ("", 0),
        ("{", 0),
        ('{"name": "web', 0),
        ("<tool", 0),
        ("Sure.\n<tool_c", 5),
        ("Sure.\n<tool_call>\n{", 5),
        ("Here:\n  {", 5),  # white space is held: it may be the indentation of a call
        ("Code:\n``", 5),
        ("Code:\n```", 5),
        ("Code:\n```json", 5),
        ("Code:\n```json\n", 5),
        ("Code:\n```json\n{", 5),
        ("Code:\n```python\nx = 1", 21),  # a code fence is not a call: stream it
        ("a < b and c > d", 15),
        ("Hello world  ", 11),
    ],
)
def test_streamable_length_holds_back_whatever_may_open_a_call(text: str, length: int) -> None:
    assert streamable_length(text) == length


@pytest.mark.parametrize(
    "text",
    [
        f"Let me check.\n<tool_call>\n{CALL}\n</tool_call>",
        f"Sure:\n```json\n{CALL}\n```",
        f"Hm.\n  {CALL}",
        "Plain answer with a < sign and ``` inline",
        'A JSON answer:\n{"name": "Bob"}',
    ],
)
def test_streamed_text_is_always_a_prefix_of_the_final_content(text: str) -> None:
    content = parse_tool_calls(text, NAMES).content
    for end in range(len(text) + 1):
        assert content.startswith(text[: streamable_length(text[:end])])
