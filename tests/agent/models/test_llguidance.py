"""JSON-schema answers masked by llguidance on llama.cpp: what GBNF cannot enforce now holds.

The local-model tests run the tiny tier (SmolLM2-135M) with prompts that pull it out of the schema:
under llama-cpp-python's GBNF grammar it writes ``{"day": 45, "month": 13, ...}`` and ``{ }`` here.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from agent.models._llama import LlamaBackend
from agent.models._llguidance import schema_grammar
from graphs.model import Message, ModelRequest, SamplingParams
from tests.embedded import DATE, TINY, needs_embedded_model

pytest.importorskip("llguidance", reason="llguidance is not installed (pip install 'studiolm-agent[local]')")

LEGS = {
    "type": "object",
    "patternProperties": {"^[a-z]+$": {"type": "integer", "minimum": 0, "maximum": 8}},
    "additionalProperties": False,
    "minProperties": 2,
    "maxProperties": 3,
}


@pytest.mark.parametrize(
    "schema",
    [
        DATE,
        LEGS,
        {"$defs": {"p": {"type": "string", "format": "email"}}, "type": "array", "items": {"$ref": "#/$defs/p"}},
        {"type": ["array", "null"], "items": {"enum": ["a", "b"]}},
        {"type": "string", "pattern": "^\\w+-\\d{3}$"},  # escapes GBNF rejects
        {"type": "array", "items": {"type": "integer"}, "uniqueItems": True},  # not enforceable: ignored
    ],
)
def test_schemas_gbnf_struggles_with_compile(schema: dict[str, Any]) -> None:
    assert schema_grammar(schema) is not None


def test_a_schema_that_cannot_compile_has_no_grammar() -> None:
    assert schema_grammar({"$ref": "https://example.com/remote-schema.json"}) is None


@pytest.mark.local_model
@needs_embedded_model
@pytest.mark.parametrize(
    ("schema", "prompt"),
    [(DATE, "Write the date 45/13/1850 as JSON."), (LEGS, "Count legs of 3 animals as JSON.")],
)
async def test_the_answer_keeps_bounds_and_property_patterns(schema: dict[str, Any], prompt: str) -> None:
    request = ModelRequest(model=TINY, messages=(Message("user", prompt),), sampling=SamplingParams(0.0, 80),
                           json_schema=schema)
    result = await LlamaBackend().complete(request)
    assert result.finish_reason == "stop"
    jsonschema.validate(json.loads(result.content), schema)


# A tree whose nodes are refined beside a reference to the root: llguidance must resolve "#" while
# still defining it ("circular references with sibling keys", the WashingtonPost schemas' failure).
TREE = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "children": {"type": "array", "items": {"type": "object", "anyOf": [{"$ref": "#"}]}},
        "parent": {"allOf": [{"$ref": "#"}, {"required": ["name"]}]},
    },
    "patternProperties": {"^x-": {"oneOf": [{"$ref": "#"}, {"type": "string"}]}},
    "required": ["name"],
}


def test_a_recursive_schema_with_siblings_of_its_references_compiles_loosened() -> None:
    from llguidance import LLMatcher

    from agent.models._llguidance import COMPILE_OPTIONS

    as_given = LLMatcher.grammar_from_json_schema(json.dumps(TREE), overrides=COMPILE_OPTIONS)  # type: ignore[arg-type]
    assert "circular references" in LLMatcher.validate_grammar(as_given)
    assert schema_grammar(TREE) is not None


def test_loosening_only_widens_a_schema() -> None:
    from agent.models._llguidance import _loosened

    loosened = _loosened(TREE, TREE)
    assert loosened != TREE
    valid = {"name": "a", "children": [{"name": "b"}], "parent": {"name": "c"}, "x-note": "hi"}
    jsonschema.validate(valid, TREE)
    jsonschema.validate(valid, loosened)
    assert loosened["patternProperties"]["^x-"] == {"oneOf": [{"type": "object"}, {"type": "string"}]}


def test_every_washington_post_schema_of_the_shared_sample_compiles() -> None:
    # The dataset whose recursive definitions need the loosening (the other 270 compile as given).
    from pathlib import Path

    from tools import SchemaError, bound_for_decoding, compile_schema

    sample = Path(__file__).resolve().parents[4] / "shared" / "jsonschemabench-sample"
    if not sample.is_dir():
        pytest.skip(f"{sample} is absent (the JSONSchemaBench sample lives in ../shared)")
    uncompiled = []
    for path in sorted(sample.glob("WashingtonPost/*.json")):
        schema = json.loads(path.read_text())
        try:
            compile_schema(schema)
        except SchemaError:
            continue  # refused up front, never decoded
        if schema_grammar(bound_for_decoding(schema)) is None:
            uncompiled.append(path.name)
    assert uncompiled == []
