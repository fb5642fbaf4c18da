"""Grounded QA on an embedded model tier: how often is it right without and with search over the offline index?

Asks the questions of ``grounded_qa_questions.json`` (made from the corpus by ``make_grounded_qa``) at
temperature 0, once with ``web_search=False`` and once with ``web_search="force"`` over the local
index, and scores:

* accuracy: the answer contains one of the question's expected answers (case, accents and punctuation
  ignored);
* abstention, on the "not in the sources" questions: the answer says it does not know / cannot find it;
* retrieval: the article holding the answer is the first search result (top 1) or among the first five
  (recall@5), telling retrieval misses apart from reading misses;
* the median seconds per question.

Each run's figures are kept per tier in ``results/grounded_qa.json`` and the markdown table of every
tier is rewritten into ``results/grounded_qa.md``. ``--questions benchmarks/grounded_qa_heldout.json``
asks the held-out set (``make_grounded_qa --held-out``: questions no prompt was chosen on), kept in a
row of its own.

    .venv/bin/python -m benchmarks.bench_grounded_qa [--model qwen2.5-coder-0.5b-instruct] [--limit N]
        [--max-tokens 48] [--modes false,force] [--only benchmarks/grounded_qa_slice.json] [--no-write]
        [--questions benchmarks/grounded_qa_heldout.json]
"""

from __future__ import annotations

import argparse
import fcntl
import json
import re
import statistics
import sys
import time
import unicodedata
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import agent as studiolm

HERE = Path(__file__).resolve().parent
QUESTIONS_FILE = HERE / "grounded_qa_questions.json"
RESULTS_JSON = HERE / "results" / "grounded_qa.json"
RESULTS_MD = HERE / "results" / "grounded_qa.md"
MODEL = "qwen2.5-coder-0.5b-instruct"
# Everything from this heading on in the report is written by hand and kept when the tables are redone.
NOTES_HEADING = "## Reading"
MODES: dict[str, str | bool] = {"false": False, "force": "force"}
# Results counted for recall@k (the search returns 5 by default).
RECALL_AT = 5
# Phrases that count as declining to answer (checked on the normalised answer).
ABSTAIN = re.compile(
    r"\b(?:not (?:in|mentioned|provided|found|listed|included|available|contain\w*|specified|given|sure|aware)"
    r"|no (?:information|mention|results?|data|record|such|details?|answer)|none of the"
    r"|(?:don ?t|do not|does not|cannot|can ?t|couldn ?t|could not|unable to|did not|didn ?t) "
    r"(?:know|find|determine|answer|provide|have|contain|mention|exist)"
    r"|unknown|fictional|fictitious|does not exist|doesn ?t exist|no known|i m sorry)\b"
)


def normalise(text: str) -> str:
    """Lower case, accents and punctuation dropped, spaces collapsed: ``"Dalí's"`` -> ``"dali s"``."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w]+", " ", plain).split())


def is_correct(answer: str, aliases: list[str]) -> bool:
    """Any alias appears in the answer as whole words, after :func:`normalise`."""
    text = f" {normalise(answer)} "
    return any(f" {normalise(alias)} " in text for alias in aliases)


def abstains(answer: str) -> bool:
    """The answer declines (does not know, not in the sources, no such thing)."""
    return bool(ABSTAIN.search(normalise(answer)))


def load_questions(path: Path, limit: int | None,
                   only: Path | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The first ``limit`` answerable questions (the file interleaves the kinds) and the absent set,
    cut to the same share of its size (at least 5) when limited; with ``only`` (a file shaped like the
    question file, listing question texts), just those questions: a fixed tuning slice."""
    content = json.loads(path.read_text(encoding="utf-8"))
    answerable, absent = content["answerable"], content["not_in_sources"]
    if only is not None:
        chosen = json.loads(only.read_text(encoding="utf-8"))
        wanted = set(chosen["answerable"]) | set(chosen["not_in_sources"])
        unknown = wanted - {q["question"] for q in answerable + absent}
        if unknown:
            raise ValueError(f"--only {only}: not in {path}: {sorted(unknown)}")
        answerable = [q for q in answerable if q["question"] in wanted]
        absent = [q for q in absent if q["question"] in wanted]
    if limit is not None:
        share = max(5, round(limit * len(absent) / len(answerable)))
        answerable, absent = answerable[:limit], absent[:share]
    return answerable, absent


def ask(client: studiolm.Client, model: str, question: str, mode: str | bool, max_tokens: int) -> tuple[Any, float]:
    """One question, timed: the response and its seconds."""
    started = time.perf_counter()
    response = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": question}], web_search=mode,
        temperature=0, max_tokens=max_tokens,
    )
    return response, time.perf_counter() - started


def run_mode(client: studiolm.Client, model: str, mode: str | bool, questions: tuple[list[Any], list[Any]],
             max_tokens: int) -> dict[str, Any]:
    """Figures for one web_search mode over both question sets, with the misses listed."""
    answerable, absent = questions
    correct, top1, recall, seconds, misses = 0, 0, 0, [], []
    for item in answerable:
        response, elapsed = ask(client, model, item["question"], mode, max_tokens)
        seconds.append(elapsed)
        answer = response["choices"][0]["message"]["content"] or ""
        titles = [r["title"] for r in response.get("search_results", [])][:RECALL_AT]
        right = is_correct(answer, item["answers"])
        correct += right
        top1 += bool(titles) and titles[0] == item["title"]
        recall += item["title"] in titles
        if not right:
            misses.append({"q": item["question"], "a": answer[:200], "found": item["title"] in titles})
        print(f"  [{mode}] {'ok ' if right else 'MISS'} {elapsed:5.1f}s {item['question']} -> {answer[:90]!r}",
              file=sys.stderr, flush=True)
    declined = 0
    for item in absent:
        response, elapsed = ask(client, model, item["question"], mode, max_tokens)
        seconds.append(elapsed)
        answer = response["choices"][0]["message"]["content"] or ""
        declined += abstains(answer)
        print(f"  [{mode}] {'abst' if abstains(answer) else 'ANSW'} {elapsed:5.1f}s {item['question']} -> "
              f"{answer[:90]!r}", file=sys.stderr, flush=True)
    n = len(answerable)
    return {"n": n, "n_absent": len(absent), "accuracy": correct / n, "top1": top1 / n, "recall5": recall / n,
            "abstention": declined / len(absent) if absent else None, "median_s": statistics.median(seconds),
            "misses": misses}


def render(results: dict[str, Any]) -> str:
    """The markdown report for every tier measured so far."""
    lines = [
        "# Grounded QA on the embedded model tiers (offline index)", "",
        "Questions: `benchmarks/grounded_qa_questions.json` (made by `python -m benchmarks.make_grounded_qa`, "
        "checked by `python -m benchmarks.check_grounded_qa`): capitals, nationalities and authors of works "
        "whose answers are in the offline corpus, plus made-up \"not in the sources\" questions. Temperature 0. "
        "Accuracy = an expected answer appears in the reply (normalised, whole words); abstention = the reply "
        "to a not-in-the-sources question declines; top 1 / recall@5 = the article holding the answer is the "
        "first / among the first five search results.", "",
        "| tier | N (answerable / absent) | accuracy, no search | accuracy, search | abstention, no search "
        "| abstention, search | top 1 | recall@5 | median s/q, no search | median s/q, search |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for model, run in results.items():
        base, forced = run["modes"].get("false"), run["modes"].get("force")
        cells = [model, f"{(base or forced)['n']} / {(base or forced)['n_absent']}"]
        for key in ("accuracy", "abstention"):
            cells += [_figure(base, key), _figure(forced, key)]
        cells += [_figure(forced, "top1"), _figure(forced, "recall5"),
                  _figure(base, "median_s"), _figure(forced, "median_s")]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Commands (2 cores shared with other work, llama.cpp):", ""]
    lines += [f"* {model} ({run['date']}): `{run['command']}`" for model, run in results.items()]
    return "\n".join(lines) + "\n"


def _kept_notes() -> str:
    """The hand-written reading of the figures (from ``NOTES_HEADING`` on) in the current report, kept."""
    text = RESULTS_MD.read_text(encoding="utf-8") if RESULTS_MD.exists() else ""
    start = text.find(NOTES_HEADING)
    return "\n" + text[start:] if start >= 0 else ""


def _figure(row: dict[str, Any] | None, key: str) -> str:
    if row is None or row.get(key) is None:
        return "n/a"
    return f"{row[key]:.2f}"


def _same_questions(row: dict[str, Any], modes: dict[str, Any]) -> bool:
    return all((row["n"], row["n_absent"]) == (other["n"], other["n_absent"]) for other in modes.values())


def save(model: str, run: dict[str, Any]) -> None:
    """Record ``run`` as ``model``'s figures and rewrite the report of every tier (under a lock: runs of
    two tiers at once both finish by rewriting the same files)."""
    with open(RESULTS_JSON.with_suffix(".lock"), "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _save(model, run)


def _save(model: str, run: dict[str, Any]) -> None:
    results = json.loads(RESULTS_JSON.read_text(encoding="utf-8")) if RESULTS_JSON.exists() else {}
    earlier = results.get(model, {"modes": {}})
    # A run of one mode keeps the other mode's figures when they cover the same questions.
    kept = {mode: row for mode, row in earlier["modes"].items()
            if mode not in run["modes"] and _same_questions(row, run["modes"])}
    results[model] = {**run, "modes": {**kept, **run["modes"]},
                      "command": run["command"] if not kept else f"{earlier['command']}; {run['command']}"}
    RESULTS_JSON.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    RESULTS_MD.write_text(render(results) + _kept_notes(), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=MODEL, help="embedded model tier (default %(default)s)")
    parser.add_argument("--limit", type=int, default=None, help="ask only the first N answerable questions")
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--modes", default="false,force", help="web_search modes to run, comma-separated")
    parser.add_argument("--questions", type=Path, default=QUESTIONS_FILE)
    parser.add_argument("--only", type=Path, default=None,
                        help="a JSON file of question texts to ask (a tuning slice), shaped like --questions")
    parser.add_argument("--no-write", action="store_true", help="print only; leave results/ alone")
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if (args.limit is not None and args.limit < 1) or not modes or any(m not in MODES for m in modes):
        parser.error(f"--limit must be >= 1 and --modes a comma-separated subset of {', '.join(MODES)}")
    questions = load_questions(args.questions, args.limit, args.only)
    # Another question file (the held-out set) gets a row of its own.
    row = args.model if args.questions.resolve() == QUESTIONS_FILE else f"{args.model}, {args.questions.stem}"
    command = "nice -n 10 .venv/bin/python -m benchmarks.bench_grounded_qa " + " ".join(argv or [])
    run: dict[str, Any] = {"date": datetime.now(UTC).strftime("%Y-%m-%d"), "command": command.strip(),
                           "modes": {}, "max_tokens": args.max_tokens}
    with studiolm.Client(search="local") as client:
        for mode in modes:  # the report is saved after each mode: a long run cut short keeps what it measured
            run["modes"][mode] = run_mode(client, args.model, MODES[mode], questions, args.max_tokens)
            if not args.no_write:
                save(row, run)
    print(render({row: run}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
