"""What the HTTP server adds: latency and throughput through ``studiolm serve``'s app, as a ratio to
calling the same fake upstream directly, measured in the same run.

    .venv/bin/python -m benchmarks.bench_server [--requests 200] [--concurrency 16] [--words 20]
        [--write benchmarks/results/server.md]

Three processes on loopback: a fake OpenAI-compatible upstream (streams ``--words`` chunks at once),
our server (``create_app`` over :class:`OpenAICompatibleBackend` pointed at the fake upstream, no
search) and this client (httpx). "direct" posts the request to the fake upstream; "server" posts the
same request to our server, which validates it, runs the chat graph, calls the upstream and
re-encodes the answer. Each measurement is warmed up first; loops are bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import socket
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from benchmarks._report import publish

MODEL = "bench-model"
KEY = "sk-bench"
WARMUP = 20


# --- The processes -------------------------------------------------------------------------------------


def fake_upstream_app(words: int) -> Any:
    """An OpenAI-compatible chat server answering every request with ``words`` streamed chunks."""
    chunk = {"id": "up", "object": "chat.completion.chunk", "model": MODEL,
             "choices": [{"index": 0, "delta": {"content": "word "}, "finish_reason": None}]}
    final = {"id": "up", "object": "chat.completion.chunk", "model": MODEL,
             "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
             "usage": {"prompt_tokens": 5, "completion_tokens": words, "total_tokens": words + 5}}
    events = [b"data: " + json.dumps(chunk).encode() + b"\n\n"] * words
    events.append(b"data: " + json.dumps(final).encode() + b"\n\ndata: [DONE]\n\n")
    models = json.dumps({"object": "list", "data": [{"id": MODEL, "object": "model"}]}).encode()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        more = True
        while more:
            more = (await receive()).get("more_body", False)
        if scope["path"].endswith("/models"):
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": models})
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        for event in events:
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    return app


def run_upstream(port: int, words: int) -> None:
    import uvicorn

    uvicorn.run(fake_upstream_app(words), host="127.0.0.1", port=port, log_level="warning", lifespan="off")


def run_server(port: int, upstream_port: int, concurrency: int) -> None:
    import uvicorn

    from agent import AsyncClient
    from agent.models._openai import OpenAICompatibleBackend
    from agent.server._app import create_app
    from agent.server._limits import ServerLimits

    backend = OpenAICompatibleBackend(KEY, f"http://127.0.0.1:{upstream_port}/v1", max_retries=0)
    client = AsyncClient(backend=backend, search="none")
    limits = ServerLimits(max_concurrent=concurrency, max_queued=concurrency)
    app = create_app(client, api_keys=[KEY], limits=limits)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_up(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on port {port}")


# --- The measurements ------------------------------------------------------------------------------------

Call = Callable[[httpx.AsyncClient], Awaitable[None]]


def make_call(base: str, *, stream: bool) -> Call:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hello"}], "stream": stream}
    headers = {"Authorization": f"Bearer {KEY}"}

    async def call(http: httpx.AsyncClient) -> None:
        async with http.stream("POST", f"{base}/chat/completions", json=body, headers=headers) as response:
            if response.status_code != 200:
                raise RuntimeError(f"{base}: HTTP {response.status_code}: {(await response.aread())[:200]!r}")
            async for _ in response.aiter_raw():
                pass

    return call


def make_sdk_call(upstream: str, *, stream: bool) -> Call:
    """The same request through the SDK in this process (no HTTP server): splits the server's cost
    into the chat graph's share and the HTTP layer's."""
    from agent import AsyncClient
    from agent.models._openai import OpenAICompatibleBackend

    client = AsyncClient(backend=OpenAICompatibleBackend(KEY, upstream, max_retries=0), search="none")
    messages = [{"role": "user", "content": "hello"}]

    async def call(http: httpx.AsyncClient) -> None:
        result = await client.chat.completions.create(model=MODEL, messages=messages, stream=stream)
        if stream:
            async for _ in result:
                pass

    return call


async def latency(calls: dict[str, Call], n: int) -> dict[str, list[float]]:
    """Seconds per request, one at a time; the calls take turns, so drift hits them all alike."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    async with httpx.AsyncClient(timeout=60) as http:
        for _ in range(WARMUP):
            for call in calls.values():
                await call(http)
        for _ in range(n):
            for name, call in calls.items():
                began = time.perf_counter()
                await call(http)
                times[name].append(time.perf_counter() - began)
    return times


async def throughput(call: Call, n: int, concurrency: int) -> float:
    """Requests per second with ``concurrency`` requests in flight, ``n`` in all."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        await asyncio.gather(*(call(http) for _ in range(concurrency)))
        remaining = n

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                await call(http)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return n / (time.perf_counter() - began)


async def measure(direct: str, server: str, n: int, concurrency: int) -> list[dict[str, Any]]:
    rows = []
    for stream in (False, True):
        mode = "stream" if stream else "non-stream"
        calls = {"direct": make_call(direct, stream=True), "sdk": make_sdk_call(direct, stream=stream),
                 "server": make_call(server, stream=stream)}
        row: dict[str, Any] = {"mode": mode}
        for name, times in (await latency(calls, n)).items():
            row[f"{name}_p50_ms"] = statistics.median(times) * 1000
            row[f"{name}_p90_ms"] = _p90(times) * 1000
        for name, call in calls.items():
            row[f"{name}_rps"] = await throughput(call, n, concurrency)
        rows.append(row)
    return rows


def _p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1]


def report(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [
        "# HTTP server overhead",
        "",
        f"Command: `.venv/bin/python -m benchmarks.bench_server --requests {args.requests} "
        f"--concurrency {args.concurrency} --words {args.words}`",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{platform.system()}; loopback only; {time.strftime('%Y-%m-%d')}.",
        "",
        f"Each request asks for a {args.words}-chunk answer. *direct*: an HTTP client posting to the fake "
        "upstream itself (always streamed, as the backend calls it). *server*: the same client posting to "
        "our server in front of it (validation, the chat graph, the OpenAI-compatible backend, "
        "re-encoding). *sdk*: `AsyncClient.chat.completions.create` in the client process against the "
        "same upstream, no server: the part of the server's cost that is the chat graph and backend, "
        "not HTTP. Latency: one request at a time, the three taking turns, "
        f"{args.requests} requests after {WARMUP} warm-up. Throughput: {args.concurrency} in flight, "
        f"{args.requests} requests.",
        "",
        "| mode | direct p50 ms | sdk p50 ms | server p50 ms | server/direct latency | server added p50 ms "
        "| server p90 ms | direct req/s | sdk req/s | server req/s | server/direct throughput |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['mode']} | {r['direct_p50_ms']:.2f} | {r['sdk_p50_ms']:.2f} | {r['server_p50_ms']:.2f} "
            f"| {r['server_p50_ms'] / r['direct_p50_ms']:.1f}x | {r['server_p50_ms'] - r['direct_p50_ms']:.2f} "
            f"| {r['server_p90_ms']:.2f} | {r['direct_rps']:.0f} | {r['sdk_rps']:.0f} "
            f"| {r['server_rps']:.0f} | {r['server_rps'] / r['direct_rps']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--words", type=int, default=20)
    parser.add_argument("--write", type=Path, default=None, help="also write the markdown report here")
    args = parser.parse_args(argv)
    upstream_port, server_port = free_port(), free_port()
    processes = [
        multiprocessing.Process(target=run_upstream, args=(upstream_port, args.words), daemon=True),
        multiprocessing.Process(target=run_server, args=(server_port, upstream_port, args.concurrency), daemon=True),
    ]
    for process in processes:
        process.start()
    try:
        wait_until_up(upstream_port)
        wait_until_up(server_port)
        rows = asyncio.run(measure(f"http://127.0.0.1:{upstream_port}/v1", f"http://127.0.0.1:{server_port}/v1",
                                   args.requests, args.concurrency))
    finally:
        for process in processes:
            process.terminate()
            process.join(10)
    text = report(rows, args)
    publish(text, args.write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
