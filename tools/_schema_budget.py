"""Cost bounds on everything done with a JSON schema, decided before the work starts.

A schema is a program: a 2 KB document of ``$defs`` that each ``anyOf`` two references to the next
one describes 2^25 alternatives, and jsonschema explores (and keeps the errors of) every one of them
on a value that matches none. So before any such work, the schema is measured against budgets that
bound it, and refused when over one with a :class:`~tools.SchemaBudgetError` naming the budget, its
limit and (in ``errors``) the JSON Pointer where the budget was exceeded:

* **The document** (:func:`check_document`, one iterative pass, no recursion): ``MAX_SCHEMA_DEPTH``
  levels, ``MAX_SCHEMA_NODES`` JSON values, ``MAX_SCHEMA_PROPERTIES`` entries in one ``properties``
  or ``patternProperties`` object, ``MAX_PROPERTIES_CUBED`` for all of them together,
  ``MAX_PATTERN_CHARS`` per regular expression and ``MAX_PATTERN_CHARS_TOTAL`` for all of them
  (checked before the metaschema check compiles them). These bound the metaschema check and
  anything linear in the schema (copying it, building a grammar from it). ``MAX_SCHEMA_CHARS``
  bounds its JSON text.
* **The expansion** (:func:`check_expansion`): the number of subschemas the schema has once every
  ``$ref`` is replaced by what it points to, at most ``MAX_EXPANDED_SUBSCHEMAS``. This is what
  validation, the probe and grammar building can end up walking. It is computed on the reference
  graph with one memoised size per subschema, so its own cost is linear in the document, and it
  stops as soon as the budget is passed. A reference back into a subschema still being measured
  (recursion: a tree, a linked list) counts as one: validation only follows it by descending into
  the value, which is finite. The same measure restricted to keywords that stay at one place of the
  value (``anyOf``, ``$ref``…), taken from every subschema, is held to the much smaller
  ``MAX_IN_PLACE_SUBSCHEMAS`` (and its nesting to ``MAX_IN_PLACE_DEPTH``): it bounds what a single
  place of a value costs, and real schemas grow through ``properties`` instead. ``$defs`` count
  only where they are referenced.
* **Time** (:func:`deadline` around validation and the metaschema check): whatever still costs too
  much stops after ``VALIDATION_DEADLINE_SECONDS`` (:func:`bounded_validator_class` checks the
  deadline on every keyword jsonschema evaluates) with :class:`_DeadlineExceeded`.

Thread safety: the budgets are plain functions of their arguments and the deadline is a
``ContextVar``, so each thread (each asyncio task) has its own; compiling or validating in a worker
thread is safe.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, NoReturn

from jsonschema.validators import extend

from tools._exceptions import SchemaBudgetError

__all__ = [
    "MAX_EXPANDED_SUBSCHEMAS",
    "MAX_IN_PLACE_DEPTH",
    "MAX_IN_PLACE_SUBSCHEMAS",
    "MAX_PATTERN_CHARS",
    "MAX_PATTERN_CHARS_TOTAL",
    "MAX_PROPERTIES_CUBED",
    "MAX_SCHEMA_CHARS",
    "MAX_SCHEMA_DEPTH",
    "MAX_SCHEMA_NODES",
    "MAX_SCHEMA_PROPERTIES",
    "VALIDATION_DEADLINE_SECONDS",
    "bounded_validator_class",
    "check_chars",
    "check_document",
    "check_expansion",
    "deadline",
    "escape",
    "over_budget",
    "time_budget_message",
]

#: Largest schema accepted, in characters of compact canonical JSON (real-world schemas such as
#: Kubernetes' reach ~160k).
MAX_SCHEMA_CHARS = 256 * 1024
#: Deepest nesting of objects/arrays in a schema document (real-world schemas stay under 20).
MAX_SCHEMA_DEPTH = 64
#: JSON values (objects, arrays, strings, numbers…; object keys not counted) in a schema document.
#: The metaschema check costs ~50 µs per value (so ≤ ~1 s here); the largest schema of the
#: JSONSchemaBench sample (/work/shared/jsonschemabench-sample, 300 schemas) has 4,944.
MAX_SCHEMA_NODES = 20_000
#: Entries of one ``properties``/``patternProperties`` object (the sample's largest has 201).
MAX_SCHEMA_PROPERTIES = 512
#: The sum of n³ over the schema's ``properties`` objects of n entries. llama.cpp's grammar builder
#: takes time cubic in an object's optional properties (0.07 s at 256, 0.4 s at 512), so this bounds
#: the grammar of the whole schema to about that of one object of ``MAX_SCHEMA_PROPERTIES``.
MAX_PROPERTIES_CUBED = MAX_SCHEMA_PROPERTIES**3
#: Subschemas of the schema with every ``$ref`` replaced by its target (recursion counted once):
#: the work validation can be made to do per value (~15 µs per subschema when every branch fails).
#: ``$defs`` count only where referenced. The largest in the sample is 19,656 (WashingtonPost
#: wp_17); the hostile schemas of issue 10 expand to ~2^15 … 2^26 and 10^7.
MAX_EXPANDED_SUBSCHEMAS = 50_000
#: The same, following only the keywords that apply at the same place in the value (``$ref``,
#: ``allOf``, ``anyOf``, ``oneOf``, ``not``, ``if``/``then``/``else``, ``dependentSchemas``): what
#: one place of any value, ``{}`` included, can be made to cost. When every branch fails (and
#: jsonschema keeps every branch's errors), 4,000 cost ~0.1 s; the sample's largest is 50.
MAX_IN_PLACE_SUBSCHEMAS = 4_000
#: Subschemas nested inside one another at one place of the value (a chain of ``$ref``, ``allOf``…).
#: jsonschema recurses through each in Python; ~300 reach its recursion limit.
MAX_IN_PLACE_DEPTH = 128
#: Characters of one regular expression (``pattern``, a ``patternProperties`` key), and of all of
#: them together: compiling costs ~18 µs per character. The sample's longest pattern has 228.
MAX_PATTERN_CHARS = 4_096
MAX_PATTERN_CHARS_TOTAL = 32_768
#: Time one validation (of an output, or of the schema against its metaschema) may take.
VALIDATION_DEADLINE_SECONDS = 2.0

#: Budget names, as they appear in messages and in :attr:`SchemaBudgetError.budget`.
_CHARS, _DEPTH, _NODES, _PROPERTIES, _CUBED, _EXPANSION, _IN_PLACE, _IN_PLACE_DEPTH, _PATTERN, _PATTERNS, _TIME = (
    "schema size", "schema depth", "schema nodes", "properties per object", "properties cubed",
    "expanded subschemas", "in-place subschemas", "in-place depth", "pattern length", "patterns length",
    "validation time",
)
_PROPERTY_MAPS = ("properties", "patternProperties")

_deadline: ContextVar[float | None] = ContextVar("studiolm_schema_deadline", default=None)


class _DeadlineExceeded(Exception):
    """Raised inside a validation that ran past its :func:`deadline` (caught by the caller)."""


def over_budget(budget: str, limit: float, path: str, what: str) -> NoReturn:
    """Raise the :class:`SchemaBudgetError` for ``budget`` (``what`` says what was found at ``path``)."""
    message = f"{what}; the limit is {_number(limit)} (budget: {budget})"
    where = f" at {path}" if path else ""
    raise SchemaBudgetError(f"unsupported JSON schema{where}: {message}", budget=budget, limit=limit,
                            errors=[{"path": path, "message": message}])


# --- the document --------------------------------------------------------------------------------


def check_document(schema: Any) -> None:
    """Refuse a schema over the depth, node or properties budgets; iterative, stops early."""
    nodes = cubed = pattern_chars = 0
    stack: list[tuple[Any, int, str]] = [(schema, 1, "")]
    while stack:
        node, depth, path = stack.pop()
        nodes += 1
        if nodes > MAX_SCHEMA_NODES:
            over_budget(_NODES, MAX_SCHEMA_NODES, "", f"the schema has more than {MAX_SCHEMA_NODES} JSON values")
        if isinstance(node, Mapping):
            cubed += _check_width(node, path)
            if cubed > MAX_PROPERTIES_CUBED:
                over_budget(_CUBED, MAX_PROPERTIES_CUBED, path, "the schema's properties objects are too large "
                            "together (the sum of the cubes of their sizes)")
            pattern_chars += _check_patterns(node, path)
            if pattern_chars > MAX_PATTERN_CHARS_TOTAL:
                over_budget(_PATTERNS, MAX_PATTERN_CHARS_TOTAL, path,
                            f"the schema's regular expressions have more than {MAX_PATTERN_CHARS_TOTAL:,} characters")
            items: Iterable[tuple[Any, Any]] = node.items()
        elif isinstance(node, list):
            items = enumerate(node)
        else:
            continue
        if depth > MAX_SCHEMA_DEPTH:
            over_budget(_DEPTH, MAX_SCHEMA_DEPTH, path, f"the schema is nested deeper than {MAX_SCHEMA_DEPTH} levels")
        stack.extend((child, depth + 1, f"{path}/{escape(str(key))}") for key, child in items)


def _check_width(node: Mapping[Any, Any], path: str) -> int:
    """Refuse a properties object over ``MAX_SCHEMA_PROPERTIES``; the cube of its size otherwise."""
    cubed = 0
    for key in _PROPERTY_MAPS:
        value = node.get(key)
        if isinstance(value, Mapping):
            if len(value) > MAX_SCHEMA_PROPERTIES:
                over_budget(_PROPERTIES, MAX_SCHEMA_PROPERTIES, f"{path}/{key}", f"{key} lists {len(value)} entries")
            cubed += len(value) ** 3 if key == "properties" else 0
    return cubed


def _check_patterns(node: Mapping[Any, Any], path: str) -> int:
    """Refuse a regular expression over ``MAX_PATTERN_CHARS``; the length of those of ``node`` otherwise.
    (Checked on every object, in schema position or not: a ``pattern`` in data is rare and short.)"""
    found = [("/pattern", node["pattern"])] if isinstance(node.get("pattern"), str) else []
    if isinstance(keyed := node.get("patternProperties"), Mapping):
        found += [(f"/patternProperties/{escape(str(key))}", str(key)) for key in keyed]
    for where, pattern in found:
        if len(pattern) > MAX_PATTERN_CHARS:
            over_budget(_PATTERN, MAX_PATTERN_CHARS, path + where,
                        f"the regular expression has {len(pattern):,} characters")
    return sum(len(pattern) for _, pattern in found)


def check_chars(length: int) -> None:
    """Refuse a schema whose canonical JSON is longer than ``MAX_SCHEMA_CHARS``."""
    if length > MAX_SCHEMA_CHARS:
        over_budget(_CHARS, MAX_SCHEMA_CHARS, "", f"the schema is {length} characters of JSON")


# --- the expansion -------------------------------------------------------------------------------

#: ``edges(node, path, context)`` → the subschemas of ``node`` (a dict) with their JSON Pointers,
#: contexts, and whether they count towards ``node``'s size (a ``properties`` child does not for the
#: in-place measure, a ``$defs`` entry never does: both are measured on their own), ``$ref``
#: targets included.
Edges = Callable[[dict[str, Any], str, Any], Iterable[tuple[Any, str, Any, bool]]]


@dataclass(slots=True)
class _Frame:
    node: dict[str, Any]
    path: str
    edges: Iterator[tuple[Any, str, Any, bool]]
    counted: bool  # whether this subschema counts towards the one below it on the stack
    size: int = 1
    height: int = 1
    key: int = field(init=False)

    def __post_init__(self) -> None:
        self.key = id(self.node)


def check_expansion(schema: Any, context: Any, edges: Edges, *, in_place: bool = False) -> int:
    """The expanded size of ``schema`` (see the module docstring), or a :class:`SchemaBudgetError`.

    ``edges`` counts every subschema, or (``in_place``) only those applying at the same place of the
    value, measured for every subschema against ``MAX_IN_PLACE_SUBSCHEMAS`` and
    ``MAX_IN_PLACE_DEPTH``. An iterative post-order walk of the reference graph: each subschema's
    size is computed once (``measured``, keyed by identity) and reused wherever another reference
    reaches it.
    """
    limit, budget = (MAX_IN_PLACE_SUBSCHEMAS, _IN_PLACE) if in_place else (MAX_EXPANDED_SUBSCHEMAS, _EXPANSION)
    if not isinstance(schema, dict):
        return 1
    measured: dict[int, tuple[int, int]] = {}  # id -> (size, height)
    on_path: set[int] = set()
    stack = [_Frame(schema, "", iter(edges(schema, "", context)), counted=False)]
    on_path.add(stack[0].key)
    while stack:
        frame = stack[-1]
        edge = next(frame.edges, None)
        if edge is None:
            stack.pop()
            on_path.discard(frame.key)
            measured[frame.key] = (frame.size, frame.height)
            if in_place and frame.height > MAX_IN_PLACE_DEPTH:
                over_budget(_IN_PLACE_DEPTH, MAX_IN_PLACE_DEPTH, frame.path,
                            f"the schema nests more than {MAX_IN_PLACE_DEPTH} subschemas at one place of the value "
                            "once its references are followed")
            if stack and frame.counted:
                _grow(stack[-1], frame.size, frame.height, limit, budget)
            continue
        child, path, child_context, counted = edge
        if isinstance(child, dict) and id(child) not in measured and id(child) not in on_path:
            stack.append(_Frame(child, path, iter(edges(child, path, child_context)), counted=counted))
            on_path.add(id(child))
        elif counted:  # a boolean schema, a measured subschema, or recursion (counted once)
            _grow(frame, *measured.get(id(child), (1, 1)), limit, budget)
    return measured[id(schema)][0]


def _grow(frame: _Frame, size: int, height: int, limit: int, budget: str) -> None:
    frame.height = max(frame.height, height + 1)
    frame.size += size
    if frame.size > limit:
        where = " at one place of the value" if budget == _IN_PLACE else ""
        over_budget(budget, limit, frame.path,
                    f"the schema expands to more than {limit:,} subschemas{where} once its references are followed")


# --- time ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def deadline(seconds: float = VALIDATION_DEADLINE_SECONDS) -> Iterator[None]:
    """Make every validator of :func:`bounded_validator_class` inside the block stop after ``seconds``.

    Nested blocks never extend an enclosing deadline: several validations inside one block share it.
    """
    limit, enclosing = time.monotonic() + seconds, _deadline.get()
    token = _deadline.set(limit if enclosing is None else min(limit, enclosing))
    try:
        yield
    finally:
        _deadline.reset(token)


def time_budget_message(seconds: float = VALIDATION_DEADLINE_SECONDS) -> str:
    """What to tell when :class:`_DeadlineExceeded` stopped a validation."""
    return f"validation took longer than {seconds:g} s and was stopped (budget: {_TIME})"


def _check_deadline() -> None:
    limit = _deadline.get()
    if limit is not None and time.monotonic() > limit:
        raise _DeadlineExceeded(time_budget_message())


@functools.cache
def bounded_validator_class(cls: type[Any]) -> type[Any]:
    """``cls`` (a jsonschema validator class) checking the :func:`deadline` before every keyword."""
    return extend(cls, {name: _bounded(fn) for name, fn in cls.VALIDATORS.items()})  # type: ignore[no-any-return]


def _bounded(keyword: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(keyword)
    def bounded(validator: Any, value: Any, instance: Any, schema: Any) -> Any:
        _check_deadline()
        return keyword(validator, value, instance, schema)

    return bounded


def escape(token: str) -> str:
    """``token`` escaped for a JSON Pointer (RFC 6901)."""
    return token.replace("~", "~0").replace("/", "~1")


def _number(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:g} s"
