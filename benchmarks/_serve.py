"""``studiolm serve`` for the benchmarks: ``python -m benchmarks._serve PORT [--max-concurrency N]
[--max-queue N] [--workers N] [--profile FILE] [--uvloop]``.

The same :func:`agent.server.serve` the CLI calls, configured by the environment as the CLI is
(``STUDIOLM_BASE_URL`` / ``STUDIOLM_API_KEY`` point it at the fake upstream), with no search and
one API key. ``--max-concurrency`` / ``--max-queue`` pass :class:`ServerLimits` (absent: the
server's own defaults); ``--workers N`` runs N worker processes as ``studiolm serve --workers N`` does.
``--profile`` runs it under :mod:`cProfile`, every thread included (the
server also works in a thread pool, on each thread's CPU clock), forgets what it recorded so far on
SIGUSR1 (start-up, warm-up) and writes the merged stats to FILE on SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import pstats
import signal
import sys
import threading
import time
from typing import Any

from agent.server import ServerLimits, serve
from benchmarks._load import KEY


def limits(args: argparse.Namespace) -> ServerLimits | None:
    """The limits asked for, or ``None`` for the server's defaults."""
    changes = {name: value for name, value in (("max_concurrent", args.max_concurrency),
                                                ("max_queued", args.max_queue)) if value is not None}
    return dataclasses.replace(ServerLimits(), **changes) if changes else None


def run(args: argparse.Namespace) -> None:
    main = serve(port=args.port, api_keys=[KEY], limits=limits(args), search="none", log_level="warning",
                 workers=args.workers)
    if args.uvloop:
        # `studiolm serve` calls asyncio.run, so uvicorn runs on the loop it is given, never uvloop's.
        import uvloop

        uvloop.run(main)
    else:
        asyncio.run(main)


def run_profiled(args: argparse.Namespace) -> None:
    profiles: list[cProfile.Profile] = []

    def start_in_thread(*_: Any) -> None:
        # Called once, on a new thread's first event: replace this hook with a profiler of its own.
        profile = cProfile.Profile(time.thread_time)  # CPU, not waiting
        profiles.append(profile)
        profile.enable()

    def clear(*_: Any) -> None:
        # SIGUSR1: forget start-up and warm-up; what follows is the measured load.
        for profile in profiles:
            profile.clear()

    signal.signal(signal.SIGUSR1, clear)
    threading.setprofile(start_in_thread)
    main_profile = cProfile.Profile(time.thread_time)  # CPU, not waiting
    profiles.append(main_profile)
    main_profile.enable()
    try:
        run(args)
    finally:
        main_profile.disable()
        stats = pstats.Stats(*profiles)
        stats.dump_stats(args.profile)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--max-concurrency", type=int, default=None)
    parser.add_argument("--max-queue", type=int, default=None)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--profile", default=None)
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop (what-if; the CLI does not)")
    args = parser.parse_args()
    (run_profiled if args.profile else run)(args)
    sys.exit(0)


if __name__ == "__main__":
    main()
