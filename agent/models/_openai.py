"""A model backend for any OpenAI-compatible chat-completions endpoint (OpenAI, studiolm, vLLM, llama.cpp
server, Ollama), over an injected or owned ``httpx.AsyncClient``.

``stream`` streams (``stream: true`` with ``stream_options.include_usage``). ``complete`` without
``on_delta`` (nobody watches the text arrive: the graph's side calls, a non-streamed request) makes one
plain call (``stream: false``), which spares the upstream and us the chunk framing and SSE parsing;
with ``on_delta`` it is derived from ``stream``. Either way the answer may come in the other shape
(servers that ignore ``stream``): the body's content type or first byte decides how it is read.

Retries follow the official ``openai`` Python SDK: 408, 409, 429, 5xx and connection failures are
retried up to ``max_retries`` times with exponential backoff and jitter, honouring ``Retry-After`` /
``retry-after-ms`` (and ``x-should-retry``). A call is never retried once the upstream has produced a
token, because the caller may already have seen it; from then on a failure is raised.

What an upstream sends is bounded (:class:`~agent.models.ResponseLimits`: whole JSON body, one SSE
line/event, whole stream, error body), an HTML page where JSON/SSE was expected is reported as one
(with its title), and the base URL's credentials (userinfo, query values) never appear in an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import email.utils
import json
import math
import random
import time
import urllib.parse
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any

import httpx

from agent._exceptions import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    BadRequestError,
    UpstreamTooLargeError,
)
from agent._redact import REDACTED, redact_url, url_secrets
from agent.models._openai_wire import (
    CompletionReader,
    ResponseLimits,
    chat_body,
    encode_json,
    html_page_message,
    is_html,
    model_ids,
    parse_json,
    status_error,
    swap_budget_field,
    too_large,
)
from graphs import ModelError
from graphs.model import Capabilities, ModelBackend, ModelEvent, ModelRequest, ModelResult, TextDelta

__all__ = [
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "OpenAICompatibleBackend",
    "ResponseLimits",
]

# --- Retry policy and limits (the openai SDK's values) ------------------------------------------------
#: Per-request timeout: 600 s to read/write, 5 s to connect.
DEFAULT_TIMEOUT = httpx.Timeout(600.0, connect=5.0)
#: Retries after the first attempt (so 3 attempts in all).
DEFAULT_MAX_RETRIES = 2
# The owned client's pool keeps an idle connection at most this long, under the 5 s keep-alive of
# common upstream servers (uvicorn, Node, llama.cpp's), so it never reuses one the server is closing
# at that moment (the request would fail with a ReadError). The pool's sizes stay httpx's defaults:
# httpcore's pool bookkeeping is quadratic in its connections (measured: 64 kept-alive connections
# halved the server's throughput at c=64 against the default 20).
UPSTREAM_KEEPALIVE_SECONDS = 4.0
#: Connections to the upstream in all / kept idle (httpx's own defaults, see above).
UPSTREAM_MAX_CONNECTIONS = 100
UPSTREAM_MAX_IDLE_CONNECTIONS = 20
#: Backoff before retry n (0-based) is INITIAL_RETRY_DELAY * 2**n, capped, times a jitter factor.
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
#: The jitter factor is drawn from [1 - RETRY_JITTER, 1].
RETRY_JITTER = 0.25
#: A server's Retry-After hint is used when 0 < hint <= MAX_RETRY_AFTER; otherwise we back off.
MAX_RETRY_AFTER = 60.0
#: Statuses worth another attempt, besides every 5xx.
RETRYABLE_STATUS_CODES = frozenset({408, 409, 429})
#: What an OpenAI-compatible server is assumed to support unless told otherwise.
_POOL = httpx.Limits(max_connections=UPSTREAM_MAX_CONNECTIONS, max_keepalive_connections=UPSTREAM_MAX_IDLE_CONNECTIONS,
                     keepalive_expiry=UPSTREAM_KEEPALIVE_SECONDS)
DEFAULT_CAPABILITIES = Capabilities(tool_calling=True, json_schema=True, json_object=True, vision=True, upstream=True)

Sleep = Callable[[float], Awaitable[None]]


class OpenAICompatibleBackend(ModelBackend):
    """Chat completions from an OpenAI-compatible HTTP endpoint.

    ``base_url`` is the API root including its version prefix (``https://api.openai.com/v1``,
    ``http://localhost:11434/v1``); requests go to ``{base_url}/chat/completions`` and
    ``{base_url}/models``. ``api_key`` is sent as a bearer token when given. ``timeout`` applies to
    every request, also on an injected ``http_client`` (which the backend never closes).
    ``capabilities`` declares what the server supports: tools and ``response_format`` are only sent
    when it says so, and the chat graph falls back to prompting otherwise. ``sleep`` is awaited
    between retries (inject a no-op in tests). ``limits`` caps the size of what the upstream may send.
    """

    name = "openai-compatible"

    def __init__(
        self,
        api_key: str | None,
        base_url: str,
        *,
        http_client: httpx.AsyncClient | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        capabilities: Capabilities | None = None,
        sleep: Sleep = asyncio.sleep,
        limits: ResponseLimits | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise BadRequestError(f"must be an http(s) URL, got {redact_url(base_url)!r}", param="base_url")
        if max_retries < 0:
            raise BadRequestError(f"must be >= 0, got {max_retries}", param="max_retries")
        self._api_key = api_key or None
        self._post_headers = {**self._headers(), "Content-Type": "application/json"}  # the body is encoded here
        secrets = [*url_secrets(base_url), *([self._api_key] if self._api_key else [])]
        # What _redact replaces, in redact_secrets' order: the whole URL, then each secret in it.
        self._replacements = [(base_url, redact_url(base_url)), *((secret, REDACTED) for secret in secrets)]
        self._shown_url = redact_url(base_url.rstrip("/"))  # the only form of the URL any message contains
        # Userinfo goes out as Basic auth (as httpx would send it), never in the request URL: httpx
        # logs every request's URL at INFO. A query string follows the path, not the base.
        parts = urllib.parse.urlsplit(base_url)
        has_userinfo = parts.username is not None or parts.password is not None
        user, password = (urllib.parse.unquote(p or "") for p in (parts.username, parts.password))
        self._auth = httpx.BasicAuth(user, password) if has_userinfo else httpx.USE_CLIENT_DEFAULT
        host = parts.netloc.rpartition("@")[2]
        self._base_url = urllib.parse.urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))
        self._query = f"?{parts.query}" if parts.query else ""
        self._limits = limits or ResponseLimits()
        self._timeout = timeout
        self._max_retries = max_retries
        self._capabilities = capabilities or DEFAULT_CAPABILITIES
        self._sleep = sleep
        self._owns_client = http_client is None
        self._client = http_client if http_client is not None else httpx.AsyncClient(timeout=timeout, limits=_POOL)
        self._models: list[str] | None = None

    def capabilities(self, model: str) -> Capabilities:
        """The capabilities given to the constructor (the same for every model)."""
        return self._capabilities

    async def list_models(self) -> list[str]:
        """The ids from ``GET {base_url}/models``; fetched once, then cached."""
        if self._models is None:
            self._models = model_ids(await self._get_json("/models"))
        return list(self._models)

    async def aclose(self) -> None:
        """Close the HTTP client if this backend created it; an injected one is the caller's."""
        if self._owns_client:
            await self._client.aclose()

    def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        """Stream one chat completion; see the module docstring for retries."""
        return self._call(request, stream=True)

    async def complete(
        self, request: ModelRequest, *, on_delta: Callable[[TextDelta], None] | None = None
    ) -> ModelResult:
        """The final :class:`ModelResult`; without ``on_delta``, from one non-streamed upstream call."""
        if on_delta is not None:
            return await super().complete(request, on_delta=on_delta)
        result: ModelResult | None = None
        async with contextlib.aclosing(self._call(request, stream=False)) as events:
            async for event in events:
                if isinstance(event, ModelResult):
                    result = event
        if result is None:  # _call ends with a result or raises; kept as the base class's guarantee
            raise ModelError(f"model backend {self.name!r} ended its stream without a result")
        return result

    async def _call(self, request: ModelRequest, *, stream: bool) -> AsyncGenerator[ModelEvent]:
        """One completion, asked for streamed or whole (the reader takes either), with retries."""
        body = chat_body(request, self._capabilities, stream=stream)
        attempt, swapped = 0, False
        while True:
            attempt += 1
            reader = CompletionReader(attempt, self._redact, self._limits)
            error_headers: httpx.Headers | None = None
            try:
                async with self._client.stream(
                    "POST",
                    self._url("/chat/completions"),
                    auth=self._auth,
                    content=encode_json(body),
                    headers=self._post_headers,
                    timeout=self._timeout,
                ) as response:
                    if not response.is_success:
                        error_headers = response.headers
                        raise await self._http_error(response, attempt)
                    reader.start(response.headers.get("content-type", ""), response.status_code)
                    chunks = response.aiter_bytes()
                    try:
                        async for chunk in chunks:
                            for delta in reader.feed(chunk):
                                yield delta
                        for delta in reader.finish():
                            yield delta
                    finally:
                        await _aclose(chunks)
            except (httpx.TransportError, APIError) as exc:
                error = self._api_error(exc, attempt)
                if not reader.started and not swapped and swap_budget_field(body, error):
                    swapped = True  # not a retry: the same request, with the field this upstream knows
                    continue
                delay = None if reader.started else self._retry_delay(error, error_headers, attempt)
                if delay is None:
                    raise error from (None if error is exc else exc)
                await self._sleep(delay)
                continue
            yield reader.result()
            return

    # --- HTTP plumbing -----------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return self._base_url + path + self._query

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
    def _redact(self, text: str) -> str:
        # Upstreams echo a rejected key back ("Incorrect API key provided: sk-..."), httpx errors may
        # name the URL: never pass the key or the URL's userinfo/query secrets on. (redact_secrets,
        # with its replacements worked out once: this runs on every event of every stream.)
        for secret, shown in self._replacements:
            if secret in text:
                text = text.replace(secret, shown)
        return text

    async def _get_json(self, path: str) -> Any:
        attempt = 0
        while True:
            attempt += 1
            error_headers: httpx.Headers | None = None
            try:
                async with self._client.stream(
                    "GET", self._url(path), headers=self._headers(), timeout=self._timeout, auth=self._auth
                ) as response:
                    if not response.is_success:
                        error_headers = response.headers
                        raise await self._http_error(response, attempt)
                    return await self._json_body(response, attempt)
            except (httpx.TransportError, APIError) as exc:
                error = self._api_error(exc, attempt)
                delay = self._retry_delay(error, error_headers, attempt)
                if delay is None:
                    raise error from (None if error is exc else exc)
                await self._sleep(delay)

    async def _json_body(self, response: httpx.Response, attempt: int) -> Any:
        limit = self._limits.max_response_bytes
        raw, complete = await _read_capped(response, limit)
        if not complete:
            raise too_large("max_response_bytes", limit, "the JSON body", response.status_code, attempt)
        if is_html(response.headers.get("content-type", ""), raw[:64]):
            message = self._redact(html_page_message(raw))
            raise APIStatusError(message, status_code=response.status_code, body=message, attempts=attempt)
        return parse_json(self._redact(raw.decode("utf-8", "replace")), response.status_code, attempt)

    async def _http_error(self, response: httpx.Response, attempt: int) -> APIStatusError:
        # Only the head of an error body is read: its message is all we use, and it may be huge.
        raw, _ = await _read_capped(response, self._limits.max_error_body_bytes)
        text = self._redact(raw.decode("utf-8", "replace"))
        retry_after = _retry_after(response.headers)
        if is_html(response.headers.get("content-type", ""), raw[:64]):
            said = self._redact(html_page_message(raw))
            error = status_error(response.status_code, said, attempt, retry_after, origin="HTTP")
            error.body = text  # the page itself, as with any other body
            return error
        try:
            body: Any = json.loads(text)
        except ValueError:
            body = text
        return status_error(response.status_code, body, attempt, retry_after, origin="HTTP")

    def _api_error(self, exc: httpx.TransportError | APIError, attempt: int) -> APIError:
        if isinstance(exc, APIError):
            return exc
        detail = self._redact(str(exc)) or type(exc).__name__
        if isinstance(exc, httpx.TimeoutException):
            return APITimeoutError(f"upstream {self._shown_url} timed out: {detail}", attempts=attempt)
        return APIConnectionError(f"could not reach upstream {self._shown_url}: {detail}", attempts=attempt)

    def _retry_delay(self, error: APIError, headers: httpx.Headers | None, attempt: int) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` when the error is final."""
        if attempt > self._max_retries or not _should_retry(error, headers):
            return None
        return _backoff(attempt - 1, headers)


# --- Retry decisions ---------------------------------------------------------------------------------


def _should_retry(error: APIError, headers: httpx.Headers | None) -> bool:
    # The upstream may say so explicitly, as OpenAI does; that overrides the status.
    explicit: str | None = headers.get("x-should-retry") if headers is not None else None
    if explicit in ("true", "false"):
        return explicit == "true"
    if isinstance(error, UpstreamTooLargeError):
        return False  # it would be as large again
    if isinstance(error, APIConnectionError):
        return True
    if isinstance(error, APIStatusError):
        return error.status_code in RETRYABLE_STATUS_CODES or error.status_code >= 500
    return False


def _backoff(retries_taken: int, headers: httpx.Headers | None) -> float:
    hint = _retry_after(headers)
    if hint is not None and 0 < hint <= MAX_RETRY_AFTER:
        return hint
    delay = min(INITIAL_RETRY_DELAY * 2.0**retries_taken, MAX_RETRY_DELAY)
    return delay * (1 - RETRY_JITTER * random.random())


def _retry_after(headers: httpx.Headers | None) -> float | None:
    """The server's wait hint in seconds: ``retry-after-ms``, or ``Retry-After`` as seconds or a date."""
    if headers is None:
        return None
    millis = _float(headers.get("retry-after-ms"))
    if millis is not None:
        return millis / 1000
    raw = headers.get("retry-after")
    seconds = _float(raw)
    if seconds is not None or raw is None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000" parses naive; HTTP dates are always GMT
        when = when.replace(tzinfo=datetime.UTC)
    return when.timestamp() - time.time()


def _float(raw: str | None) -> float | None:
    try:
        value = float(raw) if raw is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


async def _read_capped(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """Up to ``limit`` bytes of the body, and whether that was all of it; the rest is left unread."""
    data = bytearray()
    chunks = response.aiter_bytes()
    try:
        async for chunk in chunks:
            data += chunk[: limit + 1 - len(data)]
            if len(data) > limit:
                return bytes(data[:limit]), False
    finally:
        await _aclose(chunks)
    return bytes(data), True


async def _aclose(iterator: AsyncIterator[bytes]) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()
