"""HTTP load against one OpenAI-compatible endpoint: latency, TTFT, throughput, errors, server CPU."""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import httpx

from benchmarks._procs import tree_cpu_seconds

MODEL = "bench-model"
#: One key for every target; long and random-looking because LiteLLM refuses a weak master key.
KEY = "sk-bench-4f1c9a7e2b6d8053c1e97a4b2f6d0e8c5a3b7f19"
#: Per-request timeout; a stuck target fails the cell instead of stalling the run.
REQUEST_TIMEOUT_SECONDS = 60
#: Requests before each measured cell (at least one per connection), not counted.
WARM_UP_REQUESTS = 8


def body(stream: bool) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": "hello"}], "stream": stream}


async def one(http: httpx.AsyncClient, url: str, stream: bool) -> tuple[float, float, int]:
    """(seconds, seconds to the first body bytes, HTTP status) of one request read to the end."""
    began = time.perf_counter()
    first = 0.0
    async with http.stream("POST", url, json=body(stream), headers={"Authorization": f"Bearer {KEY}"}) as response:
        async for piece in response.aiter_raw():
            if piece and not first:
                first = time.perf_counter() - began
    return time.perf_counter() - began, first, response.status_code


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def load(base: str, *, stream: bool, concurrency: int, requests: int, pid: int | None) -> dict[str, Any]:
    """``requests`` requests, ``concurrency`` in flight, after a warm-up round; CPU of ``pid``'s tree.

    Each of the ``concurrency`` workers has its own one-connection client: one shared pool of 64
    connections costs httpcore more per request than the fake upstream's whole answer, which would
    make the load generator the bottleneck."""
    url = f"{base}/chat/completions"
    clients = [httpx.AsyncClient(timeout=REQUEST_TIMEOUT_SECONDS, limits=httpx.Limits(max_connections=1))
               for _ in range(concurrency)]
    results: list[tuple[float, float, int]] = []
    failures: list[str] = []
    remaining = requests

    async def worker(http: httpx.AsyncClient) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            try:
                results.append(await one(http, url, stream))
            except httpx.HTTPError as exc:
                failures.append(type(exc).__name__)

    try:
        for _ in range(max(1, WARM_UP_REQUESTS // concurrency)):
            await asyncio.gather(*(one(http, url, stream) for http in clients), return_exceptions=True)
        cpu_before = tree_cpu_seconds(pid) if pid else 0.0
        own_before = time.process_time()
        began = time.perf_counter()
        await asyncio.gather(*(worker(http) for http in clients))
        elapsed = time.perf_counter() - began
        own = time.process_time() - own_before
        cpu = (tree_cpu_seconds(pid) - cpu_before) if pid else float("nan")
    finally:
        for http in clients:
            await http.aclose()
    ok = [r for r in results if r[2] == 200]
    statuses = sorted({r[2] for r in results if r[2] != 200})
    latencies = [r[0] for r in ok]
    return {
        "requests": requests, "ok": len(ok), "errors": requests - len(ok), "error_statuses": statuses,
        "failures": sorted(set(failures)), "seconds": elapsed,
        "p50_ms": quantile(latencies, 0.5) * 1000, "p99_ms": quantile(latencies, 0.99) * 1000,
        "ttft_p50_ms": quantile([r[1] for r in ok], 0.5) * 1000 if stream else None,
        "rps": len(ok) / elapsed if elapsed else float("nan"),
        # Per answered request: a refusal (429) costs the server little, so dividing by all requests
        # would make a server that refuses most of them look cheap.
        "cpu_ms_per_request": cpu / max(len(ok), 1) * 1000,
        # The load generator's own CPU over the cell, as a share of one core: near 1.0 it is the limit.
        "client_cpu_share": own / elapsed if elapsed else float("nan"),
    }


def median_spread(values: list[float]) -> dict[str, float]:
    """Median, min and max of repeated measurements (NaNs dropped)."""
    clean = [v for v in values if v == v]
    if not clean:
        return {"median": float("nan"), "min": float("nan"), "max": float("nan"), "n": 0}
    return {"median": statistics.median(clean), "min": min(clean), "max": max(clean), "n": len(clean)}
