"""The server's OpenAPI 3.1 document (served at ``/openapi.json``).

The request schema comes from the request contract (:func:`agent._contract.request_schema`) with the
server's limits, so it says exactly what is accepted (``additionalProperties: false``); the shapes
of messages, tools and response formats are written here from the same names the validators use.
"""

from __future__ import annotations

from typing import Any

from agent._contract import request_schema
from agent._params import ROLES
from agent._tool_params import MAX_TOOLS
from agent.server._limits import ServerLimits
from agent.server._responses_doc import responses_paths, responses_schemas
from graphs import BUILTIN_TOOLS
from tools import TOOL_NAME_PATTERN

__all__ = ["openapi_document"]

_ERROR_STATUSES = {
    "400": "A parameter is missing or invalid (`param` names it), or the body is not a JSON object.",
    "401": "Missing or invalid API key.",
    "403": "No API key is configured and the Host header is not a loopback name.",
    "404": "Unknown model (the message lists the available ones).",
    "408": "The request headers or body did not arrive in time; the connection is closed.",
    "413": "The request body is larger than the limit.",
    "415": "The body is not sent as `application/json`.",
    "422": "JSON mode: the model's output never validated.",
    "429": "Too many requests waiting for a generation slot, or the upstream rate-limited us (`Retry-After`).",
    "431": "The request headers are over the size or count limit; the connection is closed.",
    "502": "The upstream model server failed or could not be reached, or a toolset could not list its tools.",
    "503": "No generation slot became free in time, too many open connections, or the server is shutting "
           "down (`Retry-After`).",
    "504": "The upstream model server timed out.",
}


def openapi_document(limits: ServerLimits) -> dict[str, Any]:
    """The OpenAPI document for a server enforcing ``limits``."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "studiolm-agent",
            "version": "1",
            "description": "The studiolm chat-completions API (OpenAI-compatible) with web search, "
                           "JSON mode and streamed steps.",
        },
        "paths": {
            "/v1/chat/completions": {"post": _chat_operation()},
            "/v1/models": {"get": _models_operation()},
            "/health": {"get": _health_operation()},
            "/v1/health": {"get": _health_operation()},
            **responses_paths(),
        },
        "components": {
            "schemas": {
                "ChatCompletionRequest": _request_schema(limits),
                "Message": _message_schema(),
                "Error": _error_schema(),
                **responses_schemas(limits),
            },
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _chat_operation() -> dict[str, Any]:
    return {
        "operationId": "createChatCompletion",
        "summary": "Create a chat completion (a stream of Server-Sent Events when `stream` is true)",
        "security": [{"bearer": []}, {}],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ChatCompletionRequest"}}},
        },
        "responses": {
            "200": {
                "description": "A `chat.completion` object, or with `stream` an event stream of "
                               "`chat.completion.chunk` objects ending in `data: [DONE]`.",
                "content": {
                    "application/json": {"schema": {"type": "object", "required": ["id", "object", "choices"]}},
                    "text/event-stream": {"schema": {"type": "string"}},
                },
            },
            **_errors(_ERROR_STATUSES),
        },
    }


def _models_operation() -> dict[str, Any]:
    model = {"type": "object", "required": ["id", "object"],
             "properties": {"id": {"type": "string"}, "object": {"const": "model"}}}
    return {
        "operationId": "listModels",
        "summary": "The models this server serves",
        "security": [{"bearer": []}, {}],
        "responses": {
            "200": {"description": "A list of models.", "content": {"application/json": {"schema": {
                "type": "object", "required": ["object", "data"],
                "properties": {"object": {"const": "list"}, "data": {"type": "array", "items": model}},
            }}}},
            **_errors({k: v for k, v in _ERROR_STATUSES.items() if k in ("401", "403", "429", "502", "504")}),
        },
    }


def _health_operation() -> dict[str, Any]:
    return {
        "summary": "Liveness check (no API key needed)",
        "responses": {
            "200": {"description": "The server is up.", "content": {"application/json": {"schema": {
                "type": "object", "properties": {"status": {"const": "ok"}}}}}},
            **_errors({"403": _ERROR_STATUSES["403"]}),
        },
    }


def _errors(statuses: dict[str, str]) -> dict[str, Any]:
    body = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    return {status: {"description": text, "content": body} for status, text in statuses.items()}


def _request_schema(limits: ServerLimits) -> dict[str, Any]:
    schema = request_schema(max_messages=limits.max_messages, max_tokens=limits.max_tokens)
    # The contract names these shapes; they are written out here, inline, where clients look for them.
    for name, shape in (("tools", _tools_schema()), ("response_format", _response_format_schema())):
        prop = schema["properties"][name]
        schema["properties"][name] = {**shape, "description": prop["description"]}
    return schema


def _response_format_schema() -> dict[str, Any]:
    return {"oneOf": [
        {"const": "json"},
        {"type": "object", "required": ["type"], "properties": {"type": {"enum": ["text", "json_object"]}}},
        {"type": "object", "required": ["type", "json_schema"], "properties": {
            "type": {"const": "json_schema"},
            "json_schema": {"type": "object", "required": ["schema"], "properties": {
                "name": {"type": "string"}, "schema": {"type": "object"}, "strict": {"type": "boolean"}}},
        }},
        {"type": "null"},
    ]}


def _tools_schema() -> dict[str, Any]:
    function = {"type": "object", "required": ["name"], "additionalProperties": False, "properties": {
        "name": {"type": "string", "pattern": TOOL_NAME_PATTERN.pattern},
        "description": {"type": "string"},
        "parameters": {"type": "object", "description": "A JSON schema of the arguments."},
        "strict": {"type": ["boolean", "null"]},
    }}
    return {
        "type": ["array", "null"],
        "maxItems": MAX_TOOLS,
        "description": "Built-in tools by name (run by the server) and OpenAI function tools (their calls come "
                       'back as `tool_calls` with `finish_reason: "tool_calls"`).',
        "items": {"oneOf": [
            {"enum": list(BUILTIN_TOOLS)},
            {"type": "object", "required": ["type"], "additionalProperties": False,
             "properties": {"type": {"enum": list(BUILTIN_TOOLS)}}},
            {"type": "object", "required": ["type", "function"], "additionalProperties": False,
             "properties": {"type": {"const": "function"}, "function": function}},
        ]},
    }


def _message_schema() -> dict[str, Any]:
    text_part = {"type": "object", "required": ["type", "text"],
                 "properties": {"type": {"const": "text"}, "text": {"type": "string"}}}
    content = {"oneOf": [{"type": "string"}, {"type": "array", "minItems": 1, "items": text_part}]}
    tool_call = {"type": "object", "required": ["id", "type", "function"], "properties": {
        "id": {"type": "string"}, "type": {"const": "function"},
        "function": {"type": "object", "required": ["name", "arguments"],
                     "properties": {"name": {"type": "string"}, "arguments": {"type": "string"}}}}}
    return {"oneOf": [
        {"type": "object", "required": ["role", "content"], "properties": {
            "role": {"enum": [r for r in ROLES if r not in ("assistant", "tool")]}, "content": content,
            "name": {"type": "string"}}},
        {"type": "object", "required": ["role"], "properties": {
            "role": {"const": "assistant"}, "content": {"oneOf": [*content["oneOf"], {"type": "null"}]},
            "tool_calls": {"type": "array", "items": tool_call}, "name": {"type": "string"}}},
        {"type": "object", "required": ["role", "content", "tool_call_id"], "properties": {
            "role": {"const": "tool"}, "content": content, "tool_call_id": {"type": "string"}}},
    ]}


def _error_schema() -> dict[str, Any]:
    nullable = {"type": ["string", "null"]}
    return {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["message", "type", "param", "code"],
        "properties": {"message": {"type": "string"}, "type": {"type": "string"},
                       "param": nullable, "code": nullable}}}}
