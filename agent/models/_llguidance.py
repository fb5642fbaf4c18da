"""JSON-schema-constrained decoding with llguidance as a llama.cpp logits mask (GBNF is the fallback).

llguidance compiles far more of JSON Schema than llama-cpp-python's GBNF converter (numeric bounds,
nullable unions with ``items``/``enum``, ``patternProperties``, ``$ref``/``$defs``, ``format``,
regex patterns). It runs beside llama.cpp as a logits processor: before each token it computes the
set of tokens the grammar allows and masks the others out; after each token it advances its matcher.

Use::

    engine = engine_for(llama)                     # one per loaded model (building it takes ~1 s)
    grammar = schema_grammar(schema)               # None when llguidance cannot compile the schema
    processor = engine.processor(grammar)          # a fresh matcher per generation
    llama.create_chat_completion(..., logits_processor=LogitsProcessorList([processor]))

:mod:`agent.models._llama` uses it for JSON-schema answers (not yet for tool calls, which keep
their GBNF grammar); without llguidance, or for a schema it cannot compile, GBNF is used as before
(``LlamaBackend(json_engine=...)`` picks one engine only). A schema llguidance refuses is tried
once more loosened (:func:`_loosened`), which makes every schema of the JSONSchemaBench sample compile.
"""

from __future__ import annotations

import functools
import json
import threading
import warnings
from typing import Any

__all__ = ["LlguidanceEngine", "MaskProcessor", "engine_for", "llguidance_available", "schema_grammar"]

# Grammars compiled per process (keyed by schema text).
GRAMMAR_CACHE_SIZE = 128
# Compile options: keywords llguidance cannot enforce (uniqueItems, if/then/else, ...) are ignored and
# oneOf is read as anyOf - the grammar over-approximates, validation and re-asks catch the rest. JSON
# is written compactly: free white space lets a small model loop on newlines inside a grammar.
COMPILE_OPTIONS = {
    "lenient": True,
    "coerce_one_of": True,
    "whitespace_flexible": False,
    "item_separator": ", ",
    "key_separator": ": ",
}

_ENGINES: dict[int, LlguidanceEngine] = {}
_ENGINES_LOCK = threading.Lock()


# Keywords kept when a node is loosened to its reference: they hold what the reference points to.
_REFERENCE_HOLDERS = ("$defs", "definitions", "$id", "$schema")


@functools.lru_cache(maxsize=GRAMMAR_CACHE_SIZE)
def _schema_grammar(schema_text: str) -> str | None:
    try:
        import llguidance  # noqa: F401
    except ImportError:
        return None
    grammar = _compile(schema_text)
    if grammar is not None:
        return grammar
    schema = json.loads(schema_text)
    for typed in (True, False):  # e.g. recursive definitions with siblings: a looser grammar beats none
        loosened = json.dumps(_loosened(schema, schema, typed))
        grammar = _compile(loosened) if loosened != schema_text else None
        if grammar is not None:
            break
    return grammar


def _compile(schema_text: str) -> str | None:
    from llguidance import LLMatcher

    try:
        grammar = LLMatcher.grammar_from_json_schema(schema_text, overrides=COMPILE_OPTIONS)  # type: ignore[arg-type]
    except ValueError:
        return None
    error = LLMatcher.validate_grammar(grammar)
    return None if error and not error.startswith("WARNING") else grammar


def _loosened(node: Any, root: Any, typed: bool = True) -> Any:
    """``node`` with the keywords dropped that llguidance must intersect with a ``$ref``.

    llguidance resolves a reference to intersect it with sibling keywords (``{"type": "object",
    "anyOf": [{"$ref": ...}]}``, ``allOf`` with a reference, a named property that also matches a
    ``patternProperties`` schema) and refuses when the reference is still being defined: "circular
    references with sibling keys are not supported" (every failure in the JSONSchemaBench sample,
    7 of its 30 WashingtonPost schemas). Dropping a conjunct only widens what a schema accepts, so
    the loosened grammar still admits every valid instance; validation and re-asks check the rest.
    A ``patternProperties`` schema keeps the type of what its references point to (``typed``; when
    that still fails to compile, such a schema is dropped to ``{}``).
    """
    if isinstance(node, list):
        return [_loosened(item, root, typed) for item in node]
    if not isinstance(node, dict):
        return node
    holders = {key: _loosened(node[key], root, typed) for key in _REFERENCE_HOLDERS if key in node}
    if isinstance(node.get("$ref"), str):
        return {"$ref": node["$ref"], **holders}
    members = node.get("allOf")
    if isinstance(members, list) and (refs := [m for m in members if isinstance(m, dict) and "$ref" in m]):
        return {"$ref": refs[0]["$ref"], **holders}  # one conjunct: the reference
    for key in ("anyOf", "oneOf"):
        if isinstance(node.get(key), list) and any(isinstance(m, dict) and "$ref" in m for m in node[key]):
            return {key: _loosened(node[key], root, typed), **holders}
    loosened = {key: _loosened(value, root, typed) for key, value in node.items()}
    patterns = loosened.get("patternProperties")
    if isinstance(patterns, dict) and "properties" in node:  # named properties are intersected with these
        loosened["patternProperties"] = {k: _typed_references(v, root) if typed else {} for k, v in patterns.items()}
    return loosened


def _typed_references(node: Any, root: Any) -> Any:
    """``node`` with each local ``$ref`` replaced by the ``type`` of its target (``{}`` when it has none)."""
    if isinstance(node, list):
        return [_typed_references(item, root) for item in node]
    if not isinstance(node, dict):
        return node
    if isinstance(node.get("$ref"), str):
        return _reference_type(node["$ref"], root)
    return {key: _typed_references(value, root) for key, value in node.items()}


def llguidance_available() -> bool:
    """True when the llguidance package can be imported."""
    try:
        import llguidance  # noqa: F401
    except ImportError:
        return False
    return True


def schema_grammar(schema: dict[str, Any]) -> str | None:
    """The llguidance grammar for ``schema``, or None when llguidance is missing or cannot compile it."""
    return _schema_grammar(json.dumps(schema))  # key order kept: it is the order the model writes


class MaskProcessor:
    """A llama-cpp-python logits processor that lets only grammar-allowed tokens through.

    llama.cpp calls it once per sampled token with every token evaluated so far: the first call
    marks where the prompt ends, each later call first feeds the matcher the token sampled since.
    """

    def __init__(self, matcher: Any, n_vocab: int) -> None:
        from llguidance.numpy import allocate_token_bitmask

        self.matcher = matcher
        self._mask = allocate_token_bitmask(1, n_vocab)
        self._seen: int | None = None

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        from llguidance.numpy import apply_token_bitmask_inplace, fill_next_token_bitmask

        if self._seen is not None:
            self.matcher.consume_tokens([int(t) for t in input_ids[self._seen:]])
        self._seen = len(input_ids)
        if self.matcher.is_error():
            return scores  # never leave the sampler with no token at all; validation catches the output
        fill_next_token_bitmask(self.matcher, self._mask)
        apply_token_bitmask_inplace(scores, self._mask)
        return scores


class LlguidanceEngine:
    """The llguidance tokenizer of one loaded llama.cpp model; makes a fresh processor per generation."""

    def __init__(self, llama: Any) -> None:
        import llama_cpp
        from llguidance.llamacpp import lltokenizer_from_vocab

        vocab = llama_cpp.llama_model_get_vocab(llama.model)
        self.n_vocab = int(llama.n_vocab())
        # Chat models end a turn with their end-of-turn token, which llama.cpp stops on.
        end = int(llama_cpp.llama_vocab_eot(vocab))
        end = end if end >= 0 else int(llama_cpp.llama_vocab_eos(vocab))  # no end-of-turn token: use EOS
        with warnings.catch_warnings():  # it reads every token through an API llama-cpp marks deprecated
            warnings.simplefilter("ignore", DeprecationWarning)
            self.tokenizer = lltokenizer_from_vocab(vocab, eos_token=end)

    def processor(self, grammar: str) -> MaskProcessor | None:
        """A processor for one generation under ``grammar``; None when the matcher rejects it."""
        from llguidance import LLMatcher

        matcher = LLMatcher(self.tokenizer, grammar, log_level=0)
        return None if matcher.is_error() else MaskProcessor(matcher, self.n_vocab)


def engine_for(llama: Any) -> LlguidanceEngine:
    """The shared engine of a loaded model (built once; it reads the whole vocabulary)."""
    with _ENGINES_LOCK:
        engine = _ENGINES.get(id(llama))
        if engine is None:
            engine = _ENGINES[id(llama)] = LlguidanceEngine(llama)
        return engine


def _reference_type(ref: str, root: Any) -> dict[str, Any]:
    """``{"type": ...}`` of what the local reference ``ref`` points to; ``{}`` when unknown."""
    if not ref.startswith("#"):
        return {}
    target = root
    for part in ref[1:].split("/")[1:]:
        key = part.replace("~1", "/").replace("~0", "~")
        target = target.get(key) if isinstance(target, dict) else None
    kind = target.get("type") if isinstance(target, dict) else None
    return {"type": kind} if isinstance(kind, str | list) else {}
