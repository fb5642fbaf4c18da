"""The Responses API routes: ``POST /v1/responses``, ``GET`` and ``DELETE /v1/responses/{response_id}``.

Same body reading, limits, generation slots, auth and error envelope as ``POST /v1/chat/completions``
(:mod:`agent.server._app`); the response and its events come from the SDK's ``client.responses``
(:mod:`agent._responses_api`). A stream is Server-Sent Events framed as OpenAI frames them —
``event: <type>`` then ``data: {json}`` — with no ``[DONE]``; a failure after the headers is an
``error`` event and ``response.failed``. Stored responses live in the client's response store.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from agent._exceptions import BadRequestError, NotFoundError, StudiolmError
from agent._responses_api import AsyncResponseStream
from agent._responses_wire import ResponseStreamEvent
from agent.server._app import _ChatEndpoint, _error_response, _State
from agent.server._io import (
    SseFormat,
    as_error,
    dumps,
    problem,
)
from agent.server._limits import ServerLimits

__all__ = ["RESPONSES", "responses_params", "responses_routes"]

RESPONSES = "/v1/responses"


def responses_routes(state: _State) -> list[Route]:
    """The three routes, sharing ``state`` with the chat endpoint."""
    stored = _Stored(state)
    return [Route(RESPONSES, _ResponsesEndpoint(state), methods=["POST"]),
            Route(RESPONSES + "/{response_id}", stored.get, methods=["GET"]),
            Route(RESPONSES + "/{response_id}", stored.delete, methods=["DELETE"])]


def responses_params(body: Any, limits: ServerLimits, models: frozenset[str] | None) -> dict[str, Any]:
    """The ``responses.create(...)`` keyword arguments for a body, checked against the server's bounds."""
    if not isinstance(body, dict):
        raise BadRequestError("the request body must be a JSON object", param=None)
    items, max_tokens, model = body.get("input"), body.get("max_output_tokens"), body.get("model")
    if isinstance(items, list) and len(items) > limits.max_messages:
        raise BadRequestError(f"at most {limits.max_messages} input items, got {len(items)}", param="input")
    if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) and max_tokens > limits.max_tokens:
        raise BadRequestError(f"must be at most {limits.max_tokens}, got {max_tokens}", param="max_output_tokens")
    if models is not None and isinstance(model, str) and model not in models:
        raise NotFoundError(model, sorted(models))
    return body


class _ResponsesEndpoint(_ChatEndpoint):
    """``POST /v1/responses``: the chat endpoint's body handling and slots, the Responses call and framing."""

    path = RESPONSES

    def _params(self, body: Any) -> dict[str, Any]:
        return responses_params(body, self._state.limits, self._state.models)

    async def _call(self, params: dict[str, Any]) -> tuple[Any, SseFormat | None]:
        result = await self._state.client.responses.create(**params)
        return result, _sse_format(result) if isinstance(result, AsyncResponseStream) else None


def _sse_format(stream: AsyncResponseStream) -> SseFormat:
    def encode(event: ResponseStreamEvent) -> bytes:
        return b"event: " + str(event["type"]).encode("ascii") + b"\ndata: " + dumps(event) + b"\n\n"

    def error(failure: StudiolmError) -> bytes:
        return b"".join(encode(event) for event in stream.encoder.fail(failure))

    # Events before the first piece of text or arguments may wait (so an early failure keeps its status).
    return SseFormat(encode=encode, held=lambda event: not str(event["type"]).endswith(".delta"), error=error,
                     done=b"")


class _Stored:
    """``GET`` / ``DELETE /v1/responses/{response_id}`` on the client's response store."""

    def __init__(self, state: _State) -> None:
        self._state = state

    async def get(self, request: Request) -> Response:
        response_id = request.path_params["response_id"]
        try:
            stored = await self._state.client.responses.store.get(response_id)
        except Exception as exc:
            return _error_response(as_error(exc, f"GET {RESPONSES}/{{id}}"))
        if stored is None:
            return _error_response(_missing(response_id))
        return Response(dumps(stored.response), media_type="application/json")

    async def delete(self, request: Request) -> Response:
        response_id = request.path_params["response_id"]
        try:
            deleted = await self._state.client.responses.store.delete(response_id)
        except Exception as exc:
            return _error_response(as_error(exc, f"DELETE {RESPONSES}/{{id}}"))
        if not deleted:
            return _error_response(_missing(response_id))
        return Response(dumps({"id": response_id, "object": "response", "deleted": True}),
                        media_type="application/json")


def _missing(response_id: str) -> StudiolmError:
    return problem(f"no stored response {response_id[:80]!r} (unknown, expired, deleted, or created with "
                   "store=false)", status=404, error_type="invalid_request_error", code="not_found",
                   param="response_id")
