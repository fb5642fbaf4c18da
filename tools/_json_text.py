"""JSON in model output: bounded parsing, recovery from code fences and prose, partial objects.

Models wrap JSON in markdown fences or put a sentence in front of it. :func:`json_candidates` finds
the JSON values in such text, in order of preference: the whole text, then each fenced block, then
each balanced ``{…}``/``[…]`` span. Every parse is depth-checked first by a linear scan, so a reply
of ten thousand ``[`` is a clear error, not a ``RecursionError``. ``NaN`` and ``Infinity`` (which
Python's ``json`` accepts) are rejected: they are not JSON.

:class:`PartialJson` turns a growing stream of text into the object parsed so far (jiter's partial
mode), for streamed JSON mode.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any

import jiter

__all__ = ["MAX_OUTPUT_DEPTH", "PartialJson", "dumps_normalised", "json_candidates"]

#: Deepest nesting of arrays/objects accepted in model output.
MAX_OUTPUT_DEPTH = 64
# Balanced spans tried after the whole text and the fenced blocks; bounds the work on long prose.
MAX_SPAN_CANDIDATES = 8
# Partial parsing re-reads the buffer on every token; past this size it stops (the final verdict
# still comes from the full validation).
MAX_PARTIAL_CHARS = 64 * 1024

# A fence's info string (```json) is optional; the block ends at the next fence. Lazy `.*?` with
# fixed delimiters is linear per start, and starts are limited to fence positions.
_FENCE = re.compile(r"```[ \t]*[\w+-]*[ \t]*\r?\n(.*?)```", re.DOTALL)
_OPENERS = "{["
_SPECIAL = re.compile(r'[\\"{}\[\]]')


class _TooDeep(ValueError):
    pass


def json_candidates(text: str) -> tuple[list[Any], str | None]:
    """The JSON values found in ``text`` (best first) and, when there is none, why not."""
    stripped = text.strip()
    if not stripped:
        return [], "the output is empty"
    try:
        return _parse_candidates(stripped)
    except _TooDeep as exc:
        return [], str(exc)


def dumps_normalised(value: Any) -> str:
    """The canonical text of a validated value: compact separators, Unicode kept, key order kept."""
    return json.dumps(value, ensure_ascii=False)


class PartialJson:
    """Feed streamed text; each :meth:`feed` returns the JSON value parsed so far (or None).

    Leading prose and a code fence are skipped; an incomplete trailing string is kept as far as it
    goes (``{"name": "Ad`` → ``{"name": "Ad"}``), an incomplete number or literal is left out.
    """

    def __init__(self) -> None:
        self._text = ""

    def feed(self, piece: str) -> Any:
        """Add ``piece`` and return the partial value, or None while there is nothing to show."""
        self._text += piece
        if len(self._text) > MAX_PARTIAL_CHARS:
            return None
        start = _first_opener(self._text, 0)
        if start is None:
            return None
        try:
            return _finite(jiter.from_json(self._text[start:].encode(), partial_mode="trailing-strings",
                                           allow_inf_nan=False))
        except ValueError:
            pass  # text after the closing bracket (a fence, prose): cut it off and try once more
        try:
            end = _span_end(self._text, start)
            return _finite(jiter.from_json(self._text[start:end].encode(), partial_mode="trailing-strings",
                                           allow_inf_nan=False))
        except ValueError:
            return None


def _finite(value: Any) -> Any:
    """``value``, or None when it holds an infinite float (jiter reads 1e999 as inf)."""
    return value if _all_finite(value) else None


def _all_finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_all_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_all_finite(v) for v in value)
    return True


def _parse_candidates(text: str) -> tuple[list[Any], str | None]:
    values: list[Any] = []
    problem: str | None = None
    seen: set[str] = set()
    for candidate in _candidate_texts(text):
        if candidate in seen:
            continue
        seen.add(candidate)
        try:
            values.append(_loads_bounded(candidate))
        except _TooDeep:
            raise
        except ValueError as exc:
            problem = problem or f"not valid JSON: {exc}"
        if values and candidate is text:
            break  # the whole text is JSON: nothing else to look for
    return values, None if values else (problem or "no JSON value found in the output")


def _candidate_texts(text: str) -> Iterator[str]:
    """The whole text, each fenced block, then up to ``MAX_SPAN_CANDIDATES`` balanced spans (lazily)."""
    yield text
    for match in _FENCE.finditer(text):
        yield match.group(1).strip()
    start = _first_opener(text, 0)
    for _ in range(MAX_SPAN_CANDIDATES):
        if start is None:
            return
        end = _span_end(text, start)
        if end is None:
            return  # unbalanced to the end of the text: no later opener can close either
        yield text[start:end]
        start = _first_opener(text, end)  # values nested inside this span are not candidates


def _loads_bounded(text: str) -> Any:
    if _max_depth(text) > MAX_OUTPUT_DEPTH:
        raise _TooDeep(f"the JSON is nested deeper than {MAX_OUTPUT_DEPTH} levels")
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError as exc:  # belt and braces: the scan above should make this unreachable
        raise _TooDeep(f"the JSON is nested deeper than {MAX_OUTPUT_DEPTH} levels") from exc


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    # 1e999 parses to inf, which no JSON encoder can write back: it is not a usable JSON number.
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of the range of a JSON number")
    return value


def _first_opener(text: str, start: int) -> int | None:
    positions = [p for p in (text.find(c, start) for c in _OPENERS) if p >= 0]
    return min(positions) if positions else None


def _span_end(text: str, start: int) -> int | None:
    """Index just past the bracket closing the one at ``start``; None when it never closes."""
    depth = 0
    for index, char in _structure(text, start):
        if char in _OPENERS:
            depth += 1
            if depth > MAX_OUTPUT_DEPTH:
                raise _TooDeep(f"the JSON is nested deeper than {MAX_OUTPUT_DEPTH} levels")
        else:
            depth -= 1
            if depth == 0:
                return index + 1
    return None


def _max_depth(text: str) -> int:
    """Deepest bracket nesting outside strings, stopping as soon as it passes the bound."""
    depth = deepest = 0
    for _, char in _structure(text, 0):
        depth += 1 if char in _OPENERS else -1
        deepest = max(deepest, depth)
        if deepest > MAX_OUTPUT_DEPTH:
            break
    return deepest


def _structure(text: str, start: int) -> Iterator[tuple[int, str]]:
    """Positions of the brackets outside JSON strings (the regex skips every other character)."""
    in_string = False
    escaped_at = -1
    for match in _SPECIAL.finditer(text, start):
        index = match.start()
        char = text[index]
        if index == escaped_at:
            continue
        if in_string:
            if char == "\\":
                escaped_at = index + 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char != "\\":
            yield index, char
