"""The whole stack side by side (``make bench``): writes ``RESULTS.md`` and ``results/*.json``.

    python -m benchmarks [--quick] [--skip litellm,model,...] [--reps 3] [--out benchmarks]
        [--max-concurrency N] [--max-queue N]

Processes on loopback: a fast fake OpenAI upstream (benchmarks/_fake_upstream.py, measured alone),
our server (benchmarks/_serve.py: ``agent.server.serve`` as ``studiolm serve`` runs it, configured
by STUDIOLM_BASE_URL / STUDIOLM_API_KEY, no search, the server's default limits unless given) and
LiteLLM's proxy (installed into benchmarks/.litellm-venv on first use, one worker), all three
loaded by this process with httpx at each concurrency, stream and non-stream, taking turns rep by
rep. Then in this process: the SDK per call against raw httpx / the openai SDK / LangGraph +
ChatOpenAI, the embedded model against raw llama-cpp-python, local search and JSON validation;
the server's peak RSS under 256 concurrent streams; a cProfile of the server at c=16; and
``--workers 1`` vs ``--workers 2`` at c=16/64 plus the memory of each embedded-model worker
(benchmarks/_workers.py).
Sections: litellm, model, sdk, rss, profile, search, validation, workers (``--skip`` any of them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from benchmarks import _inprocess, _litellm, _profile, _stack_report, _workers
from benchmarks._load import KEY, load, median_spread
from benchmarks._procs import (
    ROOT,
    free_port,
    load_average,
    machine,
    peak_rss_mib,
    python_module,
    rss_mib,
    running,
    versions,
)

SECTIONS = ("http", "litellm", "model", "sdk", "rss", "profile", "search", "validation", "workers")
#: The sections with a JSON file of their own (results/NAME.json); run.json holds the rest.
PARTS = ("http", "sdk", "model", "rss", "profile", "search", "validation", "workers")
PACKAGES = ("studiolm-agent", "httpx", "uvicorn", "starlette", "langgraph", "langchain-core", "langchain-openai",
            "openai", "llama_cpp_python", "orjson", "uvloop", "httptools")
#: Run-wide switches set from the command line: ``uvloop`` runs our server on uvloop (a what-if:
#: ``studiolm serve`` runs on asyncio's own loop).
OPTIONS = {"uvloop": False}
#: How many streams the RSS measurement holds open at once, and how many rounds of them.
RSS_STREAMS, RSS_ROUNDS = 256, 2
#: Seconds between the slow upstream's chunks in the RSS measurement, so that the streams overlap.
RSS_CHUNK_DELAY = 0.01


def plan(args: argparse.Namespace) -> dict[str, Any]:
    """Sizes: the default run fits ~10 minutes on 2 cores; --quick is a smoke run."""
    if args.quick:
        return {"concurrency": [1, 4], "requests": lambda c: 8 * c, "reps": 1, "sdk_calls": 5, "model_tokens": 8,
                "model_reps": 1, "rss_streams": 16, "rss_rounds": 1, "profile_requests": 20, "search_queries": 20,
                "validation_calls": 20, "workers_concurrency": [4]}
    return {"concurrency": [1, 16, 64], "requests": lambda c: max(100, min(10 * c, 256)), "reps": args.reps,
            "sdk_calls": 100, "model_tokens": 128, "model_reps": max(args.reps, 5), "rss_streams": RSS_STREAMS,
            "rss_rounds": RSS_ROUNDS, "profile_requests": 200, "search_queries": 200, "validation_calls": 200,
            "workers_concurrency": [16, 64]}


def serve_argv(port: int, *, concurrency: int | None, queue: int | None, profile: Path | None = None) -> list[str]:
    argv = python_module("benchmarks._serve", str(port)) + (["--uvloop"] if OPTIONS["uvloop"] else [])
    for flag, value in (("--max-concurrency", concurrency), ("--max-queue", queue)):
        if value is not None:
            argv += [flag, str(value)]
    return argv + (["--profile", str(profile)] if profile else [])


def server_env(upstream: str) -> dict[str, str]:
    return {"STUDIOLM_BASE_URL": upstream, "STUDIOLM_API_KEY": KEY, "STUDIOLM_SEARCH": "none",
            "PYTHONPATH": str(ROOT)}


def upstream_argv(port: int, words: int, delay: float = 0.0) -> list[str]:
    return python_module("benchmarks._fake_upstream", str(port), "--words", str(words), "--delay", str(delay))


async def http_matrix(targets: dict[str, tuple[str, int]], p: dict[str, Any]) -> list[dict[str, Any]]:
    """Every (mode, concurrency, target) cell, ``reps`` times, targets taking turns within a rep."""
    raw: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    for rep in range(p["reps"]):
        for stream in (False, True):
            for c in p["concurrency"]:
                for name, (base, pid) in targets.items():
                    cell = await load(base, stream=stream, concurrency=c, requests=p["requests"](c), pid=pid)
                    raw.setdefault(("stream" if stream else "non-stream", c, name), []).append(cell)
                    print(f"  rep {rep + 1} {name:9} {'stream' if stream else 'plain':6} c={c:<3} "
                          f"{cell['rps']:7.0f} req/s p50 {cell['p50_ms']:7.2f} ms errors {cell['errors']}",
                          flush=True)
    return summarise(raw)


def summarise(raw: dict[tuple[str, int, str], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    rows = []
    for (mode, c, name), cells in raw.items():
        direct = raw[(mode, c, "direct")]
        added = [cell["p50_ms"] - d["p50_ms"] for cell, d in zip(cells, direct, strict=True)]
        row: dict[str, Any] = {"mode": mode, "concurrency": c, "target": name, "reps": cells,
                               "added_p50_ms": median_spread(added)}
        for key in ("p50_ms", "p99_ms", "ttft_p50_ms", "rps", "cpu_ms_per_request"):
            row[key] = median_spread([cell[key] for cell in cells if cell[key] is not None])
        row["errors"] = sum(cell["errors"] for cell in cells)
        row["requests"] = sum(cell["requests"] for cell in cells)
        row["error_statuses"] = sorted({s for cell in cells for s in cell["error_statuses"]})
        rows.append(row)
    return rows


async def peak_rss(upstream_words: int, streams: int, rounds: int, tmp: Path) -> dict[str, Any]:
    """Our server's peak RSS while ``streams`` streams run at once (limits raised to admit them all)."""
    up_port, port = free_port(), free_port()
    with running(upstream_argv(up_port, upstream_words, RSS_CHUNK_DELAY), up_port), \
            running(serve_argv(port, concurrency=streams, queue=streams), port,
                    env=server_env(f"http://127.0.0.1:{up_port}/v1"), log=tmp / "rss-server.log") as server:
        base = f"http://127.0.0.1:{port}/v1"
        await load(base, stream=True, concurrency=4, requests=8, pid=None)
        idle = rss_mib(server.pid)
        results = [await load(base, stream=True, concurrency=streams, requests=streams, pid=server.pid)
                   for _ in range(rounds)]
        peak = peak_rss_mib(server.pid)
    return {"streams": streams, "rounds": rounds, "idle_rss_mib": idle, "peak_rss_mib": peak,
            "errors": sum(r["errors"] for r in results),
            "error_kinds": sorted({str(s) for r in results for s in r["error_statuses"] + r["failures"]}),
            "p50_ms": [r["p50_ms"] for r in results],
            "limits": f"max_concurrent={streams}, max_queued={streams}"}


async def run(args: argparse.Namespace, p: dict[str, Any], tmp: Path) -> dict[str, Any]:
    skip = set(args.skip)
    out: dict[str, Any] = {"notes": []}
    up_port = free_port()
    upstream = f"http://127.0.0.1:{up_port}/v1"
    with ExitStack() as stack:
        up = stack.enter_context(running(upstream_argv(up_port, args.words), up_port))
        if "http" not in skip:
            await http_section(stack, args, p, (upstream, up.pid), tmp, out)
        if "sdk" not in skip:
            print("== SDK per call", flush=True)
            out["sdk"] = await _inprocess.sdk_per_call(upstream, calls=p["sdk_calls"], reps=p["reps"],
                                                       words=args.words)
        if "workers" not in skip:
            print("== workers: 1 vs 2", flush=True)
            out["workers"] = await _workers.scaling((upstream, up.pid), p, args.max_concurrency, args.max_queue, tmp)
    if "profile" not in skip:
        print("== profile", flush=True)
        out["profile"] = await _profile.profile_server(p["profile_requests"], args, tmp)
    if "rss" not in skip:
        print("== peak RSS", flush=True)
        out["rss"] = await peak_rss(args.words, p["rss_streams"], p["rss_rounds"], tmp)
    if "model" not in skip:
        print("== embedded model", flush=True)
        out["model"] = await _inprocess.embedded(max_tokens=p["model_tokens"], reps=p["model_reps"])
    if "workers" not in skip and "model" not in skip and not args.quick:
        print("== workers: embedded model memory", flush=True)
        out["workers"]["embedded"] = await _workers.embedded(tmp)
    if "search" not in skip:
        out["search"] = await _inprocess.local_search(queries=p["search_queries"], reps=p["reps"])
    if "validation" not in skip:
        out["validation"] = _inprocess.validation(calls=p["validation_calls"], reps=max(3, p["reps"]))
    return out


async def http_section(stack: ExitStack, args: argparse.Namespace, p: dict[str, Any], direct: tuple[str, int],
                       tmp: Path, out: dict[str, Any]) -> None:
    """Our server (and LiteLLM's proxy) in front of the upstream, loaded cell by cell."""
    port = free_port()
    ours = stack.enter_context(running(serve_argv(port, concurrency=args.max_concurrency, queue=args.max_queue),
                                       port, env=server_env(direct[0]), log=tmp / "server.log"))
    targets = {"direct": direct, "studiolm": (f"http://127.0.0.1:{port}/v1", ours.pid)}
    if "litellm" not in set(args.skip):
        targets.update(start_litellm(stack, direct[0], tmp, out))
    print("== HTTP: " + " / ".join(targets), flush=True)
    out["http"] = await http_matrix(targets, p)
    for row in out["http"]:
        if row["target"] == "studiolm" and row["errors"]:
            out["notes"].append(
                f"studiolm refused {row['errors']} of {row['requests']} {row['mode']} requests "
                f"at c={row['concurrency']} "
                f"(HTTP {', '.join(map(str, row['error_statuses'])) or '-'}) with {limits_note(args)}; its p50/req/s "
                "count only the answered ones. `--max-concurrency/--max-queue` raise the limits.")


def start_litellm(stack: ExitStack, upstream: str, tmp: Path, out: dict[str, Any]) -> dict[str, tuple[str, int]]:
    """LiteLLM's proxy in front of the fake upstream, or nothing (with a note saying why)."""
    print("== LiteLLM: installing into benchmarks/.litellm-venv if needed", flush=True)
    problem = _litellm.ensure_installed(tmp / "litellm-install.log")
    if problem:
        out["notes"].append(f"LiteLLM not measured: {problem}")
        return {}
    out["litellm_version"] = _litellm.version()
    config, port = tmp / "litellm.yaml", free_port()
    _litellm.write_config(config, upstream, "bench-model", KEY)
    argv, env = _litellm.command(config, port)
    try:
        proxy = stack.enter_context(running(argv, port, env=env, log=tmp / "litellm.log"))
    except RuntimeError as exc:
        log = (tmp / "litellm.log").read_text(errors="replace")[-500:]
        out["notes"].append(f"LiteLLM not measured: it did not start ({exc}): {log}")
        return {}
    return {"litellm": (f"http://127.0.0.1:{port}/v1", proxy.pid)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke sizes (c=1/4, one rep; seconds, not minutes)")
    parser.add_argument("--skip", type=lambda s: [x for x in s.split(",") if x], default=[],
                        help=f"comma-separated sections to leave out: {','.join(SECTIONS)}")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of every measurement (median reported)")
    parser.add_argument("--words", type=int, default=20, help="chunks in the fake upstream's answer")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks", help="where RESULTS.md and results/ go")
    parser.add_argument("--max-concurrency", type=int, default=None, help="our server's limit (default: its own)")
    parser.add_argument("--max-queue", type=int, default=None, help="our server's queue (default: its own)")
    parser.add_argument("--uvloop", action="store_true", help="what-if: run our server on uvloop")
    parser.add_argument("--render-only", action="store_true",
                        help="measure nothing: rewrite RESULTS.md from the JSON already in OUT/results")
    args = parser.parse_args(argv)
    if args.render_only:
        write(read(args.out), args.out)
        return 0
    unknown = set(args.skip) - set(SECTIONS)
    if unknown:
        parser.error(f"--skip: unknown section {sorted(unknown)[0]!r}; choose from {', '.join(SECTIONS)}")
    OPTIONS["uvloop"] = args.uvloop
    p = plan(args)
    began, host = time.time(), machine()
    with tempfile.TemporaryDirectory(prefix="studiolm-bench-") as tmp:
        results = asyncio.run(run(args, p, Path(tmp)))
    host["load_end"] = load_average()
    results.update({"machine": host, "versions": versions(PACKAGES), "command": command_line(argv),
                    "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(began)),
                    "duration_s": time.time() - began, "quick": args.quick, "reps": p["reps"],
                    "words": args.words, "limits": limits_note(args)})
    write(results, args.out)
    return 0


def limits_note(args: argparse.Namespace) -> str:
    loop = " (on uvloop)" if args.uvloop else ""
    if args.max_concurrency is None and args.max_queue is None:
        return "the server's defaults" + loop
    return f"--max-concurrency {args.max_concurrency} --max-queue {args.max_queue}{loop}"


def command_line(argv: list[str] | None) -> str:
    given = argv if argv is not None else sys.argv[1:]
    return " ".join(["python -m benchmarks", *given]) if given else "make bench"


def read(out: Path) -> dict[str, Any]:
    """The results of an earlier run, from ``out/results/*.json``."""
    folder = out / "results"
    results: dict[str, Any] = json.loads((folder / "run.json").read_text())
    for name in PARTS:
        if (folder / f"{name}.json").exists():
            results[name] = json.loads((folder / f"{name}.json").read_text())
    return results


def write(results: dict[str, Any], out: Path) -> None:
    folder = out / "results"
    folder.mkdir(parents=True, exist_ok=True)
    for name in PARTS:
        if name in results:
            (folder / f"{name}.json").write_text(json.dumps(results[name], indent=1, default=str) + "\n")
    meta = {k: v for k, v in results.items() if k not in PARTS}
    (folder / "run.json").write_text(json.dumps(meta, indent=1, default=str) + "\n")
    text = _stack_report.render(results)
    (out / "RESULTS.md").write_text(text)
    print(text)


if __name__ == "__main__":
    raise SystemExit(main())
