"""The OpenAI chat-completions wire format: request bodies out, streamed or whole completions and
error bodies in. Pure translation between our typed objects (:mod:`graphs.model`) and OpenAI-shaped
JSON; the HTTP, retries and client lifetime live in :mod:`agent.models._openai`.
"""

from __future__ import annotations

import html
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from agent._exceptions import (
    APIConnectionError,
    APIError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    RateLimitError,
    UpstreamBadRequestError,
    UpstreamNotFoundError,
    UpstreamTooLargeError,
)
from agent.models._sse import MAX_SSE_EVENT_CHARS, MAX_SSE_LINE_CHARS, SSEDecoder, SSEEvent
from graphs import (
    Capabilities,
    Message,
    ModelRequest,
    ModelResult,
    SamplingParams,
    TextDelta,
    ToolCall,
    ToolSpec,
    Usage,
)

__all__ = [
    "MAX_ERROR_BODY_BYTES",
    "MAX_ERROR_MESSAGE_CHARS",
    "MAX_RESPONSE_BYTES",
    "MAX_STREAM_BYTES",
    "CompletionReader",
    "ResponseLimits",
    "chat_body",
    "encode_json",
    "html_page_message",
    "is_html",
    "too_large",
    "model_ids",
    "parse_json",
    "status_error",
]

#: How much of an upstream error message goes into ours.
MAX_ERROR_MESSAGE_CHARS = 1000
# --- Size caps on what an upstream may send us (a hostile or broken upstream must not exhaust memory) --
#: A whole JSON answer (a non-streamed completion, ``GET /models``).
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
#: A whole event stream: ~128k tokens at ~250 bytes of SSE framing each fit twice over.
MAX_STREAM_BYTES = 64 * 1024 * 1024
#: How much of an error status's body is read; only its message is used, the rest is discarded unread.
MAX_ERROR_BODY_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class ResponseLimits:
    """Size caps on an upstream's answers, in bytes (characters for the SSE ones); over a cap the
    call fails with :class:`~agent.UpstreamTooLargeError` naming it (a 502 at the HTTP edge)."""

    max_response_bytes: int = MAX_RESPONSE_BYTES
    max_stream_bytes: int = MAX_STREAM_BYTES
    max_sse_line_chars: int = MAX_SSE_LINE_CHARS
    max_sse_event_chars: int = MAX_SSE_EVENT_CHARS
    max_error_body_bytes: int = MAX_ERROR_BODY_BYTES

    def __post_init__(self) -> None:
        for name in self.__slots__:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise BadRequestError(f"must be a positive int, got {value!r}", param=name)


def too_large(limit_name: str, limit: int, what: str, status: int, attempt: int) -> UpstreamTooLargeError:
    """The error for an upstream answer past one of the :class:`ResponseLimits`."""
    message = f"upstream answer too large: {what} exceeds {limit_name} = {limit} bytes"
    return UpstreamTooLargeError(message, limit_name=limit_name, limit=limit, status_code=status, attempts=attempt)


_TITLE = re.compile(rb"<title[^>]*>(.*?)</title", re.IGNORECASE | re.DOTALL)
_HIDDEN = re.compile(rb"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(rb"<[^>]*>")
_HTML_START = (b"<!doctype", b"<html", b"<head", b"<body", b"<?xml", b"<!--")


def is_html(content_type: str, head: bytes | bytearray) -> bool:
    """Whether an answer is an HTML page (a proxy's error page, a login portal), by type or first bytes."""
    if "html" in content_type.lower():
        return True
    return head.lstrip()[:9].lower().startswith(_HTML_START)


def html_page_message(head: bytes) -> str:
    """What to say about an HTML page where JSON or SSE was expected: its ``<title>``, if any."""
    match = _TITLE.search(head)
    # Without a title, the page's first visible words (tags, scripts and styles dropped) say what it is.
    raw = match.group(1) if match else _TAG.sub(b" ", _HIDDEN.sub(b" ", head))
    title = " ".join(html.unescape(raw.decode("utf-8", "replace")).split())[:200]
    return f"the upstream answered an HTML page, not JSON/SSE: {title or '(no title)'}"


# --- Errors ------------------------------------------------------------------------------------------


def status_error(
    status: int, body: Any, attempt: int, retry_after: float | None = None, *, origin: str
) -> APIStatusError:
    """The :mod:`agent._exceptions` error for an upstream error status (or mid-stream error event)."""
    message, param = _error_details(body)
    where = f"{origin} {status}"
    said = f": {message}" if message else ""
    common: dict[str, Any] = {"status_code": status, "body": body, "attempts": attempt}
    if status in (400, 422):
        named = f" parameter {param!r}" if param else " the request"
        return UpstreamBadRequestError(f"upstream rejected{named} ({where}){said}", param=param, **common)
    if status in (401, 403):
        return AuthenticationError(f"upstream refused the API key ({where}){said}", **common)
    if status == 404:
        return UpstreamNotFoundError(f"upstream does not know this model or route ({where}){said}", **common)
    if status == 429:
        text = f"upstream rate limit ({where}) after {attempt} attempt(s){said}"
        return RateLimitError(text, retry_after=retry_after, **common)
    if status >= 500:
        text = f"upstream server error ({where}) after {attempt} attempt(s){said}"
        return InternalServerError(text, **common)
    return APIStatusError(f"upstream error ({where}){said}", **common)


def _error_details(body: Any) -> tuple[str | None, str | None]:
    """(message, param) from the error bodies servers use: OpenAI's, Ollama's, FastAPI's, plain text."""
    error = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(error, dict):
        message = error.get("message") or error.get("detail") or error.get("msg")
        param = error.get("param")
        if isinstance(message, list):  # FastAPI validation: [{"loc": [...], "msg": ...}, ...]
            message, param = _fastapi_details(message)
    else:
        message, param = error, None
    message = str(message).strip()[:MAX_ERROR_MESSAGE_CHARS] if message else None
    return message, (str(param) if param else None)


def _fastapi_details(items: list[Any]) -> tuple[str, str | None]:
    parts: list[str] = []
    params: list[str | None] = []
    for item in items:
        loc = [str(p) for p in _dict(item).get("loc", []) if p != "body"]
        params.append(loc[-1] if loc else None)
        parts.append(f"{'.'.join(loc)}: {_dict(item).get('msg', item)}" if loc else str(item))
    return "; ".join(parts), next((p for p in params if p), None)


def _malformed(what: str, raw: str, status: int, attempt: int) -> APIStatusError:
    return APIStatusError(
        f"upstream sent malformed {what}: {raw[:200]!r}", status_code=status, body=raw, attempts=attempt
    )


def parse_json(text: str, status: int, attempt: int) -> Any:
    """``text`` as JSON; an :class:`APIStatusError` carrying the text when it is not."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    try:  # what orjson refuses and json takes: NaN/Infinity, integers past 64 bits
        return json.loads(text)
    except ValueError:
        raise _malformed("JSON", text, status, attempt) from None


def encode_json(body: Any) -> bytes:
    """A request body as compact UTF-8 JSON (orjson; the json module for what orjson refuses)."""
    try:
        return orjson.dumps(body)
    except TypeError:  # orjson.JSONEncodeError: integers past 64 bits, non-str keys
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def model_ids(body: Any) -> list[str]:
    """The ids of a ``GET /models`` answer (``{"data": [{"id": ...}, ...]}``)."""
    items = body.get("data", []) if isinstance(body, dict) else body
    if not isinstance(items, list):
        return []
    return [str(item["id"]) for item in items if isinstance(item, dict) and "id" in item]


# --- Request body ------------------------------------------------------------------------------------


def chat_body(request: ModelRequest, capabilities: Capabilities, *, stream: bool = True) -> dict[str, Any]:
    """The OpenAI chat-completions request body for ``request``: streamed with usage in the last
    chunk, or (``stream=False``) asking for one JSON completion."""
    sampling = request.sampling
    body: dict[str, Any] = {
        "model": request.model,
        "messages": [_wire_message(message) for message in request.messages],
        "temperature": sampling.temperature,
        request.max_tokens_field: sampling.max_tokens,
        "top_p": sampling.top_p,
        "frequency_penalty": sampling.frequency_penalty,
        "presence_penalty": sampling.presence_penalty,
        "stream": stream,
        # OpenAI refuses stream_options on a non-streamed call.
        **({"stream_options": {"include_usage": True}} if stream else {}),
        **_optional_sampling(sampling),
        **dict(request.extra),
    }
    if request.tools and capabilities.tool_calling:
        body["tools"] = [_wire_tool(tool) for tool in request.tools]
        body["tool_choice"] = _wire_tool_choice(request.tool_choice, request.tools)
        if not request.parallel_tool_calls:
            body["parallel_tool_calls"] = False
    response_format = _response_format(request, capabilities)
    if response_format is not None:
        body["response_format"] = response_format
    return body


def swap_budget_field(body: dict[str, Any], error: APIError) -> bool:
    """After an upstream refused the output-budget field it was sent (``max_tokens`` on OpenAI's
    reasoning models, ``max_completion_tokens`` on servers that predate it), send the other one."""
    if not isinstance(error, UpstreamBadRequestError):
        return False
    sent = "max_tokens" if "max_tokens" in body else "max_completion_tokens"
    other = "max_completion_tokens" if sent == "max_tokens" else "max_tokens"
    mentioned = sent in (error.param or "") or sent in error.message
    if not mentioned or other in body:
        return False
    body[other] = body.pop(sent)
    return True


def _optional_sampling(sampling: SamplingParams) -> dict[str, Any]:
    """The sampling fields the caller set (unset ones are left to the upstream's defaults)."""
    fields: dict[str, Any] = {
        "stop": list(sampling.stop) or None,
        "seed": sampling.seed,
        "logit_bias": {str(token): bias for token, bias in sampling.logit_bias} or None,
        "logprobs": sampling.logprobs or None,
        "top_logprobs": sampling.top_logprobs,
        "top_k": sampling.top_k,
        "min_p": sampling.min_p,
        "repetition_penalty": sampling.repetition_penalty,
    }
    return {name: value for name, value in fields.items() if value is not None}


def _wire_message(message: Message) -> dict[str, Any]:
    wire: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.media:
        text: list[dict[str, Any]] = [{"type": "text", "text": message.content}] if message.content else []
        wire["content"] = [*text, *(dict(part.part) for part in message.media)]
    if message.tool_calls:
        # OpenAI wants null (not "") content beside tool calls.
        wire["content"] = message.content or None
        wire["tool_calls"] = [
            {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
            for call in message.tool_calls
        ]
    if message.tool_call_id is not None:
        wire["tool_call_id"] = message.tool_call_id
    if message.name is not None and message.role != "tool":  # tool messages have no `name` field
        wire["name"] = message.name
    return wire


def _wire_tool(tool: ToolSpec) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name, "description": tool.description, "parameters": tool.parameters}
    if tool.strict is not None:
        function["strict"] = tool.strict
    return {"type": "function", "function": function}


def _wire_tool_choice(choice: str, tools: tuple[ToolSpec, ...]) -> str | dict[str, Any]:
    if choice in ("auto", "none", "required"):
        return choice
    if choice not in {tool.name for tool in tools}:
        known = ", ".join(tool.name for tool in tools)
        raise BadRequestError(f"names no given tool: {choice!r} (tools: {known})", param="tool_choice")
    return {"type": "function", "function": {"name": choice}}


def _response_format(request: ModelRequest, capabilities: Capabilities) -> dict[str, Any] | None:
    if request.json_schema is not None and capabilities.json_schema:
        schema: dict[str, Any] = {"name": request.json_schema_name, "schema": request.json_schema,
                                  "strict": request.json_schema_strict}
        if request.json_schema_description is not None:
            schema["description"] = request.json_schema_description
        return {"type": "json_schema", "json_schema": schema}
    if (request.json_schema is not None or request.json_object) and capabilities.json_object:
        return {"type": "json_object"}
    return None


# --- Response body -----------------------------------------------------------------------------------


@dataclass(slots=True)
class _ToolCallParts:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class CompletionReader:
    """Turns the body of one 2xx chat-completions response into text deltas and a result.

    The body is SSE chunks or, from servers that ignore ``stream``, one JSON completion: the
    content type decides, or else the first non-blank byte (``{`` is JSON; SSE never starts so).
    """

    def __init__(
        self, attempt: int, redact: Callable[[str], str], limits: ResponseLimits | None = None
    ) -> None:
        self.started = False  # a token (text or tool-call delta) arrived: no retry from here on
        self._attempt = attempt
        self._redact = redact
        self._limits = limits = limits or ResponseLimits()
        self._status = 200
        self._mode: str | None = None  # "sse", "json" or "html" once known
        self._head = bytearray()  # bytes held while sniffing; the whole body in JSON mode
        self._received = 0
        self._sse = SSEDecoder(max_line_chars=limits.max_sse_line_chars, max_event_chars=limits.max_sse_event_chars)
        self._done = False  # saw `data: [DONE]`
        self._text: list[str] = []
        self._tools: dict[int, _ToolCallParts] = {}
        self._finish: str | None = None
        self._usage = Usage()
        self._logprobs: list[dict[str, Any]] = []

    def start(self, content_type: str, status: int) -> None:
        """The response head arrived: its content type may settle SSE vs. JSON early."""
        self._status = status
        if "event-stream" in content_type:
            self._mode = "sse"
        elif "json" in content_type:
            self._mode = "json"
        elif is_html(content_type, b""):
            self._mode = "html"

    def feed(self, chunk: bytes) -> list[TextDelta]:
        """The next piece of the body; returns the text deltas it completed."""
        self._count(len(chunk))
        if self._mode == "sse":  # the usual case first
            return self._events(chunk)
        if self._mode is None:
            self._head += chunk
            head = self._head.lstrip()
            if not head:
                return []
            self._mode = "json" if head.startswith(b"{") else "html" if is_html("", head) else "sse"
            if self._mode != "sse":
                return []
            chunk, self._head = bytes(self._head), bytearray()
        if self._mode == "html":
            self._head += chunk[: self._limits.max_error_body_bytes - len(self._head)]
            if len(self._head) >= self._limits.max_error_body_bytes or _TITLE.search(self._head):
                raise self._html_error()  # enough to say what it is; the rest is not read
            return []
        if self._mode == "json":
            self._head += chunk
            return []
        return self._events(chunk)

    def _events(self, chunk: bytes) -> list[TextDelta]:
        try:
            events = self._sse.feed(chunk)
        except UpstreamTooLargeError as exc:
            exc.status_code, exc.attempts = self._status, self._attempt
            raise
        return [delta for event in events if (delta := self._event(event)) is not None]

    def _count(self, size: int) -> None:
        self._received += size
        if self._mode == "sse" and self._received <= self._limits.max_stream_bytes:
            return  # the usual case, without working out which cap applies
        if self._mode == "json" or (self._mode is None and self._head.lstrip().startswith(b"{")):
            limit, name, what = self._limits.max_response_bytes, "max_response_bytes", "the JSON body"
        else:
            limit, name, what = self._limits.max_stream_bytes, "max_stream_bytes", "the event stream"
        if self._received > limit:
            self._head = bytearray()
            raise too_large(name, limit, what, self._status, self._attempt)

    def finish(self) -> list[TextDelta]:
        """The body ended: the text of a JSON completion, or an error if the stream was cut short."""
        if self._mode == "html":
            raise self._html_error()
        if self._mode == "json":
            return self._json_completion()
        self._sse.flush()  # an event without its closing blank line may be cut short: dropped
        if not (self._done or self._finish):
            raise APIConnectionError(
                "upstream closed the stream before the completion finished", attempts=self._attempt
            )
        return []

    def _html_error(self) -> APIStatusError:
        # A 2xx HTML page (a captive portal, a misrouted proxy) is a wrong address, not a broken
        # stream: APIStatusError with a 2xx status is not retried.
        message = self._redact(html_page_message(bytes(self._head)))
        return APIStatusError(message, status_code=self._status, body=message, attempts=self._attempt)

    def result(self) -> ModelResult:
        """Everything received, as the final :class:`ModelResult`."""
        calls = tuple(
            ToolCall(parts.id or f"call_{uuid.uuid4().hex[:24]}", parts.name, "".join(parts.arguments))
            for _, parts in sorted(self._tools.items())
        )
        finish = self._finish or ("tool_calls" if calls else "stop")
        return ModelResult("".join(self._text), finish, calls, self._usage, tuple(self._logprobs))

    def _event(self, event: SSEEvent) -> TextDelta | None:
        if self._done:
            return None  # drained after [DONE] so the connection can be reused
        if "[DONE]" in event.data and event.data.strip() == "[DONE]":
            self._done = True
            return None
        payload = parse_json(self._redact(event.data), self._status, self._attempt)
        if event.event == "error" or (isinstance(payload, dict) and "error" in payload):
            raise _event_error(payload, self._attempt)
        if not isinstance(payload, dict):
            raise _malformed("stream chunk", event.data, self._status, self._attempt)
        return self._chunk(payload)

    def _chunk(self, payload: dict[str, Any]) -> TextDelta | None:
        usage = payload.get("usage")
        if usage and isinstance(usage, dict):
            self._usage = _usage(usage)
        choice = _first_choice(payload)
        delta = _dict(choice.get("delta"))
        if "tool_calls" in delta:
            for tool_delta in _list(delta["tool_calls"]):
                self._tool_delta(_dict(tool_delta))
        if choice.get("finish_reason"):
            self._finish = str(choice["finish_reason"])
        if choice.get("logprobs"):  # most chunks have none (null or absent): no list to build
            self._logprobs += [e for e in _list(_dict(choice["logprobs"]).get("content")) if isinstance(e, dict)]
        text = delta.get("content")
        if not isinstance(text, str) or not text:
            return None
        self.started = True
        self._text.append(text)
        return TextDelta(text)

    def _tool_delta(self, delta: dict[str, Any]) -> None:
        # OpenAI: id and name in the first delta of a call, arguments spread over the following ones.
        index = delta.get("index")
        if not isinstance(index, int):
            index = self._index_for(delta.get("id"))
        parts = self._tools.setdefault(index, _ToolCallParts())
        parts.id = str(delta.get("id") or parts.id)
        function = _dict(delta.get("function"))
        parts.name = parts.name or str(function.get("name") or "")
        arguments = function.get("arguments")
        if arguments is not None:
            parts.arguments.append(arguments if isinstance(arguments, str) else json.dumps(arguments))
        self.started = True

    def _index_for(self, call_id: Any) -> int:
        # Servers that omit `index`: a new id starts a new call, anything else continues the last one.
        if not self._tools or (call_id and call_id not in {p.id for p in self._tools.values()}):
            return max(self._tools, default=-1) + 1
        return max(self._tools)

    def _json_completion(self) -> list[TextDelta]:
        raw = self._redact(self._head.decode("utf-8", "replace"))
        payload = parse_json(raw, self._status, self._attempt)
        if not isinstance(payload, dict):
            raise _malformed("completion", raw, self._status, self._attempt)
        if "error" in payload:
            raise _event_error(payload, self._attempt)
        if isinstance(payload.get("usage"), dict):
            self._usage = _usage(payload["usage"])
        choice = _first_choice(payload)
        message = _dict(choice.get("message"))
        for index, call in enumerate(_list(message.get("tool_calls"))):
            self._tool_delta({**_dict(call), "index": index})
        self._finish = str(choice.get("finish_reason") or "") or None
        self._logprobs += [e for e in _list(_dict(choice.get("logprobs")).get("content")) if isinstance(e, dict)]
        text = message.get("content")
        if not isinstance(text, str) or not text:
            return []
        self.started = True
        self._text.append(text)
        return [TextDelta(text)]


def _event_error(payload: Any, attempt: int) -> APIStatusError:
    """An error the upstream reported inside a 2xx body; its own ``code``/``status`` is used when it
    is an HTTP status, else it counts as a server failure (500)."""
    error = _dict(payload).get("error", payload)
    status = 500
    for key in ("code", "status", "status_code"):
        value = _dict(error).get(key)
        if isinstance(value, int | str) and str(value).isdigit() and 400 <= int(value) <= 599:
            status = int(value)
            break
    return status_error(status, payload, attempt, origin="stream error")


def _first_choice(payload: dict[str, Any]) -> dict[str, Any]:
    # We ask for one choice (no `n`); anything beyond index 0 is not ours to merge.
    choices = payload.get("choices")
    if type(choices) is list and choices:
        first = choices[0]  # the usual case, checked without a loop
        if type(first) is dict and first.get("index", 0) == 0:
            return first
    for choice in _list(choices):
        if isinstance(choice, dict) and choice.get("index", 0) == 0:
            return choice
    return {}


def _usage(raw: dict[str, Any]) -> Usage:
    return Usage(_count(raw.get("prompt_tokens")), _count(raw.get("completion_tokens")))


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
