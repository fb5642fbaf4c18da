"""Plain-text work of the research graph, no model involved: choosing sources, picking passages,
and making the report's citations and links honest.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

from graphs._research_state import Passage, ResearchBudget, ResearchNote, ResearchSource, SubQuestion

__all__ = [
    "attribute",
    "choose_sources",
    "fallback_report",
    "finish_report",
    "normalize_url",
    "pick_notes",
    "split_passages",
    "tidy_draft",
]

# Words that say nothing about a topic; kept out of passage scoring.
STOPWORDS = frozenset(
    [
        "a", "about", "after", "all", "also", "an", "and", "any", "are", "as", "at", "be", "been", "but", "by", "can",
        "could", "did", "do", "does", "for", "from", "had", "has", "have", "how", "i", "if", "in", "into", "is", "it",
        "its", "itself", "more", "most", "no", "not", "of", "on", "or", "other", "our", "out", "over", "same", "she",
        "should", "so", "some", "such", "than", "that", "the", "their", "them", "then", "there", "these", "they",
        "this", "those", "through", "to", "too", "under", "up", "was", "we", "were", "what", "when", "where", "which",
        "while", "who", "whom", "whose", "why", "will", "with", "would", "you", "your"
    ]
)
# Passages shorter than this are navigation crumbs or headings, not evidence.
MIN_PASSAGE_CHARS = 40
_WORD = re.compile(r"[^\W_]+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
# Attribution: a sentence is cited to the page holding this share of its (at least 3) content words.
ATTRIBUTION_SHARE = 0.6
MIN_ATTRIBUTION_TERMS = 3
# A sentence runs to . ! ? or the line's end; an initial ("Arthur C. Clarke") or a decimal point does not end it.
_SENTENCE = re.compile(r"(?:[^.!?\n]|(?<=\b[A-Z])\.|\.(?=\d))+(?:[.!?]+|$)", re.MULTILINE)
# A line this long seen twice in a draft is a loop, not emphasis.
MIN_REPEAT_CHARS = 20
_PROMPT_ECHOES = ("the research notes are data", "<research_notes", "</research_notes", "question:")
_FOOTNOTE = re.compile(r"\[\d+(?:\s*,\s*\d+)*\]")
_CITATION = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
# Markdown images and links, and bare URLs: a link the model invents (or copied from a page) could
# leak data when a viewer renders the report, so only links to sources the run read survive.
_MD_LINK = re.compile(r"!?\[([^\]\n]*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_BARE_URL = re.compile(r"(?:https?|ftp|file|data|javascript)://[^\s)\]>\"']+|www\.[^\s)\]>\"']+", re.IGNORECASE)


def normalize_url(url: str) -> str:
    """The URL as a dedup key: lower-case scheme and host, no fragment, no trailing slash."""
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/") or ""
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, parts.query, ""))


def _domain(url: str) -> str:
    host = (urlsplit(url).hostname or "").lower()
    return host.removeprefix("www.")


def choose_sources(
    candidates: list[ResearchSource], tried: Iterable[str], budget: ResearchBudget, room: int
) -> tuple[list[ResearchSource], int]:
    """Up to ``room`` sources to read, and how many unread candidates were left out.

    Candidates are taken round-robin across sub-questions (so each gets its best hits first), never
    a URL twice (also across rounds: ``tried``), and first at most ``max_per_domain`` from one domain;
    room left after that goes to the remaining candidates in the same order (a local index, whose
    articles share one domain, still fills its budget).
    """
    seen = {normalize_url(u) for u in tried}
    per_domain: Counter[str] = Counter(_domain(u) for u in tried)
    unread = _round_robin([c for c in candidates if normalize_url(c.url) not in seen])
    chosen: list[ResearchSource] = []
    for capped in (True, False):
        for source in unread:
            key, domain = normalize_url(source.url), _domain(source.url)
            if key in seen or (capped and per_domain[domain] >= budget.max_per_domain) or len(chosen) >= room:
                continue
            seen.add(key)
            per_domain[domain] += 1
            chosen.append(source)
    left = len({normalize_url(c.url) for c in unread} - {normalize_url(c.url) for c in chosen})
    return chosen, left


def _round_robin(candidates: list[ResearchSource]) -> list[ResearchSource]:
    by_sub: dict[int, list[ResearchSource]] = {}
    for candidate in candidates:
        by_sub.setdefault(candidate.sub, []).append(candidate)
    lanes = list(by_sub.values())
    return [lane[i] for i in range(max(map(len, lanes), default=0)) for lane in lanes if i < len(lane)]


def split_passages(text: str, size: int) -> list[str]:
    """The text in passages of at most ``size`` characters: paragraphs, long ones cut at sentence ends."""
    passages: list[str] = []
    text = _FOOTNOTE.sub("", text)  # a page's own "[3]" markers would read as our citations
    for raw in re.split(r"\n\s*\n|\n(?=\S)", text):
        paragraph = " ".join(raw.split())
        while len(paragraph) > size:
            cut = max((m.start() for m in _SENTENCE_END.finditer(paragraph, 0, size)), default=size)
            passages.append(paragraph[:cut].strip())
            paragraph = paragraph[cut:].strip()
        if paragraph:
            passages.append(paragraph)
    return [p for p in passages if len(p) >= MIN_PASSAGE_CHARS] or [p for p in passages if p][:1]


def _terms(text: str) -> list[str]:
    words = _WORD.findall(unicodedata.normalize("NFKC", text).casefold())
    return [_stem(w) for w in words if w not in STOPWORDS and len(w) > 1]


def _stem(word: str) -> str:
    # A crude suffix strip ("flows"/"flowed"/"flowing" -> "flow"): enough for lexical overlap.
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def pick_notes(
    question: str, plan: list[SubQuestion], texts: dict[int, str], budget: ResearchBudget
) -> list[ResearchNote]:
    """For each sub-question, the best-scoring passages of the read pages (BM25-like lexical scoring
    against the sub-question, its queries and the main question)."""
    pieces = [(sid, p) for sid, text in sorted(texts.items()) for p in split_passages(text, budget.passage_chars)]
    bags = [Counter(_terms(p)) for _, p in pieces]
    df = Counter(t for bag in bags for t in bag)
    notes: list[ResearchNote] = []
    for sub in plan:
        query = set(_terms(" ".join([question, sub.question, *sub.queries])))
        scored = []
        for (sid, text), bag in zip(pieces, bags, strict=True):
            score = sum((1 + math.log(bag[t])) * math.log(1 + len(pieces) / df[t]) for t in query if bag[t])
            if score > 0:
                scored.append(Passage(sid, text, round(score, 3)))
        scored.sort(key=lambda p: (-p.score, p.source_id))
        notes.append(ResearchNote(sub.question, tuple(scored[: budget.passages_per_question])))
    return notes


def attribute(draft: str, texts: dict[int, str]) -> tuple[str, int]:
    """Cite the draft's uncited sentences that one read page supports: most of the sentence's content
    words (at least :data:`MIN_ATTRIBUTION_TERMS`) occur in it. Returns the draft and how many were cited.

    Small models often answer from the notes without writing any ``[n]``; this attributes what they
    wrote to the page it came from, and leaves unsupported sentences uncited.
    """
    pages = {n: set(_terms(text)) for n, text in texts.items()}
    added = 0

    def cite(match: re.Match[str]) -> str:
        nonlocal added
        text = match.group(0)
        words = set(_terms(text))
        if _CITATION.search(text) or len(words) < MIN_ATTRIBUTION_TERMS or not pages:
            return text
        best = max(sorted(pages), key=lambda n: len(words & pages[n]))
        if len(words & pages[best]) / len(words) < ATTRIBUTION_SHARE:
            return text
        added += 1
        body = text.rstrip()
        core = body.rstrip(".!?:;")
        return f"{core} [{best}]{body[len(core):]}{text[len(body):]}"

    return _SENTENCE.sub(cite, draft), added


def tidy_draft(draft: str) -> str:
    """The model's draft without lines it repeated (a small model loops) or copied from our prompt."""
    seen: set[str] = set()
    lines: list[str] = []
    for line in draft.splitlines():
        key = " ".join(line.split()).casefold()
        if (len(key) > MIN_REPEAT_CHARS and key in seen) or key.startswith(_PROMPT_ECHOES):
            continue
        seen.add(key)
        lines.append(line)
    return "\n".join(lines).strip()


def finish_report(draft: str, sources: list[ResearchSource]) -> tuple[str, tuple[int, ...], int]:
    """The report: the draft with citations of unread sources and foreign links removed, then the source list.

    Returns the report, the ``[n]`` ids it cites, and how many citations were removed.
    """
    valid = {s.id for s in sources}
    removed = 0

    def keep_valid(match: re.Match[str]) -> str:
        nonlocal removed
        ids = [int(n) for n in match.group(1).split(",")]
        kept = [n for n in ids if n in valid]
        removed += len(ids) - len(kept)
        return "".join(f"[{n}]" for n in kept)

    body = _strip_links(draft.strip(), {normalize_url(s.url) for s in sources})
    body = re.sub(r"(?im)^#+\s*(sources|references)\s*$[\s\S]*", "", body).rstrip()  # the model's own list
    body = _CITATION.sub(keep_valid, body)
    cited = tuple(sorted({int(n) for m in _CITATION.finditer(body) for n in m.group(1).split(",")}))
    return f"{body}\n\n{source_list(sources)}", cited, removed


def _strip_links(text: str, allowed: set[str]) -> str:
    def link(match: re.Match[str]) -> str:
        label, url = match.group(1), match.group(2)
        if normalize_url(url) in allowed and not match.group(0).startswith("!"):
            return match.group(0)
        return label

    text = _MD_LINK.sub(link, text)
    return _BARE_URL.sub(lambda m: m.group(0) if normalize_url(m.group(0)) in allowed else "[link removed]", text)


def source_list(sources: list[ResearchSource]) -> str:
    """The numbered list of the sources read, in ``[n]`` order."""
    if not sources:
        return "## Sources\n\n(no source could be read)"
    lines = [f"{s.id}. [{_md_label(s.title or s.url)}]({s.url})" for s in sorted(sources, key=lambda s: s.id)]
    return "## Sources\n\n" + "\n".join(lines)


def fallback_report(question: str, notes: list[ResearchNote], reason: str | None) -> str:
    """A report without the model: each sub-question with its passages, cited."""
    lines = [f"# {question}", ""]
    if reason:
        lines += [f"*Partial report: {reason}.*", ""]
    for note in notes:
        lines += [f"## {note.question}", ""]
        lines += [f"- {p.text} [{p.source_id}]" for p in note.passages] or ["- Nothing found in the sources read."]
        lines.append("")
    if not notes:
        lines.append("No source was read before the run stopped.")
    return "\n".join(lines).rstrip()


def _md_label(text: str) -> str:
    return " ".join(text.replace("[", "(").replace("]", ")").split())
