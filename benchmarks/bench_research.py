"""Offline research quality: questions whose answers need two articles of the offline corpus.

Each question names the articles it needs and, for each, a piece of the answer that article holds
(``--check`` verifies that against the corpus). The research agent runs on the embedded default (the
local model, the offline Wikipedia index, whose documents are the pages it reads) and is scored on:

* **answer accuracy** - the share of answer pieces the report contains (and of questions with all);
* **citation precision** - of the (sentence, ``[n]``) pairs in the report, the share whose cited
  source supports the sentence (most of its content words occur in that source's text);
* **article recall** - the share of the needed articles among the pages the run read.

The baseline, measured in the same run, is the chat graph with ``web_search="force"`` (one search
of the question, snippets only): its recall counts the needed articles among its search results.

    .venv/bin/python -m benchmarks.bench_research [--limit N] [--reflections 1] [--check]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from dataclasses import dataclass

import agent as studiolm
from tools import LocalIndex

# question -> {article title: a piece of the answer that article holds}
QUESTIONS: list[tuple[str, dict[str, str]]] = [
    ("Who directed 2001: A Space Odyssey, and in which year was that director born?",
     {"2001: A Space Odyssey": "Kubrick", "Stanley Kubrick": "1928"}),
    ("Who painted the Mona Lisa, and what did that artist work as besides painting?",
     {"Mona Lisa": "Leonardo", "Leonardo da Vinci": "engineer"}),
    ("Who wrote Hamlet, and what nickname is that writer often called by?",
     {"Hamlet": "Shakespeare", "William Shakespeare": "Bard"}),
    ("Who composed The Magic Flute, and in which year was the composer born?",
     {"The Magic Flute": "Mozart", "Wolfgang Amadeus Mozart": "1756"}),
    ("Who wrote Don Quixote, and what nationality was the author?",
     {"Don Quixote": "Cervantes", "Miguel de Cervantes": "Spanish"}),
    ("When was general relativity published, and in which year did its author receive the Nobel Prize?",
     {"Theory of relativity": "1915", "Albert Einstein": "1921"}),
    ("Who painted The Starry Night, and about how many artworks did that painter create?",
     {"The Starry Night": "van Gogh", "Vincent van Gogh": "2,100"}),
    ("Which engineer's company built the Eiffel Tower, and which viaduct made him famous?",
     {"Eiffel Tower": "Gustave Eiffel", "Gustave Eiffel": "Garabit"}),
    ("When was On the Origin of Species published, and with whom did its author present his theory?",
     {"On the Origin of Species": "1859", "Charles Darwin": "Wallace"}),
    ("What nationality was Marie Curie by birth, and on which river does that country's capital stand?",
     {"Marie Curie": "Polish", "Warsaw": "Vistula"}),
    ("How high is Mount Everest, and which country borders Nepal to the south?",
     {"Mount Everest": "8,848", "Nepal": "India"}),
    ("Where is Picasso's Guernica exhibited, and which art movement did Picasso co-found?",
     {"Guernica (Picasso)": "Reina Sof", "Pablo Picasso": "Cubis"}),
    ("Who wrote The Lord of the Rings, and in which year was the author born?",
     {"The Lord of the Rings": "Tolkien", "J. R. R. Tolkien": "1892"}),
    ("Who wrote Frankenstein, and who was the author's husband?",
     {"Frankenstein": "Mary Shelley", "Mary Shelley": "Percy"}),
    ("Who wrote Moby-Dick, and which of his books recounts his experiences in Polynesia?",
     {"Moby-Dick": "Melville", "Herman Melville": "Typee"}),
    ("Who wrote War and Peace, and in which year did the author die?",
     {"War and Peace": "Tolstoy", "Leo Tolstoy": "1910"}),
    ("Who commanded Apollo 11, and what was his profession besides astronaut?",
     {"Apollo 11": "Armstrong", "Neil Armstrong": "engineer"}),
    ("Who created Star Wars, and to which company did its creator sell Lucasfilm?",
     {"Star Wars": "George Lucas", "George Lucas": "Disney"}),
    ("Who directed The Godfather, and who co-wrote its screenplay?",
     {"The Godfather": "Puzo", "Francis Ford Coppola": "Coppola"}),
    ("In which city were the Beatles formed, and on which estuary does that city lie?",
     {"The Beatles": "Liverpool", "Liverpool": "Mersey"}),
    ("Who founded psychoanalysis, and what nationality was he?",
     {"Psychoanalysis": "Freud", "Sigmund Freud": "Austrian"}),
    ("In which city was Galileo born, and what is that city's tower known for?",
     {"Galileo Galilei": "Pisa", "Leaning Tower of Pisa": "lean"}),
    ("Who wrote Pride and Prejudice, and how many novels is the author known for?",
     {"Pride and Prejudice": "Austen", "Jane Austen": "six"}),
    ("Where do the Danube and the Rhine begin?",
     {"Danube": "Black Forest", "Rhine": "Graub"}),
]
MODEL = "smollm2-135m-instruct"
# A sentence counts as supported by a source when this share of its content words occurs in it.
SUPPORT_SHARE = 0.5
_WORD = re.compile(r"[^\W_]+")
_CITED = re.compile(r"\[(\d+)\]")
_STOP = frozenset(["a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "have", "in", "is", "it",
                   "its", "of", "on", "or", "that", "the", "this", "to", "was", "were", "which", "who", "with", "he",
                   "she", "his", "her", "they", "their"])


@dataclass
class Score:
    answers: float = 0.0
    all_answers: float = 0.0
    recall: float = 0.0
    precision: float | None = None
    seconds: float = 0.0


def check_questions() -> list[str]:
    """Problems with the question set: an answer piece not in its article, an article missing."""
    from tools import LocalIndex

    index = LocalIndex.from_corpus()
    problems = []
    for question, needs in QUESTIONS:
        if len(needs) < 2:
            problems.append(f"{question!r} needs fewer than two articles")
        for title, answer in needs.items():
            document = _run(index.document(_url(title)))
            if document is None:
                problems.append(f"{question!r}: no article {title!r}")
            elif answer.casefold() not in document.body.casefold():
                problems.append(f"{question!r}: {answer!r} is not in {title!r}")
    return problems


def _url(title: str) -> str:
    from urllib.parse import quote

    return "https://en.wikipedia.org/wiki/" + quote(title.replace(" ", "_"), safe=";@$!*(),/~:")


def _run(coroutine: object) -> object:
    import asyncio

    return asyncio.run(coroutine)  # type: ignore[arg-type]


def _terms(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.casefold()) if w not in _STOP and len(w) > 1}


def citation_precision(report: studiolm.ResearchReport, texts: dict[int, str]) -> float | None:
    """Supported (sentence, [n]) pairs over all such pairs; None when the report cites nothing."""
    body = report.report.split("## Sources")[0]
    pairs = supported = 0
    for sentence in re.split(r"(?<=[.!?])\s+|\n+", body):
        words = _terms(_CITED.sub("", sentence))
        for number in {int(n) for n in _CITED.findall(sentence)}:
            pairs += 1
            source = _terms(texts.get(number, ""))
            supported += bool(words) and len(words & source) / len(words) >= SUPPORT_SHARE
    return supported / pairs if pairs else None


def score_research(index: LocalIndex, question: str, needs: dict[str, str], budget: studiolm.ResearchBudget) -> Score:
    started = time.perf_counter()
    report = studiolm.research(question, search=index, model=MODEL, budget=budget)
    elapsed = time.perf_counter() - started
    texts = {s.id: _run(index.document(s.url)).body for s in report.sources}  # type: ignore[union-attr]
    found = [a.casefold() in report.report.casefold() for a in needs.values()]
    read = {s.url for s in report.sources}
    return Score(answers=sum(found) / len(found), all_answers=float(all(found)),
                 recall=sum(_url(t) in read for t in needs) / len(needs),
                 precision=citation_precision(report, texts), seconds=elapsed)


def score_chat(client: studiolm.Client, question: str, needs: dict[str, str]) -> Score:
    started = time.perf_counter()
    response = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": question}],
                                              web_search="force", temperature=0, max_tokens=120)
    elapsed = time.perf_counter() - started
    content = response["choices"][0]["message"]["content"] or ""
    found = [a.casefold() in content.casefold() for a in needs.values()]
    urls = {r["url"] for r in response.get("search_results", [])}
    return Score(answers=sum(found) / len(found), all_answers=float(all(found)),
                 recall=sum(_url(t) in urls for t in needs) / len(needs), seconds=elapsed)


def _mean(scores: list[Score], name: str) -> float:
    values = [getattr(s, name) for s in scores if getattr(s, name) is not None]
    return statistics.fmean(values) if values else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=len(QUESTIONS), help="run the first N questions")
    parser.add_argument("--reflections", type=int, default=1, help="reflection rounds (ResearchBudget)")
    parser.add_argument("--check", action="store_true", help="only check the questions against the corpus")
    args = parser.parse_args(argv)
    problems = check_questions()
    for problem in problems:
        print(problem, file=sys.stderr)
    if args.check or problems:
        print(f"{len(QUESTIONS)} questions, {len(problems)} problems")
        return 1 if problems else 0
    questions = QUESTIONS[: args.limit]
    index = LocalIndex.from_corpus()
    budget = studiolm.ResearchBudget(max_reflections=args.reflections)
    research = [score_research(index, q, needs, budget) for q, needs in questions]
    with studiolm.Client(search=index) as client:
        chat = [score_chat(client, q, needs) for q, needs in questions]
    print(f"{len(questions)} questions needing 2 articles each, {MODEL}, offline index, "
          f"{args.reflections} reflection round(s)\n")
    print("| run | answer pieces | all pieces | citation precision | article recall | median s |")
    print("|---|---|---|---|---|---|")
    for name, scores in (('chat, web_search="force" (baseline)', chat), ("research agent", research)):
        precision = f"{_mean(scores, 'precision'):.2f}" if any(s.precision is not None for s in scores) else "-"
        print(f"| {name} | {_mean(scores, 'answers'):.2f} | {_mean(scores, 'all_answers'):.2f} | {precision} | "
              f"{_mean(scores, 'recall'):.2f} | {statistics.median(s.seconds for s in scores):.1f} |")
    base = _mean(chat, "recall")
    print(f"\narticle recall ratio research/baseline: {_mean(research, 'recall') / base:.2f}x" if base else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
