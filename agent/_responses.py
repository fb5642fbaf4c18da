"""The Responses API request (``POST /v1/responses``, ``client.responses.create``) onto the chat graph.

A Responses request becomes a chat-completions request for the same graph: ``input`` items become
messages, ``instructions`` a system message in front, ``max_output_tokens`` is ``max_tokens``,
``text.format`` is ``response_format``, the flat function tools get OpenAI's chat shape, and
``{"type": "web_search"}`` (or ``web_search_preview`` and their dated names) is the built-in
``web_search`` tool, so the model decides when to search (``web_search="auto"``);
``tool_choice={"type": "web_search"}`` always searches first (``web_search="force"``). Validation is
the chat request's (:func:`agent._params.build_request`), with the errors naming the Responses field.

Every field of OpenAI's request is accepted under the rule of the chat API (:data:`FIELDS` says how
each is handled): applied; a documented no-op; or, where a value cannot be honoured, a 400 naming it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Required, TypedDict

from agent._exceptions import BadRequestError
from agent._params import build_request
from graphs import ChatRequest

__all__ = ["FIELDS", "INCLUDABLE", "ParsedResponsesRequest", "ResponseCreateParams", "input_messages",
           "parse_responses_request", "to_chat_request"]

Handling = Literal["applied", "no-op", "unsupported"]

#: Every field of OpenAI's Responses request: how it is handled here, and what it does.
FIELDS: Mapping[str, tuple[Handling, str]] = {
    "model": ("applied", "The model id (required)."),
    "input": ("applied", "A string (one user message) or a list of input items."),
    "instructions": ("applied", "A system message put first; not carried over by previous_response_id."),
    "max_output_tokens": ("applied", "The most tokens the answer may use (chat's max_tokens)."),
    "temperature": ("applied", "Sampling temperature, 0-2 (default 0.7, as chat completions)."),
    "top_p": ("applied", "Nucleus sampling mass, 0-1."),
    "tools": ("applied", "web_search / web_search_preview (search_context_size: 3, 5 or 8 results per search), "
              "flat function tools, and (SDK) Python tools."),
    "tool_choice": ("applied", '"auto", "none", "required", {"type": "function", "name"}, {"type": "web_search"}.'),
    "text": ("applied", 'text.format: {"type": "text" | "json_object" | "json_schema", ...}; verbosity: no-op.'),
    "metadata": ("applied", "Up to 16 string pairs, echoed in the response and stored with it."),
    "store": ("applied", "Keep the response for GET /v1/responses/{id} and previous_response_id (default true)."),
    "previous_response_id": ("applied", "Continue the conversation of a stored response."),
    "include": ("applied", '"web_search_call.action.sources" lists the sources; the other values are no-ops.'),
    "stream": ("applied", "Stream semantic events (server-sent events)."),
    "parallel_tool_calls": ("no-op", "Echoed; the model may return several function calls either way."),
    "max_tool_calls": ("no-op", "Echoed; the graph bounds its own tool rounds (ChatLimits)."),
    "user": ("no-op", "An end-user id; changes nothing."),
    "safety_identifier": ("no-op", "An end-user id; changes nothing."),
    "prompt_cache_key": ("no-op", "Prompt caching hint; changes nothing."),
    "prompt_cache_retention": ("no-op", "Prompt caching hint; changes nothing."),
    "prompt_cache_options": ("no-op", "Prompt caching hint; changes nothing."),
    "service_tier": ("no-op", "Echoed; there is one tier."),
    "stream_options": ("no-op", "Accepted; events are never obfuscated."),
    "truncation": ("no-op", '"disabled" or "auto": the conversation is never truncated.'),
    "reasoning": ("no-op", "Reasoning effort/summary: the models served here do not reason separately."),
    "moderation": ("no-op", "Accepted; no moderation runs."),
    "access_programs": ("no-op", "Accepted; changes nothing."),
    "top_logprobs": ("unsupported", "Log probabilities are not available: only 0 or null."),
    "background": ("unsupported", "Background runs are not supported: only false or null."),
    "background_options": ("unsupported", "Background runs are not supported: only null."),
    "conversation": ("unsupported", "Conversations objects are not supported (use previous_response_id)."),
    "prompt": ("unsupported", "Stored prompt templates are not supported."),
    "context_management": ("unsupported", "Server-side compaction is not supported."),
    "image": ("unsupported", "Image generation options are not supported."),
}

#: ``include`` values OpenAI documents (only the first changes anything here).
INCLUDABLE = (
    "web_search_call.action.sources", "web_search_call.results", "message.output_text.logprobs",
    "reasoning.encrypted_content", "file_search_call.results", "code_interpreter_call.outputs",
    "computer_call_output.output.image_url", "message.input_image.image_url",
)
#: Metadata bounds (OpenAI's): pairs, key length, value length.
MAX_METADATA_PAIRS, MAX_METADATA_KEY, MAX_METADATA_VALUE = 16, 64, 512
_WEB_SEARCH = re.compile(r"^web_search(_preview)?(_\d{4}_\d{2}_\d{2})?$")
_WEB_SEARCH_OPTIONS = {"type", "search_context_size", "user_location", "external_web_access"}
_ROLES = {"user": "user", "system": "system", "developer": "system", "assistant": "assistant"}
_TEXT_PARTS = ("input_text", "output_text", "refusal")


class ResponseCreateParams(TypedDict, total=False):
    """The fields of ``responses.create`` (see :data:`FIELDS`); ``stream`` is the method's own argument."""

    model: Required[str]
    input: str | Sequence[Mapping[str, Any]]
    instructions: str | None
    max_output_tokens: int | None
    temperature: float | None
    top_p: float | None
    tools: Sequence[Any] | None
    tool_choice: str | Mapping[str, Any] | None
    text: Mapping[str, Any] | None
    metadata: Mapping[str, str] | None
    store: bool | None
    previous_response_id: str | None
    include: Sequence[str] | None
    parallel_tool_calls: bool | None
    max_tool_calls: int | None
    user: str | None
    safety_identifier: str | None
    prompt_cache_key: str | None
    prompt_cache_retention: str | None
    prompt_cache_options: Mapping[str, Any] | None
    service_tier: str | None
    stream_options: Mapping[str, Any] | None
    truncation: str | None
    reasoning: Mapping[str, Any] | None
    moderation: Any
    access_programs: Any
    top_logprobs: int | None
    background: bool | None
    background_options: Any
    conversation: Any
    prompt: Any
    context_management: Any
    image: Any


@dataclass(slots=True)
class ParsedResponsesRequest:
    """A checked Responses request: the chat fields for the graph, and what the response echoes."""

    chat: dict[str, Any]
    instructions: str | None
    input_messages: list[dict[str, Any]]
    store: bool
    previous_response_id: str | None
    include: frozenset[str]
    echo: dict[str, Any] = field(default_factory=dict)


def parse_responses_request(params: Mapping[str, Any]) -> ParsedResponsesRequest:
    """Check every field that is not the chat request's (those are checked by :func:`to_chat_request`)."""
    unknown = [name for name in params if name not in FIELDS]
    if unknown:
        raise BadRequestError(f"unknown parameter; accepted: {', '.join(FIELDS)}", param=str(unknown[0]))
    _check_unsupported(params)
    instructions = params.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise BadRequestError("must be a string", param="instructions")
    previous = params.get("previous_response_id")
    if previous is not None and not (isinstance(previous, str) and previous):
        raise BadRequestError("must be a response id", param="previous_response_id")
    tools, mode, size = _tools(params.get("tools"))
    choice, forced = _tool_choice(params.get("tool_choice"))
    chat = {"model": params.get("model"), "temperature": params.get("temperature"), "top_p": params.get("top_p"),
            "max_tokens": params.get("max_output_tokens"), "tools": tools, "tool_choice": choice,
            "response_format": _text_format(params.get("text")), "web_search": "force" if forced else mode or False,
            "web_search_options": {"search_context_size": size} if size else None}
    return ParsedResponsesRequest(
        chat=chat, instructions=instructions, input_messages=input_messages(params.get("input")),
        store=_flag(params, "store", default=True), previous_response_id=previous,
        include=_include(params.get("include")), echo=_echo(params))


def to_chat_request(parsed: ParsedResponsesRequest, history: Sequence[Mapping[str, Any]] = ()) -> ChatRequest:
    """The graph's request: instructions, the stored conversation, then this request's input."""
    system = [{"role": "system", "content": parsed.instructions}] if parsed.instructions else []
    messages = [*system, *history, *parsed.input_messages]
    try:
        return build_request({**parsed.chat, "messages": messages})
    except BadRequestError as exc:
        raise _renamed(exc) from None


def _renamed(exc: BadRequestError) -> BadRequestError:
    """The chat field's error, naming the Responses field the value came from."""
    param = exc.param or ""
    detail = str(exc).removeprefix(f"{param}: ")
    for chat_name, ours in (("max_tokens", "max_output_tokens"), ("response_format.json_schema", "text.format"),
                            ("response_format", "text.format"), ("messages", "input")):
        if param.startswith(chat_name):
            return BadRequestError(detail, param=ours + param[len(chat_name):])
    return BadRequestError(detail, param=re.sub(r"^(tools\[\d+\])\.function", r"\1", param) or None)


def _check_unsupported(params: Mapping[str, Any]) -> None:
    for name, (handling, doc) in FIELDS.items():
        value = params.get(name)
        if handling == "unsupported" and value not in (None, False, 0):
            raise BadRequestError(doc, param=name)
    for name in ("parallel_tool_calls", "store"):
        _flag(params, name, default=True)
    for name in ("user", "safety_identifier", "prompt_cache_key", "service_tier", "truncation"):
        if not isinstance(params.get(name), str | None):
            raise BadRequestError("must be a string", param=name)
    if params.get("truncation") not in (None, "auto", "disabled"):
        raise BadRequestError('must be "auto" or "disabled"', param="truncation")


def _flag(params: Mapping[str, Any], name: str, *, default: bool) -> bool:
    value = params.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise BadRequestError("must be true or false", param=name)
    return value


def _echo(params: Mapping[str, Any]) -> dict[str, Any]:
    """Request fields a response repeats as sent (with OpenAI's defaults)."""
    metadata = params.get("metadata")
    if metadata is not None:
        _check_metadata(metadata)
    tools = params.get("tools")
    text = params.get("text") or {}
    return {"instructions": params.get("instructions"), "max_output_tokens": params.get("max_output_tokens"),
            "tool_choice": _echoed_choice(params.get("tool_choice")),
            "tools": [dict(t) for t in tools if isinstance(t, Mapping)] if isinstance(tools, Sequence) else [],
            "text": {"format": {"type": "text"}, **_plain_format(text)}, "store": _flag(params, "store", default=True),
            "previous_response_id": params.get("previous_response_id"), "top_logprobs": 0,
            "metadata": dict(metadata or {}), "parallel_tool_calls": _flag(params, "parallel_tool_calls", default=True),
            "max_tool_calls": params.get("max_tool_calls"), "user": params.get("user"),
            "service_tier": params.get("service_tier") or "default",
            "truncation": params.get("truncation") or "disabled",
            "reasoning": params.get("reasoning"), "safety_identifier": params.get("safety_identifier"),
            "prompt_cache_key": params.get("prompt_cache_key")}


def _plain_format(text: Mapping[str, Any]) -> dict[str, Any]:
    # SDK callers may pass a pydantic model as text.format; the response echoes its JSON form.
    form = text.get("format") if isinstance(text, Mapping) else None
    if isinstance(form, type) and hasattr(form, "model_json_schema"):
        return {**text, "format": {"type": "json_schema", "name": form.__name__, "schema": form.model_json_schema()}}
    return dict(text) if isinstance(text, Mapping) else {}


def _echoed_choice(choice: Any) -> Any:
    # OpenAI's typed clients know forced search only as web_search_preview (they warn on the others).
    kind = choice.get("type") if isinstance(choice, Mapping) else None
    if isinstance(kind, str) and _WEB_SEARCH.match(kind):
        return {"type": "web_search_preview"}
    return choice or "auto"


def _check_metadata(metadata: Any) -> None:
    if not isinstance(metadata, Mapping) or len(metadata) > MAX_METADATA_PAIRS:
        raise BadRequestError(f"must be an object of at most {MAX_METADATA_PAIRS} string pairs", param="metadata")
    for key, value in metadata.items():
        if not (isinstance(key, str) and len(key) <= MAX_METADATA_KEY and isinstance(value, str)
                and len(value) <= MAX_METADATA_VALUE):
            raise BadRequestError(f"keys up to {MAX_METADATA_KEY} and string values up to {MAX_METADATA_VALUE} "
                                  "characters", param=f"metadata.{key}")


def _include(value: Any) -> frozenset[str]:
    if value is None:
        return frozenset()
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise BadRequestError("must be a list of strings", param="include")
    for index, item in enumerate(value):
        if item not in INCLUDABLE:
            raise BadRequestError(f"unknown value {item!r}; accepted: {', '.join(INCLUDABLE)}",
                                  param=f"include[{index}]")
    return frozenset(value)


# --- tools, tool_choice, text.format ---------------------------------------------------------------


def _tools(tools: Any) -> tuple[Any, str | None, str | None]:
    """The chat ``tools`` list (same positions, so errors name the right index), the search mode and the
    web search tool's ``search_context_size``."""
    if tools is None or isinstance(tools, str | bytes | Mapping) or not isinstance(tools, Sequence):
        return tools, None, None  # None, or a mistake build_request names
    converted: list[Any] = []
    mode = size = None
    for index, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, Mapping) else None
        if isinstance(kind, str) and _WEB_SEARCH.match(kind):
            _check_web_search(f"tools[{index}]", tool)
            converted.append("web_search")
            mode, size = "auto", tool.get("search_context_size") or size
        elif kind == "function" and isinstance(tool, Mapping) and "function" not in tool:
            converted.append({"type": "function", "function": {k: v for k, v in tool.items() if k != "type"}})
        else:
            converted.append(tool)
    return converted, mode, size


def _check_web_search(where: str, tool: Mapping[str, Any]) -> None:
    # search_context_size sets the results per search (as the chat field); user_location and
    # external_web_access are accepted no-ops (one search backend, no location). filters (allowed
    # domains) cannot be honoured silently.
    extra = sorted(set(tool) - _WEB_SEARCH_OPTIONS)
    if extra:
        raise BadRequestError("not supported by this server's web search", param=f"{where}.{extra[0]}")
    size = tool.get("search_context_size")
    if size not in (None, "low", "medium", "high"):
        raise BadRequestError('must be "low", "medium" or "high"', param=f"{where}.search_context_size")


def _tool_choice(value: Any) -> tuple[Any, bool]:
    """The chat ``tool_choice`` and whether a search is forced."""
    if not isinstance(value, Mapping):
        return value, False
    kind = value.get("type")
    if isinstance(kind, str) and _WEB_SEARCH.match(kind):
        return None, True
    if kind == "function" and "function" not in value:
        if set(value) - {"type", "name"}:
            raise BadRequestError('must be {"type": "function", "name": "..."}', param="tool_choice")
        return {"type": "function", "function": {"name": value.get("name")}}, False
    if kind == "function":
        return value, False
    raise BadRequestError(f"tool choice type {kind!r} is not supported here: use \"auto\", \"none\", \"required\", "
                          '{"type": "function", "name": ...} or {"type": "web_search"}', param="tool_choice")


def _text_format(text: Any) -> Any:
    """``text.format`` as a chat ``response_format`` (the JSON-schema form nests one level deeper)."""
    if text is None:
        return None
    if not isinstance(text, Mapping) or set(text) - {"format", "verbosity"}:
        extra = sorted(set(text) - {"format", "verbosity"}) if isinstance(text, Mapping) else []
        raise BadRequestError('must be an object like {"format": {...}}', param=f"text.{extra[0]}" if extra else "text")
    if text.get("verbosity") not in (None, "low", "medium", "high"):
        raise BadRequestError('must be "low", "medium" or "high"', param="text.verbosity")
    form = text.get("format")
    if isinstance(form, Mapping) and form.get("type") == "json_schema":
        return {"type": "json_schema", "json_schema": {k: v for k, v in form.items() if k != "type"}}
    return form


# --- input items ------------------------------------------------------------------------------------


def input_messages(value: Any) -> list[dict[str, Any]]:
    """``input`` as chat-format message dicts (consecutive function calls join one assistant message)."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if value is None or isinstance(value, bytes | Mapping) or not isinstance(value, Sequence):
        raise BadRequestError("must be a string or a list of input items", param="input")
    messages: list[dict[str, Any]] = []
    for index, item in enumerate(value):
        where = f"input[{index}]"
        if not isinstance(item, Mapping):
            raise BadRequestError("must be an input item object", param=where)
        kind = item.get("type", "message")
        if kind == "message":
            messages.append(_message(where, item))
        elif kind == "function_call":
            _add_call(messages, _function_call(where, item))
        elif kind == "function_call_output":
            messages.append(_function_output(where, item))
        elif kind == "web_search_call":
            continue  # echoed back: the answer message that follows it carries its results
        else:
            raise BadRequestError(f"input item type {kind!r} is not supported (message, function_call, "
                                  "function_call_output, web_search_call)", param=f"{where}.type")
    return messages


def _message(where: str, item: Mapping[str, Any]) -> dict[str, Any]:
    extra = sorted(set(item) - {"type", "role", "content", "id", "status", "phase"})
    if extra:
        raise BadRequestError("is not a field of a message item", param=f"{where}.{extra[0]}")
    given = item.get("role")
    role = _ROLES.get(given) if isinstance(given, str) else None  # a list as role cannot be looked up
    if role is None:
        raise BadRequestError(f"role must be one of {', '.join(_ROLES)}", param=f"{where}.role")
    return {"role": role, "content": _text(f"{where}.content", item.get("content"))}


def _text(where: str, content: Any) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise BadRequestError("must be a string or a list of content parts", param=where)
    texts = []
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, Mapping) else None
        text = part.get("text", part.get("refusal")) if isinstance(part, Mapping) else None
        if kind not in _TEXT_PARTS or not isinstance(text, str):
            raise BadRequestError(f"unsupported content part {kind!r}: only text parts ({', '.join(_TEXT_PARTS)}) "
                                  "are accepted", param=f"{where}[{index}]")
        texts.append(text)
    return "".join(texts)


def _function_call(where: str, item: Mapping[str, Any]) -> dict[str, Any]:
    for name in ("call_id", "name", "arguments"):
        if not isinstance(item.get(name), str):
            raise BadRequestError("must be a string", param=f"{where}.{name}")
    function = {"name": item["name"], "arguments": item["arguments"]}
    return {"id": item["call_id"], "type": "function", "function": function}


def _add_call(messages: list[dict[str, Any]], call: dict[str, Any]) -> None:
    last = messages[-1] if messages else None
    if last is not None and last["role"] == "assistant":
        last.setdefault("tool_calls", []).append(call)
    else:
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _function_output(where: str, item: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(item.get("call_id"), str):
        raise BadRequestError("must be a string", param=f"{where}.call_id")
    return {"role": "tool", "tool_call_id": item["call_id"], "content": _text(f"{where}.output", item.get("output"))}
