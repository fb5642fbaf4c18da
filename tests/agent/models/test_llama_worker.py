"""The embedded model's worker-to-loop channel (no model needed)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from agent.models import _llama_worker
from agent.models._llama_worker import Channel, Finished, Item
from graphs.model import Usage

DONE = Finished("", "stop", Usage(0, 0))


async def _drain(channel: Channel) -> list[list[Item]]:
    batches: list[list[Item]] = []
    while not batches or batches[-1][-1] is not DONE:
        batches.append(await channel.get())
    return batches


async def test_items_from_a_thread_arrive_complete_and_in_order() -> None:
    channel = Channel(threading.Event())
    pieces = [f"p{i} " for i in range(2000)]

    def produce() -> None:
        for piece in pieces:
            channel.put(piece)
        channel.put(DONE)

    worker = threading.Thread(target=produce)
    worker.start()
    batches = await asyncio.wait_for(_drain(channel), timeout=10)
    worker.join()
    assert [item for batch in batches for item in batch] == [*pieces, DONE]


async def test_items_put_while_the_loop_is_busy_arrive_in_one_batch() -> None:
    channel = Channel(threading.Event())
    for item in ("a", "b", DONE):  # the loop is busy running this test meanwhile
        channel.put(item)
    assert await asyncio.wait_for(channel.get(), timeout=5) == ["a", "b", DONE]


async def test_text_soon_after_a_wake_up_waits_for_the_next_one_but_the_end_never_waits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_llama_worker, "MIN_WAKE_SECONDS", 3600.0)
    channel = Channel(threading.Event())
    channel.put("first")  # the first piece goes at once
    assert await asyncio.wait_for(channel.get(), timeout=5) == ["first"]
    channel.put("second")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(channel.get(), timeout=0.1)
    channel.put(DONE)
    assert await asyncio.wait_for(channel.get(), timeout=5) == ["second", DONE]


def test_a_put_after_the_loop_closed_stops_the_worker() -> None:
    stop = threading.Event()

    async def make() -> Channel:
        return Channel(stop)

    channel = asyncio.run(make())
    channel.put("late")
    assert stop.is_set()
