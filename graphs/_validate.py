"""JSON mode: the validate node and its re-ask router (interim: JSON parse only; schema support lands with issue 3)."""

from __future__ import annotations

import json
from typing import Any, Literal

from langgraph.config import get_stream_writer

from agent._exceptions import OutputValidationError
from graphs._events import ValidationFailed, ValidationPassed
from graphs._state import ChatState

__all__ = ["route_after_validate", "validate"]


async def validate(state: ChatState) -> dict[str, Any]:
    """Check the model's output is JSON."""
    result = state.get("result")
    text = result.content if result is not None else ""
    attempt = len(state.get("validation", [])) + 1
    try:
        parsed = json.loads(text)
    except ValueError as exc:
        errors = ({"path": "", "message": f"invalid JSON: {exc}"},)
        get_stream_writer()(ValidationFailed(attempt=attempt, errors=errors, will_retry=False))
        raise OutputValidationError("the model's output is not valid JSON", attempts=[text]) from exc
    get_stream_writer()(ValidationPassed(attempt=attempt))
    return {"validation": [{"attempt": attempt, "valid": True}], "parsed": parsed, "answer": text}


def route_after_validate(state: ChatState) -> Literal["generate", "finish"]:
    """Finish once valid."""
    return "finish"
