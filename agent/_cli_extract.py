"""``studiolm extract``: structured extraction from the command line.

::

    studiolm extract --schema S INPUT… -o out.jsonl [--errors errors.jsonl] [--concurrency N] [--resume]
                     [--overwrite] [--model M] [--web-search auto|force|images] [--engine local|ray] …

* ``--schema``: a JSON Schema file or ``module:Class`` naming a pydantic model.
* ``INPUT``: files (text, markdown, HTML, ``.jsonl`` with ``--text-field``), folders (recursive),
  globs (quote them: ``'docs/**/*.md'``) and ``http(s)://`` URLs.
* ``--errors`` defaults to ``<output>.errors.jsonl`` beside the output. ``--resume`` continues a run
  (skipping every id already in either file); without it, existing files are refused unless
  ``--overwrite``.
* The model comes from the environment like every command (``STUDIOLM_BASE_URL``/``STUDIOLM_API_KEY``,
  else the embedded model). A progress bar (done, failed, rate, ETA) goes to stderr, then the summary.
  Exit status 0 when the run finished (failures are in the errors file), 2 on a usage error, 130 when
  interrupted (resume with ``--resume``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from agent._client import Client
from agent._extract import DEFAULT_CONCURRENCY, aextract
from graphs import CHUNK_CHARS
from tools import PageFetcher

__all__ = ["add_extract_parser"]


def add_extract_parser(sub: Any) -> None:
    """Register ``extract`` on the ``studiolm`` subcommand parsers."""
    parser = sub.add_parser("extract", help="extract one schema-valid JSON record per document")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="files, folders, globs, .jsonl files, URLs")
    parser.add_argument("--schema", required=True, help="JSON Schema file, or module:Class (a pydantic model)")
    parser.add_argument("-o", "--output", required=True, type=Path, help="records, one JSON line per input")
    parser.add_argument("--errors", type=Path, default=None,
                        help="failures, one JSON line per input (default: OUTPUT with .errors.jsonl)")
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, help="documents in flight")
    parser.add_argument("--resume", action="store_true", help="skip inputs already in the output or errors file")
    parser.add_argument("--overwrite", action="store_true", help="start again, emptying existing files")
    parser.add_argument("--model", default=None, help="model id (default: the first the backend lists)")
    parser.add_argument("--web-search", choices=["off", "auto", "force", "images"], default="off")
    parser.add_argument("--text-field", default="text", help="the text field of .jsonl inputs")
    parser.add_argument("--id-field", default="id", help="the id field of .jsonl inputs")
    parser.add_argument("--chunk-chars", type=int, default=CHUNK_CHARS, help="characters per model call")
    parser.add_argument("--no-evidence", action="store_true", help="do not ask for a supporting quote per field")
    parser.add_argument("--engine", choices=["local", "ray"], default="local",
                        help="local: asyncio in this process; ray: Ray Data (the `ray` extra)")
    parser.add_argument("--fetch-allow", action="append", default=[], metavar="CIDR",
                        help="non-public network URL inputs may reach (repeatable; default: none)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(run=run_extract)


def run_extract(args: argparse.Namespace) -> int:
    """Run ``studiolm extract``; the summary goes to stderr."""
    errors = args.errors or args.output.with_name(args.output.name.removesuffix(".jsonl") + ".errors.jsonl")
    inputs = [{"id": i, "url": i} if i.startswith(("http://", "https://")) else Path(i) for i in args.inputs]
    options: dict[str, Any] = {
        "output": args.output, "errors": errors, "resume": args.resume, "overwrite": args.overwrite,
        "concurrency": args.concurrency, "model": args.model, "web_search": _mode(args.web_search),
        "text_field": args.text_field, "id_field": args.id_field, "chunk_chars": args.chunk_chars,
        "evidence": not args.no_evidence,
    }
    if args.engine == "ray":
        from agent._extract_ray import extract_with_ray

        summary = extract_with_ray(inputs, args.schema, fetch_allowed_networks=args.fetch_allow, **options)
    else:
        with Client(search=None if args.web_search != "off" else "none") as client:
            report = client._loop.run(aextract(inputs, args.schema, client=client, progress=not args.no_progress,
                                               fetcher=PageFetcher(allowed_networks=args.fetch_allow), **options))
        summary = report.summary
    print(summary, file=sys.stderr)
    print(f"records: {args.output}  failures: {errors}", file=sys.stderr)
    return 0


def _mode(value: str) -> str | bool:
    return False if value == "off" else value
