"""The ``response_format`` parameter: every accepted form, checked and compiled before any model call.

Accepted forms:

* ``None`` or ``{"type": "text"}`` — plain text (JSON mode off).
* ``"json"`` (studiolm's JSON mode) or ``{"type": "json_object"}`` (OpenAI's) — any JSON object.
* ``{"type": "json_schema", "json_schema": {"name": ..., "schema": {...}, "strict": ..., "description": ...}}``
  — OpenAI's shape; ``name`` is required (1 to 64 of ``a-zA-Z0-9_-``, as OpenAI requires, so a request
  that works here works upstream), ``schema`` is a JSON Schema (Draft 2020-12 unless its
  ``$schema`` says otherwise).
* In the Python SDK, a pydantic ``BaseModel`` subclass: its ``model_json_schema()`` is the schema,
  and the response's ``message.parsed`` is the validated model instance.

Anything else is a :class:`BadRequestError` naming ``response_format`` (or the nested field), and so
is a schema that fails its metaschema or is refused by :func:`tools.compile_schema` (remote ``$ref``,
over the size bounds…), with the JSON Pointer of the problem in the message.

How many times an invalid output is sent back to the model is a client-wide budget,
``ChatLimits.max_reasks`` (default 2 re-asks, so at most 3 attempts), not part of this parameter.

What backends that constrain decoding are asked for (validation always uses the caller's schema):

* First attempt: the caller's schema as given, except length and item bounds above 1000 (llama.cpp
  grammars blow up on them and no token budget reaches them).
* After an attempt cut off by ``max_tokens`` (a small model looping in an array or a string under
  its grammar): :meth:`JsonFormat.tighten`, the schema with unbounded arrays and free-text strings
  bounded (:func:`tools.bound_for_decoding`: 8 items and 128 characters, halved after each further
  runaway). Bounding from the start would make a capable model cut long lists short, silently.
* After an attempt that was no JSON at all although the backend claims schema support (llama.cpp
  could not turn the schema into a grammar and generated freely): :meth:`JsonFormat.unenforced`,
  any JSON object, with the schema in the prompt.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

import pydantic

from graphs import JsonFormat
from tools import TOOL_NAME_PATTERN, BadRequestError, SchemaError, bound_for_decoding, compile_schema

__all__ = ["parse_response_format"]

_JSON_SCHEMA_KEYS = {"name", "schema", "strict", "description"}
# JSON-object mode is validated like any schema: this one.
_ANY_OBJECT: dict[str, Any] = {"type": "object"}
_FORMS = (
    '"json", {"type": "json_object"}, {"type": "json_schema", "json_schema": {"name": ..., "schema": {...}}}, '
    '{"type": "text"} or a pydantic model class'
)


def parse_response_format(value: Any) -> JsonFormat | None:
    """The compiled JSON-mode spec for a ``response_format`` value (None for plain text)."""
    if value is None:
        return None
    if isinstance(value, type) and issubclass(value, pydantic.BaseModel):
        return _from_pydantic(value)
    if value == "json":
        return JsonFormat(validator=compile_schema(_ANY_OBJECT))
    if not isinstance(value, Mapping):
        raise BadRequestError(f"must be one of {_FORMS}; got {_describe(value)}", param="response_format")
    kind = value.get("type")
    if kind == "text" and set(value) == {"type"}:
        return None
    if kind == "json_object" and set(value) == {"type"}:
        return JsonFormat(validator=compile_schema(_ANY_OBJECT))
    if kind == "json_schema":
        return _from_json_schema(value)
    extra = sorted(set(value) - {"type"})
    if kind in ("text", "json_object") and extra:
        raise BadRequestError(f"unexpected field {extra[0]!r} for type {kind!r}", param=f"response_format.{extra[0]}")
    raise BadRequestError(f"type must be 'text', 'json_object' or 'json_schema', got {kind!r}",
                          param="response_format.type")


def _from_json_schema(value: Mapping[str, Any]) -> JsonFormat:
    extra = sorted(set(value) - {"type", "json_schema"})
    if extra:
        raise BadRequestError(f"unexpected field {extra[0]!r}", param=f"response_format.{extra[0]}")
    spec = value.get("json_schema")
    where = "response_format.json_schema"
    if not isinstance(spec, Mapping):
        raise BadRequestError("must be an object with 'name' and 'schema'", param=where)
    unknown = sorted(set(spec) - _JSON_SCHEMA_KEYS)
    if unknown:
        raise BadRequestError(f"unexpected field {unknown[0]!r} (allowed: {', '.join(sorted(_JSON_SCHEMA_KEYS))})",
                              param=f"{where}.{unknown[0]}")
    name = spec.get("name")
    if not isinstance(name, str) or not TOOL_NAME_PATTERN.match(name):
        raise BadRequestError(f"must be 1-64 characters of a-z, A-Z, 0-9, '_' or '-', got {name!r}",
                              param=f"{where}.name")
    strict = spec.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise BadRequestError(f"must be true, false or null, got {strict!r}", param=f"{where}.strict")
    description = spec.get("description")
    if description is not None and not isinstance(description, str):
        raise BadRequestError(f"must be a string, got {description!r}", param=f"{where}.description")
    schema = spec.get("schema")
    if schema is None:  # optional in OpenAI's shape: any JSON object, under the caller's name
        return JsonFormat(validator=compile_schema(_ANY_OBJECT), name=name, description=description, strict=strict)
    if not isinstance(schema, Mapping):
        raise BadRequestError(f"must be a JSON Schema object, got {_describe(schema)}", param=f"{where}.schema")
    return _compiled(dict(schema), f"{where}.schema", name=name, description=description, strict=strict)


def _from_pydantic(model: type[pydantic.BaseModel]) -> JsonFormat:
    try:
        schema = model.model_json_schema()
    except pydantic.PydanticUserError as exc:  # e.g. a field type with no JSON schema
        raise BadRequestError(f"{model.__name__} has no JSON schema: {exc}", param="response_format") from exc
    name = re.sub(r"[^a-zA-Z0-9_-]", "_", model.__name__)[:64]
    return _compiled(schema, "response_format", name=name, description=None, strict=None, model=model)


def _compiled(schema: dict[str, Any], param: str, **fields: Any) -> JsonFormat:
    try:
        validator = compile_schema(schema)
    except SchemaError as exc:
        raise BadRequestError(str(exc), param=param) from exc
    own = copy.deepcopy(schema)  # nothing mutates it; the copy only guards against the caller doing so
    return JsonFormat(validator=validator, schema=bound_for_decoding(own), source=own, **fields)


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"a {type(value).__name__} ({text[:60]}…)"
