"""``studiolm research "question" [-o report.md] [--resume ID]``: a cited research report, with live
progress on stderr.

Every run is checkpointed (default: ``research-runs.sqlite`` in the cache directory) under the run id
printed when it starts; ``--resume ID`` continues a run that crashed or was interrupted from its last
completed step (or prints the report of a finished one). ``--review`` pauses after planning, shows
the plan, and reads the sub-questions to use from stdin (an empty line accepts the plan).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from pathlib import Path
from typing import Any, TextIO

from agent._research import research_events
from graphs import ResearchBudget, ResearchReport
from tools import LocalIndex, SearchBackend, default_cache_dir

__all__ = ["add_research_parser"]

CHECKPOINT_FILE = "research-runs.sqlite"


def add_research_parser(sub: Any) -> None:
    """Register the ``research`` command on the ``studiolm`` subparsers."""
    parser = sub.add_parser("research", help="research a question: a cited markdown report (resumable)")
    parser.add_argument("question", nargs="?", default=None, help="the question (omit with --resume)")
    parser.add_argument("-o", "--output", type=Path, default=None, help="write the report here (default: stdout)")
    parser.add_argument("--resume", metavar="ID", default=None, help="resume the run with this id")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help=f"checkpoint file (default: {CHECKPOINT_FILE} in the cache directory)")
    parser.add_argument("--model", default=None, help="model id (default: the backend's first model)")
    parser.add_argument("--search", choices=["auto", "web", "local", "none"], default=None,
                        help="search backend (default: $STUDIOLM_SEARCH or auto); local reads the index documents")
    parser.add_argument("--index", type=Path, default=None, help="search (and read) this index file")
    parser.add_argument("--review", action="store_true", help="review the plan before searching")
    parser.add_argument("--max-searches", type=int, default=None)
    parser.add_argument("--max-fetches", type=int, default=None)
    parser.add_argument("--max-seconds", type=float, default=None)
    parser.set_defaults(run=run_research_command)


def run_research_command(args: argparse.Namespace) -> int:
    """Run the command; the exit status is 0 for a full report, 3 for a partial one."""
    if not args.question and not args.resume:
        print("error: give a question, or --resume ID", file=sys.stderr)
        return 2
    report = asyncio.run(_run(args))
    while report.status == "awaiting_review":
        report = asyncio.run(_run(args, review_answer=_ask_review(report), run_id=report.run_id))
    _write(report, args.output)
    return 3 if report.partial else 0


async def _run(args: argparse.Namespace, review_answer: Any = None, run_id: str | None = None) -> ResearchReport:
    run_id = run_id or args.resume or uuid.uuid4().hex[:12]
    if review_answer is None:
        verb = "resuming" if args.resume else "research run"
        print(f"{verb} {run_id} (resume with: studiolm research --resume {run_id})", file=sys.stderr, flush=True)
    search: SearchBackend | str | None = LocalIndex.open(args.index) if args.index else args.search
    options: dict[str, Any] = {"search": search, "model": args.model, "run_id": run_id, "budget": _budget(args),
                               "checkpoint": args.checkpoint or default_cache_dir() / CHECKPOINT_FILE,
                               "review_plan": args.review, "review_answer": review_answer}
    report: ResearchReport | None = None
    async for item in research_events(None if args.resume else args.question, **options):
        if isinstance(item, ResearchReport):
            report = item
        else:
            print(f"  · {describe(item)}", file=sys.stderr, flush=True)
    assert report is not None
    return report


def _budget(args: argparse.Namespace) -> ResearchBudget:
    given = {"max_searches": args.max_searches, "max_fetches": args.max_fetches, "max_seconds": args.max_seconds}
    return ResearchBudget(**{k: v for k, v in given.items() if v is not None})


def describe(event: Any) -> str:
    """One progress line for a step event."""
    kind = event.type
    lines = {
        "research.plan": lambda e: f"plan ({e.planner}): " + "; ".join(e.sub_questions),
        "research.review": lambda e: f"waiting for a review of the plan (run {e.run_id})",
        "search.started": lambda e: f"searching {e.query!r}",
        "search.completed": lambda e: f"{len(e.results)} results for {e.query!r} from {e.backend}",
        "search.failed": lambda e: f"search failed: {e.error}",
        "search.fallback": lambda e: f"{e.backend} unavailable; falling back",
        "research.sources": lambda e: f"reading {len(e.urls)} sources" + (f" ({e.skipped} left)" if e.skipped else ""),
        "page.read": lambda e: f"[{e.id}] read {e.title or e.url} ({e.chars} chars)",
        "page.failed": lambda e: f"could not read {e.url}: {e.error}",
        "research.reflection": lambda e: "reflection: " + ("; ".join(e.gaps) or "no gaps"),
        "budget.exhausted": lambda e: f"budget: {e.reason}",
        "research.report": lambda e: f"report written ({e.writer}), citing {list(e.cited)}",
    }
    line = lines.get(kind)
    return line(event) if line else kind


def _ask_review(report: ResearchReport, stdin: TextIO = sys.stdin) -> Any:
    print("Plan:", file=sys.stderr)
    for number, sub in enumerate(report.plan, 1):
        print(f"  {number}. {sub.question}  (queries: {', '.join(sub.queries)})", file=sys.stderr)
    print("Sub-questions to research, one per line (an empty line accepts the plan):", file=sys.stderr, flush=True)
    lines: list[str] = []
    for line in stdin:
        if not line.strip():
            break
        lines.append(line.strip())
    return lines or None


def _write(report: ResearchReport, output: Path | None) -> None:
    if report.partial:
        print(f"partial report: {report.reason}", file=sys.stderr)
    if output is None:
        print(report.report)
        return
    output.write_text(report.report + "\n", encoding="utf-8")
    print(f"report written to {output} ({len(report.sources)} sources)", file=sys.stderr)
