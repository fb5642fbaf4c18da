"""``AsyncClient`` (the core) and ``Client`` (a thin sync wrapper over it).

``client.chat.completions.create(...)`` validates every parameter, checks the model exists, then
runs the chat graph; with ``stream=True`` it returns an iterator of chunks, otherwise the finished
``ChatCompletion``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from typing import Any, Literal, TypedDict, TypeVar, Unpack, overload

import httpx

from agent._config import resolve_model_backend, resolve_search
from agent._contract import CompletionCreateParamsBase
from agent._exceptions import BadRequestError
from agent._params import build_request, check_stream
from agent._research import RESEARCH_MODEL, research_chat_events
from agent._response_store import ResponseStore
from agent._responses_api import AsyncResponses, Responses
from agent._sync import SyncStream, _Loop
from agent._tool_params import parse_tools
from agent._types import ChatCompletion, ChatCompletionChunk, Model, ModelList
from agent._wire import (
    SYSTEM_FINGERPRINT,
    StreamOptions,
    chunk_stream,
    completion,
    completion_of_choices,
    new_completion_id,
    now,
    usage_chunk,
)
from agent.models import DEFAULT_MAX_RETRIES
from graphs import (
    Capabilities,
    ChatDeps,
    ChatLimits,
    ChatRequest,
    ModelBackend,
    ModelEvent,
    ModelRequest,
    ModelResult,
    TextDelta,
    bind_tools,
    last_outcome,
    run_chat,
)
from tools import CachedSearch, LocalIndex, SearchBackend

__all__ = ["AsyncClient", "AsyncStream", "Client", "ClientOptions", "Stream"]

T = TypeVar("T")


class AsyncStream:
    """Async iterator of :class:`ChatCompletionChunk`; ``aclose()`` (or leaving ``async with``) stops the run."""

    def __init__(self, chunks: AsyncIterator[ChatCompletionChunk]) -> None:
        self._chunks = chunks

    def __aiter__(self) -> AsyncIterator[ChatCompletionChunk]:
        return self._chunks

    async def __anext__(self) -> ChatCompletionChunk:
        return await anext(self._chunks)

    async def aclose(self) -> None:
        """Stop the run and release the model."""
        await self._chunks.aclose()  # type: ignore[attr-defined]

    async def __aenter__(self) -> AsyncStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class ClientOptions(TypedDict, total=False):
    """The keyword options of :class:`AsyncClient` and :class:`Client` (see :class:`AsyncClient`)."""

    backend: ModelBackend | None
    search: SearchBackend | str | None
    http_client: httpx.AsyncClient | None
    timeout: float | None
    max_retries: int
    limits: ChatLimits | None
    tools: Sequence[Any] | None
    local_index: SearchBackend | None
    response_store: ResponseStore | None


class AsyncClient:
    """The studiolm chat-completions API, in process.

    With no arguments and no environment it runs the embedded default (SmolLM2 via llama.cpp, the
    offline Wikipedia index). ``api_key``/``base_url`` (or ``STUDIOLM_API_KEY``/``STUDIOLM_BASE_URL``)
    drive any OpenAI-compatible endpoint; ``backend=`` takes any :class:`ModelBackend`;
    ``search=`` any :class:`SearchBackend` or ``"auto"``/``"web"``/``"local"``/``"none"``.

    ``tools=``: tools offered in every request besides the request's own (same forms as
    ``create(tools=...)``: Python functions, :class:`tools.Toolset` objects such as MCP servers,
    built-in names). Served over HTTP, they are the server's tools. ``local_index=``: what the
    built-in ``local_search`` tool searches (default: the offline Wikipedia index, built on first
    use). ``response_store=``: where ``responses.create(store=True)`` keeps responses (default: an
    SQLite file under the cache folder, see :mod:`agent._response_store`). :meth:`aclose` closes the
    search backend, the index, the response store and the client's toolsets.
    """

    def __init__(
        self, api_key: str | None = None, base_url: str | None = None, **options: Unpack[ClientOptions]
    ) -> None:
        unknown = set(options) - set(ClientOptions.__annotations__)
        if unknown:
            raise TypeError(f"AsyncClient() got an unexpected keyword argument {sorted(unknown)[0]!r}")
        # Validate the cheap arguments first, so a mistake there cannot leak a backend's HTTP client.
        self.search = resolve_search(options.get("search"))
        self.tools = parse_tools(options.get("tools"))
        self.limits = options.get("limits") or ChatLimits()
        self.backend = resolve_model_backend(
            backend=options.get("backend"), api_key=api_key, base_url=base_url,
            http_client=options.get("http_client"), timeout=options.get("timeout"),
            max_retries=options.get("max_retries", DEFAULT_MAX_RETRIES),
        )
        self.local_index = options.get("local_index")
        self.chat = _AsyncChat(self)
        self.models = _AsyncModels(self)
        self.responses = AsyncResponses(self, options.get("response_store"))

    async def aclose(self) -> None:
        """Release the backends' connections and threads."""
        await self.backend.aclose()
        if self.search is not None:
            await self.search.aclose()
        if self.local_index is not None:
            await self.local_index.aclose()
        for toolset in self.tools.toolsets:
            await toolset.aclose()
        await self.responses.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _prepare(self, params: Mapping[str, Any]) -> tuple[ChatRequest, ChatDeps]:
        if params.get("response_format") is not None or params.get("tools") or params.get("functions"):
            # Compiling a caller's JSON schemas is bounded (tools' schema budgets) but may take up to
            # their deadline: never on the event loop, where it would stall every other request.
            return await self._ready(await asyncio.to_thread(build_request, params))
        return await self._ready(build_request(params))

    async def _ready(self, request: ChatRequest) -> tuple[ChatRequest, ChatDeps]:
        """A validated request with its tools bound, and what the graph needs to run it."""
        if request.model != RESEARCH_MODEL:  # the research graph picks the backend's own model
            await self.backend.check_model(request.model)
            _check_honoured(request, self.backend.capabilities(request.model))
        request = await self._bind_tools(request)
        local = await self._local_search() if "local_search" in request.tools.builtins else None
        search = self.search
        if request.n > 1 and search is not None:
            search = CachedSearch(search)  # n choices, one search: the later runs reuse its results
        return request, ChatDeps(model=self.backend, search=search, limits=self.limits, local_search=local)

    async def _bind_tools(self, request: ChatRequest) -> ChatRequest:
        """The client's tools plus the request's, listed and checked; ``tools=["web_search"]`` means
        ``web_search="auto"`` when the request did not set a mode."""
        config = self.tools.merged(request.tools)
        mode = "auto" if "web_search" in config.builtins and request.web_search == "off" else request.web_search
        config = await bind_tools(config, web_search=mode == "auto")
        return dataclasses.replace(request, tools=config, web_search=mode)

    async def _local_search(self) -> SearchBackend:
        if self.local_index is None:
            self.local_index = LocalIndex.from_corpus()  # CorpusNotFoundError (a UsageError) when missing
        return self.local_index

    def _events(self, request: ChatRequest, deps: ChatDeps, *, streamed: bool = True) -> AsyncGenerator[Any]:
        """The run's events; ``streamed=False``: nobody watches its text arrive (see :class:`_ResultOnly`)."""
        if request.model == RESEARCH_MODEL:
            return research_chat_events(request, self.backend, self.search)
        if not streamed:
            deps = dataclasses.replace(deps, model=_ResultOnly(deps.model))
        return run_chat(request, deps, self.backend.capabilities(request.model))


class _ResultOnly(ModelBackend):
    """The model of a run whose text deltas nobody watches (a non-streamed request): its ``complete``
    passes no ``on_delta`` on, so a backend may answer in one plain call (the HTTP backend does: no
    stream framing or SSE parsing), and the graph then sees the whole text as one delta."""

    def __init__(self, backend: ModelBackend) -> None:
        self._backend = backend
        self.name = backend.name

    async def list_models(self) -> list[str]:
        return await self._backend.list_models()

    async def check_model(self, model: str) -> None:
        await self._backend.check_model(model)

    def capabilities(self, model: str) -> Capabilities:
        return self._backend.capabilities(model)

    def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        return self._backend.stream(request)

    async def complete(
        self, request: ModelRequest, *, on_delta: Callable[[TextDelta], None] | None = None
    ) -> ModelResult:
        result = await self._backend.complete(request)
        if on_delta is not None and result.content:
            on_delta(TextDelta(result.content))
        return result


#: Forwarded fields a model without an upstream cannot honour: refused rather than silently skipped.
UPSTREAM_ONLY_FIELDS = ("audio", "moderation")


def _check_honoured(request: ChatRequest, capabilities: Capabilities) -> None:
    """Refuse what the model would never see or do (an image for a text-only model, audio output
    from a local one) rather than answer as if it had not been asked."""
    for message in request.messages:
        for part in message.media:
            if not (capabilities.upstream or (part.kind == "image_url" and capabilities.vision)):
                raise BadRequestError(f"model {request.model!r} cannot take {part.kind} parts",
                                      param=part.param or "messages")
    if capabilities.upstream:
        return
    extra = dict(request.extra)
    for name in UPSTREAM_ONLY_FIELDS:
        if extra.get(name) is not None:
            raise BadRequestError(f"model {request.model!r} runs locally and cannot honour it", param=name)
    if "audio" in (extra.get("modalities") or ()):
        raise BadRequestError(f"model {request.model!r} answers in text only", param="modalities")


class _AsyncCompletions:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    @overload
    async def create(
        self, *, stream: Literal[False] | None = None, **params: Unpack[CompletionCreateParamsBase]
    ) -> ChatCompletion: ...

    @overload
    async def create(self, *, stream: Literal[True], **params: Unpack[CompletionCreateParamsBase]) -> AsyncStream: ...

    @overload
    async def create(
        self, *, stream: bool | None = None, **params: Unpack[CompletionCreateParamsBase]
    ) -> ChatCompletion | AsyncStream: ...

    async def create(
        self, *, stream: bool | None = None, **params: Unpack[CompletionCreateParamsBase]
    ) -> ChatCompletion | AsyncStream:
        """Create a chat completion (an :class:`AsyncStream` of chunks when ``stream=True``).

        The parameters are :class:`agent.CompletionCreateParams` (``model``, ``messages``,
        ``temperature``, ``max_tokens``, ``top_p``, ``frequency_penalty``, ``presence_penalty``,
        ``web_search``, ``response_format``, ``tools``, ``tool_choice``, and OpenAI's no-op
        fields), each documented there with its default and range.

        ``tools``: built-in names, OpenAI function tools (their calls come back as ``tool_calls``
        with ``finish_reason="tool_calls"``), Python functions and :class:`tools.Toolset` objects
        (run inside the graph); ``tool_choice``: ``"auto"``, ``"none"``, ``"required"`` or
        ``{"type": "function", "function": {"name": ...}}``.

        Raises :class:`BadRequestError` naming the parameter for any invalid value, and
        :class:`NotFoundError` for an unknown model, before anything is generated.
        """
        streaming = check_stream(stream)
        request, deps = await self._client._prepare(params)
        completion_id, created = new_completion_id(), now()
        if streaming:
            options = StreamOptions(json_mode=request.response_format is not None,
                                    include_usage=bool((params.get("stream_options") or {}).get("include_usage")))
            if request.n == 1:  # one run: its chunks as they are, without a merging layer per chunk
                return AsyncStream(chunk_stream(self._client._events(request, deps), completion_id=completion_id,
                                                created=created, model=request.model, options=options))
            return AsyncStream(_choices_stream(self._client, request, deps, completion_id, created, options))
        outcomes = [await last_outcome(self._client._events(request, deps, streamed=False)) for _ in range(request.n)]
        if request.n == 1:
            return completion(outcomes[0], completion_id=completion_id, created=created)
        return completion_of_choices(outcomes, completion_id=completion_id, created=created)


async def _choices_stream(
    client: AsyncClient, request: ChatRequest, deps: ChatDeps, completion_id: str, created: int,
    options: StreamOptions,
) -> AsyncGenerator[ChatCompletionChunk]:
    """The chunks of ``n`` runs, one choice after the other (each chunk names its choice ``index``);
    with ``include_usage``, one usage chunk for all of them at the end."""
    totals: dict[str, int] = {}
    for index in range(request.n):
        each = dataclasses.replace(options, index=index, include_usage=options.include_usage and request.n == 1)
        run = chunk_stream(client._events(request, deps), completion_id=completion_id, created=created,
                           model=request.model, options=each)
        async with contextlib.aclosing(run) as chunks:
            async for chunk in chunks:
                usage = chunk.get("usage") if request.n > 1 else None
                if usage is None or not chunk.get("choices"):
                    yield chunk
                    continue
                totals = {k: totals.get(k, 0) + v for k, v in usage.items()}
                # With include_usage the sum comes last, alone, as OpenAI sends it.
                yield ChatCompletionChunk({k: v for k, v in chunk.items() if k != "usage"}) \
                    if options.include_usage else chunk
    if options.include_usage and request.n > 1:
        head = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": request.model}
        yield usage_chunk({**head, "system_fingerprint": SYSTEM_FINGERPRINT}, totals)


class _AsyncChat:
    def __init__(self, client: AsyncClient) -> None:
        self.completions = _AsyncCompletions(client)


class _AsyncModels:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def list(self) -> ModelList:
        """The models this client can serve (``GET /v1/models``)."""
        owner = self._client.backend.name
        ids = await self._client.backend.list_models()
        data = [_model_object(i, owner) for i in ids]
        return ModelList({"object": "list", "data": data})

    async def retrieve(self, model: str) -> Model:
        """One model (``GET /v1/models/{model}``); :class:`NotFoundError` listing the others if it does not exist."""
        await self._client.backend.check_model(model)
        return Model(_model_object(model, self._client.backend.name))


def _model_object(model_id: str, owner: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": owner}


# --- the sync wrapper -------------------------------------------------------------------------


class Stream(SyncStream[ChatCompletionChunk]):
    """Iterator of :class:`ChatCompletionChunk`; ``close()`` (or leaving ``with``) stops the run."""


class Client:
    """Synchronous :class:`AsyncClient`: same arguments, same behaviour, plain calls and iterators."""

    def __init__(
        self, api_key: str | None = None, base_url: str | None = None, **options: Unpack[ClientOptions]
    ) -> None:
        self._async = AsyncClient(api_key, base_url, **options)  # first: a bad argument leaves no thread behind
        self._loop = _Loop()
        self.chat = _Chat(self)
        self.models = _Models(self)
        self.responses = Responses(self)

    @property
    def backend(self) -> ModelBackend:
        """The model backend serving this client."""
        return self._async.backend

    def close(self) -> None:
        """Release connections and threads. Idempotent; the client cannot be used afterwards."""
        if self._loop.closed:
            return
        try:
            self._loop.run(self._async.aclose())
        finally:
            self._loop.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Completions:
    def __init__(self, client: Client) -> None:
        self._client = client

    @overload
    def create(
        self, *, stream: Literal[False] | None = None, **params: Unpack[CompletionCreateParamsBase]
    ) -> ChatCompletion: ...

    @overload
    def create(self, *, stream: Literal[True], **params: Unpack[CompletionCreateParamsBase]) -> Stream: ...

    @overload
    def create(
        self, *, stream: bool | None = None, **params: Unpack[CompletionCreateParamsBase]
    ) -> ChatCompletion | Stream: ...

    def create(
        self, *, stream: bool | None = None, **params: Unpack[CompletionCreateParamsBase]
    ) -> ChatCompletion | Stream:
        """Same parameters as :meth:`AsyncClient.chat.completions.create`; a :class:`Stream` when streaming."""
        result = self._client._loop.run(self._client._async.chat.completions.create(stream=stream, **params))
        return Stream(self._client._loop, result) if isinstance(result, AsyncStream) else result


class _Chat:
    def __init__(self, client: Client) -> None:
        self.completions = _Completions(client)


class _Models:
    def __init__(self, client: Client) -> None:
        self._client = client

    def list(self) -> ModelList:
        """The models this client can serve."""
        return self._client._loop.run(self._client._async.models.list())

    def retrieve(self, model: str) -> Model:
        """One model; :class:`NotFoundError` listing the others if it does not exist."""
        return self._client._loop.run(self._client._async.models.retrieve(model))
