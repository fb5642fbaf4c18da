"""The studiolm API over HTTP: an OpenAI-compatible Starlette app and ``studiolm serve`` (uvicorn).

Routes: ``POST /v1/chat/completions``, the Responses API (``POST /v1/responses``, ``GET`` and
``DELETE /v1/responses/{id}``, see :mod:`agent.server._responses`), ``GET /v1/models`` and
``/v1/models/{id}``, ``GET /health`` (and ``/v1/health``), ``GET /openapi.json``. Responses and stream
chunks are exactly what :class:`~agent._client.AsyncClient` returns, serialised as JSON; errors are
the OpenAI envelope ``{"error": {"message", "type", "param", "code"}}`` with these statuses:

===  ===========================================================================================
400  a bad parameter (``param`` names it), an unknown body field, a body that is not a JSON object
401  missing or invalid API key (when keys are configured)
403  no key configured and a non-loopback ``Host`` header (DNS-rebinding guard)
404  unknown model (listing the served ones) or route;  405 wrong method
408  the header block or the body did not arrive in time (slowloris); the connection is closed
413  body larger than the cap (from ``Content-Length`` up front, or while reading)
415  body not sent as ``application/json`` (so browsers cannot post to an unkeyed server cross-site)
422  JSON mode: the output never validated
429  the generation queue is full (``Retry-After``), or the upstream rate-limited us
431  header block over the size or line limit (answered before the HTTP parser, then closed)
502  upstream failed or refused us, or a toolset could not list its tools
503  no generation slot in time, too many open connections, or shutting down (``Retry-After``)
504  upstream timeout
500  anything unexpected: a generic envelope; the log gets the type and stack, never the message
===  ===========================================================================================

Request bodies: the fields of the request contract (:mod:`agent._contract`, the same the SDK's
``create`` takes) with its defaults and validation, plus ``max_tokens`` and the number of messages
bounded (:mod:`agent.server._limits`). A JSON ``null`` for an optional parameter means "use the
default", as in OpenAI's API. Other fields are refused with 400 naming the field.

Connection limits, deadlines and the shutdown contract: :mod:`agent.server._conn`; their values and
the generation limits by backend kind: :mod:`agent.server._limits`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent._client import AsyncClient
from agent._contract import FIELDS
from agent._exceptions import BadRequestError, NotFoundError, StudiolmError
from agent._wire import error_body
from agent.server._auth import AccessMiddleware, check_bind, resolve_api_keys
from agent.server._conn import SHUTDOWN_STATE_KEY, Shutdown
from agent.server._io import (
    BodyProblem,
    Sender,
    SseFormat,
    as_error,
    dumps,
    error_headers,
    internal_error,
    log_unexpected,
    problem,
    pump_sse,
    read_body,
    run_until_disconnect,
    send_error,
    send_json,
    status_for,
)
from agent.server._limits import (
    WORKER_HEALTHCHECK_SECONDS,
    GenerationLimiter,
    Refusal,
    ServerLimits,
    generation_slots,
    limits_from_env,
)
from agent.server._openapi import openapi_document

__all__ = ["app_from_env", "chat_params", "create_app", "serve", "uvicorn_config"]

logger = logging.getLogger("studiolm.server")

_CHAT = "/v1/chat/completions"
_PUBLIC_PATHS = frozenset({"/health", "/v1/health", "/openapi.json"})
_KNOWN_PATHS = _PUBLIC_PATHS | {_CHAT, "/v1/models", "/v1/responses"}
_ANSWERED = object()  # _ChatEndpoint._body: the request was already answered (or the client left)


def create_app(
    client: AsyncClient,
    *,
    api_keys: Iterable[str] | None = None,
    models: Sequence[str] | None = None,
    limits: ServerLimits | None = None,
) -> ASGIApp:
    """The ASGI app serving ``client``.

    ``api_keys``: accepted bearer tokens; ``None`` reads ``STUDIOLM_SERVER_API_KEYS``; none at all
    means loopback-only (foreign ``Host`` headers get 403). ``models``: serve only these ids (default:
    every model the client lists). ``limits``: see :class:`ServerLimits`. The caller owns ``client``.
    """
    keys = resolve_api_keys(api_keys)
    limits = limits or ServerLimits()
    from agent.server._responses import responses_routes  # it builds on this module's endpoint

    state = _State(client, limits, frozenset(models) if models else None)
    routes = [
        Route(_CHAT, _ChatEndpoint(state), methods=["POST"]),
        Route("/v1/models", state.list_models, methods=["GET"]),
        Route("/v1/models/{model:path}", state.retrieve_model, methods=["GET"]),
        Route("/health", _health, methods=["GET"]),
        Route("/v1/health", _health, methods=["GET"]),
        Route("/openapi.json", state.openapi, methods=["GET"]),
        *responses_routes(state),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_exception, Exception: _crash})
    guarded = AccessMiddleware(app, api_keys=keys, protected=lambda path: path not in _PUBLIC_PATHS, deny=_deny)
    return _Outermost(guarded)


class _State:
    """What the endpoints share: the client, the limits, the generation slots, the served models."""

    def __init__(self, client: AsyncClient, limits: ServerLimits, models: frozenset[str] | None) -> None:
        self.client = client
        self.models = models
        concurrent, queued = generation_slots(limits, client.backend)
        # Concrete numbers from here on, so the OpenAPI document and messages show what is enforced.
        self.limits = limits = dataclasses.replace(limits, max_concurrent=concurrent, max_queued=queued)
        self.limiter = GenerationLimiter(concurrent, queued, limits.queue_timeout)
        self._openapi = dumps(openapi_document(limits))

    async def list_models(self, request: Request) -> Response:
        try:
            listed = await self.client.models.list()
        except Exception as exc:
            return _error_response(as_error(exc, "GET /v1/models"))
        if self.models is not None:
            listed["data"] = [m for m in listed["data"] if m["id"] in self.models]
        return Response(dumps(listed), media_type="application/json")

    async def retrieve_model(self, request: Request) -> Response:
        model = request.path_params["model"]
        try:
            if self.models is not None and model not in self.models:
                raise NotFoundError(model, sorted(self.models))
            found = await self.client.models.retrieve(model)
        except Exception as exc:
            return _error_response(as_error(exc, "GET /v1/models/{model}"))
        return Response(dumps(found), media_type="application/json")

    async def openapi(self, request: Request) -> Response:
        return Response(self._openapi, media_type="application/json")


class _ChatEndpoint:
    """``POST /v1/chat/completions`` as a raw ASGI app: it reads the body itself (to stop at the cap)
    and watches the connection while it generates (to stop when the client leaves)."""

    def __init__(self, state: _State) -> None:
        self._state = state

    #: The route, for log lines.
    path = _CHAT

    def _params(self, body: Any) -> dict[str, Any]:
        """The SDK call's keyword arguments for ``body`` (raises the 400/404 the SDK would not)."""
        return chat_params(body, self._state.limits, self._state.models)

    async def _call(self, params: dict[str, Any]) -> tuple[Any, SseFormat | None]:
        """The SDK call: a body to send as JSON, or a stream with its SSE framing (None: chat chunks)."""
        return await self._state.client.chat.completions.create(**params), None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sender = Sender(send)
        body = await self._body(scope, receive, sender)
        if body is _ANSWERED:
            return
        try:
            params = self._params(body)
        except StudiolmError as exc:
            await send_error(sender, exc)
            return
        work = self._generate(params, sender, shutdown_of(scope))
        await run_until_disconnect(receive, work, lambda: sender.complete)

    async def _body(self, scope: Scope, receive: Receive, sender: Sender) -> Any:
        """The parsed JSON body, or ``_ANSWERED`` once the error response went out."""
        limit = self._state.limits.max_body_bytes
        headers = dict(scope["headers"])  # a repeated header keeps its last value; h11 refuses two lengths
        error = _content_problem(headers, limit)
        if error is None:
            raw = await read_body(receive, limit, self._state.limits.body_timeout)
            if raw is BodyProblem.DISCONNECTED:
                return _ANSWERED
            if raw is BodyProblem.TOO_LARGE:
                error = _too_large(limit)
            elif raw is BodyProblem.TIMED_OUT:
                error = problem(f"the request body did not arrive within {self._state.limits.body_timeout:g} s",
                                status=408, error_type="invalid_request_error", code="request_timeout")
                await send_error(sender, error, [(b"connection", b"close")])
                return _ANSWERED
            else:
                try:
                    return _loads(raw)
                except (ValueError, RecursionError):  # not UTF-8/JSON, or nested deeper than the parser goes
                    error = problem("the request body is not valid JSON", status=400,
                                    error_type="invalid_request_error", code="invalid_json")
        await send_error(sender, error)
        return _ANSWERED

    async def _generate(self, params: dict[str, Any], sender: Sender, shutdown: Shutdown | None) -> None:
        refusal = await self._state.limiter.acquire()
        if refusal is not None:
            await send_error(sender, _overloaded(refusal, self._state.limits))
            return
        try:
            result, fmt = await self._call(params)
            if isinstance(result, dict):
                await send_json(sender, 200, result)
            else:
                limits = self._state.limits
                await pump_sse(result, sender, keepalive=limits.keepalive, hold=limits.stream_hold,
                               where=f"POST {self.path}", shutdown=shutdown,
                               **({"fmt": fmt} if fmt is not None else {}))
        except Exception as exc:
            error = as_error(exc, f"POST {self.path}")
            if not sender.started:
                await send_error(sender, error)
        finally:
            self._state.limiter.release()


def chat_params(body: Any, limits: ServerLimits, models: frozenset[str] | None) -> dict[str, Any]:
    """The ``create(...)`` keyword arguments for a request body: the contract's fields
    (:data:`agent._contract.FIELDS`), checked against the server's own bounds; the SDK validates the rest.

    Raises :class:`BadRequestError` / :class:`NotFoundError` (see the module docstring).
    """
    if not isinstance(body, dict):
        raise BadRequestError("the request body must be a JSON object", param=None)
    unknown = [name for name in body if name not in FIELDS]
    if unknown:
        raise BadRequestError(f"unknown parameter; accepted: {', '.join(FIELDS)}", param=unknown[0])
    messages, model = body.get("messages"), body.get("model")
    if isinstance(messages, list) and len(messages) > limits.max_messages:
        raise BadRequestError(f"at most {limits.max_messages} messages, got {len(messages)}", param="messages")
    for name in ("max_tokens", "max_completion_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > limits.max_tokens:
            raise BadRequestError(f"must be at most {limits.max_tokens}, got {value}", param=name)
    if models is not None and isinstance(model, str) and model not in models:
        raise NotFoundError(model, sorted(models))
    return body


def _loads(raw: bytes) -> Any:
    """A request body as JSON: orjson, or the json module for what orjson refuses but it takes
    (NaN, integers past 64 bits, UTF-16/32 bodies, lone surrogates), so both accept the same bodies."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)


def _content_problem(headers: dict[bytes, bytes], limit: int) -> StudiolmError | None:
    media_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
    if media_type != b"application/json":
        return problem("send the body as JSON with 'Content-Type: application/json'", status=415,
                       error_type="invalid_request_error", code="unsupported_media_type")
    length = headers.get(b"content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        return _too_large(limit)
    return None


def _too_large(limit: int) -> StudiolmError:
    return problem(f"the request body is larger than {limit} bytes", status=413,
                   error_type="invalid_request_error", code="request_too_large")


def shutdown_of(scope: Scope) -> Shutdown | None:
    """The server's :class:`~agent.server._conn.Shutdown` (None under a server without our protocols)."""
    shutdown = scope.get("state", {}).get(SHUTDOWN_STATE_KEY)
    return shutdown if isinstance(shutdown, Shutdown) else None


def _overloaded(refusal: Refusal, limits: ServerLimits) -> StudiolmError:
    busy = f"{limits.max_concurrent} generations running"
    if refusal is Refusal.QUEUE_FULL:
        error = problem(f"the server is busy ({busy}, {limits.max_queued} waiting); retry later", status=429,
                        error_type="rate_limit_error", code="server_queue_full")
    else:
        error = problem(f"no generation slot became free within {limits.queue_timeout:g} s ({busy}); "
                        "retry later", status=503, error_type="server_error", code="server_overloaded")
    error.retry_after = limits.retry_after  # type: ignore[attr-defined]
    return error


def _error_response(error: StudiolmError, headers: dict[str, str] | None = None) -> Response:
    extra = {**(headers or {}), **{k.decode(): v.decode() for k, v in error_headers(error)}}
    return Response(dumps(error_body(error)), status_code=status_for(error), media_type="application/json",
                    headers=extra)


async def _health(request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    message = "no such route" if exc.status_code == 404 else str(exc.detail)
    error = problem(message, status=exc.status_code, error_type="invalid_request_error", code=code)
    return _error_response(error, dict(exc.headers or {}))


async def _crash(request: Request, exc: Exception) -> Response:
    # Starlette re-raises after this; _Outermost logs it once and keeps it from the ASGI server.
    return _error_response(internal_error())


async def _deny(scope: Scope, receive: Receive, send: Send, status: int, code: str, message: str) -> None:
    error = problem(message, status=status, error_type="invalid_request_error", code=code)
    challenge = [(b"www-authenticate", b'Bearer realm="studiolm"')] if status == 401 else []
    await send_error(Sender(send), error, challenge)


class _Outermost:
    """Catches what escaped (so the ASGI server never prints a message that may quote request data)
    and writes one access-log line per request, with the path only when it is one of our routes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status, began = 0, time.perf_counter()
        sender = Sender(send)

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        path = scope["path"] if scope["path"] in _KNOWN_PATHS else "(other path)"
        try:
            await self.app(scope, receive, send_status)
        except Exception as exc:
            log_unexpected(exc, f"{scope['method']} {path}")
            if not status:
                await send_error(sender, internal_error())
        finally:
            took = (time.perf_counter() - began) * 1000
            logger.info('"%s %s" %s %.0f ms', scope["method"], path, status or "-", took)


#: The environment variables :func:`app_from_env` reads, set by :func:`serve` for its worker processes.
MODELS_ENV = "STUDIOLM_SERVER_MODELS"
LIMITS_ENV = "STUDIOLM_SERVER_LIMITS"  # the whole ServerLimits as JSON


def app_from_env() -> ASGIApp:
    """The app factory uvicorn's worker processes call (``agent.server._app:app_from_env``): a client
    configured by the environment (:mod:`agent._config`), the keys in ``STUDIOLM_SERVER_API_KEYS``,
    the models in ``STUDIOLM_SERVER_MODELS`` (comma-separated) and the limits :func:`serve` passed."""
    env = os.environ
    models = [m for m in env.get(MODELS_ENV, "").split(",") if m] or None
    return create_app(AsyncClient(), api_keys=None, models=models, limits=_limits_in_env(env))


def _limits_in_env(env: Mapping[str, str]) -> ServerLimits:
    raw = env.get(LIMITS_ENV)
    return ServerLimits(**json.loads(raw)) if raw else limits_from_env(env=env)


def uvicorn_config(app: ASGIApp | str, *, host: str, port: int, limits: ServerLimits, log_level: str = "info",
                   workers: int = 1, configure_logging: bool = True) -> Any:
    """The ``uvicorn.Config`` for ``app`` (an app, or an app factory's import path): the fastest stack
    installed (uvloop, httptools), our guarded protocol (:mod:`agent.server._conn`), the limits, and a
    log that says no request data and drops bursts of identical records (``configure_logging=False``
    leaves the process's logging alone, as an embedding application or a test wants)."""
    from agent.server._conn import attach_limits, http_protocol

    log_config = _log_config(log_level, workers) if configure_logging else None
    # h11's own limit (it answers 400) sits above ours, so the guard answers 431 first.
    config = uvicorn.Config(app, host=host, port=port, access_log=False, log_level=log_level,
                            log_config=log_config, lifespan="off", server_header=False,
                            timeout_graceful_shutdown=limits.shutdown_grace, loop="auto", http=http_protocol(),
                            h11_max_incomplete_event_size=2 * limits.max_header_bytes,
                            workers=workers, factory=isinstance(app, str),
                            timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS)
    attach_limits(config, limits)
    return config


def _log_config(log_level: str, workers: int) -> dict[str, Any]:
    from uvicorn.config import LOGGING_CONFIG

    # With several workers each line says which process wrote it.
    fmt = "%(levelprefix)s [%(process)d] %(message)s" if workers > 1 else "%(levelprefix)s %(message)s"
    handlers = {name: {**handler, "filters": ["repeats"]} for name, handler in LOGGING_CONFIG["handlers"].items()}
    handlers["studiolm"] = {**handlers["default"], "formatter": "studiolm"}
    return {**LOGGING_CONFIG,
            "filters": {"repeats": {"()": "agent.server._conn.RepeatFilter"}},
            "formatters": {**LOGGING_CONFIG["formatters"],
                           "studiolm": {"()": "uvicorn.logging.DefaultFormatter", "fmt": fmt}},
            "handlers": handlers,
            "loggers": {
                **LOGGING_CONFIG["loggers"],
                "studiolm.server": {"handlers": ["studiolm"], "level": log_level.upper(), "propagate": False},
                # asyncio reports accept() failing at the fd limit; through our filter, not stderr raw.
                "asyncio": {"handlers": ["default"], "level": "WARNING", "propagate": False},
            }}


async def serve(
    client: AsyncClient | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    api_keys: Iterable[str] | None = None,
    models: Sequence[str] | None = None,
    limits: ServerLimits | None = None,
    search: str | None = None,
    log_level: str = "info",
    workers: int = 1,
) -> None:
    """Serve with uvicorn until interrupted (SIGINT/SIGTERM), then close the client.

    Refuses (:class:`BadRequestError`, ``param="host"``) a non-loopback ``host`` without API keys,
    before anything is loaded. ``client`` defaults to ``AsyncClient(search=search)`` (configured by
    the environment, see :mod:`agent._config`). ``limits`` default to :func:`limits_from_env` ``()``.
    It runs on the caller's event loop (``studiolm serve`` uses uvloop when installed).

    ``workers > 1`` runs that many processes on one port, each with its own client built from the
    environment by :func:`app_from_env` (so ``client`` must be None); with the embedded model each
    worker loads the model itself: the memory-mapped weights are shared through the page cache, the
    context and buffers are not (about 0.2 GB per worker for the default tier). Shutdown: see
    :mod:`agent.server._conn`.
    """
    keys = resolve_api_keys(api_keys)
    check_bind(host, keys)
    limits = limits or limits_from_env()
    if workers < 1:
        raise BadRequestError("must be at least 1", param="workers")
    if workers > 1:
        if client is not None:
            raise BadRequestError("several workers build their own clients: pass no client", param="client")
        _serve_workers(host=host, port=port, keys=keys, models=models, limits=limits, search=search,
                       log_level=log_level, workers=workers)
        return
    if client is None:
        client = AsyncClient(search=search)
    app = create_app(client, api_keys=[k.decode("ascii") for k in keys], models=models, limits=limits)
    config = uvicorn_config(app, host=host, port=port, limits=limits, log_level=log_level)
    server = _Server(config)
    server.on_stopped = client.aclose
    try:
        await server.serve()
    finally:
        await client.aclose()


class _Server(uvicorn.Server):
    """uvicorn's server, closing the client once the requests are done: after a SIGTERM uvicorn ends
    by re-raising the signal (the process exits by it, as expected of it), so ``serve``'s own
    ``finally`` would never run."""

    on_stopped: Callable[[], Awaitable[None]] | None = None

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().shutdown(sockets)
        finally:
            if self.on_stopped is not None:
                await self.on_stopped()


def _serve_workers(*, host: str, port: int, keys: tuple[bytes, ...], models: Sequence[str] | None,
                   limits: ServerLimits, search: str | None, log_level: str, workers: int) -> None:
    """uvicorn's process supervisor; blocks (the caller's loop has nothing else to do) until a signal."""
    from uvicorn.supervisors import Multiprocess

    from agent.server._auth import API_KEYS_ENV

    # The workers are spawned (a fresh interpreter each): everything they need goes through the environment.
    os.environ[API_KEYS_ENV] = ",".join(k.decode("ascii") for k in keys)
    os.environ[MODELS_ENV] = ",".join(models or ())
    os.environ[LIMITS_ENV] = json.dumps(dataclasses.asdict(limits))
    if search is not None:
        os.environ["STUDIOLM_SEARCH"] = search
    config = uvicorn_config(f"{__name__}:app_from_env", host=host, port=port, limits=limits,
                            log_level=log_level, workers=workers)
    Multiprocess(config, sockets=[config.bind_socket()]).run()
