"""Check grounded_qa_questions.json against the offline corpus: is every answer really in its article?

For each answerable question, one of its expected answers must appear (case-insensitively) in the text
the local index serves for its article (``tools.LocalIndex.from_corpus`` reads the same documents);
for each "not in the sources" question, none of its ``absent_terms`` may appear anywhere in the corpus.
Exits 1 and lists the failures when any check fails.

    .venv/bin/python -m benchmarks.check_grounded_qa [--questions benchmarks/grounded_qa_questions.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

# The same documents the index is built from (the extract plus its short description).
from tools._corpus import Document, load_corpus

QUESTIONS_FILE = Path(__file__).resolve().parent / "grounded_qa_questions.json"
# The question set's promise (issue 11): at least this many of each.
MIN_ANSWERABLE = 100
MIN_NOT_IN_SOURCES = 15


def problems(content: dict[str, Any], documents: list[Document]) -> list[str]:
    """Every way the question file breaks its promise, one line each (empty when it holds)."""
    texts = {doc.title: f"{doc.title}\n{doc.body}".lower() for doc in documents}
    found = []
    for item in content["answerable"]:
        text = texts.get(item["title"])
        if text is None:
            found.append(f"{item['question']!r}: no article titled {item['title']!r}")
        elif not any(alias.lower() in text for alias in item["answers"]):
            found.append(f"{item['question']!r}: none of {item['answers']} in {item['title']!r}")
    everything = "\n".join(texts.values())
    for item in content["not_in_sources"]:
        present = [term for term in item["absent_terms"] if term.lower() in everything]
        if present or not item["absent_terms"]:
            found.append(f"{item['question']!r}: {present or 'no absent_terms'} found in the corpus")
    questions = [item["question"] for item in content["answerable"] + content["not_in_sources"]]
    if len(set(questions)) != len(questions):
        found.append("some questions are repeated")
    if len(content["answerable"]) < MIN_ANSWERABLE or len(content["not_in_sources"]) < MIN_NOT_IN_SOURCES:
        found.append(f"need >= {MIN_ANSWERABLE} answerable and >= {MIN_NOT_IN_SOURCES} not-in-sources questions")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=Path, default=QUESTIONS_FILE)
    args = parser.parse_args(argv)
    content = json.loads(args.questions.read_text(encoding="utf-8"))
    found = problems(content, load_corpus())
    for line in found:
        print(line, file=sys.stderr)
    print(f"{len(content['answerable'])} answerable, {len(content['not_in_sources'])} not in the sources: "
          f"{'FAILED, ' + str(len(found)) + ' problem(s)' if found else 'every answer is in its article'}")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
