"""Regular expressions in JSON schemas that cannot hang the process.

Decision: the ``regex`` module with a time bound, not RE2. JSON Schema patterns are ECMA-262
regular expressions, and real schemas use lookahead and backreferences, which RE2 (linear time by
construction) does not support; ``regex`` supports them, recognises more real-world syntax than
``re`` (``\\p{L}``, ``(?<name>…)``) and, unlike ``re``, can stop a match after a timeout. Every match
gets ``REGEX_MATCH_TIMEOUT_SECONDS``, and one validation gets ``REGEX_BUDGET_SECONDS`` in total
(:func:`regex_budget`), so an adversarial output with many strings cannot add up timeouts either.
A match that runs out of time counts as *not matching* (fail closed): the output is reported
invalid with a message that says why, never passed.

jsonschema calls the standard ``re`` module in four places: the ``pattern`` and
``patternProperties`` keywords, and the property filtering inside ``additionalProperties`` and
``unevaluatedProperties``. :func:`safe_validator_class` replaces all four keywords with versions
that match through :func:`search`; everything else is jsonschema's own code.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import regex
from jsonschema import ValidationError
from jsonschema.validators import extend

__all__ = [
    "REGEX_BUDGET_SECONDS",
    "REGEX_MATCH_TIMEOUT_SECONDS",
    "pattern_error",
    "regex_budget",
    "safe_validator_class",
    "search",
]

REGEX_MATCH_TIMEOUT_SECONDS = 0.1
REGEX_BUDGET_SECONDS = 0.5
COMPILED_PATTERN_CACHE_SIZE = 1024

_deadline: ContextVar[float | None] = ContextVar("studiolm_regex_deadline", default=None)


@contextlib.contextmanager
def regex_budget(seconds: float = REGEX_BUDGET_SECONDS) -> Iterator[None]:
    """Bound the total time of every :func:`search` inside the ``with`` block."""
    token = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def search(pattern: str, text: str) -> bool | None:
    """Whether ``pattern`` matches somewhere in ``text``; None when it could not tell in time."""
    deadline = _deadline.get()
    timeout = REGEX_MATCH_TIMEOUT_SECONDS
    if deadline is not None:
        timeout = min(timeout, deadline - time.monotonic())
        if timeout <= 0:
            return None
    try:
        return _compiled(pattern).search(text, timeout=timeout) is not None
    except TimeoutError:
        return None


def pattern_error(pattern: str) -> str | None:
    """Why ``pattern`` is not a usable regular expression, or None when it is."""
    try:
        _compiled(pattern)
    except (regex.error, TypeError, ValueError) as exc:
        return str(exc)
    return None


@functools.lru_cache(maxsize=COMPILED_PATTERN_CACHE_SIZE)
def _compiled(pattern: str) -> Any:
    return regex.compile(pattern)


@functools.cache
def safe_validator_class(cls: type[Any]) -> type[Any]:
    """``cls`` (a jsonschema validator class) with every regular-expression keyword made safe."""
    replacements = {
        "pattern": _pattern,
        "patternProperties": _pattern_properties,
        "additionalProperties": _additional_properties,
        "unevaluatedProperties": _unevaluated_properties,
    }
    mine = {name: fn for name, fn in replacements.items() if name in cls.VALIDATORS}
    return extend(cls, mine)  # type: ignore[no-any-return]


def _timed_out(text: str, pattern: str) -> str:
    return (
        f"{_short(text)} could not be checked against the pattern {_short(pattern)} within "
        f"{REGEX_MATCH_TIMEOUT_SECONDS:g} s (the pattern backtracks too much on it), so it is not accepted"
    )


def _short(value: str, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "…" + text[-3:]


# --- the keywords (same messages as jsonschema's own where the outcome is the same) ------------


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "string"):
        return
    matched = search(pattern, instance)
    if matched is None:
        yield ValidationError(_timed_out(instance, pattern))
    elif not matched:
        yield ValidationError(f"{_short(instance)} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, patterns: dict[str, Any], instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            matched = search(pattern, key)
            if matched is None:
                yield ValidationError(_timed_out(key, pattern), path=[key])
            elif matched:
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _matches_any(key: str, patterns: Any) -> bool:
    # A timed-out match counts as no match: the property is then "additional" and, when those are
    # forbidden, reported. Failing closed can only reject, never accept.
    return any(search(p, key) for p in patterns)


def _additional_properties(
    validator: Any, additional: Any, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    known = schema.get("properties", {})
    patterns = schema.get("patternProperties", {})
    extras = [k for k in instance if k not in known and not _matches_any(k, patterns)]
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        names = ", ".join(repr(e) for e in sorted(extras))
        if patterns:
            listed = ", ".join(repr(p) for p in sorted(patterns))
            yield ValidationError(f"{names} {'does' if len(extras) == 1 else 'do'} not match any of the "
                                  f"regexes: {listed}")
        else:
            yield ValidationError(f"Additional properties are not allowed ({names} "
                                  f"{'was' if len(extras) == 1 else 'were'} unexpected)")


def _unevaluated_properties(
    validator: Any, unevaluated: Any, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    evaluated = _evaluated_keys(validator, instance, schema)
    bad = [
        key for key in instance
        if key not in evaluated and not _is_valid(validator.descend(instance[key], unevaluated, path=key))
    ]
    if not bad:
        return
    names = ", ".join(repr(k) for k in sorted(bad, key=str))
    verb = "was" if len(bad) == 1 else "were"
    if unevaluated is False:
        yield ValidationError(f"Unevaluated properties are not allowed ({names} {verb} unexpected)")
    else:
        yield ValidationError(f"Unevaluated properties are not valid under the given schema ({names} {verb} "
                              "unevaluated and invalid)")


def _is_valid(errors: Iterator[Any]) -> bool:
    return next(errors, None) is None


def _evaluated_keys(validator: Any, instance: dict[str, Any], schema: Any) -> set[str]:
    """The keys of ``instance`` that ``schema`` evaluates (a port of jsonschema's
    ``find_evaluated_property_keys_by_schema``, with :func:`search` instead of ``re.search``)."""
    if validator.is_type(schema, "boolean"):
        return set()
    keys: set[str] = set()
    for ref_keyword in ("$ref", "$dynamicRef"):
        ref = schema.get(ref_keyword)
        if ref is not None:
            # jsonschema >= 4.18 keeps its referencing resolver here; its own port does the same.
            resolved = validator._resolver.lookup(ref)
            child = validator.evolve(schema=resolved.contents, _resolver=resolved.resolver)
            keys |= _evaluated_keys(child, instance, resolved.contents)
    properties = schema.get("properties")
    if validator.is_type(properties, "object"):
        keys |= properties.keys() & instance.keys()
    for keyword in ("additionalProperties", "unevaluatedProperties"):
        subschema = schema.get(keyword)
        if subschema is not None:
            keys |= {k for k, v in instance.items() if _is_valid(validator.descend(v, subschema))}
    keys |= {k for k in instance if _matches_any(k, schema.get("patternProperties", {}))}
    for key, subschema in schema.get("dependentSchemas", {}).items():
        if key in instance:
            keys |= _evaluated_keys(validator, instance, subschema)
    for keyword in ("allOf", "oneOf", "anyOf"):
        for subschema in schema.get(keyword, []):
            if _is_valid(validator.descend(instance, subschema)):
                keys |= _evaluated_keys(validator, instance, subschema)
    return keys | _conditional_keys(validator, instance, schema)


def _conditional_keys(validator: Any, instance: dict[str, Any], schema: Any) -> set[str]:
    if "if" not in schema:
        return set()
    if validator.evolve(schema=schema["if"]).is_valid(instance):
        keys = _evaluated_keys(validator, instance, schema["if"])
        return keys | (_evaluated_keys(validator, instance, schema["then"]) if "then" in schema else set())
    return _evaluated_keys(validator, instance, schema["else"]) if "else" in schema else set()
