"""The ``studiolm`` command line.

* ``studiolm ask "question" [--web-search auto|force|images] [--model M] [--json] [--no-stream] [--raw]``
  streams the steps (to stderr) and the answer (to stdout), then the numbered sources.
  ``--json`` asks for JSON mode (``response_format="json"``); ``--raw`` prints the wire chunks or
  response as JSON instead of the readable view.
* ``studiolm index [PATH]`` builds the local full-text index: over the folder PATH, or over the
  offline Wikipedia corpus when no PATH is given. ``studiolm ask --index DB`` searches that index.
* ``studiolm research "question" [-o report.md] [--resume ID]`` writes a cited research report,
  with live progress on stderr (see :mod:`agent._cli_research`).
* ``studiolm models`` lists the models.
* ``studiolm extract --schema S INPUT… -o out.jsonl`` extracts one record per document (see
  :mod:`agent._cli_extract`).
* ``studiolm serve [--host 127.0.0.1] [--port 8000] [--model ID ...] [--api-key KEY ...] [--workers N]
  [--max-concurrency N] [--max-queue N] [--queue-timeout S] [--max-connections N]`` serves the API over
  HTTP (see :mod:`agent.server._app`); without a key it only listens on loopback. The limits default
  to ``$STUDIOLM_MAX_CONCURRENCY`` etc., else to values chosen by the backend (:mod:`agent.server._limits`).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import hashlib
import json
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, TextIO

from agent._cli_extract import add_extract_parser
from agent._cli_research import add_research_parser
from agent._client import Client
from agent._exceptions import StudiolmError
from agent.models import DEFAULT_LOCAL_MODEL
from tools import SearchBackend, ToolsError, terminal_safe

__all__ = ["main"]

DEFAULT_MODEL = DEFAULT_LOCAL_MODEL


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``studiolm`` console script; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (StudiolmError, ToolsError, OSError) as exc:  # OSError: an unwritable --db, a missing folder…
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="studiolm", description="studiolm chat completions with web search.")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")
    ask = sub.add_parser("ask", help="ask a question, showing the steps and sources")
    ask.add_argument("question")
    ask.add_argument("--web-search", choices=["off", "auto", "force", "images"], default="off")
    ask.add_argument("--model", default=None, help=f"model id (default: {DEFAULT_MODEL} or the first listed)")
    ask.add_argument("--json", action="store_true", help="JSON mode (response_format='json')")
    ask.add_argument("--no-stream", action="store_true", help="wait for the whole answer")
    ask.add_argument("--raw", action="store_true", help="print the wire chunks / response as JSON")
    ask.add_argument("--max-tokens", type=int, default=300)
    ask.add_argument("--temperature", type=float, default=0.2)
    ask.add_argument("--search", choices=["auto", "web", "local", "none"], default=None,
                     help="search backend (default: $STUDIOLM_SEARCH or auto = web, then offline index)")
    ask.add_argument("--index", type=Path, default=None, help="search this index file (from `studiolm index`)")
    ask.set_defaults(run=_ask)
    index = sub.add_parser("index", help="build a local full-text index")
    index.add_argument("path", nargs="?", type=Path, help="folder of .txt/.md/.html files (default: offline corpus)")
    index.add_argument("--db", type=Path, default=None, help="where to write the index")
    index.set_defaults(run=_index)
    models = sub.add_parser("models", help="list the models")
    models.set_defaults(run=_models)
    serve = sub.add_parser("serve", help="serve the API over HTTP (OpenAI-compatible, uvicorn)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (non-loopback needs a key)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--model", action="append", default=None, metavar="ID",
                       help="serve only this model id (repeatable; default: every model the backend lists)")
    serve.add_argument("--api-key", action="append", default=None, metavar="KEY",
                       help="accepted bearer token (repeatable; default: $STUDIOLM_SERVER_API_KEYS, "
                            "comma-separated, which keeps keys out of the process list)")
    serve.add_argument("--search", choices=["auto", "web", "local", "none"], default=None,
                       help="search backend (default: $STUDIOLM_SEARCH or auto)")
    serve.add_argument("--workers", type=int, default=1, metavar="N",
                       help="worker processes on the one port (each loads its own copy of an embedded model)")
    serve.add_argument("--max-concurrency", type=int, default=None, metavar="N",
                       help="generations running at once (default: $STUDIOLM_MAX_CONCURRENCY, else by backend: "
                            "256 for an HTTP upstream, 2 for the local model)")
    serve.add_argument("--max-queue", type=int, default=None, metavar="N",
                       help="requests waiting for a slot; more get 429 (default: $STUDIOLM_MAX_QUEUE, else "
                            "1024 upstream, 16 local)")
    serve.add_argument("--queue-timeout", type=float, default=None, metavar="S",
                       help="seconds a request may wait for a slot before a 503 (default: "
                            "$STUDIOLM_QUEUE_TIMEOUT, else 5)")
    serve.add_argument("--max-connections", type=int, default=None, metavar="N",
                       help="open connections; more get 503 (default: $STUDIOLM_MAX_CONNECTIONS, else 4096 "
                            "within the file-descriptor limit)")
    serve.set_defaults(run=_serve)
    add_extract_parser(sub)
    add_research_parser(sub)
    return parser


def _ask(args: argparse.Namespace) -> int:
    search: SearchBackend | str | None = _open_index(args.index) if args.index else args.search
    with Client(search=search) as client:
        params: dict[str, Any] = {
            "model": args.model or _default_model(client),
            "messages": [{"role": "user", "content": args.question}],
            "web_search": False if args.web_search == "off" else args.web_search,
            "max_tokens": args.max_tokens,
            "temperature": args.temperature,
            "response_format": "json" if args.json else None,
        }
        if args.no_stream:
            response = client.chat.completions.create(**params)
            _print_response(response, raw=args.raw)
        else:
            with client.chat.completions.create(**params, stream=True) as stream:
                for chunk in stream:
                    _print_chunk(chunk, raw=args.raw)
    return 0


def _default_model(client: Client) -> str:
    ids = [m["id"] for m in client.models.list()["data"]]
    return DEFAULT_MODEL if DEFAULT_MODEL in ids or not ids else str(ids[0])


def _print_chunk(chunk: dict[str, Any], *, raw: bool, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> None:
    if raw:
        print(json.dumps(chunk), file=out, flush=True)
        return
    if "step" in chunk:
        print(f"  · {terminal_safe(_describe(chunk['step']), keep_newlines=True)}", file=err, flush=True)
    choice = chunk["choices"][0]
    print(terminal_safe(choice["delta"].get("content") or "", keep_newlines=True), end="", file=out, flush=True)
    if choice.get("finish_reason"):
        print(file=out)
        _print_sources(chunk, out)


def _print_response(response: dict[str, Any], *, raw: bool, out: TextIO = sys.stdout) -> None:
    if raw:
        print(json.dumps(response, indent=2), file=out)
        return
    print(terminal_safe(response["choices"][0]["message"]["content"] or "", keep_newlines=True), file=out)
    _print_sources(response, out)


def _print_sources(body: dict[str, Any], out: TextIO) -> None:
    info = body.get("web_search")
    if info is None:
        return
    for n, result in enumerate(body.get("search_results", []), 1):
        print(f"[{n}] {terminal_safe(result['title'])} — {terminal_safe(result['url'])}", file=out)
    for n, image in enumerate(body.get("images", []), 1):
        print(f"[{n}] {terminal_safe(image['title'])} — {terminal_safe(image['source_url'] or '')}", file=out)
    if info.get("errors"):
        print("search errors: " + terminal_safe("; ".join(info["errors"])), file=out)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _describe(step: dict[str, Any]) -> str:
    kind = step["type"]
    details = {
        "search.started": lambda s: f"searching {s['kind']}: {s['query']!r}",
        "search.completed": lambda s: f"{_count(len(s['results']), 'result')} from {s['backend']}"
        + "".join(f"\n      [{r['id']}] {r['title']}" for r in s["results"]),
        "search.fallback": lambda s: f"{s['backend']} unavailable ({_short(s['reason'])}); falling back",
        "search.failed": lambda s: f"search failed: {s['error']}",
        "search.decided": lambda s: ("searching" if s["search"] else "not searching") + f": {s['reason']}",
        "query.planned": lambda s: f"query ({s['planner']}): {s['query']!r}",
        "images.completed": lambda s: f"{_count(len(s['images']), 'image')} from {s['backend']}",
        "generation.started": lambda s: f"generating with {s['model']} (call {s['attempt']})",
    }
    describe = details.get(kind)
    return f"{kind}: {describe(step)}" if describe else f"{kind}: {json.dumps(step)}"


def _short(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _open_index(path: Path) -> SearchBackend:
    from tools import LocalIndex

    return LocalIndex.open(path)


def _index(args: argparse.Namespace) -> int:
    from tools import LocalIndex

    if args.path is None:
        index = LocalIndex.from_corpus(cache_dir=args.db)
    else:
        index = LocalIndex.from_folder(args.path, db_path=args.db or _folder_index_path(args.path))
    asyncio.run(index.prepare())
    skipped = f", {len(index.skipped)} files skipped" if index.skipped else ""
    print(f"index ready: {index.db_path} ({index.document_count} documents{skipped})")
    for item in index.skipped:
        print(f"  skipped {terminal_safe(str(item.path))}: {terminal_safe(item.reason)}", file=sys.stderr)
    return 0


def _folder_index_path(folder: Path) -> Path:
    """A stable index location per folder, in the cache dir (the user's folder is left untouched)."""
    from tools import default_cache_dir

    digest = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    return default_cache_dir() / f"folder-{digest}.db"


def _serve(args: argparse.Namespace) -> int:

    import agent.server

    try:
        serve = agent.server.serve
    except ImportError as exc:  # the `server` extra is missing; the message names it
        print(f"error: `studiolm serve`: {exc}", file=sys.stderr)
        return 2
    _run_fast(serve(host=args.host, port=args.port, api_keys=args.api_key, models=args.model,
                    search=args.search, limits=_serve_limits(args), workers=args.workers))
    return 0


def _run_fast(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on uvloop when it is installed (the ``server`` extra brings it), else on asyncio."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


def _serve_limits(args: argparse.Namespace) -> Any:
    """The server's limits: the flags, else the environment, else the defaults (by backend kind)."""
    from agent.server import limits_from_env

    given = {"max_concurrent": args.max_concurrency, "max_queued": args.max_queue,
             "queue_timeout": args.queue_timeout, "max_connections": args.max_connections}
    return dataclasses.replace(limits_from_env(), **{k: v for k, v in given.items() if v is not None})


def _models(args: argparse.Namespace) -> int:
    with Client(search="none") as client:
        for model in client.models.list()["data"]:
            print(model["id"])
    return 0
