"""JSON mode as the graph sees it: the compiled schema to validate against and what decoding is asked for.

``agent`` builds a :class:`JsonFormat` from the request's ``response_format`` (every accepted form is
documented there); the graph validates outputs with ``validator`` and passes ``schema`` to backends
that constrain decoding, tightening or relaxing it after a failed attempt.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import pydantic

from tools import CompiledSchema, bound_for_decoding

__all__ = ["JsonFormat"]


@dataclass(frozen=True, slots=True)
class JsonFormat:
    """JSON mode, compiled: what the graph validates against and what backends are asked for.

    ``validator`` checks outputs against the caller's schema (for JSON-object mode,
    ``{"type": "object"}``). ``source`` is the caller's schema (None in JSON-object mode) and
    ``schema`` what constrained decoding gets: ``source`` as given, bounded after runaway attempts
    (``tightened`` counts them), or None when decoding is only asked for a JSON object. ``model`` is
    the pydantic class whose instance becomes ``message.parsed``.
    """

    validator: CompiledSchema
    schema: dict[str, Any] | None = None
    name: str = "response"
    description: str | None = None
    strict: bool | None = None
    model: type[pydantic.BaseModel] | None = None
    source: dict[str, Any] | None = None
    tightened: int = 0

    @property
    def enforced(self) -> bool:
        """Whether constrained decoding is asked to enforce the caller's schema (not just "JSON")."""
        return self.schema is not None

    def tighten(self) -> JsonFormat:
        """This format with arrays and free-text strings bounded for decoding, tighter on each call
        (:func:`tools.bound_for_decoding` at the next level). Validation is unchanged."""
        if not self.enforced or self.source is None:
            return self
        level = self.tightened + 1
        return dataclasses.replace(self, schema=bound_for_decoding(self.source, level), tightened=level)

    def unenforced(self) -> JsonFormat:
        """This format asking decoding for any JSON object only (the schema goes into the prompt).

        For re-asks after a backend that claims schema support produced no JSON at all: its schema
        constraint evidently did not hold (a grammar it could not build), so the re-ask gets the
        constraint it can keep. Validation is unchanged.
        """
        return dataclasses.replace(self, schema=None)
