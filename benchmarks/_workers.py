"""``studiolm serve --workers N``: req/s with 1 worker vs 2 against the fast fake upstream, and the
memory of each worker process when every worker loads the embedded model.

Scaling: two servers (``--workers 1`` and ``--workers 2``) in front of the same fake upstream, loaded
in turn with the upstream itself (*direct*) at each concurrency, stream and non-stream, ``reps``
times. The load generator is this one Python process on the same machine; its CPU share (of one
core) is reported beside, and *direct* req/s is the most it can drive.

Embedded: a ``--workers 2`` server on the embedded default model (no upstream), a few rounds of two
concurrent answers so that both workers load the model, then RSS, PSS and private memory per worker process
(``/proc/<pid>/smaps_rollup``). The GGUF weights are memory-mapped, so their pages sit in the page
cache once and are shared by the workers: RSS counts them in every worker, PSS splits them.
"""

from __future__ import annotations

import asyncio
import statistics
from pathlib import Path
from typing import Any

import httpx

from benchmarks._load import KEY, load, median_spread
from benchmarks._procs import children, cmdline, free_port, memory_mib, python_module, running

#: The worker counts compared.
WORKER_COUNTS = (1, 2)
#: Rounds of concurrent answers sent to the embedded ``--workers 2`` server (enough to reach both
#: workers; two at a time, so that none waits in a queue while a worker loads the model), tokens of each.
EMBEDDED_ROUNDS, EMBEDDED_CONCURRENCY, EMBEDDED_TOKENS = 3, 2, 8
#: Seconds an embedded answer may take (loading the model included).
EMBEDDED_TIMEOUT_SECONDS = 300


def serve_argv(port: int, workers: int, concurrency: int | None, queue: int | None) -> list[str]:
    argv = python_module("benchmarks._serve", str(port), "--workers", str(workers))
    for flag, value in (("--max-concurrency", concurrency), ("--max-queue", queue)):
        if value is not None:
            argv += [flag, str(value)]
    return argv


def worker_pids(supervisor: int) -> list[int]:
    """The uvicorn worker processes under a ``--workers N`` server (spawned interpreters)."""
    return [pid for pid in children(supervisor) if "spawn_main" in cmdline(pid)]


async def scaling(direct: tuple[str, int], p: dict[str, Any], concurrency: int | None, queue: int | None,
                  tmp: Path) -> dict[str, Any]:
    """req/s of 1 and 2 workers and of the upstream alone, per (mode, c), taking turns rep by rep."""
    raw: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    env = {"STUDIOLM_BASE_URL": direct[0], "STUDIOLM_API_KEY": KEY, "STUDIOLM_SEARCH": "none"}
    ports = {n: free_port() for n in WORKER_COUNTS}
    with running(serve_argv(ports[1], 1, concurrency, queue), ports[1], env=env, log=tmp / "workers-1.log") as one, \
            running(serve_argv(ports[2], 2, concurrency, queue), ports[2], env=env, log=tmp / "workers-2.log") as two:
        targets = {"direct": direct, "1 worker": (f"http://127.0.0.1:{ports[1]}/v1", one.pid),
                   "2 workers": (f"http://127.0.0.1:{ports[2]}/v1", two.pid)}
        for rep in range(p["reps"]):
            for stream in (False, True):
                for c in p["workers_concurrency"]:
                    for name, (base, pid) in targets.items():
                        cell = await load(base, stream=stream, concurrency=c, requests=p["requests"](c), pid=pid)
                        mode = "stream" if stream else "non-stream"
                        raw.setdefault((mode, c, name), []).append(cell)
                        print(f"  rep {rep + 1} {name:9} {mode:10} c={c:<3} {cell['rps']:7.0f} req/s "
                              f"generator CPU {cell['client_cpu_share']:.2f} errors {cell['errors']}", flush=True)
    return {"rows": summarise(raw), "limits": "defaults" if concurrency is None and queue is None
            else f"--max-concurrency {concurrency} --max-queue {queue}"}


def summarise(raw: dict[tuple[str, int, str], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per (mode, c): req/s of each target, 2 workers / 1 worker per rep, generator CPU."""
    rows = []
    for mode, c in dict.fromkeys((mode, c) for mode, c, _ in raw):
        cells = {name: raw[(mode, c, name)] for name in ("direct", "1 worker", "2 workers")}
        gains = [b["rps"] / a["rps"] for a, b in zip(cells["1 worker"], cells["2 workers"], strict=True) if a["rps"]]
        rows.append({
            "mode": mode, "concurrency": c,
            **{f"rps_{name.replace(' ', '_')}": median_spread([cell["rps"] for cell in cells[name]])
               for name in cells},
            "gain_2_over_1": median_spread(gains),
            "generator_cpu_share": {name: statistics.median(cell["client_cpu_share"] for cell in cells[name])
                                    for name in cells},
            "errors": {name: sum(cell["errors"] for cell in cells[name]) for name in cells},
            "reps": {name: cells[name] for name in cells},
        })
    return rows


async def embedded(tmp: Path) -> dict[str, Any]:
    """Memory per worker of a ``--workers 2`` server on the embedded default model, after it answered."""
    from agent import DEFAULT_LOCAL_MODEL

    port = free_port()
    env = {"STUDIOLM_BASE_URL": "", "STUDIOLM_SEARCH": "none"}
    with running(serve_argv(port, 2, None, None), port, env=env, log=tmp / "workers-embedded.log") as server:
        await asyncio.gather(*(_models(port) for _ in range(4)))  # both workers up, nothing loaded yet
        idle = {str(pid): memory_mib(pid) for pid in worker_pids(server.pid)}
        answers: list[int] = []
        for _ in range(EMBEDDED_ROUNDS):
            answers += await asyncio.gather(*(_answer(port, DEFAULT_LOCAL_MODEL) for _ in range(EMBEDDED_CONCURRENCY)))
        memory = {str(pid): memory_mib(pid) for pid in worker_pids(server.pid)}
    return {"model": DEFAULT_LOCAL_MODEL, "workers": len(memory), "requests": len(answers),
            "answered": sum(status == 200 for status in answers), "statuses": sorted(set(answers)),
            "idle_memory_mib": idle, "memory_mib": memory}


async def _models(port: int) -> int:
    async with httpx.AsyncClient(timeout=EMBEDDED_TIMEOUT_SECONDS) as http:
        response = await http.get(f"http://127.0.0.1:{port}/v1/models", headers={"Authorization": f"Bearer {KEY}"})
    return response.status_code


async def _answer(port: int, model: str) -> int:
    body = {"model": model, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": EMBEDDED_TOKENS}
    async with httpx.AsyncClient(timeout=EMBEDDED_TIMEOUT_SECONDS) as http:
        response = await http.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body,
                                   headers={"Authorization": f"Bearer {KEY}"})
    return response.status_code
