"""The chat-completions request contract: one typed model, the single source of truth.

:class:`CompletionCreateParams` is a ``TypedDict`` whose every field carries a :class:`Param` (doc,
default, range, wire schema, how it is handled). Everything else is derived from it:

* the SDK signature: ``create(*, stream=..., **params: Unpack[CompletionCreateParamsBase])``, so a
  type checker and an IDE see every field with its type;
* validation (:mod:`agent._params`): the accepted names, the defaults and the numeric ranges;
* the HTTP server's field handling: a body is these fields, nothing else;
* the OpenAPI document's request schema (:func:`request_schema`).

``tests/test_contract.py`` proves the four agree. Defaults of the sampling parameters are
:class:`graphs.SamplingParams`'s, so they are written once, where the graph uses them.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Required, TypedDict

import pydantic

from graphs import SamplingParams
from tools import TOOL_NAME_PATTERN, Toolset

__all__ = [
    "FIELDS",
    "MAX_CHOICES",
    "REQUIRED",
    "AssistantMessageParam",
    "CompletionCreateParams",
    "CompletionCreateParamsBase",
    "FunctionDefinitionParam",
    "FunctionToolParam",
    "Handling",
    "MessageParam",
    "Param",
    "SystemMessageParam",
    "TextPartParam",
    "ToolCallParam",
    "ToolChoiceParam",
    "ToolMessageParam",
    "ToolParam",
    "UserMessageParam",
    "WebSearchParam",
    "request_schema",
]

#: How a field takes effect: applied by the graph/backends, forwarded to upstreams as sent, or
#: accepted and documented as changing nothing here.
Handling = Literal["applied", "forwarded", "no-op"]
_DEFAULTS = SamplingParams()


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


#: The default of a field that has none: it must be sent.
REQUIRED: Any = _Required()


@dataclass(frozen=True, slots=True)
class Param:
    """One request field's contract: its doc, default, numeric range and wire schema."""

    doc: str
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    #: The JSON schema of the wire value (the OpenAPI document); range and default are added to it.
    schema: Mapping[str, Any] = field(default_factory=dict)
    handling: Handling = "applied"

    @property
    def required(self) -> bool:
        """Whether the field has no default."""
        return self.default is REQUIRED


# --- the typed message and tool shapes (the SDK's parameter types) ----------------------------------


class TextPartParam(TypedDict):
    """A text content part."""

    type: Literal["text"]
    text: str


Content = str | Sequence[TextPartParam]


class SystemMessageParam(TypedDict, total=False):
    """A system message."""

    role: Required[Literal["system"]]
    content: Required[Content]
    name: str


class UserMessageParam(TypedDict, total=False):
    """A user message."""

    role: Required[Literal["user"]]
    content: Required[Content]
    name: str


class ToolCallFunctionParam(TypedDict):
    """The function a tool call names, and the JSON text of its arguments."""

    name: str
    arguments: str


class ToolCallParam(TypedDict):
    """A tool call in an assistant message."""

    id: str
    type: Literal["function"]
    function: ToolCallFunctionParam


class AssistantMessageParam(TypedDict, total=False):
    """An assistant message (one the API returned may be sent back as is)."""

    role: Required[Literal["assistant"]]
    content: Content | None
    name: str
    tool_calls: Sequence[ToolCallParam]


class ToolMessageParam(TypedDict, total=False):
    """A tool result, answering the tool call ``tool_call_id``."""

    role: Required[Literal["tool"]]
    content: Required[Content]
    tool_call_id: Required[str]
    name: str


MessageParam = SystemMessageParam | UserMessageParam | AssistantMessageParam | ToolMessageParam


class FunctionDefinitionParam(TypedDict, total=False):
    """OpenAI's function definition."""

    name: Required[str]
    description: str
    parameters: Mapping[str, Any]
    strict: bool | None


class FunctionToolParam(TypedDict):
    """OpenAI's function tool: the caller runs it (its calls come back as ``tool_calls``)."""

    type: Literal["function"]
    function: FunctionDefinitionParam


class _NamedFunction(TypedDict):
    name: str


class NamedToolChoiceParam(TypedDict):
    """Force one tool."""

    type: Literal["function"]
    function: _NamedFunction


BuiltinToolName = Literal["web_search", "image_search", "local_search"]
#: A tool: a built-in name, OpenAI's function tool, or (SDK only) a Python function or a Toolset.
ToolParam = BuiltinToolName | FunctionToolParam | Mapping[str, Any] | Toolset | typing.Callable[..., Any]
ToolChoiceParam = Literal["auto", "none", "required"] | NamedToolChoiceParam
WebSearchParam = Literal[False, "false", "auto", "force", "images"] | None
ResponseFormatParam = Literal["json"] | Mapping[str, Any] | type[pydantic.BaseModel] | None


class _StreamOptions(TypedDict, total=False):
    include_usage: bool
    include_obfuscation: bool


# --- the contract ----------------------------------------------------------------------------------

_NULLABLE_NUMBER = {"type": ["number", "null"]}
_NULLABLE_INTEGER = {"type": ["integer", "null"]}
_NULLABLE_BOOLEAN = {"type": ["boolean", "null"]}
_NULLABLE_STRING = {"type": ["string", "null"]}
_NULLABLE_OBJECT = {"type": ["object", "null"]}
_NUMBER = functools.partial(Param, schema=_NULLABLE_NUMBER)
_FORWARDED = functools.partial(Param, handling="forwarded")
#: The most answers one request may ask for (``n``): each is a full generation.
MAX_CHOICES = 8
_TOOL_NAME = TOOL_NAME_PATTERN.pattern


class CompletionCreateParamsBase(TypedDict, total=False):
    """Every ``chat.completions.create`` parameter except ``stream`` (the SDK's ``**params``).

    studiolm's own fields, then every field of OpenAI's current chat-completions request, then the
    sampler extras of llama.cpp and vLLM. ``handling`` says how each takes effect (see the README).
    """

    model: Required[Annotated[str, Param(
        "The model id (see models.list() / GET /v1/models).", REQUIRED,
        schema={"type": "string", "minLength": 1, "pattern": r"\S"})]]
    messages: Required[Annotated[Sequence[MessageParam], Param(
        "The conversation so far.", REQUIRED,
        schema={"type": "array", "minItems": 1, "items": {"$ref": "#/components/schemas/Message"}})]]
    temperature: Annotated[float | None, _NUMBER(
        "Sampling temperature.", _DEFAULTS.temperature, 0.0, 2.0)]
    max_tokens: Annotated[int | None, Param(
        "The most tokens one answer may use.", _DEFAULTS.max_tokens, 1, schema=_NULLABLE_INTEGER)]
    max_completion_tokens: Annotated[int | None, Param(
        "OpenAI's newer name for max_tokens (give one, or both with the same value).", None, 1,
        schema=_NULLABLE_INTEGER)]
    top_p: Annotated[float | None, _NUMBER("Nucleus sampling mass.", _DEFAULTS.top_p, 0.0, 1.0)]
    frequency_penalty: Annotated[float | None, _NUMBER(
        "Penalty on tokens by how often they appeared.", _DEFAULTS.frequency_penalty, -2.0, 2.0)]
    presence_penalty: Annotated[float | None, _NUMBER(
        "Penalty on tokens that appeared at all.", _DEFAULTS.presence_penalty, -2.0, 2.0)]
    web_search: Annotated[WebSearchParam, Param(
        'Web search: false (off), "auto" (the model decides), "force" (always), "images".', False,
        schema={"enum": [False, "false", "auto", "force", "images", None]})]
    web_search_options: Annotated[Mapping[str, Any] | None, Param(
        'OpenAI\'s search options: search_context_size ("low" | "medium" | "high") sets how many results '
        "the model reads (3 / 5 / 8); user_location is accepted and changes nothing.",
        schema={"type": ["object", "null"], "additionalProperties": False, "properties": {
            "search_context_size": {"enum": ["low", "medium", "high"]},
            "user_location": {"type": ["object", "null"]}}})]
    response_format: Annotated[ResponseFormatParam, Param(
        'JSON mode: "json", {"type": "json_object"}, {"type": "json_schema", ...} or (SDK) a pydantic model.',
        schema={"type": ["string", "object", "null"]})]
    tools: Annotated[Sequence[ToolParam] | None, Param(
        "Built-in tools by name, OpenAI function tools, and (SDK) Python functions or toolsets.",
        schema={"type": ["array", "null"]})]
    tool_choice: Annotated[ToolChoiceParam | Mapping[str, Any] | None, Param(
        '"auto", "none", "required", {"type": "function", "function": {"name": ...}} or {"type": '
        '"allowed_tools", "allowed_tools": {"mode": "auto" | "required", "tools": [...]}}.', "auto",
        schema={"oneOf": [
            {"enum": ["auto", "none", "required", None]},
            {"type": "object", "required": ["type", "function"], "additionalProperties": False, "properties": {
                "type": {"const": "function"},
                "function": {"type": "object", "required": ["name"],
                             "properties": {"name": {"type": "string", "pattern": _TOOL_NAME}}}}},
            {"type": "object", "required": ["type", "allowed_tools"], "properties": {
                "type": {"const": "allowed_tools"}, "allowed_tools": {"type": "object"}}},
        ]})]
    parallel_tool_calls: Annotated[bool | None, Param(
        "false: at most one tool call per model turn.", True, schema=_NULLABLE_BOOLEAN)]
    functions: Annotated[Sequence[FunctionDefinitionParam] | None, Param(
        "OpenAI's deprecated form of tools (function definitions); mapped onto tools.",
        schema={"type": ["array", "null"], "items": {"type": "object", "required": ["name"]}})]
    function_call: Annotated[Literal["auto", "none"] | _NamedFunction | None, Param(
        "OpenAI's deprecated form of tool_choice; mapped onto tool_choice.",
        schema={"oneOf": [{"enum": ["auto", "none", None]},
                          {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}]})]
    stop: Annotated[str | Sequence[str] | None, Param(
        "Up to 4 sequences where the answer stops (not included in it).",
        schema={"oneOf": [{"type": ["string", "null"]},
                          {"type": "array", "maxItems": 4, "items": {"type": "string"}}]})]
    seed: Annotated[int | None, Param(
        "A fixed sampling seed, for reproducible answers.", schema=_NULLABLE_INTEGER)]
    logit_bias: Annotated[Mapping[str, float] | None, Param(
        "Token id (as a string) -> bias from -100 to 100 added to its logit.",
        schema={"type": ["object", "null"], "additionalProperties": {"type": "number", "minimum": -100,
                                                                     "maximum": 100}})]
    logprobs: Annotated[bool | None, Param(
        "Return the log probability of each answer token (choices[0].logprobs).", False,
        schema=_NULLABLE_BOOLEAN)]
    top_logprobs: Annotated[int | None, Param(
        "With logprobs: this many most likely alternatives per token (0-20).", None, 0, 20,
        schema=_NULLABLE_INTEGER)]
    n: Annotated[int | None, Param(
        "How many answers to generate (one search, n generations).", 1, 1, MAX_CHOICES,
        schema=_NULLABLE_INTEGER)]
    stream_options: Annotated[_StreamOptions | None, Param(
        '{"include_usage": true}: one extra chunk with "choices": [] and the usage before [DONE].',
        schema={"type": ["object", "null"], "additionalProperties": False, "properties": {
            "include_usage": {"type": "boolean"}, "include_obfuscation": {"type": "boolean"}}})]
    top_k: Annotated[int | None, Param(
        "Sample from the k most likely tokens (llama.cpp, vLLM).", None, 0, schema=_NULLABLE_INTEGER)]
    min_p: Annotated[float | None, Param(
        "Drop tokens less likely than min_p times the top one (llama.cpp, vLLM).", None, 0.0, 1.0,
        schema=_NULLABLE_NUMBER)]
    repetition_penalty: Annotated[float | None, Param(
        "Penalty on repeated tokens, 1.0 = none (llama.cpp, vLLM).", None, 0.0, 2.0, schema=_NULLABLE_NUMBER)]
    # --- OpenAI fields that concern OpenAI's own service: passed to upstreams, no effect locally ---
    store: Annotated[bool | None, _FORWARDED("Store the completion (OpenAI).", schema=_NULLABLE_BOOLEAN)]
    metadata: Annotated[Mapping[str, str] | None, _FORWARDED(
        "Up to 16 string key-value pairs attached to a stored completion (OpenAI).",
        schema={"type": ["object", "null"], "maxProperties": 16,
                "additionalProperties": {"type": "string", "maxLength": 512}})]
    service_tier: Annotated[str | None, _FORWARDED(
        "OpenAI's processing tier.", schema={"enum": ["auto", "default", "flex", "scale", "priority", "fast", None]})]
    reasoning_effort: Annotated[str | None, _FORWARDED(
        "Effort of reasoning models.", schema={"enum": ["none", "minimal", "low", "medium", "high", "xhigh", None]})]
    verbosity: Annotated[str | None, _FORWARDED(
        "Answer length hint of newer OpenAI models.", schema={"enum": ["low", "medium", "high", None]})]
    modalities: Annotated[Sequence[str] | None, _FORWARDED(
        'Output modalities: ["text"] (and "audio" upstream where supported).',
        schema={"type": ["array", "null"], "items": {"enum": ["text", "audio"]}})]
    audio: Annotated[Mapping[str, Any] | None, _FORWARDED(
        "Audio output options (OpenAI audio models).", schema=_NULLABLE_OBJECT)]
    prediction: Annotated[Mapping[str, Any] | None, _FORWARDED(
        "Predicted output, for faster regeneration (OpenAI).", schema=_NULLABLE_OBJECT)]
    prompt_cache_key: Annotated[str | None, _FORWARDED("Prompt-cache bucket key (OpenAI).", schema=_NULLABLE_STRING)]
    prompt_cache_retention: Annotated[str | None, _FORWARDED(
        "Prompt-cache retention (OpenAI).", schema={"enum": ["in_memory", "24h", None]})]
    prompt_cache_options: Annotated[Mapping[str, Any] | None, _FORWARDED(
        "Prompt-cache options (OpenAI).", schema=_NULLABLE_OBJECT)]
    safety_identifier: Annotated[str | None, _FORWARDED(
        "A stable end-user id for abuse detection (OpenAI).", schema=_NULLABLE_STRING)]
    moderation: Annotated[Mapping[str, Any] | None, _FORWARDED(
        "Moderation policy (OpenAI).", schema=_NULLABLE_OBJECT)]
    user: Annotated[str | None, _FORWARDED("An end-user id (OpenAI; deprecated).", schema=_NULLABLE_STRING)]


class CompletionCreateParams(CompletionCreateParamsBase, total=False):
    """The whole request body of ``POST /v1/chat/completions``."""

    stream: Annotated[bool | None, Param(
        "Stream the answer and every step as chunks.", False, schema={"type": ["boolean", "null"]})]


def _fields() -> dict[str, Param]:
    hints = typing.get_type_hints(CompletionCreateParams, include_extras=True)
    return {name: _param(hint) for name, hint in hints.items()}


def _param(hint: Any) -> Param:
    while typing.get_origin(hint) is Required:
        hint = typing.get_args(hint)[0]
    return next(m for m in getattr(hint, "__metadata__", ()) if isinstance(m, Param))


#: Every field of the request, in declaration order, with its contract.
FIELDS: Mapping[str, Param] = _fields()


def request_schema(*, max_messages: int, max_tokens: int) -> dict[str, Any]:
    """The JSON schema of a request body (the server's bounds on messages and tokens added)."""
    properties = {name: _property(param) for name, param in FIELDS.items()}
    properties["messages"]["maxItems"] = max_messages
    properties["max_tokens"]["maximum"] = max_tokens
    required = [name for name, param in FIELDS.items() if param.required]
    return {"type": "object", "required": required, "additionalProperties": False, "properties": properties}


def _property(param: Param) -> dict[str, Any]:
    schema: dict[str, Any] = {**param.schema, "description": param.doc}
    if param.minimum is not None:
        schema["minimum"] = param.minimum
    if param.maximum is not None:
        schema["maximum"] = param.maximum
    if not param.required and param.default is not None:
        schema["default"] = param.default
    return schema
