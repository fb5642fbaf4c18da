"""JSON schemas for JSON mode: compile once, validate model output, report errors as JSON Pointers.

:func:`compile_schema` turns a schema into a :class:`CompiledSchema`, doing everything that can be
done before any model call, once per distinct schema (cached by its canonical JSON text):

* **Bounds** — at most ``MAX_SCHEMA_CHARS`` of canonical JSON, ``MAX_SCHEMA_DEPTH`` levels of
  nesting, ``MAX_SCHEMA_NODES`` values and ``MAX_SCHEMA_PROPERTIES`` per object (checked without
  recursion, so a pathological schema cannot crash the check), and at most
  ``MAX_EXPANDED_SUBSCHEMAS`` once references are followed: see :mod:`tools._schema_budget`, which
  decides the cost of every step below before it starts. Over a budget is a
  :class:`~tools.SchemaBudgetError` naming it.
* **Dialect** — Draft 2020-12 unless the schema's ``$schema`` names another draft jsonschema knows
  (04, 06, 07, 2019-09, 2020-12 and 03); an unknown ``$schema`` is refused, not guessed.
* **Metaschema** — the schema must validate against its dialect's metaschema; patterns must
  compile (with the ``regex`` module, see :mod:`tools._schema_regex`).
* **References** — every ``$ref``/``$dynamicRef`` is resolved up front inside the document (and
  against the bundled JSON Schema metaschemas). Remote references are **never fetched**: the
  validator's ``referencing.Registry`` refuses every retrieval, so a reference to anything outside
  the document is an :class:`UnsupportedSchemaError` naming it.
* **Self-reference without progress** (``{"$ref": "#"}``) is found by a probe validation and refused.

Compiling and validating hold no shared mutable state beyond thread-safe caches, so both may run in
a worker thread (the server does, to keep its event loop free).

:meth:`CompiledSchema.check_text` then validates a model's raw output: the JSON is recovered from
code fences or leading prose (:mod:`tools._json_text`), output nested deeper than
``MAX_OUTPUT_DEPTH`` is a validation error, regular expressions run under a time budget, and every
error is ``{"path": <JSON Pointer into the output>, "message": ...}``. A validation that runs past
``VALIDATION_DEADLINE_SECONDS`` stops and reports the output invalid (fail closed).

``format`` is asserted (``"email"``, ``"date"``, ``"uuid"``… — whatever jsonschema's format checker
can check with the packages installed): structured-extraction users want a field declared as a date
to be one.
"""

from __future__ import annotations

import copy
import functools
import json
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import attrs
import referencing.exceptions
import referencing.jsonschema
from jsonschema import Draft202012Validator, FormatChecker, ValidationError
from jsonschema.exceptions import best_match, relevance
from jsonschema.validators import validator_for
from jsonschema_specifications import REGISTRY as METASCHEMAS
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tools._exceptions import InvalidSchemaError, UnsupportedSchemaError
from tools._json_text import MAX_OUTPUT_DEPTH, dumps_normalised, json_candidates
from tools._schema_budget import (
    MAX_EXPANDED_SUBSCHEMAS,
    MAX_IN_PLACE_SUBSCHEMAS,
    MAX_SCHEMA_CHARS,
    MAX_SCHEMA_DEPTH,
    MAX_SCHEMA_NODES,
    MAX_SCHEMA_PROPERTIES,
    VALIDATION_DEADLINE_SECONDS,
    _DeadlineExceeded,
    bounded_validator_class,
    check_chars,
    check_document,
    check_expansion,
    deadline,
    over_budget,
)
from tools._schema_regex import pattern_error, regex_budget, safe_validator_class

__all__ = [
    "DECODING_MAX_ITEMS",
    "DECODING_MAX_STRING_CHARS",
    "MAX_EXPANDED_SUBSCHEMAS",
    "MAX_IN_PLACE_SUBSCHEMAS",
    "MAX_OUTPUT_DEPTH",
    "MAX_SCHEMA_CHARS",
    "MAX_SCHEMA_DEPTH",
    "MAX_SCHEMA_NODES",
    "MAX_SCHEMA_PROPERTIES",
    "VALIDATION_DEADLINE_SECONDS",
    "CompiledSchema",
    "OutputCheck",
    "bound_for_decoding",
    "canonical_schema_text",
    "compile_schema",
    "json_pointer",
]

# The size, nesting and cost budgets (MAX_SCHEMA_CHARS…) live in tools._schema_budget.
#: Distinct compiled schemas kept in memory.
SCHEMA_CACHE_SIZE = 256
#: Errors reported per validation (the model is re-asked with these; more would drown it).
MAX_REPORTED_ERRORS = 10
#: Characters kept of one error message (jsonschema quotes whole instances in some messages).
MAX_MESSAGE_CHARS = 300
#: Bounds given by :func:`bound_for_decoding` to arrays and free-text strings that have none: a
#: small model under a grammar can repeat array items or words until ``max_tokens`` cuts it off.
DECODING_MAX_ITEMS = 8
DECODING_MAX_STRING_CHARS = 128
MIN_DECODING_ITEMS = 1
MIN_DECODING_STRING_CHARS = 16
#: Largest length/item bound handed to constrained decoding (see :func:`bound_for_decoding`).
MAX_DECODING_REPEAT = 1000

# Subschema positions, for walking a schema without mistaking data (enum, const, default) for schemas.
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas", "dependencies")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SCHEMA_ONE = (
    "additionalProperties", "unevaluatedProperties", "propertyNames", "not", "if", "then", "else",
    "contains", "additionalItems", "unevaluatedItems",
)
# Keywords whose subschemas apply at the same place of the value (their $ref targets too).
_IN_PLACE = frozenset(("allOf", "anyOf", "oneOf", "not", "if", "then", "else", "dependentSchemas", "dependencies"))
_DEFINITIONS = frozenset(("$defs", "definitions"))
_PROBES: tuple[Any, ...] = (None, {}, [], "", 0)


#: One problem: ``{"path": <JSON Pointer, "" for the whole document>, "message": ...}``.
SchemaIssue = dict[str, str]


def _issue(path: str, message: str) -> SchemaIssue:
    return {"path": path, "message": message}


@dataclass(frozen=True, slots=True)
class OutputCheck:
    """The verdict on one model output.

    ``found`` tells whether the output held any JSON value; ``value`` is the value that was
    validated (None when none was found), ``text`` its normalised JSON text when valid (else
    ``""``), ``errors`` empty exactly when ``valid``.
    """

    valid: bool
    value: Any
    text: str
    errors: tuple[SchemaIssue, ...]
    found: bool = True


class CompiledSchema:
    """A checked schema with its validator, ready to validate any number of outputs."""

    def __init__(self, schema: Any, validator_class: Any) -> None:
        self.schema = schema
        self.dialect: str = validator_class.META_SCHEMA.get("$schema") or validator_class.META_SCHEMA.get("id")
        checker = _format_checker(validator_class)
        self._validator = _guarded(validator_class)(
            schema, registry=_REFUSING_REGISTRY, format_checker=checker
        )

    def validate(self, value: Any) -> tuple[SchemaIssue, ...]:
        """The errors of ``value`` against the schema (empty when valid), at most ``MAX_REPORTED_ERRORS``."""
        try:
            with regex_budget(), deadline():
                errors = _first(self._validator.iter_errors(value), MAX_REPORTED_ERRORS)
        except _DeadlineExceeded as exc:  # fail closed: an output that cannot be checked is not accepted
            return (_issue(path="", message=str(exc)),)
        except RecursionError:
            return (_issue(path="", message="the schema recursed without end on this value"),)
        except referencing.exceptions.Unresolvable as exc:  # unreachable after compile's check; be safe
            return (_issue(path="", message=f"the schema's reference {exc} cannot be resolved"),)
        errors.sort(key=lambda e: (list(map(str, e.absolute_path)), e.message))
        return tuple(_issue(path=json_pointer(e.absolute_path), message=_clip(e.message)) for e in errors)

    def check_text(self, text: str) -> OutputCheck:
        """Find the JSON in a model's raw output and validate it; the first valid candidate wins."""
        values, problem = json_candidates(text)
        if not values:
            return OutputCheck(False, None, "", (_issue(path="", message=problem or "no JSON"),), found=False)
        first: tuple[Any, tuple[SchemaIssue, ...]] | None = None
        with deadline():  # one deadline for all the candidates, not one each
            for value in values:
                errors = self.validate(value)
                if not errors:
                    return OutputCheck(True, value, dumps_normalised(value), ())
                first = first or (value, errors)
        assert first is not None
        return OutputCheck(False, first[0], "", first[1])


def compile_schema(schema: Any) -> CompiledSchema:
    """Check ``schema`` and build its validator, once per distinct schema.

    Raises :class:`InvalidSchemaError` (metaschema violation, bad pattern, local ``$ref`` to
    nowhere) or :class:`UnsupportedSchemaError` (remote ``$ref``, over the bounds, unknown
    ``$schema``), each with ``errors`` as JSON Pointers into the schema.
    """
    return _compile_cached(canonical_schema_text(schema))


def canonical_schema_text(schema: Any) -> str:
    """The cache key: compact JSON with sorted keys (its size bounded; the other budgets are checked
    when a distinct schema is first compiled)."""
    if not isinstance(schema, Mapping | bool):
        _unsupported("", f"a JSON schema must be an object or a boolean, not {type(schema).__name__}")
    try:
        text = json.dumps(schema, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except RecursionError:
        check_document(schema)  # names the depth budget
        raise
    except (TypeError, ValueError) as exc:
        raise InvalidSchemaError(f"the schema is not JSON: {exc}",
                                 errors=[{"path": "", "message": f"not JSON: {exc}"}]) from exc
    check_chars(len(text))
    return text


def bound_for_decoding(schema: Any, level: int = 0) -> Any:
    """A copy of ``schema`` for constrained decoding (never for validation).

    At every level, repetition bounds a grammar cannot hold are dropped: llama.cpp spells
    ``maxLength: 100000`` as 100000 nested optional groups, and its recursive grammar parser then
    overflows the C stack and kills the process (measured on JSONSchemaBench Github_hard/o13152).
    A ``minLength``/``maxLength``/``minItems``/``maxItems`` above ``MAX_DECODING_REPEAT`` cannot be
    reached within any token budget anyway; validation still enforces it.

    From ``level`` 1 on, a runaway generation is reined in: arrays without ``maxItems`` get
    ``DECODING_MAX_ITEMS`` items and strings without ``maxLength`` (and without ``enum``, ``const``,
    ``pattern`` or ``format``, which bound them already) get ``DECODING_MAX_STRING_CHARS``
    characters; each further level halves both, down to ``MIN_DECODING_ITEMS`` and
    ``MIN_DECODING_STRING_CHARS``, never below the schema's own minimum. These bounds only narrow:
    whatever the copy accepts, ``schema`` accepts.

    The schema is held to the document budgets first (``MAX_SCHEMA_NODES``…), so the copy is
    bounded work; over one is a :class:`~tools.SchemaBudgetError`.
    """
    check_document(schema)
    bounded = copy.deepcopy(schema)
    for _, node in _subschemas_with_paths(bounded, ""):
        for key in ("minLength", "maxLength", "minItems", "maxItems"):
            if _int(node.get(key)) > MAX_DECODING_REPEAT:
                del node[key]
        if level >= 1:
            _rein_in(node, level)
    return bounded


def _rein_in(node: dict[str, Any], level: int) -> None:
    max_items = max(DECODING_MAX_ITEMS >> (level - 1), MIN_DECODING_ITEMS)
    max_string_chars = max(DECODING_MAX_STRING_CHARS >> (level - 1), MIN_DECODING_STRING_CHARS)
    if _is_array_schema(node) and "maxItems" not in node:
        fixed = [len(v) for k in ("prefixItems", "items") if isinstance(v := node.get(k), list)]
        floor = max(_int(node.get("minItems")), _int(node.get("minContains")), *fixed)
        node["maxItems"] = max(max_items, floor)
    if _is_free_string(node) and "maxLength" not in node:
        node["maxLength"] = max(max_string_chars, _int(node.get("minLength")))


# --- compiling ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=SCHEMA_CACHE_SIZE)
def _compile_cached(canonical: str) -> CompiledSchema:
    schema = json.loads(canonical)  # a private copy: the caller may mutate theirs afterwards
    # The document budgets are checked once per distinct schema (a cache hit costs one json.dumps).
    check_document(schema)
    validator_class = _dialect(schema)
    _check_metaschema(schema, validator_class)
    _check_patterns(schema)
    resolver = _check_refs(schema)
    # Before anything follows a reference: the size of the schema with every reference expanded.
    for in_place in (True, False):
        check_expansion(schema, resolver, functools.partial(_edges, _specification(schema), in_place),
                        in_place=in_place)
    compiled = CompiledSchema(schema, validator_class)
    _probe(compiled)
    return compiled


def _dialect(schema: Any) -> Any:
    if not isinstance(schema, dict) or "$schema" not in schema:
        return Draft202012Validator
    dialect = schema["$schema"]
    found = validator_for(schema, default=None) if isinstance(dialect, str) else None
    if found is None:
        _unsupported("/$schema", f"unknown JSON Schema dialect {dialect!r}; use a draft-04, -06, -07, "
                                 "2019-09 or 2020-12 metaschema URI, or leave $schema out for 2020-12")
    return found


def _check_metaschema(schema: Any, validator_class: Any) -> None:
    meta = _guarded(validator_class)(
        validator_class.META_SCHEMA, format_checker=_format_checker(validator_class), registry=_REFUSING_REGISTRY
    )
    try:
        with deadline():  # linear in the schema's size, which MAX_SCHEMA_NODES bounds; this is a backstop
            errors = list(meta.iter_errors(schema))
    except _DeadlineExceeded:
        over_budget("validation time", VALIDATION_DEADLINE_SECONDS, "",
                    f"checking the schema against its metaschema took longer than {VALIDATION_DEADLINE_SECONDS:g} s")
    if not errors:
        return
    best = _schema_issue(best_match(errors))
    issues = [_schema_issue(e) for e in sorted(errors, key=relevance, reverse=True)[:MAX_REPORTED_ERRORS]]
    where = best["path"] or "the top level"
    raise InvalidSchemaError(f"invalid JSON schema at {where}: {best['message']}",
                             errors=[best, *(i for i in issues if i != best)])


def _check_patterns(schema: Any) -> None:
    for path, pattern in _patterns(schema):
        problem = pattern_error(pattern)
        if problem is not None:
            message = f"{pattern!r} is not a valid regular expression: {problem}"
            raise InvalidSchemaError(f"invalid JSON schema at {path}: {message}",
                                     errors=[{"path": path, "message": message}])


def _check_refs(schema: Any) -> Any:
    """Resolve every reference now, inside the document: nothing is fetched, ever. Returns the resolver."""
    resource: Resource[Any] = Resource.from_contents(schema, default_specification=DRAFT202012)
    # The bundled metaschemas resolve (a schema may $ref the 2020-12 metaschema); nothing else does.
    resolver = METASCHEMAS.combine(_REFUSING_REGISTRY).resolver_with_root(resource)
    _walk_refs(resolver, resource, "")
    return resolver


def _walk_refs(resolver: Any, resource: Resource[Any], path: str) -> None:
    contents = resource.contents
    if isinstance(contents, dict):
        for keyword in ("$ref", "$dynamicRef"):
            ref = contents.get(keyword)
            if isinstance(ref, str):
                _resolve(resolver, ref, f"{path}/{_escape(keyword)}")
    # Each child's pointer, computed once per parent: looking each one up would be quadratic in
    # the number of properties (10k properties took 10 s).
    paths = {id(node): where for where, node in _children(path, contents)} if isinstance(contents, dict) else {}
    for sub in resource.subresources():
        _walk_refs(resolver.in_subresource(sub), sub, paths.get(id(sub.contents), path))


def _specification(schema: Any) -> Any:
    """The referencing specification of the schema's dialect (how ``$id`` and anchors are spelled)."""
    dialect = schema.get("$schema") if isinstance(schema, dict) else None
    return referencing.jsonschema.specification_with(dialect, default=DRAFT202012) if isinstance(
        dialect, str) else DRAFT202012


def _edges(specification: Any, in_place: bool, node: dict[str, Any], path: str,
           resolver: Any) -> Iterator[tuple[Any, str, Any, bool]]:
    """The subschemas of ``node`` and the targets of its references, each with whether it counts
    towards ``node``'s size: ``$defs`` never do (validation reaches them only through references),
    and with ``in_place`` only those applying at the same place of the value (see ``check_expansion``)."""
    for where, child in _children(path, node):
        if child is None:  # _children names every one-schema keyword, present or not
            continue
        keyword = where[len(path) + 1:].split("/", 1)[0]
        counted = keyword not in _DEFINITIONS and (not in_place or keyword in _IN_PLACE)
        if isinstance(child, dict) and ("$id" in child or "id" in child):
            yield child, where, resolver.in_subresource(specification.create_resource(child)), counted
        else:
            yield child, where, resolver, counted
    for keyword in ("$ref", "$dynamicRef"):
        ref = node.get(keyword)
        if not isinstance(ref, str):
            continue
        try:
            resolved = resolver.lookup(ref)
        except referencing.exceptions.Unresolvable:  # only the bundled metaschemas get here
            continue
        target = urllib.parse.unquote(ref[1:]) if ref.startswith("#/") else f"{path}/{_escape(keyword)}"
        yield resolved.contents, target, resolved.resolver, True


def _resolve(resolver: Any, ref: str, path: str) -> None:
    try:
        resolver.lookup(ref)
    except (referencing.exceptions.PointerToNowhere, referencing.exceptions.NoSuchAnchor,
            referencing.exceptions.InvalidAnchor) as exc:
        message = f"$ref {ref!r} points nowhere in the schema: {_clip(str(exc).split(' within ')[0])}"
        raise InvalidSchemaError(f"invalid JSON schema at {path}: {message}",
                                 errors=[{"path": path, "message": message}]) from exc
    except referencing.exceptions.Unresolvable as exc:
        message = (f"$ref {ref!r} points outside the schema; remote references are never fetched "
                   "(put the referenced schema under $defs and refer to it as #/$defs/...)")
        raise UnsupportedSchemaError(f"unsupported JSON schema at {path}: {message}",
                                     errors=[{"path": path, "message": message}]) from exc


def _probe(compiled: CompiledSchema) -> None:
    # A schema that refers to itself without descending into the value ({"$ref": "#"}) recurses
    # forever on any value; find out now rather than on the first model output.
    with deadline():
        for value in _PROBES:
            try:
                _first(compiled._validator.iter_errors(value), 1)
            except RecursionError:
                _unsupported("", "the schema refers to itself without descending into the value ($ref loop)")
            except _DeadlineExceeded:
                over_budget("validation time", VALIDATION_DEADLINE_SECONDS, "",
                            f"validating a trivial value against the schema took longer than "
                            f"{VALIDATION_DEADLINE_SECONDS:g} s")


@functools.cache
def _guarded(dialect: Any) -> Any:
    """``dialect`` (a jsonschema validator class) with safe regular expressions and a deadline.

    jsonschema's ``evolve`` switches to the stock class of any subschema that names its own
    ``$schema`` (as every vocabulary of the 2020-12 metaschema does); that class would drop both
    guards, so evolving goes through :func:`_evolve_guarded` instead.
    """
    safe: Any = safe_validator_class(dialect)
    guarded = bounded_validator_class(safe)
    guarded.evolve = _evolve_guarded
    return guarded


def _evolve_guarded(self: Any, **changes: Any) -> Any:
    schema = changes.setdefault("schema", self.schema)
    dialect: Any = validator_for(schema, default=None) if isinstance(schema, dict) else None
    cls = _guarded(dialect) if dialect is not None else type(self)
    for field in attrs.fields(type(self)):
        if field.init and field.alias not in changes:
            changes[field.alias] = getattr(self, field.name)
    return cls(**changes)


def _refuse_retrieval(uri: str) -> Resource[Any]:
    raise referencing.exceptions.NoSuchResource(ref=uri)  # type: ignore[call-arg]  # attrs-made __init__


# Every validator gets this registry: it holds nothing and refuses every retrieval, so no $ref is
# ever fetched (jsonschema's default registry would fetch http(s) URLs with urllib).
_REFUSING_REGISTRY: Registry[Any] = Registry(retrieve=_refuse_retrieval)  # type: ignore[call-arg]


@functools.cache
def _format_checker(validator_class: Any) -> FormatChecker:
    # The draft's own checker, with "regex" checked by the engine patterns actually run on.
    checker = copy.copy(validator_class.FORMAT_CHECKER)
    checker.checkers = dict(checker.checkers)
    checker.checks("regex", raises=ValueError)(_regex_format)
    return checker


def _regex_format(instance: object) -> bool:
    if isinstance(instance, str) and (problem := pattern_error(instance)) is not None:
        raise ValueError(problem)
    return True


# --- walking -----------------------------------------------------------------------------------


def _subschemas_with_paths(schema: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every subschema (as a dict) in a schema position, with its JSON Pointer; iterative."""
    stack: list[tuple[str, Any]] = [(path, schema)]
    while stack:
        where, node = stack.pop()
        if not isinstance(node, dict):
            continue
        yield where, node
        stack.extend(_children(where, node))


def _children(where: str, node: dict[str, Any]) -> Iterable[tuple[str, Any]]:
    for key in _SCHEMA_MAPS:
        if isinstance(node.get(key), dict):
            yield from ((f"{where}/{key}/{_escape(k)}", v) for k, v in node[key].items())
    for key in (*_SCHEMA_LISTS, "items"):
        value = node.get(key)
        if isinstance(value, list):
            yield from ((f"{where}/{key}/{i}", v) for i, v in enumerate(value))
        elif key == "items":
            yield f"{where}/items", value
    for key in _SCHEMA_ONE:
        yield f"{where}/{key}", node.get(key)


def _patterns(schema: Any) -> Iterator[tuple[str, str]]:
    for where, node in _subschemas_with_paths(schema, ""):
        if isinstance(node.get("pattern"), str):
            yield f"{where}/pattern", node["pattern"]
        for key in node.get("patternProperties", {}) if isinstance(node.get("patternProperties"), dict) else ():
            yield f"{where}/patternProperties/{_escape(key)}", key


def _is_free_string(node: dict[str, Any]) -> bool:
    kind = node.get("type")
    is_string = kind == "string" or (isinstance(kind, list) and "string" in kind)
    return is_string and not any(k in node for k in ("enum", "const", "pattern", "format"))


def _is_array_schema(node: dict[str, Any]) -> bool:
    # maxItems only ever constrains arrays, so adding it wherever array keywords appear is safe.
    kind = node.get("type")
    return kind == "array" or (isinstance(kind, list) and "array" in kind) or any(
        k in node for k in ("items", "prefixItems", "contains")
    )


# --- small helpers -----------------------------------------------------------------------------


def _first(errors: Iterator[ValidationError], limit: int) -> list[ValidationError]:
    found: list[ValidationError] = []
    for error in errors:
        found.append(error)
        if len(found) >= limit:
            break
    return found


def _schema_issue(error: ValidationError) -> SchemaIssue:
    return _issue(path=json_pointer(error.absolute_path), message=_clip(error.message))


def json_pointer(parts: Iterable[Any]) -> str:
    """The RFC 6901 JSON Pointer for a path of keys and indexes (``("a", 0)`` → ``/a/0``)."""
    return "".join(f"/{_escape(str(p))}" for p in parts)


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _clip(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE_CHARS else message[: MAX_MESSAGE_CHARS - 1] + "…"


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _unsupported(path: str, message: str) -> NoReturn:
    raise UnsupportedSchemaError(f"unsupported JSON schema: {message}", errors=[{"path": path, "message": message}])
