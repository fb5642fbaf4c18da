"""The ``response_format`` parameter (interim: JSON object mode; schema forms land with issue 3)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent._exceptions import BadRequestError

__all__ = ["JsonFormat", "parse_response_format"]


@dataclass(frozen=True, slots=True)
class JsonFormat:
    """JSON mode: any JSON object (``schema`` None) or one matching ``schema``."""

    schema: dict[str, Any] | None = None
    name: str = "response"


def parse_response_format(value: Any) -> JsonFormat | None:
    """``None``/``{"type": "text"}`` → plain text; ``"json"``/``{"type": "json_object"}`` → JSON mode."""
    if value is None or value == {"type": "text"}:
        return None
    if value in ("json", {"type": "json_object"}):
        return JsonFormat()
    raise BadRequestError(
        f'must be "json", {{"type": "json_object"}} or {{"type": "json_schema", ...}}, got {value!r}',
        param="response_format",
    )
