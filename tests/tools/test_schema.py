"""tools.compile_schema / CompiledSchema / PartialJson / bound_for_decoding: the JSON-schema layer of JSON mode."""

from __future__ import annotations

import copy
import http.server
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest

from tools import (
    InvalidSchemaError,
    PartialJson,
    SchemaError,
    UnsupportedSchemaError,
    bound_for_decoding,
    compile_schema,
)
from tools._json_text import MAX_OUTPUT_DEPTH
from tools._schema import MAX_SCHEMA_CHARS, MAX_SCHEMA_DEPTH
from tools._schema_regex import REGEX_BUDGET_SECONDS

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
CATASTROPHIC = "^(a|a)*$"  # exponential backtracking on "aaaa…!" in a backtracking engine
ADVERSARIAL = "a" * 40 + "!"


class _CountingHandler(http.server.BaseHTTPRequestHandler):
    hits = 0

    def do_GET(self) -> None:
        type(self).hits += 1
        body = b'{"type": "string"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/schema+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def schema_server() -> Iterator[tuple[str, type[_CountingHandler]]]:
    """A real loopback HTTP server serving a schema and counting every request it gets."""
    handler = type("Handler", (_CountingHandler,), {"hits": 0})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/schema.json", handler
    finally:
        server.shutdown()
        server.server_close()


# --- compiling: cache, metaschema, dialects, bounds ------------------------------------------


def test_compiled_once_per_schema_whatever_the_key_order() -> None:
    reordered = dict(reversed(list(copy.deepcopy(PERSON).items())))
    assert compile_schema(PERSON) is compile_schema(copy.deepcopy(PERSON)) is compile_schema(reordered)
    assert compile_schema(PERSON) is not compile_schema({**PERSON, "required": ["name"]})


def test_the_cache_is_immune_to_the_caller_mutating_their_schema() -> None:
    schema = copy.deepcopy(PERSON)
    schema["properties"]["tag"] = {"type": "string", "maxLength": 2}  # distinct from other tests' keys
    compiled = compile_schema(schema)
    schema["properties"]["age"]["type"] = "string"
    assert compiled.validate({"name": "Ada", "age": 36}) == ()


def test_metaschema_violation_names_the_json_pointer() -> None:
    with pytest.raises(InvalidSchemaError) as info:
        compile_schema({"type": "object", "properties": {"age": {"type": "integr"}}})
    assert "/properties/age/type" in str(info.value)
    assert info.value.errors[0]["path"] == "/properties/age/type"


def test_invalid_pattern_is_a_schema_error() -> None:
    with pytest.raises(InvalidSchemaError) as info:
        compile_schema({"type": "string", "pattern": "(unclosed"})
    assert info.value.errors[0]["path"] == "/pattern"


def test_draft_2020_12_is_the_default_and_schema_keyword_is_honoured() -> None:
    draft4 = {"$schema": "http://json-schema.org/draft-04/schema#", "type": "integer", "minimum": 3,
              "exclusiveMinimum": True}
    compiled = compile_schema(draft4)
    assert "draft-04" in compiled.dialect
    assert compiled.validate(3) and not compiled.validate(4)
    no_dialect = {k: v for k, v in draft4.items() if k != "$schema"}
    with pytest.raises(InvalidSchemaError):  # in 2020-12, exclusiveMinimum must be a number
        compile_schema(no_dialect)
    assert "2020-12" in compile_schema({"type": "integer"}).dialect


def test_unknown_dialect_is_refused_not_guessed() -> None:
    with pytest.raises(UnsupportedSchemaError) as info:
        compile_schema({"$schema": "https://example.org/my-dialect", "type": "string"})
    assert info.value.errors[0]["path"] == "/$schema"


def test_size_and_nesting_are_bounded() -> None:
    with pytest.raises(UnsupportedSchemaError, match="characters"):
        compile_schema({"enum": ["x" * 1000] * (MAX_SCHEMA_CHARS // 1000 + 1)})
    nested: dict[str, Any] = {"type": "string"}
    for _ in range(MAX_SCHEMA_DEPTH):
        nested = {"type": "object", "properties": {"a": nested}}
    with pytest.raises(UnsupportedSchemaError, match="nested deeper"):
        compile_schema(nested)


def test_pathologically_deep_schema_is_refused_without_recursion_error() -> None:
    nested: dict[str, Any] = {}
    for _ in range(50_000):
        nested = {"not": nested}
    with pytest.raises(UnsupportedSchemaError):
        compile_schema(nested)


def test_non_json_schemas_are_rejected() -> None:
    with pytest.raises(SchemaError):
        compile_schema({"enum": [float("nan")]})
    with pytest.raises(SchemaError):
        compile_schema(["not", "a", "schema"])


def test_self_reference_without_progress_is_refused() -> None:
    with pytest.raises(UnsupportedSchemaError, match=r"\$ref loop"):
        compile_schema({"$ref": "#"})


def test_recursive_schema_that_descends_is_fine() -> None:
    tree = {"type": "object", "properties": {"children": {"type": "array", "items": {"$ref": "#"}}}}
    compiled = compile_schema(tree)
    assert compiled.validate({"children": [{"children": []}]}) == ()
    assert compiled.validate({"children": [{"children": 1}]})[0]["path"] == "/children/0/children"


# --- references --------------------------------------------------------------------------------


def test_remote_ref_is_never_fetched(schema_server: tuple[str, type[_CountingHandler]]) -> None:
    url, handler = schema_server
    with pytest.raises(UnsupportedSchemaError) as info:
        compile_schema({"type": "object", "properties": {"a": {"$ref": url}}})
    assert url in str(info.value) and info.value.errors[0]["path"] == "/properties/a/$ref"
    assert handler.hits == 0
    httpx.get(url)  # the server does count: the zero above is real
    assert handler.hits == 1


def test_remote_ref_behind_a_relative_id_is_not_fetched(schema_server: tuple[str, type[_CountingHandler]]) -> None:
    url, handler = schema_server
    base = url.rsplit("/", 1)[0] + "/root.json"
    with pytest.raises(UnsupportedSchemaError):
        compile_schema({"$id": base, "properties": {"a": {"$ref": "schema.json"}}})
    assert handler.hits == 0


def test_local_refs_and_metaschema_refs_resolve_offline() -> None:
    schema = {
        "$defs": {"name": {"type": "string", "minLength": 1}},
        "properties": {"n": {"$ref": "#/$defs/name"},
                       "s": {"$ref": "https://json-schema.org/draft/2020-12/schema"}},
    }
    compiled = compile_schema(schema)
    assert compiled.validate({"n": "x", "s": {"type": "string"}}) == ()
    assert compiled.validate({"n": ""})[0]["path"] == "/n"


def test_local_ref_to_nowhere_is_invalid() -> None:
    with pytest.raises(InvalidSchemaError) as info:
        compile_schema({"properties": {"a": {"$ref": "#/$defs/missing"}}})
    assert info.value.errors[0]["path"] == "/properties/a/$ref"


# --- regular expressions -----------------------------------------------------------------------


def _timed(fn: Any, *args: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    return fn(*args), time.perf_counter() - start


def test_catastrophic_pattern_finishes_fast_and_fails_closed() -> None:
    compiled = compile_schema({"type": "string", "pattern": CATASTROPHIC})
    errors, seconds = _timed(compiled.validate, ADVERSARIAL)
    assert len(errors) == 1 and "could not be checked" in errors[0]["message"]
    assert seconds < 5  # a backtracking engine takes hours here (2**40 paths)
    assert compiled.validate("aaaa") == ()


def test_catastrophic_pattern_properties_and_additional_properties_are_bounded() -> None:
    schema = {"type": "object", "patternProperties": {CATASTROPHIC: {"type": "integer"}},
              "additionalProperties": False}
    compiled = compile_schema(schema)
    errors, seconds = _timed(compiled.validate, {ADVERSARIAL: 1})
    assert errors and seconds < 5
    assert compiled.validate({"aaa": 1}) == ()
    assert compiled.validate({"aaa": "x"})[0]["path"] == "/aaa"


def test_catastrophic_pattern_under_unevaluated_properties_is_bounded() -> None:
    schema = {"type": "object", "allOf": [{"patternProperties": {CATASTROPHIC: {}}}],
              "unevaluatedProperties": False}
    compiled = compile_schema(schema)
    errors, seconds = _timed(compiled.validate, {ADVERSARIAL: 1})
    assert errors and seconds < 5
    assert compiled.validate({"aa": 1}) == ()


def test_one_validation_has_a_total_regex_budget() -> None:
    compiled = compile_schema({"type": "array", "items": {"type": "string", "pattern": CATASTROPHIC}})
    errors, seconds = _timed(compiled.validate, [ADVERSARIAL + str(i) for i in range(30)])
    assert errors  # every string fails closed
    assert seconds < REGEX_BUDGET_SECONDS + 1.0  # not 30 x the per-match timeout


@pytest.mark.parametrize(
    ("schema", "instance"),
    [
        ({"pattern": "^[a-z]+$"}, "abc"),
        ({"pattern": "^[a-z]+$"}, "ab1"),
        ({"patternProperties": {"^x-": {"type": "integer"}}, "additionalProperties": False}, {"x-a": 1}),
        ({"patternProperties": {"^x-": {"type": "integer"}}, "additionalProperties": False}, {"x-a": "s"}),
        ({"patternProperties": {"^x-": {"type": "integer"}}, "additionalProperties": False}, {"y": 1}),
        ({"properties": {"a": {}}, "additionalProperties": {"type": "string"}}, {"a": 1, "b": 2}),
        ({"allOf": [{"patternProperties": {"^p": {}}}], "unevaluatedProperties": False}, {"pa": 1}),
        ({"allOf": [{"patternProperties": {"^p": {}}}], "unevaluatedProperties": False}, {"qa": 1}),
        ({"properties": {"a": {}}, "unevaluatedProperties": {"type": "integer"}}, {"a": "x", "b": 2}),
        ({"properties": {"a": {}}, "unevaluatedProperties": {"type": "integer"}}, {"b": "x"}),
        ({"if": {"required": ["k"]}, "then": {"properties": {"v": {}}}, "unevaluatedProperties": False},
         {"k": 1, "v": 2}),
    ],
)
def test_safe_regex_keywords_agree_with_jsonschema(schema: dict[str, Any], instance: Any) -> None:
    expected = jsonschema.Draft202012Validator(schema).is_valid(instance)
    assert (compile_schema(schema).validate(instance) == ()) is expected


# --- model output ------------------------------------------------------------------------------


def test_errors_are_json_pointers_with_escaping() -> None:
    schema = {"type": "object", "properties": {"a/b": {"type": "object", "properties": {"c~d": {"type": "integer"}}}}}
    errors = compile_schema(schema).validate({"a/b": {"c~d": "x"}})
    assert errors == ({"path": "/a~1b/c~0d", "message": "'x' is not of type 'integer'"},)


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "Ada", "age": 36}',
        '```json\n{"name": "Ada", "age": 36}\n```',
        'Sure! Here is the JSON you asked for:\n\n{"name": "Ada", "age": 36}',
        'Here it is:\n```\n{"name": "Ada", "age": 36}\n```\nLet me know if you need more.',
        'Example: {"name": "x"} and the answer: {"name": "Ada", "age": 36}',
    ],
)
def test_json_is_recovered_from_fences_and_prose(text: str) -> None:
    check = compile_schema(PERSON).check_text(text)
    assert check.valid and check.value == {"name": "Ada", "age": 36}
    assert check.text == '{"name": "Ada", "age": 36}'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("I cannot do that.", "not valid JSON"),
        ('{"name": "Ada", "age": 36', "not valid JSON"),
        ('{"name": "Ada", "age": NaN}', "NaN"),
    ],
)
def test_unparsable_output_is_one_root_error(text: str, message: str) -> None:
    check = compile_schema(PERSON).check_text(text)
    assert not check.valid and check.value is None
    assert check.errors[0]["path"] == "" and message in check.errors[0]["message"]


def test_schema_errors_of_the_first_candidate_are_reported() -> None:
    check = compile_schema(PERSON).check_text('{"name": "Ada", "age": -1, "extra": true}')
    assert not check.valid and check.text == ""
    assert {e["path"] for e in check.errors} == {"", "/age"}


def test_deeply_nested_output_is_a_validation_failure_not_a_crash() -> None:
    compiled = compile_schema({})
    for text in ["[" * 100_000 + "]" * 100_000, '{"a":' * 10_000 + "1" + "}" * 10_000]:
        check = compiled.check_text(text)
        assert not check.valid and "nested deeper" in check.errors[0]["message"]
    ok = "[" * MAX_OUTPUT_DEPTH + "]" * MAX_OUTPUT_DEPTH
    assert compiled.check_text(ok).valid


def test_format_is_asserted() -> None:
    compiled = compile_schema({"type": "string", "format": "date"})
    assert compiled.validate("2024-02-29") == ()
    assert compiled.validate("yesterday")


# --- streaming and decoding helpers ------------------------------------------------------------


def test_partial_json_grows_with_the_stream() -> None:
    parser = PartialJson()
    pieces = ["Sure:\n```json\n", '{"na', 'me": "Ad', 'a", "tags": [1, ', "2", "]}", "\n```"]
    seen = [parser.feed(p) for p in pieces]
    assert seen == [None, {}, {"name": "Ad"}, {"name": "Ada", "tags": [1]}, {"name": "Ada", "tags": [1, 2]},
                    {"name": "Ada", "tags": [1, 2]}, {"name": "Ada", "tags": [1, 2]}]


def test_bound_for_decoding_only_narrows_and_leaves_data_alone() -> None:
    schema = {
        "type": "object",
        "properties": {
            "tags": {"type": "array", "items": {"type": "string"}},
            "many": {"type": "array", "minItems": 20},
            "capped": {"type": "array", "maxItems": 3},
            "pair": {"prefixItems": [{}, {}, {}, {}, {}, {}, {}, {}, {}, {}]},
            "default": {"type": "object", "default": {"type": "array"}},
            "essay": {"type": "string", "minLength": 500},
            "code": {"type": "string", "pattern": "^[A-Z]+$"},
            "kind": {"type": "string", "enum": ["a", "b"]},
        },
        "$defs": {"list": {"type": ["array", "null"]}},
    }
    original = copy.deepcopy(schema)
    bounded = bound_for_decoding(schema, level=1)
    assert schema == original
    props = bounded["properties"]
    assert props["tags"]["maxItems"] == 8 and props["tags"]["items"]["maxLength"] == 128
    assert props["many"]["maxItems"] == 20 and props["capped"]["maxItems"] == 3 and props["pair"]["maxItems"] == 10
    assert props["default"]["default"] == {"type": "array"}  # data, not a schema
    assert props["essay"]["maxLength"] == 500
    assert "maxLength" not in props["code"] and "maxLength" not in props["kind"]
    assert bounded["$defs"]["list"]["maxItems"] == 8
    compiled = compile_schema(schema)  # whatever the bounded schema accepts, the original accepts
    assert compiled.validate({"tags": ["x" * 128] * 8, "many": [0] * 20}) == ()
    tighter = bound_for_decoding(schema, level=3)["properties"]
    assert tighter["tags"]["maxItems"] == 2 and tighter["tags"]["items"]["maxLength"] == 32
    assert bound_for_decoding(schema, level=10)["properties"]["tags"]["maxItems"] == 1


def test_decoding_drops_bounds_no_grammar_can_hold() -> None:
    schema = {"type": "object", "properties": {"text": {"type": "string", "maxLength": 100_000},
                                               "ids": {"type": "array", "minItems": 5000},
                                               "code": {"type": "string", "maxLength": 10}}}
    decoded = bound_for_decoding(schema)["properties"]
    assert decoded["text"] == {"type": "string"} and decoded["ids"] == {"type": "array"}
    assert decoded["code"]["maxLength"] == 10
    assert bound_for_decoding(schema, level=1)["properties"]["text"]["maxLength"] == 128
    assert compile_schema(schema).validate({"text": "x" * 100_001})  # validation keeps the bound
