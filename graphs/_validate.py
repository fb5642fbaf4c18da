"""JSON mode in the chat graph: the validate node, its re-ask router, and the JSON-mode prompt.

::

    generate ─► validate ─┬─ valid ───────────────────────────────────────────► finish
                          ├─ invalid, re-asks left ─► (bad reply + feedback) ─► generate
                          └─ invalid, none left ─► OutputValidationError (every attempt attached)

* The output is checked by the request's compiled schema (:meth:`tools.CompiledSchema.check_text`):
  JSON recovered from fences or prose, schema errors as JSON Pointer paths. An output cut off by
  ``max_tokens`` (finish reason ``"length"``) is never valid, whatever it parses as.
* A re-ask appends two turns to what the model sees: its bad reply (clipped to ``MAX_ECHO_CHARS``)
  as an assistant turn, and a user turn listing each error's path and message. They live in
  ``reask_turns``, after the rest of the conversation, so search results stay where they were.
* What decoding is asked for adapts between attempts (validation never does): after an attempt cut
  off by ``max_tokens`` the schema handed down gets bounded arrays and strings
  (:meth:`~graphs.JsonFormat.tighten`, tighter after each runaway); after an
  attempt that was no JSON at all from a backend claiming schema support, re-asks ask for any JSON
  object and put the schema in the prompt (:meth:`~graphs.JsonFormat.unenforced`).
* ``ChatLimits.max_reasks`` bounds the loop (default 2: three attempts). Each attempt is recorded in
  ``validation`` (attempt number, validity, finish reason, raw output, errors), streamed as a
  ``validation.failed`` / ``validation.passed`` step, and, when none validates, raised with the
  :class:`OutputValidationError`: invalid content is never returned as a success.
* On success the answer is the normalised JSON text and ``parsed`` the value (or the pydantic
  instance, for a model-class ``response_format``).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Literal

import pydantic
from langgraph.config import get_stream_writer
from langgraph.runtime import Runtime

from graphs._events import ValidationFailed, ValidationPassed
from graphs._json_format import JsonFormat
from graphs._state import ChatDeps, ChatState, ValidationRecord
from graphs.errors import OutputValidationError
from graphs.model import Capabilities, Message, ModelResult
from tools import OutputCheck, json_pointer

__all__ = ["json_mode_messages", "route_after_validate", "validate"]

# The bad reply shown back to the model is clipped: a looping output would otherwise fill the context.
MAX_ECHO_CHARS = 2000
# A schema longer than this is named, not pasted, in the prompt of a model that cannot constrain output
# (about 1,300 tokens: it must leave room in a 4k context for the answer and two re-asks).
MAX_PROMPT_SCHEMA_CHARS = 4000
# Errors listed in the exception's message (all of them are in ``.attempts``).
MAX_ERRORS_IN_MESSAGE = 3

_JSON_ONLY = "no text before or after it and no markdown code fences"
JSON_OBJECT_INSTRUCTIONS = f"Reply with one JSON object only: {_JSON_ONLY}."
JSON_SCHEMA_INSTRUCTIONS = f"Reply with JSON only: {_JSON_ONLY}. The JSON must match the schema named {{name}}"


async def validate(state: ChatState, runtime: Runtime[ChatDeps]) -> ChatState:
    """Validate the last output; pass it on, send it back with feedback, or give up with every attempt."""
    spec = _spec(state)
    result = state.get("result") or ModelResult(content="")
    attempt = len(state.get("validation", [])) + 1
    check = _verdict(spec, result, state["request"].sampling.max_tokens)
    parsed, text, errors = check.value, check.text, check.errors
    record = ValidationRecord(attempt=attempt, valid=not errors, finish_reason=result.finish_reason,
                              output=result.content, errors=tuple(dict(e) for e in errors))
    writer = get_stream_writer()
    if not errors:
        writer(ValidationPassed(attempt=attempt))
        return {"validation": [record], "parsed": parsed, "result": dataclasses.replace(result, content=text)}
    will_retry = attempt <= max(runtime.context.limits.max_reasks, 0)
    writer(ValidationFailed(attempt=attempt, errors=errors, will_retry=will_retry))
    if not will_retry:
        attempts = [r.as_dict() for r in [*state.get("validation", []), record]]
        raise OutputValidationError(_failure_message(attempts), attempts=attempts)
    update: ChatState = {"validation": [record], "reask_turns": _reask_turns(result, errors, attempt)}
    following = _next_format(spec, result, check.found, state["capabilities"])
    if following is not spec:  # validation always keeps the caller's schema
        update["request"] = dataclasses.replace(state["request"], response_format=following)
    return update


def route_after_validate(state: ChatState) -> Literal["generate", "finish"]:
    """Finish once the last attempt validated; otherwise generate again (the node raises when out of attempts)."""
    records = state.get("validation", [])
    return "finish" if records and records[-1].valid else "generate"


def json_mode_messages(state: ChatState, messages: list[Message]) -> list[Message]:
    """``messages`` with the JSON-mode instructions in the system turn and any re-ask turns at the end."""
    spec = state["request"].response_format
    if spec is None:
        return messages
    instructions = _instructions(_spec(state), state["capabilities"])
    if messages and messages[0].role == "system":
        first = dataclasses.replace(messages[0], content=f"{messages[0].content}\n\n{instructions}")
        messages = [first, *messages[1:]]
    else:
        messages = [Message(role="system", content=instructions), *messages]
    return [*messages, *state.get("reask_turns", [])]


# --- helpers -----------------------------------------------------------------------------------


def _spec(state: ChatState) -> JsonFormat:
    spec = state["request"].response_format
    assert spec is not None, "the validate node runs only in JSON mode"
    return spec


def _verdict(spec: JsonFormat, result: ModelResult, max_tokens: int) -> OutputCheck:
    """The check of one output; ``value`` is the pydantic instance for a model-class format."""
    if result.finish_reason == "length":
        message = (f"the output was cut off at the token limit (max_tokens={max_tokens}) before it was complete "
                   "(a truncated output is never accepted); keep lists and strings short")
        return OutputCheck(False, None, "", ({"path": "", "message": message},))
    check = spec.validator.check_text(result.content)
    if not check.valid or spec.model is None:
        return check
    try:
        return dataclasses.replace(check, value=spec.model.model_validate_json(check.text))
    except pydantic.ValidationError as exc:  # the model class's own validators can be stricter than its schema
        issues = tuple({"path": json_pointer(e["loc"]), "message": e["msg"]} for e in exc.errors())
        return OutputCheck(False, check.value, "", issues)


def _instructions(spec: JsonFormat, capabilities: Capabilities) -> str:
    if spec.source is None:
        return JSON_OBJECT_INSTRUCTIONS
    about = JSON_SCHEMA_INSTRUCTIONS.format(name=repr(spec.name))
    about += f" ({spec.description})" if spec.description else ""
    if capabilities.json_schema and spec.enforced:
        return about + "."  # the backend enforces the schema itself
    shown = json.dumps(spec.source, ensure_ascii=False)
    return about + "." if len(shown) > MAX_PROMPT_SCHEMA_CHARS else f"{about}:\n{shown}"


def _next_format(spec: JsonFormat, result: ModelResult, found_json: bool, capabilities: Capabilities) -> JsonFormat:
    """The JSON format for the re-ask after a failed attempt."""
    if result.finish_reason == "length":
        # A runaway output (a small model looping in an array or a string under its grammar):
        # bound arrays and strings, tighter after each runaway.
        return spec.tighten()
    if not found_json and spec.enforced and capabilities.json_schema:
        # No JSON at all under "schema-constrained" decoding: the constraint did not hold.
        return spec.unenforced()
    return spec


def _reask_turns(result: ModelResult, errors: tuple[dict[str, str], ...], attempt: int) -> list[Message]:
    echo = result.content if len(result.content) <= MAX_ECHO_CHARS else result.content[:MAX_ECHO_CHARS] + " …"
    listed = "\n".join(f"- {_where(e['path'])}: {e['message']}" for e in errors)
    feedback = (
        f"Your reply (attempt {attempt}) was rejected:\n{listed}\n"
        "Reply again with only the corrected JSON: no text before or after it and no code fences."
    )
    return [Message(role="assistant", content=echo or "(empty reply)"), Message(role="user", content=feedback)]


def _failure_message(attempts: list[dict[str, Any]]) -> str:
    last = attempts[-1]["errors"]
    shown = "; ".join(f"{_where(e['path'])}: {e['message']}" for e in last[:MAX_ERRORS_IN_MESSAGE])
    more = f" (and {len(last) - MAX_ERRORS_IN_MESSAGE} more)" if len(last) > MAX_ERRORS_IN_MESSAGE else ""
    count = len(attempts)
    return (f"the model's output failed JSON validation in {count} attempt{'s' if count != 1 else ''}; "
            f"last errors: {shown}{more}")


def _where(path: str) -> str:
    return path or "(the whole reply)"


