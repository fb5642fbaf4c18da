"""Build benchmarks/grounded_qa_questions.json from the offline corpus, reproducibly.

Questions come from patterns in the articles' short descriptions whose answers are unambiguous, and
each answer is kept only when it also appears in the article's text (what the index serves):

* capitals: "Capital and largest city of Ghana" on the article Accra -> "What is the capital of Ghana?"
* nationalities: "Stefan Banach was a Polish mathematician ..." -> "What nationality was Stefan
  Banach?" (Polish, or Poland), for the common nationalities only. Birth years are not used: the
  extracts have the dates in parentheses cut out, so the year is only in the short description.
* authors of works: "1968 film by Stanley Kubrick", "Novel by Leo Tolstoy", "Painting by ...", "Opera
  by ..." -> "Who directed / wrote / painted / composed ...?"

Candidates are ordered by a hash of their title (a fixed, content-independent shuffle), the first ones
of each kind kept, and the kinds interleaved so any prefix (``--limit``) is a balanced sample. The
"not in the sources" questions are written by hand about made-up things or future events; each names
the words that must not occur anywhere in the corpus (``check_grounded_qa`` verifies both sets).

    .venv/bin/python -m benchmarks.make_grounded_qa [--write benchmarks/grounded_qa_questions.json]

``--held-out`` writes the next questions of each kind instead (the same absent set):
``benchmarks/grounded_qa_heldout.json``, questions no prompt was tuned on, for checking a prompt
chosen on the main set.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import re
from pathlib import Path
from typing import Any

# The raw file, not load_corpus(): the patterns read the short description apart from the extract.
from tools._corpus import CORPUS_DATA_FILE, corpus_path

HERE = Path(__file__).resolve().parent
QUESTIONS_FILE = HERE / "grounded_qa_questions.json"
HELD_OUT_FILE = HERE / "grounded_qa_heldout.json"
# How many questions of each kind are kept (enough for >= 100 answerable questions in all).
PER_KIND = {"capital": 36, "nationality": 36, "work": 36}

_CAPITAL = re.compile(
    r"^Capital(?: city| district)?(?: and (?:the )?(?:largest|most populous) city)? (?:of|in) ((?:the )?[A-Z][^,()]*)$"
)
_NATIONALITY = re.compile(r"^[^.]*? (?:was|is) an? ([A-Z][a-z]+) [a-z]")
# Nationality -> the answers that count (the adjective or the country).
NATIONALITIES = {
    "American": ["American", "United States", "U.S.", "USA"], "English": ["English", "England", "British"],
    "British": ["British", "Britain", "United Kingdom", "English", "Scottish", "Welsh"],
    "French": ["French", "France"], "German": ["German"], "Italian": ["Italian", "Italy"],
    "Spanish": ["Spanish", "Spain"], "Russian": ["Russian", "Russia"], "Polish": ["Polish", "Poland"],
    "Japanese": ["Japanese", "Japan"], "Chinese": ["Chinese", "China"], "Indian": ["Indian", "India"],
    "Swedish": ["Swedish", "Sweden"], "Dutch": ["Dutch", "Netherlands", "Holland"],
    "Portuguese": ["Portuguese", "Portugal"], "Greek": ["Greek", "Greece"], "Scottish": ["Scottish", "Scotland"],
    "Irish": ["Irish", "Ireland"], "Canadian": ["Canadian", "Canada"], "Austrian": ["Austrian", "Austria"],
    "Swiss": ["Swiss", "Switzerland"], "Norwegian": ["Norwegian", "Norway"], "Danish": ["Danish", "Denmark"],
    "Brazilian": ["Brazilian", "Brazil"], "Mexican": ["Mexican", "Mexico"], "Hungarian": ["Hungarian", "Hungary"],
    "Belgian": ["Belgian", "Belgium"], "Australian": ["Australian", "Australia"], "Czech": ["Czech"],
}
_WORK = re.compile(r"^(?:\d{4} )?(?:[A-Z][a-z]+ )?(novel|novella|film|painting|opera|ballet|play|tragedy) by "
                   r"([A-Z][\w.'-]+(?: [A-Z][\w.'-]+){1,3})$", re.IGNORECASE)
_VERBS = {"novel": "wrote the novel", "novella": "wrote the novella", "film": "directed the film",
          "painting": "painted", "opera": "composed the opera", "ballet": "composed the ballet",
          "play": "wrote the play", "tragedy": "wrote the play"}

#: Questions whose answers are not in the corpus: (question, words that must not occur in the corpus).
NOT_IN_SOURCES = [
    ("What is the capital of the Republic of Zembravia?", ["Zembravia"]),
    ("In what year was the physicist Oleander Quistbrook born?", ["Quistbrook"]),
    ("Who directed the film The Glass Lanterns of Ormundsby?", ["Ormundsby"]),
    ("Who wrote the novel The Ninth Orchard of Velmarro?", ["Velmarro"]),
    ("Who painted Portrait of Hesper Quillingham?", ["Quillingham"]),
    ("Who composed the opera Kastrelle and the Moon Weaver?", ["Kastrelle"]),
    ("In what year was the city of Drovenhal founded?", ["Drovenhal"]),
    ("What is the population of the island of Pellwyrrin?", ["Pellwyrrin"]),
    ("Who founded the company Tarnquist Robotics?", ["Tarnquist"]),
    ("Which team won the 2041 FIFA World Cup?", ["2041"]),
    ("Who won the Nobel Prize in Literature in 2039?", ["2039"]),
    ("What is the chemical symbol of the element zorvanium?", ["zorvanium"]),
    ("Who was the first president of the Ustrovian Federation?", ["Ustrovian"]),
    ("How tall is Mount Kelvaraq?", ["Kelvaraq"]),
    ("In what year did the composer Brisa Montellaro die?", ["Montellaro"]),
    ("Who discovered the asteroid Fennimoria?", ["Fennimoria"]),
    ("What language is spoken in the Vashtenic Highlands?", ["Vashtenic"]),
    ("Who invented the Halvorsen-Dray engine?", ["Halvorsen-Dray"]),
]


def _rank(title: str) -> str:
    return hashlib.sha256(title.encode("utf-8")).hexdigest()


def _surname(name: str) -> list[str]:
    """The full name plus its last word as an alias (\"Stanley Kubrick\" -> [..., \"Kubrick\"])."""
    last = name.rsplit(maxsplit=1)[-1]
    return [name] if len(last) < 4 or last == name else [name, last]


def _city_aliases(title: str) -> list[str]:
    short = re.sub(r"\s*\(.*\)$", "", title).split(",")[0].strip()
    return [title] if short == title else [title, short]


def candidates(data: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Every question the patterns find, by kind, each with its answer present in the article text."""
    found: dict[str, list[dict[str, Any]]] = {kind: [] for kind in PER_KIND}
    for key, entry in data.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("extract"), str):
            continue
        title, text = entry.get("title") or key, entry["extract"]
        description = (entry.get("description") or "").strip()
        for kind, item in _match(title, description, text, entry.get("topic")):
            if _usable(item, title, text):
                found[kind].append({**item, "title": title, "kind": kind})
    return {kind: sorted(items, key=lambda q: _rank(q["title"])) for kind, items in found.items()}


def _usable(item: dict[str, Any], title: str, text: str) -> bool:
    """The answer is in the article's text, and neither the question nor the title gives it away."""
    answers = [alias.lower() for alias in item["answers"]]
    return (any(alias in text.lower() for alias in answers) and "(" not in item["question"]
            and not any(alias in title.lower() for alias in answers if alias != title.lower()))


def _match(title: str, description: str, text: str, topic: object) -> list[tuple[str, dict[str, Any]]]:
    matches = []
    if (m := _CAPITAL.match(description)) and " and " not in m.group(1):
        matches.append(("capital", {"question": f"What is the capital of {m.group(1)}?",
                                    "answers": _city_aliases(title)}))
    if topic == "People" and (m := _NATIONALITY.match(text)) and m.group(1) in NATIONALITIES:
        matches.append(("nationality", {"question": f"What nationality was {title}?",
                                        "answers": NATIONALITIES[m.group(1)]}))
    if m := _WORK.match(description):
        verb = _VERBS[m.group(1).lower()]
        matches.append(("work", {"question": f"Who {verb} {title}?", "answers": _surname(m.group(2))}))
    return matches


def build(data: dict[str, Any], held_out: bool = False) -> dict[str, Any]:
    """The question file's content: answerable questions interleaved by kind, then the absent set;
    ``held_out``: the next ``PER_KIND`` questions of each kind, none of the main file's."""
    found = candidates(data)
    kept = [found[kind][count:2 * count] if held_out else found[kind][:count] for kind, count in PER_KIND.items()]
    answerable = [q for group in itertools.zip_longest(*kept) for q in group if q is not None]
    absent = [{"question": q, "absent_terms": terms} for q, terms in NOT_IN_SOURCES]
    return {"corpus": CORPUS_DATA_FILE, "answerable": answerable, "not_in_sources": absent}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=Path, default=None,
                        help=f"default {QUESTIONS_FILE.name}, or {HELD_OUT_FILE.name} with --held-out")
    parser.add_argument("--held-out", action="store_true", help="the next questions of each kind")
    args = parser.parse_args(argv)
    args.write = args.write or (HELD_OUT_FILE if args.held_out else QUESTIONS_FILE)
    with corpus_path().open(encoding="utf-8") as handle:
        content = build(json.load(handle), args.held_out)
    args.write.write_text(json.dumps(content, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    kinds = {kind: sum(q["kind"] == kind for q in content["answerable"]) for kind in PER_KIND}
    print(f"{len(content['answerable'])} answerable {kinds}, {len(content['not_in_sources'])} not in the sources"
          f" -> {args.write}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
