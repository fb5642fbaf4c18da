"""JSON mode on the embedded models over real-world schemas (the JSONSchemaBench sample in ../shared).

    .venv/bin/python -m benchmarks.bench_jsonschemabench [--model smollm2-135m-instruct]
        [--engine llguidance|gbnf] [--per-dataset 30] [--start 0] [--max-tokens 512]
        [--datasets Glaiveai2K,Github_hard] [--temperature 0.7] [--max-reasks 2] [--threads N]
        [--write] [--render] [--coverage]

For every schema (``--per-dataset`` files of each dataset from ``--start``, in name order) one
request goes through the public SDK on the embedded backend, exactly as a user would send it:
``response_format={"type": "json_schema", ...}`` with a short "produce an example instance"
instruction. The backend is ``LlamaBackend(json_engine=ENGINE)``: ``llguidance`` masks every token
with llguidance and never uses GBNF (a schema it cannot compile is generated unconstrained),
``gbnf`` only uses llama.cpp's GBNF grammars. Each schema ends in one of:

* **validated** — the response's JSON validates (checked again here with plain ``jsonschema``);
* **rejected up front** — ``compile_schema`` refused it before any model call (the reason is listed:
  remote ``$ref``, invalid against its metaschema, over the size bounds…);
* **failed** — no output validated within the re-ask budget (``OutputValidationError``), or the run
  failed otherwise (listed with its error; schemas run in a worker process, so even a crash inside
  llama.cpp is recorded as that schema's failure and the run goes on).

Per dataset it reports those shares, how many schemas the engine could compile into a constraint
(the "constrained" column: the first attempt's bounded schema became an llguidance grammar the
model's vocabulary accepts, or a GBNF grammar llama.cpp parses), the mean attempts of validated
schemas and the median seconds per schema (rejections take milliseconds and are included).

``--write`` merges the run's outcomes into ``benchmarks/results/jsonschemabench.json`` under its
(model, engine) key (a schema run again replaces its old outcome), then renders every run recorded
there into ``benchmarks/results/jsonschemabench.md`` (plus ``jsonschemabench.reading.md``, the
hand-written reading, when present); ``--render`` only renders. So tiers and engines can be run
one at a time. ``--coverage`` only counts, per dataset of the whole sample, the schemas each engine
compiles for ``--model`` (no generation). Skips cleanly (exit 0) when the sample folder or the model is not installed.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import multiprocessing
import re
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks._report import publish

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "shared" / "jsonschemabench-sample"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
RESULTS_JSON = RESULTS_DIR / "jsonschemabench.json"
RESULTS_MD = RESULTS_DIR / "jsonschemabench.md"
READING_MD = RESULTS_DIR / "jsonschemabench.reading.md"
MODELS = ("smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct")
ENGINES = ("llguidance", "gbnf")
INSTRUCTION = "Produce an example instance of the JSON schema named {name}{about}. Reply with the JSON only."
# A schema that takes longer than this (3 attempts at --max-tokens, plus loading) is reported as failed.
SCHEMA_TIMEOUT_SECONDS = 600
# Published empirical coverage (8B model, full datasets) from the sample's README: (Guidance, llama.cpp).
PUBLISHED = {"Glaiveai2K": ("> 0.86", "> 0.86"), "Github_hard": ("0.41", "0.39")}
# The goals: Github_hard at least this share validated, every other dataset at least
# GOAL_OTHERS except the two hardest (Github_ultra and JsonSchemaStore on the first measurements).
GOAL_GITHUB_HARD = 0.6
GOAL_OTHERS = 0.85


@dataclass
class Outcome:
    """How one schema ended (``constrained``: whether the engine compiled it; None: not asked)."""

    dataset: str
    schema: str
    status: str  # validated | rejected | failed
    seconds: float
    reason: str = ""
    attempts: int = 0
    constrained: bool | None = None


def skip_reason(model: str) -> str | None:
    """Why the benchmark cannot run here for ``model``, or None."""
    if not SAMPLE_DIR.is_dir():
        return f"{SAMPLE_DIR} is absent (the JSONSchemaBench sample lives in ../shared)"
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return "llama-cpp-python is not installed (pip install 'studiolm-agent[local]')"
    from agent.models._files import TIERS, installed_tiers

    if not installed_tiers([TIERS[model]]):
        return f"the {model} model is not installed (see agent/models/_files.py)"
    return None


def schema_files(datasets: list[str] | None, per_dataset: int, start: int = 0) -> dict[str, list[Path]]:
    """``per_dataset`` schema files of each dataset from index ``start``, in name order."""
    chosen = {}
    for folder in sorted(p for p in SAMPLE_DIR.iterdir() if p.is_dir()):
        if datasets is None or folder.name in datasets:
            chosen[folder.name] = sorted(folder.glob("*.json"))[start:start + per_dataset]
    return chosen


def request_for(model: str, path: Path, schema: Any) -> dict[str, Any]:
    """The chat-completions parameters for one schema."""
    name = re.sub(r"[^a-zA-Z0-9_-]", "_", path.stem)[:64]
    about = ""
    if isinstance(schema, dict) and isinstance(schema.get("title") or schema.get("description"), str):
        about = f" ({str(schema.get('title') or schema.get('description'))[:200]})"
    return {
        "model": model,
        "messages": [{"role": "user", "content": INSTRUCTION.format(name=name, about=about)}],
        "response_format": {"type": "json_schema", "json_schema": {"name": name, "schema": schema}},
    }


def constrained(backend: Any, model: str, engine: str, schema: Any) -> bool | None:
    """Whether ``engine`` turns the first attempt's schema into a constraint for ``model`` (None: unknown).

    Diagnostics only, so it borrows the backend's private helpers: llguidance must compile the
    schema and accept it for the model's vocabulary; GBNF must convert *and* llama.cpp must parse it.
    Otherwise the backend generates unconstrained (validation and re-asks still apply).
    """
    try:
        from agent.models._files import TIERS, model_path
        from agent.models._llama import _schema_gbnf
        from agent.models._llama_load import load_shared as _load_shared
        from agent.models._llguidance import engine_for, schema_grammar
    except ImportError:
        return None
    from tools import bound_for_decoding

    bounded = bound_for_decoding(schema)
    loaded = _load_shared(backend._key(model_path(TIERS[model])), False)
    if engine == "llguidance":
        grammar = schema_grammar(bounded)
        return grammar is not None and engine_for(loaded.llama).processor(grammar) is not None
    gbnf = _schema_gbnf(json.dumps(bounded, sort_keys=True))
    if gbnf is None:
        return False
    with loaded.lock:
        return loaded.grammar(gbnf) is not None


def independently_valid(schema: Any, content: str) -> bool:
    """Plain jsonschema (no formats, remote refs refused) agrees that ``content`` is valid."""
    import referencing
    import referencing.exceptions
    from jsonschema.validators import validator_for

    def refuse(uri: str) -> Any:
        raise referencing.exceptions.NoSuchResource(ref=uri)  # type: ignore[call-arg]

    validator_class = validator_for(schema)
    registry: Any = referencing.Registry(retrieve=refuse)  # type: ignore[call-arg]
    return bool(validator_class(schema, registry=registry).is_valid(json.loads(content)))


def run_one(client: Any, args: argparse.Namespace, dataset: str, path: Path) -> Outcome:
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
    grammar = constrained(client.backend, args.model, args.engine, schema)
    try:
        body = client.chat.completions.create(**request_for(args.model, path, schema), max_tokens=args.max_tokens,
                                              temperature=args.temperature)
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


def coverage(model: str) -> str:
    """Per dataset, how many of the whole sample's schemas each engine compiles for ``model`` (markdown).

    No generation: each schema accepted by ``compile_schema`` is bounded as for a first attempt and
    handed to :func:`constrained` once per engine.
    """
    from agent.models._llama import LlamaBackend
    from tools import SchemaError, compile_schema

    backend = LlamaBackend()
    lines = [f"| dataset | schemas accepted | {' | '.join(ENGINES)} |", "|---|---:|" + "---:|" * len(ENGINES)]
    totals = Counter[str]()
    for dataset, paths in schema_files(None, 10**6).items():
        counts = Counter[str]()
        for path in paths:
            schema = json.loads(path.read_text())
            try:
                compile_schema(schema)
            except SchemaError:
                continue
            counts["schemas"] += 1
            counts.update(engine for engine in ENGINES if constrained(backend, model, engine, schema))
        totals.update(counts)
        lines.append(f"| {dataset} | {counts['schemas']} | " + " | ".join(str(counts[e]) for e in ENGINES) + " |")
    lines.append(f"| all | {totals['schemas']} | " + " | ".join(str(totals[e]) for e in ENGINES) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- results: merge and render


def run_key(model: str, engine: str) -> str:
    """The key of one (model, engine) run in the results JSON."""
    return f"{model} / {engine}"


def merge(results: dict[str, Any], key: str, meta: dict[str, Any], outcomes: list[Outcome]) -> dict[str, Any]:
    """``results`` with ``outcomes`` merged under ``key`` (same dataset/schema: the new outcome wins)."""
    entry = results.get(key, {"runs": [], "outcomes": []})
    fresh = {(o.dataset, o.schema) for o in outcomes}
    kept = [o for o in entry["outcomes"] if (o["dataset"], o["schema"]) not in fresh]
    merged = sorted([*kept, *map(dataclasses.asdict, outcomes)], key=lambda o: (o["dataset"], o["schema"]))
    return {**results, key: {"runs": [*entry["runs"], meta], "outcomes": merged}}


def by_dataset(outcomes: list[Outcome]) -> dict[str, list[Outcome]]:
    """Outcomes grouped per dataset, datasets in name order."""
    groups: dict[str, list[Outcome]] = {}
    for o in sorted(outcomes, key=lambda o: (o.dataset, o.schema)):
        groups.setdefault(o.dataset, []).append(o)
    return groups


def share(outcomes: list[Outcome], status: str) -> float:
    """Share of ``outcomes`` that ended with ``status``."""
    return sum(o.status == status for o in outcomes) / len(outcomes)


def dataset_row(dataset: str, outcomes: list[Outcome]) -> str:
    """One markdown table row of a (model, engine) run."""
    validated = [o for o in outcomes if o.status == "validated"]
    attempts = statistics.mean(o.attempts for o in validated) if validated else 0.0
    flags = [o.constrained for o in outcomes if o.constrained is not None]
    built = f"{sum(flags)}/{len(flags)}" if flags else "n/a"
    median = statistics.median(o.seconds for o in outcomes)
    return (f"| {dataset} | {len(outcomes)} | {built} | {share(outcomes, 'validated'):.2f} | "
            f"{share(outcomes, 'rejected'):.2f} | {share(outcomes, 'failed'):.2f} | {attempts:.2f} | {median:.1f} |")


def failure_kind(outcome: Outcome) -> str:
    """Why a schema failed, coarsely: the engine could not compile it, the output ran away past
    max_tokens, or a constrained output still broke the schema (a keyword the engine does not enforce)."""
    if "cut off at the token limit" in outcome.reason:
        return "ran away (the last attempt was cut off at max_tokens)"
    if outcome.constrained is False:
        return "unconstrained (the engine could not compile the schema)"
    if outcome.constrained and outcome.attempts:
        return "constrained but invalid (the grammar is looser than the schema)"
    return "other (crash, timeout, error)"


def run_table(key: str, entry: dict[str, Any]) -> list[str]:
    """The section of one (model, engine) run: settings, per-dataset table, failures."""
    outcomes = [Outcome(**o) for o in entry["outcomes"]]
    groups = by_dataset(outcomes)
    lines = [f"## {key}", ""]
    lines += [f"* `{run['command']}` — {run['schemas']} schemas, {run['wall_minutes']:.1f} min, {run['date']}, "
              f"commit {run.get('commit', '?')}" for run in entry["runs"]]
    lines += ["", "| dataset | schemas | constrained | validated | rejected up front | failed after re-asks | "
              "mean attempts (validated) | median s/schema |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [dataset_row(dataset, group) for dataset, group in groups.items()]
    totals = Counter(o.status for o in outcomes)
    lines += ["", f"All: {len(outcomes)} schemas: " + ", ".join(f"{k} {v}" for k, v in sorted(totals.items())), ""]
    kinds = Counter(failure_kind(o) for o in outcomes if o.status == "failed")
    if kinds:
        lines += ["Failed, by kind: " + ", ".join(f"{k} {v}" for k, v in kinds.most_common()) + ".", ""]
    lines += ["<details><summary>Rejected up front and failed, with reasons</summary>", ""]
    lines += [f"* {o.dataset}/{o.schema} — {o.status} (constrained {o.constrained}): {o.reason[:240]}"
              for o in outcomes if o.status != "validated"]
    return [*lines, "", "</details>", ""]


def overview(results: dict[str, Any]) -> list[str]:
    """Share validated per dataset (columns) for every run (rows), with the schema counts."""
    runs = {key: by_dataset([Outcome(**o) for o in entry["outcomes"]]) for key, entry in results.items()}
    datasets = sorted({d for groups in runs.values() for d in groups})
    lines = ["| model, engine | " + " | ".join(datasets) + " | all |", "|---|" + "---:|" * (len(datasets) + 1)]
    for key, groups in runs.items():
        cells = [f"{share(groups[d], 'validated'):.2f} ({len(groups[d])})" if d in groups else "-" for d in datasets]
        everything = [o for group in groups.values() for o in group]
        lines.append(f"| {key} | " + " | ".join(cells) + f" | {share(everything, 'validated'):.2f} "
                     f"({len(everything)}) |")
    return lines


def render(results: dict[str, Any], reading: str = "") -> str:
    """The markdown report of every recorded run."""
    ordered = dict(sorted(results.items(), key=lambda kv: _order(kv[0])))
    lines = [
        "# JSON mode on the embedded models over JSONSchemaBench (sample)",
        "",
        "Rendered by `python -m benchmarks.bench_jsonschemabench --render` from `jsonschemabench.json`. "
        "Share validated per dataset, (schemas run) in brackets; the schemas are the first N files of each "
        "dataset folder of /work/shared/jsonschemabench-sample in name order. Goals (issue 11): Github_hard "
        f">= {GOAL_GITHUB_HARD}, every dataset >= {GOAL_OTHERS} except the two hardest. Published (8B model, "
        "full datasets, Guidance / llama.cpp): " + "; ".join(f"{d} {g} / {c}" for d, (g, c) in PUBLISHED.items())
        + ".",
        "",
        *overview(ordered),
        "",
    ]
    if reading:
        lines += [reading.rstrip(), ""]
    for key, entry in ordered.items():
        lines += run_table(key, entry)
    return "\n".join(lines)


def _order(key: str) -> tuple[int, int, str]:
    model, _, engine = key.partition(" / ")
    rank = MODELS.index(model) if model in MODELS else len(MODELS)
    return rank, ENGINES.index(engine) if engine in ENGINES else len(ENGINES), key


def load_results(path: Path) -> dict[str, Any]:
    """The recorded runs (empty when the file does not exist yet)."""
    return dict(json.loads(path.read_text())) if path.is_file() else {}


def render_files(results: dict[str, Any]) -> str:
    """Write the JSON and the markdown of ``results``; return the markdown."""
    RESULTS_JSON.write_text(json.dumps(results, indent=1) + "\n")
    text = render(results, READING_MD.read_text() if READING_MD.is_file() else "")
    RESULTS_MD.write_text(text)
    return text


# --------------------------------------------------------------------------- running


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
    backend = LlamaBackend(n_threads=args.threads, json_engine=args.engine)
    with studiolm.Client(backend=backend, search="none", limits=limits) as client:
        while True:
            dataset, path = conn.recv()
            conn.send(dataclasses.asdict(run_one(client, args, dataset, Path(path))))


def _commit() -> str:
    """The checked-out commit (with "+changes" when the work tree differs), for the record."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=RESULTS_DIR, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    changed = git("status", "--porcelain", "--", "../bench_jsonschemabench.py", "../../agent", "../../tools",
                  "../../graphs")
    return git("rev-parse", "--short", "HEAD") + ("+changes" if changed else "")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model", choices=MODELS, default=MODELS[0])
    parser.add_argument("--engine", choices=ENGINES, default=ENGINES[0])
    parser.add_argument("--per-dataset", type=int, default=30)
    parser.add_argument("--start", type=int, default=0, help="index of the first schema of each dataset")
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--max-reasks", type=int, default=2)
    parser.add_argument("--datasets", help="comma-separated dataset folder names (default: all)")
    parser.add_argument("--threads", type=int, help="llama.cpp threads (default: the backend's choice)")
    parser.add_argument("--write", action="store_true", help=f"merge into {RESULTS_JSON.name} and render")
    parser.add_argument("--render", action="store_true", help="only render the recorded runs")
    parser.add_argument("--coverage", action="store_true",
                        help="only count the sample's schemas each engine compiles for --model (no generation)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark for one (model, engine), print it, and optionally merge and render the results."""
    args = parse_args(argv)
    if args.render:
        print(render_files(load_results(RESULTS_JSON)))
        return 0
    reason = skip_reason(args.model)
    if reason is not None:
        print(f"skipped: {reason}")
        return 0
    if args.coverage:
        print(coverage(args.model))
        return 0
    files = schema_files(args.datasets.split(",") if args.datasets else None, args.per_dataset, args.start)
    started, commit = time.perf_counter(), _commit()  # the code the run starts with
    outcomes = []
    runner = Runner(args)
    try:
        for dataset, paths in files.items():
            for path in paths:
                outcome = runner.run(dataset, path)
                outcomes.append(outcome)
                print(f"{dataset}/{path.name}: {outcome.status} in {outcome.seconds:.1f}s (attempts "
                      f"{outcome.attempts}, constrained {outcome.constrained}) {outcome.reason[:160]}", flush=True)
    finally:
        runner.close()
    command = "python -m benchmarks.bench_jsonschemabench " + " ".join(argv if argv is not None else sys.argv[1:])
    meta = {"command": command, "schemas": len(outcomes), "wall_minutes": (time.perf_counter() - started) / 60,
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"), "commit": commit,
            "settings": {k: v for k, v in vars(args).items() if k not in ("write", "render", "coverage")}}
    key = run_key(args.model, args.engine)
    single = {key: merge({}, key, meta, outcomes)[key]}
    if not args.write:
        publish(render(single), None)
        return 0
    print(render_files(merge(load_results(RESULTS_JSON), key, meta, outcomes)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
