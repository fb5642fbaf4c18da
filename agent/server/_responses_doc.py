"""The Responses API's part of the OpenAPI document: ``/v1/responses`` and ``/v1/responses/{id}``.

The request schema lists every field of :data:`agent._responses.FIELDS` with how it is handled.
"""

from __future__ import annotations

from typing import Any

from agent._responses import FIELDS
from agent.server._limits import ServerLimits

__all__ = ["responses_paths", "responses_schemas"]

_JSON = "application/json"
_ERROR = {"content": {_JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}}
_RESPONSE = {"type": "object", "required": ["id", "object", "status", "output"], "properties": {
    "id": {"type": "string"}, "object": {"const": "response"},
    "status": {"enum": ["completed", "incomplete", "failed", "in_progress"]},
    "output": {"type": "array", "items": {"type": "object", "required": ["type"], "properties": {
        "type": {"enum": ["message", "web_search_call", "function_call"]}}}}}}


def responses_schemas(limits: ServerLimits) -> dict[str, Any]:
    """Components: the request body (every OpenAI field, with its handling) and the response object."""
    properties: dict[str, Any] = {name: {"description": f"({handling}) {doc}"}
                                  for name, (handling, doc) in FIELDS.items()}
    properties["model"].update(type="string", minLength=1)
    properties["input"].update(oneOf=[{"type": "string"},
                                      {"type": "array", "maxItems": limits.max_messages, "items": {"type": "object"}}])
    properties["max_output_tokens"].update(type=["integer", "null"], minimum=1, maximum=limits.max_tokens)
    properties["stream"] = {"type": ["boolean", "null"], "default": False,
                            "description": "Stream semantic events (`event: <type>` / `data: {json}`)."}
    request = {"type": "object", "required": ["model", "input"], "additionalProperties": False,
               "properties": properties}
    return {"ResponseCreateRequest": request, "Response": _RESPONSE}


def responses_paths() -> dict[str, Any]:
    """The paths: create, retrieve, delete."""
    response = {"content": {_JSON: {"schema": {"$ref": "#/components/schemas/Response"}}}}
    create = {
        "operationId": "createResponse",
        "summary": "Create a response (OpenAI's Responses API; semantic events when `stream` is true)",
        "security": [{"bearer": []}, {}],
        "requestBody": {"required": True, "content": {_JSON: {
            "schema": {"$ref": "#/components/schemas/ResponseCreateRequest"}}}},
        "responses": {
            "200": {"description": "A `response` object, or with `stream` an event stream of `event: <type>` / "
                                   "`data: {...}` events, each with a `sequence_number`.",
                    "content": {**response["content"], "text/event-stream": {"schema": {"type": "string"}}}},
            **{status: {"description": text, **_ERROR} for status, text in _CREATE_ERRORS.items()},
        },
    }
    by_id = [{"name": "response_id", "in": "path", "required": True, "schema": {"type": "string"}}]
    deleted = {"type": "object", "properties": {"id": {"type": "string"}, "deleted": {"const": True}}}
    return {
        "/v1/responses": {"post": create},
        "/v1/responses/{response_id}": {
            "parameters": by_id,
            "get": {"operationId": "getResponse", "summary": "A stored response", "security": [{"bearer": []}, {}],
                    "responses": {"200": {"description": "The response.", **response},
                                  "404": {"description": "No such stored response (or it expired).", **_ERROR}}},
            "delete": {"operationId": "deleteResponse", "summary": "Delete a stored response",
                       "security": [{"bearer": []}, {}],
                       "responses": {"200": {"description": "Deleted.", "content": {_JSON: {"schema": deleted}}},
                                     "404": {"description": "No such stored response.", **_ERROR}}},
        },
    }


_CREATE_ERRORS = {
    "400": "A field is invalid or cannot be honoured (`param` names it), or `previous_response_id` is unknown.",
    "404": "Unknown model.",
    "422": "text.format: the model's output never validated.",
    "429": "Too many requests waiting for a generation slot (`Retry-After`).",
    "502": "The upstream model server failed.",
    "503": "No generation slot became free in time (`Retry-After`).",
}
