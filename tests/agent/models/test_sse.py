"""The incremental SSE parser: WHATWG event-stream rules, independent of where the bytes are cut."""

from __future__ import annotations

import itertools
import random
from collections.abc import AsyncIterator

import pytest

from agent import UpstreamTooLargeError
from agent.models._sse import SSEDecoder, SSEEvent, aiter_sse


def parse(*chunks: bytes) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events = [event for chunk in chunks for event in decoder.feed(chunk)]
    return events + decoder.flush()


# A stream exercising every rule at once: all three line endings, comments, multi-line data, event
# names, ids, retry, a field without a colon, no space after the colon, an unknown field, an event
# without data (not dispatched), multi-byte UTF-8 (2, 3 and 4 bytes) and a leading byte-order mark.
MIXED = (
    "\ufeff: hello comment\r\n"
    "data: first\r\n"
    "\r\n"
    "event: delta\n"
    "data:line one\n"
    "data: line two\n"
    "id: 7\n"
    "\n"
    "event: nodata\r"
    "\r"
    "retry: 1500\r"
    "data\r"
    "unknown: ignored\r"
    "\r"
    "data: grüße 日本 🎉\r\n"
    "data:  two spaces\n"
    "\n"
    'data: {"choices":[{"delta":{"content":"héllo"}}]}\n\n'
    "data: [DONE]\n\n"
).encode()

MIXED_EVENTS = [
    SSEEvent("first"),
    SSEEvent("line one\nline two", "delta", "7"),
    SSEEvent("", "message", "7", 1500),
    SSEEvent("grüße 日本 🎉\n two spaces", "message", "7", 1500),
    SSEEvent('{"choices":[{"delta":{"content":"héllo"}}]}', "message", "7", 1500),
    SSEEvent("[DONE]", "message", "7", 1500),
]


def test_mixed_stream_in_one_piece() -> None:
    assert parse(MIXED) == MIXED_EVENTS


def test_every_single_split_point() -> None:
    # Cuts inside CRLF pairs, inside multi-byte characters and inside the BOM included.
    for cut in range(len(MIXED) + 1):
        assert parse(MIXED[:cut], MIXED[cut:]) == MIXED_EVENTS, f"cut at byte {cut}"


def test_every_pair_of_split_points() -> None:
    for first in range(len(MIXED) + 1):
        for second in range(first, len(MIXED) + 1, 3):
            pieces = (MIXED[:first], MIXED[first:second], MIXED[second:])
            assert parse(*pieces) == MIXED_EVENTS, f"cuts at {first}, {second}"


def test_byte_at_a_time() -> None:
    assert parse(*(MIXED[i : i + 1] for i in range(len(MIXED)))) == MIXED_EVENTS


def test_random_chunkings() -> None:
    rng = random.Random(1234)
    for _ in range(300):
        cuts = sorted(rng.sample(range(1, len(MIXED)), rng.randint(1, 20)))
        bounds = [0, *cuts, len(MIXED)]
        assert parse(*(MIXED[a:b] for a, b in itertools.pairwise(bounds))) == MIXED_EVENTS


def test_events_are_returned_as_soon_as_complete() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n") == []
    assert decoder.feed(b"\n") == [SSEEvent("a")]
    assert decoder.feed(b"data: b\r") == []
    # A CR already ended the line; the blank line is the next CR, without waiting for a possible LF.
    assert decoder.feed(b"\r") == [SSEEvent("b")]


def test_cr_then_lf_in_the_next_piece_is_one_line_end() -> None:
    # If the LF after a CR were taken as a second line end, the blank line would dispatch early.
    assert parse(b"data: a\r", b"\ndata: b\r", b"\n\r\n") == [SSEEvent("a\nb")]


def test_lone_cr_then_lf_is_two_line_ends() -> None:
    assert parse(b"data: a\n\r\ndata: b\n\n") == [SSEEvent("a"), SSEEvent("b")]


def test_unfinished_event_at_end_of_stream_is_dropped() -> None:
    assert parse(b"data: complete\n\ndata: cut sho") == [SSEEvent("complete")]
    assert parse(b"data: complete\n\ndata: whole line but no blank line\n") == [SSEEvent("complete")]


def test_event_name_resets_after_each_dispatch_but_id_persists() -> None:
    events = parse(b"event: a\nid: 1\ndata: x\n\ndata: y\n\nid\ndata: z\n\n")
    assert events == [SSEEvent("x", "a", "1"), SSEEvent("y", "message", "1"), SSEEvent("z", "message", "")]


def test_invalid_fields_are_ignored() -> None:
    events = parse(b"id: a\0b\nretry: 12x\nretry: \xd9\xa3\ndata: x\n\n")
    assert events == [SSEEvent("x")]


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    assert parse(b"data: \xff\xfe ok\n\n") == [SSEEvent("\ufffd\ufffd ok")]


def test_truncated_multibyte_character_at_end_is_replaced() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: x\n\ndata: \xe6\x97") == [SSEEvent("x")]
    assert decoder.flush() == []


def test_only_the_first_bom_is_stripped() -> None:
    assert parse(b"\xef\xbb\xbfdata: a\n\n\xef\xbb\xbfdata: b\n\n") == [SSEEvent("a")]


def test_comments_and_blank_lines_only() -> None:
    assert parse(b": ping\n\n: ping\r\n\r\n\n\n") == []


@pytest.mark.parametrize("size", [1, 2, 7, 4096])
async def test_aiter_sse_over_an_async_byte_stream(size: int) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(MIXED), size):
            yield MIXED[start : start + size]

    assert [event async for event in aiter_sse(chunks())] == MIXED_EVENTS


def test_a_line_that_never_ends_is_refused_at_the_cap_not_buffered() -> None:
    decoder = SSEDecoder(max_line_chars=1000, max_event_chars=1000)
    decoder.feed(b"data: " + b"x" * 900)
    with pytest.raises(UpstreamTooLargeError) as caught:
        decoder.feed(b"x" * 200)
    assert caught.value.limit_name == "max_sse_line_chars" and caught.value.limit == 1000


def test_an_event_of_many_lines_is_refused_at_the_cap_and_short_ones_pass() -> None:
    decoder = SSEDecoder(max_line_chars=100, max_event_chars=100)
    assert decoder.feed(b"data: a\ndata: b\n\n") == [SSEEvent("a\nb")]
    with pytest.raises(UpstreamTooLargeError, match="max_sse_event_chars"):
        decoder.feed(b"data: 0123456789\n" * 20)
