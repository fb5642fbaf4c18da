"""The ``messages`` parameter: OpenAI-style message dicts in, the graph's :class:`graphs.Message` out.

Accepted, besides the ``system`` / ``user`` / ``assistant`` / ``tool`` roles:

* ``developer`` (OpenAI's newer name for instructions): becomes a ``system`` turn, the role every
  backend knows.
* the deprecated ``function`` role (a function result): becomes a ``tool`` turn answering the most
  recent ``function_call`` of that name, which becomes a tool call.
* content as a string or a list of parts: ``text`` parts are joined; ``image_url``, ``input_audio``
  and ``file`` parts of user turns travel on to models that take them (an upstream; a local
  text-only model refuses them, naming the part); ``refusal`` parts of an echoed assistant turn are
  kept as text.
* any assistant message OpenAI or this API returns, sent back as is: ``annotations``, ``refusal``,
  ``audio``, ``parsed`` and the other response-only fields carry nothing the next turn needs and
  are not passed to the model.

Anything else is a :class:`BadRequestError` whose ``param`` is the path (``messages[2].role``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agent._exceptions import BadRequestError
from graphs import MediaPart, Message, ToolCall

__all__ = ["ROLES", "describe", "parse_messages"]

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
MESSAGE_FIELDS = {
    "system": ("role", "content", "name"),
    "developer": ("role", "content", "name"),
    "user": ("role", "content", "name"),
    "assistant": ("role", "content", "name", "tool_calls", "function_call"),
    "tool": ("role", "content", "tool_call_id", "name"),
    "function": ("role", "content", "name"),
}
#: Fields of a returned assistant message that are accepted back and not passed to the model.
RESPONSE_ONLY_FIELDS = ("refusal", "annotations", "audio", "parsed", "reasoning_content", "reasoning")
_IMAGE_DETAILS = ("auto", "low", "high")
#: Non-text parts a user turn may carry, and the shape each holds (passed on to models that take them).
MEDIA_PARTS = {"image_url": '{"url", "detail"?}', "input_audio": '{"data", "format"}',
               "file": '{"file_id"} or {"file_data", "filename"}'}


def parse_messages(messages: Any) -> tuple[Message, ...]:
    """OpenAI-style message dicts to :class:`Message` objects, rejecting anything malformed."""
    if isinstance(messages, str | bytes | Mapping) or not isinstance(messages, Sequence):
        raise BadRequestError("must be a list of message objects", param="messages")
    if not messages:
        raise BadRequestError("must contain at least one message", param="messages")
    parsed: list[Message] = []
    for index, raw in enumerate(messages):
        parsed.append(_message(index, raw, parsed))
    return tuple(parsed)


def _message(index: int, raw: Any, earlier: list[Message]) -> Message:
    where = f"messages[{index}]"
    if not isinstance(raw, Mapping):
        raise BadRequestError("must be an object with 'role' and 'content'", param=where)
    role = raw.get("role")
    if role not in ROLES:
        raise BadRequestError(f"role {describe(role)} is not one of {', '.join(ROLES)}", param=f"{where}.role")
    _check_fields(where, role, raw)
    name = _optional_str(raw.get("name"), f"{where}.name")
    if role == "assistant":
        return _assistant(where, raw, name, index)
    content, media = _content(where, raw.get("content"), allow_media=role == "user")
    if role == "function":
        return Message(role="tool", content=content, tool_call_id=_function_call_id(earlier, name, where), name=name)
    if role == "tool":
        tool_call_id = raw.get("tool_call_id")
        if not isinstance(tool_call_id, str):
            raise BadRequestError("tool messages need a string 'tool_call_id'", param=f"{where}.tool_call_id")
        return Message(role="tool", content=content, tool_call_id=tool_call_id, name=name)
    return Message(role="system" if role == "developer" else role, content=content, name=name, media=media)


def _assistant(where: str, raw: Mapping[str, Any], name: str | None, index: int) -> Message:
    calls = _tool_calls(where, raw.get("tool_calls"))
    if raw.get("function_call") is not None:
        calls = (*calls, _legacy_call(where, raw["function_call"], index))
    content = raw.get("content")
    text = "" if content is None else _content(where, content, allow_media=False)[0]
    return Message(role="assistant", content=text, tool_calls=calls, name=name)


def _check_fields(where: str, role: str, raw: Mapping[str, Any]) -> None:
    """Refuse fields this role cannot carry: nothing a caller sends is silently ignored."""
    allowed = MESSAGE_FIELDS[role]
    for key in raw:
        if key in allowed or (role == "assistant" and key in RESPONSE_ONLY_FIELDS):
            continue
        raise BadRequestError(f"is not a field of a {role} message (allowed: {', '.join(allowed)})",
                              param=f"{where}.{key}")


def _content(where: str, content: Any, *, allow_media: bool) -> tuple[str, tuple[MediaPart, ...]]:
    if isinstance(content, str):
        return content, ()
    if isinstance(content, list) and content:
        texts: list[str] = []
        media: list[MediaPart] = []
        for i, part in enumerate(content):
            _part(f"{where}.content[{i}]", part, texts, media, allow_media=allow_media)
        return "".join(texts), tuple(media)
    raise BadRequestError("must be a string or a non-empty list of content parts", param=f"{where}.content")


def _part(where: str, part: Any, texts: list[str], media: list[MediaPart], *, allow_media: bool) -> None:
    kind = part.get("type") if isinstance(part, Mapping) else None
    if kind in ("text", "refusal") and isinstance(part.get(kind), str):
        texts.append(part[kind])
    elif isinstance(kind, str) and kind in MEDIA_PARTS and allow_media:  # a list as type cannot be looked up
        _check_media(where, kind, part)
        media.append(MediaPart(kind=kind, part=dict(part), param=where))
    else:
        shown = describe(kind) if isinstance(part, Mapping) else f"a {type(part).__name__}"
        accepted = f"text, {', '.join(MEDIA_PARTS)} parts" if allow_media else "text parts"
        raise BadRequestError(f"unsupported content part {shown}: this message accepts {accepted}", param=where)


def _check_media(where: str, kind: str, part: Mapping[str, Any]) -> None:
    body = part.get(kind)
    if not isinstance(body, Mapping):
        raise BadRequestError(f"must be an object ({MEDIA_PARTS[kind]})", param=f"{where}.{kind}")
    if kind == "image_url":
        if not isinstance(body.get("url"), str) or not body["url"]:
            raise BadRequestError('must be {"url": "https://… or data:…"}', param=f"{where}.image_url")
        if body.get("detail") is not None and body["detail"] not in _IMAGE_DETAILS:
            raise BadRequestError(f"must be one of {', '.join(_IMAGE_DETAILS)}", param=f"{where}.image_url.detail")


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


def _legacy_call(where: str, raw: Any, index: int) -> ToolCall:
    """A deprecated ``function_call`` as a tool call, with an id the ``function`` result can find."""
    name = raw.get("name") if isinstance(raw, Mapping) else None
    arguments = raw.get("arguments", "") if isinstance(raw, Mapping) else None
    if not isinstance(name, str) or not isinstance(arguments, str):
        raise BadRequestError("must be {'name': ..., 'arguments': '<JSON text>'}", param=f"{where}.function_call")
    return ToolCall(id=f"call_fn_{index}_{name}", name=name, arguments=arguments)


def _function_call_id(earlier: list[Message], name: str | None, where: str) -> str:
    if name is None:
        raise BadRequestError("function messages need the 'name' of the function", param=f"{where}.name")
    for message in reversed(earlier):
        for call in message.tool_calls:
            if call.name == name:
                return call.id
    raise BadRequestError(f"answers no earlier function_call of {name!r}", param=f"{where}.name")


def _optional_str(value: Any, where: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise BadRequestError("must be a string", param=where)
    return value


def describe(value: Any) -> str:
    """A bad value for an error message: JSON-ish values as they are (shortened), never an object repr."""
    if value is None or isinstance(value, bool | int | float | str):
        text = repr(value)
        return text if len(text) <= 80 else f"{text[:60]}…"
    return f"a value of type {type(value).__name__}"
