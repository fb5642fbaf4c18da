"""Validation of chat-completions parameters: wire values in, a :class:`graphs.ChatRequest` out.

Every check runs before any model call and fails with a :class:`BadRequestError` naming the
parameter (``messages[2].role`` style paths for nested values).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from agent._contract import FIELDS
from agent._exceptions import BadRequestError
from graphs import ChatRequest, Message, SamplingParams, ToolCall, WebSearchMode

__all__ = ["ROLES", "WEB_SEARCH_VALUES", "build_request", "check_stream", "parse_messages"]

ROLES = ("system", "user", "assistant", "tool")
MESSAGE_FIELDS = {
    "system": ("role", "content", "name"),
    "user": ("role", "content", "name"),
    "assistant": ("role", "content", "name", "tool_calls"),
    "tool": ("role", "content", "tool_call_id", "name"),
}
# OpenAI clients echo back assistant messages with these set to null; null carries nothing to lose.
ECHOED_NULL_FIELDS = ("refusal", "function_call", "audio", "annotations", "tool_calls")
WEB_SEARCH_VALUES: dict[object, WebSearchMode] = {
    False: "off", None: "off", "false": "off", "auto": "auto", "force": "force", "images": "images",
}
_FLOATS = ("temperature", "top_p", "frequency_penalty", "presence_penalty")


def build_request(params: Mapping[str, Any]) -> ChatRequest:
    """Validate a request's fields (:data:`agent._contract.FIELDS`) and build the graph's request.

    An unknown field is refused by name; a missing or ``None`` optional field takes the contract's
    default (as in OpenAI's API, ``null`` means "the default"). Tools: see :mod:`agent._tool_params`.
    """
    from agent._response_format import parse_response_format  # owns the JSON-mode forms
    from agent._tool_params import parse_tool_choice, parse_tools

    values = _with_defaults(params)
    floats = {name: _number(name, values[name]) for name in _FLOATS}
    sampling = SamplingParams(max_tokens=_max_tokens(values["max_tokens"]), **floats)
    tool_config = dataclasses.replace(parse_tools(values["tools"]), choice=parse_tool_choice(values["tool_choice"]))
    _check_no_ops(values)
    return ChatRequest(
        model=_model(values["model"]),
        messages=parse_messages(values["messages"]),
        sampling=sampling,
        web_search=_web_search(values["web_search"]),
        response_format=parse_response_format(values["response_format"]),
        tools=tool_config,
    )


def check_stream(value: Any) -> bool:
    """The ``stream`` flag (None means the default, false)."""
    if value is None:
        return bool(FIELDS["stream"].default)
    if not isinstance(value, bool):
        raise BadRequestError(f"must be true or false, got {_describe(value)}", param="stream")
    return value


def _with_defaults(params: Mapping[str, Any]) -> dict[str, Any]:
    unknown = [name for name in params if name not in FIELDS]
    if unknown:
        raise BadRequestError(f"unknown parameter; accepted: {', '.join(FIELDS)}", param=str(unknown[0]))
    for name, param in FIELDS.items():
        if param.required and params.get(name) is None:
            raise BadRequestError("is required", param=name)
    return {name: param.default if params.get(name) is None else params[name] for name, param in FIELDS.items()}


def _check_no_ops(values: Mapping[str, Any]) -> None:
    """Fields accepted without effect are still type-checked: a wrong value is the caller's mistake."""
    if not isinstance(values["user"], str | None):
        raise BadRequestError(f"must be a string, got {_describe(values['user'])}", param="user")
    n = values["n"]
    if isinstance(n, bool) or n != 1:
        raise BadRequestError(f"must be 1 (one choice per request), got {_describe(n)}", param="n")
    options = values["stream_options"]
    if options is not None and not (isinstance(options, Mapping) and set(options) <= {"include_usage"}
                                    and isinstance(options.get("include_usage", False), bool)):
        raise BadRequestError('must be an object like {"include_usage": true}', param="stream_options")


def _describe(value: Any) -> str:
    """A short description of a bad value for an error message: JSON-ish values as they are, never an object repr."""
    if value is None or isinstance(value, bool | int | float | str):
        text = repr(value)
        return text if len(text) <= 80 else f"{text[:60]}…"
    return f"a value of type {type(value).__name__}"


def parse_messages(messages: Any) -> tuple[Message, ...]:
    """OpenAI-style message dicts to :class:`Message` objects, rejecting anything malformed."""
    if isinstance(messages, str | bytes | Mapping) or not isinstance(messages, Sequence):
        raise BadRequestError("must be a list of message objects", param="messages")
    if not messages:
        raise BadRequestError("must contain at least one message", param="messages")
    return tuple(_message(i, m) for i, m in enumerate(messages))


def _message(index: int, raw: Any) -> Message:
    where = f"messages[{index}]"
    if not isinstance(raw, Mapping):
        raise BadRequestError("must be an object with 'role' and 'content'", param=where)
    role = raw.get("role")
    if role not in ROLES:
        raise BadRequestError(f"role {role!r} is not one of {', '.join(ROLES)}", param=f"{where}.role")
    _check_fields(where, role, raw)
    tool_calls = _tool_calls(where, raw.get("tool_calls")) if role == "assistant" else ()
    content = _content(where, raw.get("content"), allow_none=bool(tool_calls))
    tool_call_id = raw.get("tool_call_id")
    if role == "tool" and not isinstance(tool_call_id, str):
        raise BadRequestError("tool messages need a string 'tool_call_id'", param=f"{where}.tool_call_id")
    name = raw.get("name")
    if name is not None and not isinstance(name, str):
        raise BadRequestError("must be a string", param=f"{where}.name")
    return Message(role=role, content=content, tool_calls=tool_calls,
                   tool_call_id=tool_call_id if role == "tool" else None, name=name)


def _check_fields(where: str, role: str, raw: Mapping[str, Any]) -> None:
    """Refuse fields this role cannot carry: nothing a caller sends is silently ignored."""
    allowed = MESSAGE_FIELDS[role]
    for key in raw:
        if key not in allowed and not (key in ECHOED_NULL_FIELDS and raw[key] is None):
            raise BadRequestError(f"is not a field of a {role} message (allowed: {', '.join(allowed)})",
                                  param=f"{where}.{key}")


def _content(where: str, content: Any, *, allow_none: bool) -> str:
    if content is None and allow_none:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and content:
        return "".join(_text_part(f"{where}.content[{i}]", p) for i, p in enumerate(content))
    raise BadRequestError("must be a string or a non-empty list of text parts", param=f"{where}.content")


def _text_part(where: str, part: Any) -> str:
    # Only text parts are supported; refusing others beats silently dropping an image.
    if isinstance(part, Mapping) and part.get("type") == "text" and isinstance(part.get("text"), str):
        return str(part["text"])
    kind = part.get("type") if isinstance(part, Mapping) else type(part).__name__
    raise BadRequestError(f"unsupported content part {kind!r}: only {{'type': 'text'}} parts are accepted",
                          param=where)


def _tool_calls(where: str, raw: Any) -> tuple[ToolCall, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise BadRequestError("must be a list", param=f"{where}.tool_calls")
    calls = []
    for i, call in enumerate(raw):
        fn = call.get("function") if isinstance(call, Mapping) else None
        if not (isinstance(fn, Mapping) and isinstance(call.get("id"), str) and isinstance(fn.get("name"), str)):
            raise BadRequestError("needs 'id' and 'function': {'name', 'arguments'}",
                                  param=f"{where}.tool_calls[{i}]")
        arguments = fn.get("arguments", "")
        if not isinstance(arguments, str):
            raise BadRequestError("must be a JSON string", param=f"{where}.tool_calls[{i}].function.arguments")
        calls.append(ToolCall(id=call["id"], name=fn["name"], arguments=arguments))
    return tuple(calls)


def _model(model: Any) -> str:
    if not isinstance(model, str) or not model.strip():
        raise BadRequestError("must be a non-empty string (see models.list())", param="model")
    return model


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadRequestError(f"must be a number, got {_describe(value)}", param=name)
    low, high = FIELDS[name].minimum, FIELDS[name].maximum
    assert low is not None and high is not None, "every float field has a range"
    if not low <= value <= high:
        raise BadRequestError(f"must be between {low:g} and {high:g}, got {value!r}", param=name)
    return float(value)


def _max_tokens(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequestError(f"must be an integer, got {_describe(value)}", param="max_tokens")
    if value < (FIELDS["max_tokens"].minimum or 1):
        raise BadRequestError(f"must be at least 1, got {value!r}", param="max_tokens")
    return value


def _web_search(value: Any) -> WebSearchMode:
    if isinstance(value, int | float) and not isinstance(value, bool):
        # 0 is not false here: only the documented values are accepted
        raise BadRequestError(f'must be false, "auto", "force" or "images", got {_describe(value)}', param="web_search")
    try:
        return WEB_SEARCH_VALUES[value]
    except (KeyError, TypeError):
        pass
    raise BadRequestError(f'must be false, "auto", "force" or "images", got {_describe(value)}', param="web_search")
