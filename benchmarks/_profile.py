"""Where the server's CPU goes: cProfile (per-thread CPU clock, every thread) at c=16, per mode,
grouped by package, with the recommendations that follow ranked by the share they could save."""

from __future__ import annotations

import argparse
import asyncio
import os
import pstats
import signal
from pathlib import Path
from typing import Any

from benchmarks._load import load
from benchmarks._procs import ROOT, free_port, running

PROFILE_CONCURRENCY = 16

#: (group, what to match in the profiled function's file or name); first match wins.
GROUPS = [
    ("langgraph + langchain_core (graph engine)", ("/langgraph/", "/langchain_core/", "/langsmith/")),
    ("httpx + httpcore (upstream client)", ("/httpx/", "/httpcore/", "/anyio/", "/sniffio/")),
    ("h11 (HTTP parsing, both sides)", ("/h11/",)),
    ("uvicorn + starlette (ASGI server)", ("/uvicorn/", "/starlette/")),
    ("studiolm: agent/", (str(ROOT / "agent") + "/",)),
    ("studiolm: graphs/", (str(ROOT / "graphs") + "/",)),
    ("studiolm: tools/", (str(ROOT / "tools") + "/",)),
    ("pydantic", ("/pydantic",)),
    ("JSON encode/decode", ("/json/", "orjson", "_json")),
    ("thread pool + locks", ("threading.py", "/concurrent/", "queue.py", "lock")),
    ("socket I/O (syscalls)", ("socket", "send", "recv")),
    ("asyncio event loop", ("/asyncio/", "selectors.py", "select", "poll", "_contextvars", "Context")),
]

OTHER = "other (stdlib, interpreter)"

RECOMMENDATIONS = {
    "langgraph + langchain_core (graph engine)":
        "LangGraph engine per request (done: plain channels, nodes route themselves with `Command`, no "
        "`finish` step, `custom`+`updates` streaming: about half the graph's CPU). Left: LangGraph's custom "
        "stream writer crosses threads (`call_soon_threadsafe`, a socket write) once per token; our own event "
        "queue beside the graph would remove it, at some risk to ordering and cancellation; and the "
        "per-task callback managers, which LangGraph's public API cannot switch off.",
    "httpx + httpcore (upstream client)":
        "Upstream client (done: non-stream requests make a non-stream upstream call; SSE split with "
        "`str.split`). Left: httpcore's pool bookkeeping (`is_idle` per connection per request) and its h11 "
        "parsing, both outside our code.",
    "h11 (HTTP parsing, both sides)":
        "HTTP parsing: uvicorn picks httptools when installed; the upstream client (httpcore) always parses "
        "with h11. Left: an httptools- or aiohttp-based upstream transport (httpx takes a `transport=`).",
    "uvicorn + starlette (ASGI server)":
        "ASGI layer (done: SSE events that are ready together go out in one `send`). Left: a plain ASGI "
        "callable instead of Starlette's routing for the two hot endpoints.",
    "studiolm: agent/": "Our agent/ code (done: response objects wrap nested dicts lazily, orjson). Left: "
                        "per-request contract checks in `agent/_params.py` (~90 µs) and the n-choices layer "
                        "for non-stream requests.",
    "studiolm: graphs/": "Our graphs/ code: per-chunk work in the chat graph (see the top functions below).",
    "studiolm: tools/": "Our tools/ code on the request path (see the top functions below).",
    "pydantic": "pydantic: validate once per request, not per chunk.",
    "JSON encode/decode": "JSON (done: orjson for the server's chunks, upstream bodies and events).",
    "thread pool + locks": "Thread hops: the routers run on the loop; what remains is the executor's own "
                           "bookkeeping and locks.",
    "socket I/O (syscalls)": "Socket writes (done: one write per burst of ready SSE events); left: the "
                             "stream writer's per-token self-pipe write (see the graph engine).",
    "asyncio event loop": "Event loop: `studiolm serve` runs on uvloop when installed; left: fewer tasks "
                          "and futures per request (each graph step makes several).",
}


def group_of(key: tuple[str, int, str]) -> str:
    filename, _, name = key
    where = filename if filename != "~" else name
    for group, needles in GROUPS:
        if any(needle in where for needle in needles):
            return group
    return OTHER


def summarise(path: Path, top: int = 12) -> dict[str, Any]:
    stats = pstats.Stats(str(path))
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in table.values()) or 1.0
    groups: dict[str, float] = {}
    for key, entry in table.items():
        for group, seconds in attribute(key, entry).items():
            groups[group] = groups.get(group, 0.0) + seconds
    ranked = sorted(groups.items(), key=lambda kv: -kv[1])
    functions = sorted(table.items(), key=lambda kv: -kv[1][2])[:top]
    return {
        "cpu_seconds": total,
        "groups": [{"group": g, "share": s / total} for g, s in ranked],
        "top_functions": [{"function": _name(key), "share": entry[2] / total, "calls": entry[1]}
                          for key, entry in functions],
    }


def attribute(key: tuple[str, int, str], entry: Any) -> dict[str, float]:
    """A function's self time by group; time in an unclaimed (stdlib/builtin) function is charged to
    its callers' groups in proportion to their share of it (``isinstance`` called by LangGraph counts
    as LangGraph)."""
    own = group_of(key)
    callers: dict[Any, Any] = entry[4]
    if own != OTHER or not callers:
        return {own: entry[2]}
    edge_total = sum(edge[2] for edge in callers.values()) or 1.0
    charged: dict[str, float] = {}
    for caller, edge in callers.items():
        group = group_of(caller)
        charged[group] = charged.get(group, 0.0) + entry[2] * edge[2] / edge_total
    return charged


def _name(key: tuple[str, int, str]) -> str:
    filename, line, name = key
    if filename == "~":
        return name
    short = filename.split("site-packages/")[-1].replace(str(ROOT) + "/", "")
    return f"{short}:{line} {name}"


async def profile_server(requests: int, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Profile a fresh server per mode under ``requests`` requests at c=16; CPU shares per group."""
    from benchmarks.bench_stack import serve_argv, server_env, upstream_argv

    found: dict[str, Any] = {"concurrency": PROFILE_CONCURRENCY, "requests": requests,
                             "profiler": "cProfile, time.thread_time clock, every thread"}
    for stream in (False, True):
        mode = "stream" if stream else "non-stream"
        up_port, port, dump = free_port(), free_port(), tmp / f"profile-{mode}.prof"
        base, log = f"http://127.0.0.1:{port}/v1", tmp / f"profile-{mode}.log"
        argv = serve_argv(port, concurrency=args.max_concurrency, queue=args.max_queue, profile=dump)
        with running(upstream_argv(up_port, args.words), up_port), \
                running(argv, port, env=server_env(f"http://127.0.0.1:{up_port}/v1"), log=log) as server:
            await load(base, stream=stream, concurrency=PROFILE_CONCURRENCY, requests=PROFILE_CONCURRENCY, pid=None)
            os.kill(server.pid, signal.SIGUSR1)  # drop start-up and warm-up from the profile
            await asyncio.sleep(0.2)
            cell = await load(base, stream=stream, concurrency=PROFILE_CONCURRENCY, requests=requests, pid=None)
        found[mode] = {**summarise(dump), "errors": cell["errors"], "requests": cell["requests"]}
    found["recommendations"] = recommend(found)
    return found


def recommend(found: dict[str, Any]) -> list[dict[str, Any]]:
    """Each group's recommendation, ranked by its mean CPU share over both modes (the most it can save)."""
    shares: dict[str, list[float]] = {}
    for mode in ("non-stream", "stream"):
        for g in found[mode]["groups"]:
            shares.setdefault(g["group"], []).append(g["share"])
    ranked = sorted(shares.items(), key=lambda kv: -sum(kv[1]) / 2)
    return [{"group": g, "share": sum(s) / 2, "recommendation": RECOMMENDATIONS[g]}
            for g, s in ranked if g in RECOMMENDATIONS and sum(s) / 2 >= 0.02]
