"""Small text and argument helpers shared by the search backends."""

from __future__ import annotations

import re

from tools._exceptions import ToolsUsageError

__all__ = ["ELLIPSIS", "check_max_results", "collapse_space", "first_sentences", "truncate"]

ELLIPSIS = "…"

# A sentence ends at . ! or ? followed by whitespace; good enough for encyclopedia prose and notes.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def check_max_results(max_results: int) -> int:
    """Return ``max_results`` if it is a positive int, else raise :class:`ToolsUsageError` naming it."""
    if isinstance(max_results, bool) or not isinstance(max_results, int) or max_results < 1:
        raise ToolsUsageError(f"max_results must be a positive integer, got {max_results!r}")
    return max_results


def collapse_space(text: str) -> str:
    """Collapse every run of whitespace (newlines included) to one space and strip the ends."""
    return " ".join(text.split())


def truncate(text: str, limit: int) -> str:
    """Shorten ``text`` to at most ``limit`` characters, cutting at a word boundary and adding ``…``."""
    if len(text) <= limit:
        return text
    cut = text[: limit - len(ELLIPSIS)]
    # Cut at the last space unless that would throw away most of the text (one very long word).
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:-") + ELLIPSIS


def first_sentences(text: str, limit: int) -> str:
    """The leading whole sentences of ``text`` that fit in ``limit`` characters (whitespace collapsed).

    When even the first sentence is too long it is truncated at a word boundary instead.
    """
    flat = collapse_space(text)
    if len(flat) <= limit:
        return flat
    taken = ""
    for sentence in _SENTENCE_END.split(flat):
        candidate = f"{taken} {sentence}" if taken else sentence
        if len(candidate) > limit:
            break
        taken = candidate
    return taken or truncate(flat, limit)
