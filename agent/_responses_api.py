"""``client.responses``: the OpenAI Responses API on the chat graph, async core and thin sync wrapper.

``create(...)`` takes OpenAI's Responses fields (:mod:`agent._responses`), runs the same graph as
``chat.completions.create`` and returns a :class:`~agent._responses_wire.Response` (or, with
``stream=True``, a stream of semantic events). ``store`` (default true) keeps it in the client's
:class:`~agent._response_store.ResponseStore` for ``retrieve``, ``delete`` and ``previous_response_id``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any, Literal, Unpack, overload

from agent._exceptions import BadRequestError
from agent._params import check_stream
from agent._response_store import ResponseStore, SqliteResponseStore, StoredResponse
from agent._responses import ResponseCreateParams as Params
from agent._responses import parse_responses_request, to_chat_request
from agent._responses_wire import Response, ResponseEncoder, ResponseStreamEvent, new_response_id, response_events
from agent._sync import SyncStream
from agent._wire import now

if TYPE_CHECKING:
    from agent._client import AsyncClient, Client

__all__ = ["AsyncResponseStream", "AsyncResponses", "ResponseStream", "Responses"]


class AsyncResponseStream:
    """Async iterator of :class:`ResponseStreamEvent`; ``aclose()`` (or leaving ``async with``) stops the run."""

    def __init__(self, events: AsyncIterator[ResponseStreamEvent], encoder: ResponseEncoder) -> None:
        self._events = events
        #: Builds the events; the HTTP server asks it for the failure events when the run fails.
        self.encoder = encoder

    def __aiter__(self) -> AsyncIterator[ResponseStreamEvent]:
        return self._events

    async def __anext__(self) -> ResponseStreamEvent:
        return await anext(self._events)

    async def aclose(self) -> None:
        """Stop the run and release the model."""
        await self._events.aclose()  # type: ignore[attr-defined]

    async def __aenter__(self) -> AsyncResponseStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class AsyncResponses:
    """``client.responses`` of :class:`~agent.AsyncClient`."""

    def __init__(self, client: AsyncClient, store: ResponseStore | None = None) -> None:
        self._client = client
        self._store = store

    @property
    def store(self) -> ResponseStore:
        """The response store (default: :class:`SqliteResponseStore` under the cache folder, opened on first use)."""
        if self._store is None:
            self._store = SqliteResponseStore()
        return self._store

    @overload
    async def create(self, *, stream: Literal[False] | None = None, **params: Unpack[Params]) -> Response: ...

    @overload
    async def create(self, *, stream: Literal[True], **params: Unpack[Params]) -> AsyncResponseStream: ...

    @overload
    async def create(
        self, *, stream: bool | None = None, **params: Unpack[Params]
    ) -> Response | AsyncResponseStream: ...

    async def create(
        self, *, stream: bool | None = None, **params: Unpack[Params]
    ) -> Response | AsyncResponseStream:
        """Create a response (an :class:`AsyncResponseStream` of semantic events when ``stream=True``).

        Fields: see :data:`agent._responses.FIELDS` (``model``, ``input``, ``instructions``, ``tools``
        with ``{"type": "web_search"}`` and flat function tools, ``tool_choice``, ``text.format``,
        ``max_output_tokens``, ``temperature``, ``top_p``, ``metadata``, ``store``,
        ``previous_response_id``, ``include``, and OpenAI's other fields as documented there).

        Raises :class:`BadRequestError` naming the field, :class:`NotFoundError` for an unknown model.
        """
        streaming = check_stream(stream)
        parsed = parse_responses_request(params)
        history = await self._history(parsed.previous_response_id)
        request, deps = await self._client._ready(to_chat_request(parsed, history))
        echo = {**parsed.echo, "temperature": request.sampling.temperature, "top_p": request.sampling.top_p}
        encoder = ResponseEncoder(response_id=new_response_id(), created_at=now(), model=request.model, echo=echo,
                                  include=parsed.include)

        async def save() -> None:
            if parsed.store:
                record = StoredResponse(dict(Response(encoder.response).to_dict()),
                                        [*history, *parsed.input_messages, *encoder.conversation()])
                await self.store.put(encoder.response["id"], record)

        events = response_events(self._client._events(request, deps, streamed=streaming), encoder, save)
        if streaming:
            return AsyncResponseStream(events, encoder)
        last: Mapping[str, Any] = {}
        async for event in events:
            last = event
        return Response(last["response"])

    async def _history(self, response_id: str | None) -> list[dict[str, Any]]:
        if response_id is None:
            return []
        stored = await self.store.get(response_id)
        if stored is None:
            raise BadRequestError(f"no stored response {response_id!r} (unknown, expired, deleted, or created with "
                                  "store=false)", param="previous_response_id")
        return stored.conversation

    async def retrieve(self, response_id: str) -> Response:
        """A stored response (:class:`BadRequestError` naming ``response_id`` when there is none)."""
        stored = await self.store.get(response_id)
        if stored is None:
            raise BadRequestError(f"no stored response {response_id!r}", param="response_id")
        return Response(stored.response)

    async def delete(self, response_id: str) -> bool:
        """Delete a stored response; False when there was none."""
        return await self.store.delete(response_id)

    async def aclose(self) -> None:
        """Close the store, if one was opened."""
        if self._store is not None:
            await self._store.aclose()


class ResponseStream(SyncStream[ResponseStreamEvent]):
    """Iterator of :class:`ResponseStreamEvent`; ``close()`` (or leaving ``with``) stops the run."""


class Responses:
    """``client.responses`` of :class:`~agent.Client`: the same calls, run on the client's loop."""

    def __init__(self, client: Client) -> None:
        self._client = client

    @property
    def _async(self) -> AsyncResponses:
        return self._client._async.responses

    @overload
    def create(self, *, stream: Literal[False] | None = None, **params: Unpack[Params]) -> Response: ...

    @overload
    def create(self, *, stream: Literal[True], **params: Unpack[Params]) -> ResponseStream: ...

    @overload
    def create(self, *, stream: bool | None = None, **params: Unpack[Params]) -> Response | ResponseStream: ...

    def create(self, *, stream: bool | None = None, **params: Unpack[Params]) -> Response | ResponseStream:
        """Same parameters as :meth:`AsyncResponses.create`; a :class:`ResponseStream` when streaming."""
        result = self._client._loop.run(self._async.create(stream=stream, **params))
        return ResponseStream(self._client._loop, result) if isinstance(result, AsyncResponseStream) else result

    def retrieve(self, response_id: str) -> Response:
        """See :meth:`AsyncResponses.retrieve`."""
        return self._client._loop.run(self._async.retrieve(response_id))

    def delete(self, response_id: str) -> bool:
        """See :meth:`AsyncResponses.delete`."""
        return self._client._loop.run(self._async.delete(response_id))
