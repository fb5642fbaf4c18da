"""The embedded model's worker-to-loop channel (no model needed)."""

from __future__ import annotations

import asyncio
import threading

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


def test_a_put_after_the_loop_closed_stops_the_worker() -> None:
    stop = threading.Event()

    async def make() -> Channel:
        return Channel(stop)

    channel = asyncio.run(make())
    channel.put("late")
    assert stop.is_set()
