"""Tool calls written as text by chat models that were trained to call tools (Qwen2.5 and kin).

Such a model's own chat template (read from its GGUF by llama-cpp-python) describes the offered
tools and shows earlier calls and results in the format it was trained on, given OpenAI-shaped
messages and tools: :func:`template_tools` and :func:`template_message` build those.

Qwen's template asks for ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``, but small
models also write the same object bare, or inside a ```` ```json ```` fence, or several of them. This
module turns such text into calls, pure and without a model:

* :func:`parse_tool_calls` - the calls in a finished reply (only to offered tool names, arguments a
  JSON object) and the text before the first call (trailing white space stripped), which is the
  reply's content.
* :func:`streamable_length` - how much of a reply still being generated may be streamed: the text
  before anything that may turn out to open a call. Streamed text is never taken back, so what it
  returns is always a prefix of the ``content`` the finished reply parses to.

Bare JSON counts as calls only when every object in the run is a call to an offered tool (a JSON
answer is not a call); inside ``<tool_call>`` tags each well-formed call to an offered tool counts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any

from graphs.model import Message, ToolSpec

__all__ = ["ParsedReply", "parse_tool_calls", "streamable_length", "template_message", "template_tools"]

TAG_OPEN = "<tool_call>"
TAG_CLOSE = "</tool_call>"
FENCE = "```"
# A fence line that may hold a call: ``` or ```json, then the line's end.
_JSON_FENCE_LINE = re.compile(r"```[ \t]*(?:json)?[ \t]*\r?\n", re.IGNORECASE)
# JSON that starts a line (after indentation): where a bare call can begin.
_LINE_JSON = re.compile(r"^[ \t]*([{\[])", re.MULTILINE)
_DECODER = json.JSONDecoder()


@dataclass(frozen=True, slots=True)
class ParsedReply:
    """A reply split into its text (before the first call) and its calls as ``(name, arguments)``."""

    content: str
    calls: tuple[tuple[str, str], ...]


def parse_tool_calls(text: str, names: Collection[str]) -> ParsedReply:
    """The tool calls ``text`` makes to tools named in ``names``; no calls when it makes none."""
    if names:
        for start, body, tagged in _openings(text, final=True):
            calls = _tagged_calls(text[start:], names) if tagged else _bare_calls(text, body, names)
            if calls:
                return ParsedReply(text[:start].rstrip(), calls)
    return ParsedReply(text, ())


def streamable_length(text: str) -> int:
    """The length of the prefix of a partial reply that cannot belong to a tool call."""
    cut = next((start for start, _, _ in _openings(text, final=False)), len(text))
    # The next piece may complete an opening marker: hold a trailing partial "<tool_call>" or "```".
    for marker in (TAG_OPEN, FENCE):
        held = next((size for size in range(len(marker) - 1, 0, -1) if text[:cut].endswith(marker[:size])), 0)
        cut -= held
    # White space may be the indentation of a call, and a call's content is stripped: hold it too.
    return len(text[:cut].rstrip())


def _openings(text: str, *, final: bool) -> Iterator[tuple[int, int, bool]]:
    """``(start, body_start, tagged)`` of every place a call may begin, in text order.

    While streaming (``final=False``) an opening not yet readable to its end (a fence whose first
    line or body has not arrived) counts as one; in a finished reply it does not.
    """
    found: list[tuple[int, int, bool]] = []
    tag = text.find(TAG_OPEN)
    if tag >= 0:
        found.append((tag, tag + len(TAG_OPEN), True))
    found += [(m.start(), m.start(1), False) for m in _LINE_JSON.finditer(text)]
    found += _fence_openings(text, final)
    yield from sorted(found)


def _fence_openings(text: str, final: bool) -> list[tuple[int, int, bool]]:
    found = []
    start = text.find(FENCE)
    while start >= 0:
        line = _JSON_FENCE_LINE.match(text, start)
        rest = text[line.end():].lstrip() if line else ""
        if line and rest[:1] in ("{", "["):
            found.append((start, line.end(), False))
        elif not final and ((line and not rest) or "\n" not in text[start:]):
            found.append((start, start, False))  # not decidable yet
        start = text.find(FENCE, start + len(FENCE))
    return found


def _tagged_calls(text: str, names: Collection[str]) -> tuple[tuple[str, str], ...]:
    calls: list[tuple[str, str]] = []
    for block in text.split(TAG_OPEN)[1:]:
        body = block.split(TAG_CLOSE, 1)[0].strip()
        fenced = _JSON_FENCE_LINE.match(body)
        values = _json_values(body, fenced.end() if fenced else 0)
        calls += [c for c in (_call(v, names) for v in _flatten(values)) if c is not None]
    return tuple(calls)


def _bare_calls(text: str, start: int, names: Collection[str]) -> tuple[tuple[str, str], ...]:
    values = list(_flatten(_json_values(text, start)))
    calls = [_call(v, names) for v in values]
    if not values or any(c is None for c in calls):
        return ()
    return tuple(c for c in calls if c is not None)


def _json_values(text: str, position: int) -> list[Any]:
    """Consecutive JSON values from ``position``, separated by white space, commas or fence lines."""
    values: list[Any] = []
    while True:
        position = _skip_separators(text, position)
        if position >= len(text) or text[position] not in "{[":
            return values
        try:
            value, position = _DECODER.raw_decode(text, position)
        except ValueError:
            return values
        values.append(value)


def _skip_separators(text: str, position: int) -> int:
    while position < len(text):
        if text[position] in " \t\r\n,":
            position += 1
        elif fence := _JSON_FENCE_LINE.match(text, position):
            position = fence.end()
        elif text.startswith(FENCE, position):
            position += len(FENCE)
        else:
            break
    return position


def _flatten(values: list[Any]) -> Iterator[Any]:
    for value in values:
        if isinstance(value, list):
            yield from value
        else:
            yield value


def _call(value: Any, names: Collection[str]) -> tuple[str, str] | None:
    """``(name, arguments JSON)`` when ``value`` is a call of an offered tool, else None."""
    if not isinstance(value, dict):
        return None
    if isinstance(value.get("function"), dict):  # the OpenAI wire shape
        value = value["function"]
    name = value.get("name", value.get("tool"))
    arguments = value.get("arguments", value.get("parameters", {}))
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except ValueError:
            return None
    if not isinstance(name, str) or name not in names or not isinstance(arguments, dict):
        return None
    return name, json.dumps(arguments, ensure_ascii=False)


def template_tools(tools: Collection[ToolSpec]) -> list[dict[str, Any]]:
    """``tools`` in the OpenAI shape chat templates render."""
    return [
        {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}
        for t in tools
    ]


def template_message(message: Message) -> dict[str, Any]:
    """One turn for a tool-trained chat template: tool results keep their role, calls their arguments."""
    if message.role == "assistant" and message.tool_calls:
        calls = [{"type": "function", "function": {"name": c.name, "arguments": _arguments_value(c.arguments)}}
                 for c in message.tool_calls]
        return {"role": "assistant", "content": message.content, "tool_calls": calls}
    return {"role": message.role, "content": message.content}


def _arguments_value(arguments: str) -> Any:
    # Templates write the arguments with `tojson`: an object, not the JSON text (which would be quoted again).
    try:
        return json.loads(arguments)
    except ValueError:
        return arguments
