"""An incremental Server-Sent Events parser (the WHATWG ``text/event-stream`` rules), free of I/O.

Bytes arrive in whatever pieces the network delivers; a piece may end anywhere, inside a line, between
the CR and LF of a CRLF, or inside a multi-byte UTF-8 character. :class:`SSEDecoder` keeps the
unfinished tail between :meth:`SSEDecoder.feed` calls, so the events it returns never depend on where
the stream was cut.

Rules followed (https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation):

* lines end in CRLF, LF or CR; one leading byte-order mark is dropped; invalid UTF-8 becomes U+FFFD;
* ``:``-lines are comments; ``field: value`` loses one space after the colon; a line without a colon
  is a field with an empty value; unknown fields are ignored;
* ``data`` lines of one event are joined with ``"\\n"``; a blank line dispatches the event, unless it
  had no ``data`` line at all;
* an event still open when the stream ends is discarded: without its blank line it may be cut short.

Memory is bounded: a line longer than ``max_line_chars`` or an event whose data exceeds
``max_event_chars`` raises :class:`~agent.UpstreamTooLargeError` as soon as the cap is passed, so a
line that never ends is refused after the cap, not buffered.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import AsyncIterable, AsyncIterator
from typing import NamedTuple

from agent._exceptions import UpstreamTooLargeError

__all__ = ["MAX_SSE_EVENT_CHARS", "MAX_SSE_LINE_CHARS", "SSEDecoder", "SSEEvent", "aiter_sse"]

#: Longest line the decoder keeps (characters, about bytes): a chat chunk is a few hundred.
MAX_SSE_LINE_CHARS = 4 * 1024 * 1024
#: Largest data of one event (all its ``data`` lines joined).
MAX_SSE_EVENT_CHARS = 4 * 1024 * 1024

_LINE_END = re.compile(r"\r\n|\r|\n")
_BOM = "\ufeff"


class SSEEvent(NamedTuple):
    """One dispatched event: its ``data`` text, ``event`` name and the last seen ``id``.

    A named tuple, immutable and the cheapest to build: one is built per event of every stream."""

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Turns pieces of an event stream into :class:`SSEEvent` items; see the module docstring."""

    def __init__(
        self, *, max_line_chars: int = MAX_SSE_LINE_CHARS, max_event_chars: int = MAX_SSE_EVENT_CHARS
    ) -> None:
        self._max_line = max_line_chars
        self._max_event = max_event_chars
        self._partial_chars = 0
        self._data_chars = 0
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial: list[str] = []  # the current line, not yet terminated
        self._after_cr = False  # the last text ended in CR, so a leading LF completes that CRLF
        self._started = False  # past the (optional) byte-order mark
        self._data: list[str] = []
        self._event = ""
        self._last_id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Take the next piece of the stream; return the events it completed."""
        return self._feed_text(self._utf8.decode(chunk))

    def flush(self) -> list[SSEEvent]:
        """End of stream: decode what is left and discard an unfinished line and event."""
        events = self._feed_text(self._utf8.decode(b"", final=True))
        self._partial.clear()
        self._data.clear()
        self._partial_chars = self._data_chars = 0
        self._event = ""
        return events

    def _feed_text(self, text: str) -> list[SSEEvent]:
        if not text:
            return []
        if not self._started:
            self._started = True
            text = text.removeprefix(_BOM)
        if self._after_cr and text.startswith("\n"):
            text = text[1:]
        self._after_cr = text.endswith("\r")
        # One split, not a regex scan: the last piece is the unterminated tail ("" after a line end).
        lines = _LINE_END.split(text) if "\r" in text else text.split("\n")
        events: list[SSEEvent] = []
        for index in range(len(lines) - 1):
            event = self._line(self._complete(lines[index]))
            if event is not None:
                events.append(event)
        if lines[-1]:
            self._keep(lines[-1])
        return events

    def _complete(self, piece: str) -> str:
        """The line that ``piece`` ends: the kept start of it, if any, joined to it."""
        if not self._partial:
            if len(piece) > self._max_line:
                raise _too_large("max_sse_line_chars", "one line of the event stream", self._max_line)
            return piece
        self._keep(piece)
        line = "".join(self._partial)
        self._partial.clear()
        self._partial_chars = 0
        return line

    def _keep(self, piece: str) -> None:
        self._partial_chars += len(piece)
        if self._partial_chars > self._max_line:
            self._partial.clear()
            raise _too_large("max_sse_line_chars", "one line of the event stream", self._max_line)
        self._partial.append(piece)

    def _line(self, line: str) -> SSEEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith("data: "):  # nearly every line of a chat stream
            self._field("data", line[6:])
            return None
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        self._field(name, value)
        return None

    def _field(self, name: str, value: str) -> None:
        if name == "data":
            self._data_chars += len(value) + 1
            if self._data_chars > self._max_event:
                self._data.clear()
                raise _too_large("max_sse_event_chars", "the data of one stream event", self._max_event)
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)

    def _dispatch(self) -> SSEEvent | None:
        if not self._data:
            self._event = ""
            self._data_chars = 0
            return None
        data = self._data[0] if len(self._data) == 1 else "\n".join(self._data)
        event = SSEEvent(data, self._event or "message", self._last_id, self._retry)
        self._data.clear()
        self._data_chars = 0
        self._event = ""
        return event


def _too_large(limit_name: str, what: str, limit: int) -> UpstreamTooLargeError:
    message = f"upstream answer too large: {what} exceeds {limit_name} = {limit} characters"
    return UpstreamTooLargeError(message, limit_name=limit_name, limit=limit)


async def aiter_sse(chunks: AsyncIterable[bytes]) -> AsyncIterator[SSEEvent]:
    """The events of an async byte stream, as each one is completed."""
    decoder = SSEDecoder()
    async for chunk in chunks:
        for event in decoder.feed(chunk):
            yield event
    for event in decoder.flush():
        yield event
