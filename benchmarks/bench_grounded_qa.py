"""Grounded QA on the embedded default: does web_search="force" over the offline index make SmolLM2 right?

Asks factual questions whose answers are in the offline corpus, with and without search, in the same
run, at temperature 0, and reports accuracy (the expected name appears in the answer), how often the
right article was retrieved first, and the median seconds per question. The no-search run is the
baseline; the figure of merit is the accuracy ratio.

    .venv/bin/python -m benchmarks.bench_grounded_qa [--max-tokens 60]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import agent as studiolm
from tools import LocalIndex

# (question, substring the answer must contain, title of the article that holds it)
QUESTIONS = [
    ("Who directed 2001: A Space Odyssey?", "Kubrick", "2001: A Space Odyssey"),
    ("Who painted the Mona Lisa?", "Leonardo", "Mona Lisa"),
    ("What is the capital of Australia?", "Canberra", "Canberra"),
    ("Who wrote Hamlet?", "Shakespeare", "Hamlet"),
    ("In which year did the Berlin Wall fall?", "1989", "Berlin Wall"),
    ("Who developed the theory of relativity?", "Einstein", "Theory of relativity"),
    ("Who composed The Magic Flute?", "Mozart", "The Magic Flute"),
    ("Which planet is known as the Red Planet?", "Mars", "Mars"),
    ("Who wrote the novel Don Quixote?", "Cervantes", "Don Quixote"),
    ("Who founded the Mongol Empire?", "Genghis", "Mongol Empire"),
    ("Who formulated the laws of motion and universal gravitation?", "Newton", "Isaac Newton"),
    ("What is the largest ocean on Earth?", "Pacific", "Pacific Ocean"),
]
MODEL = "smollm2-135m-instruct"


def ask(client: studiolm.Client, question: str, web_search: str | bool, max_tokens: int) -> tuple[Any, float]:
    started = time.perf_counter()
    response = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": question}], web_search=web_search,
        temperature=0, max_tokens=max_tokens,
    )
    return response, time.perf_counter() - started


def run(max_tokens: int) -> dict[str, dict[str, float]]:
    report: dict[str, dict[str, float]] = {}
    with studiolm.Client(search=LocalIndex.from_corpus()) as client:
        for mode in (False, "force"):
            correct, retrieved, seconds = 0, 0, []
            for question, expected, title in QUESTIONS:
                response, elapsed = ask(client, question, mode, max_tokens)
                seconds.append(elapsed)
                correct += expected.lower() in response["choices"][0]["message"]["content"].lower()
                results = response.get("search_results", [])
                retrieved += bool(results) and results[0]["title"] == title
            report[str(mode)] = {"accuracy": correct / len(QUESTIONS), "top1": retrieved / len(QUESTIONS),
                                 "median_s": statistics.median(seconds)}
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-tokens", type=int, default=60)
    args = parser.parse_args(argv)
    report = run(args.max_tokens)
    base, forced = report["False"], report["force"]
    print(f"{len(QUESTIONS)} questions, {MODEL}, temperature 0, max_tokens {args.max_tokens}\n")
    print("| web_search | accuracy | right article first | median s/question |")
    print("|---|---|---|---|")
    for name, row in (("false (baseline)", base), ('"force"', forced)):
        print(f"| {name} | {row['accuracy']:.2f} | {row['top1']:.2f} | {row['median_s']:.2f} |")
    ratio = forced["accuracy"] / base["accuracy"] if base["accuracy"] else float("inf")
    print(f"\naccuracy ratio force/baseline: {ratio:.2f}x; "
          f"time ratio: {forced['median_s'] / base['median_s']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
