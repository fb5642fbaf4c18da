"""Validation of chat-completions parameters: wire values in, a :class:`graphs.ChatRequest` out.

The fields and their defaults and ranges are the request contract's (:mod:`agent._contract`).
Every check runs before any model call and fails with a :class:`BadRequestError` naming the
parameter (``messages[2].role`` style paths for nested values); no message quotes a Python object's
repr. Fields handled ``forwarded`` are checked against their wire schema and passed to upstreams.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator

from agent._contract import FIELDS
from agent._exceptions import BadRequestError
from agent._messages import ROLES, describe, parse_messages
from graphs import ChatRequest, SamplingParams, WebSearchMode

__all__ = ["ROLES", "WEB_SEARCH_VALUES", "build_request", "check_stream", "describe", "parse_messages"]

WEB_SEARCH_VALUES: dict[object, WebSearchMode] = {
    False: "off", None: "off", "false": "off", "auto": "auto", "force": "force", "images": "images",
}
#: web_search_options.search_context_size -> results the model reads per search.
SEARCH_CONTEXT_RESULTS = {"low": 3, "medium": 5, "high": 8}
_FLOATS = ("temperature", "top_p", "frequency_penalty", "presence_penalty")
# Fields parsed by their own code below; every other field is checked against its wire schema.
_PARSED = frozenset({"model", "messages", "temperature", "max_tokens", "max_completion_tokens", "top_p",
                     "frequency_penalty", "presence_penalty", "web_search", "response_format", "tools",
                     "tool_choice", "functions", "function_call", "stream"})


def build_request(params: Mapping[str, Any]) -> ChatRequest:
    """Validate a request's fields and build the graph's request (tools: see :mod:`agent._tool_params`).

    An unknown field is refused by name; a missing or ``None`` optional field takes the contract's
    default (as in OpenAI's API, ``null`` means "the default").
    """
    from agent._response_format import parse_response_format  # owns the JSON-mode forms

    values = _with_defaults(params)
    _check_text(params)
    for name in FIELDS.keys() - _PARSED:
        _check_schema(name, values[name])
    options = values["web_search_options"] or {}
    return ChatRequest(
        model=_model(values["model"]),
        messages=parse_messages(values["messages"]),
        sampling=_sampling(values),
        web_search=_web_search(values["web_search"]),
        response_format=parse_response_format(values["response_format"]),
        tools=_tools(values),
        parallel_tool_calls=bool(values["parallel_tool_calls"]),
        extra=tuple((n, values[n]) for n, p in FIELDS.items() if p.handling == "forwarded" and values[n] is not None),
        max_tokens_field="max_completion_tokens" if params.get("max_completion_tokens") is not None else "max_tokens",
        n=values["n"],
        max_results=SEARCH_CONTEXT_RESULTS.get(options.get("search_context_size", "")),
    )


def check_stream(value: Any) -> bool:
    """The ``stream`` flag (None means the default, false)."""
    if value is None:
        return bool(FIELDS["stream"].default)
    if not isinstance(value, bool):
        raise BadRequestError(f"must be true or false, got {describe(value)}", param="stream")
    return value


def _with_defaults(params: Mapping[str, Any]) -> dict[str, Any]:
    unknown = [name for name in params if name not in FIELDS]
    if unknown:
        raise BadRequestError(f"unknown parameter; accepted: {', '.join(FIELDS)}", param=str(unknown[0]))
    for name, param in FIELDS.items():
        if param.required and params.get(name) is None:
            raise BadRequestError("is required", param=name)
    return {name: param.default if params.get(name) is None else params[name] for name, param in FIELDS.items()}


def _check_text(value: Any, where: str = "") -> None:
    """Every string must be encodable as UTF-8 (a lone surrogate is not): else a 400 naming where it is."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise BadRequestError("contains text that is not valid Unicode (a lone surrogate)",
                                  param=where or None) from None
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _check_text(key, where)
            _check_text(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_text(item, f"{where}[{index}]")


@functools.cache
def _validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(dict(FIELDS[name].schema))


def _check_schema(name: str, value: Any) -> None:
    param = FIELDS[name]
    if value is None or not param.schema:
        return
    error = next(iter(_validator(name).iter_errors(value)), None)
    if error is None:
        _check_range(name, value)
        return
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    shown = describe(error.instance)
    raise BadRequestError(f"invalid value {shown}: {error.validator} {error.validator_value!r} not met",
                          param=f"{name}{where}")


def _check_range(name: str, value: Any) -> None:
    low, high = FIELDS[name].minimum, FIELDS[name].maximum
    if isinstance(value, bool) or not isinstance(value, int | float):
        return
    if low is not None and value < low:
        raise BadRequestError(f"must be at least {low:g}, got {describe(value)}", param=name)
    if high is not None and value > high:
        raise BadRequestError(f"must be at most {high:g}, got {describe(value)}", param=name)


def _sampling(values: Mapping[str, Any]) -> SamplingParams:
    stop = values["stop"]
    bias = values["logit_bias"] or {}
    return SamplingParams(
        max_tokens=_max_tokens(values["max_tokens"], values["max_completion_tokens"]),
        **{name: _number(name, values[name]) for name in _FLOATS},
        stop=(stop,) if isinstance(stop, str) else tuple(stop or ()),
        seed=values["seed"],
        logit_bias=tuple((_token_id(key), float(b)) for key, b in bias.items()),
        logprobs=bool(values["logprobs"]),
        top_logprobs=values["top_logprobs"],
        top_k=values["top_k"],
        min_p=values["min_p"],
        repetition_penalty=values["repetition_penalty"],
    )


def _token_id(key: str) -> int:
    try:
        return int(key)
    except ValueError:
        raise BadRequestError(f"keys are token ids (integers as strings), got {describe(key)}",
                              param=f"logit_bias.{key}") from None


def _tools(values: Mapping[str, Any]) -> Any:
    from agent._tool_params import apply_allowed_tools, parse_legacy_functions, parse_tool_choice, parse_tools

    config = parse_tools(values["tools"])
    if values["functions"] is not None:
        config = config.merged(parse_legacy_functions(values["functions"]))
    choice = values["tool_choice"] if values["function_call"] is None else _legacy_choice(values["function_call"])
    if isinstance(choice, Mapping) and choice.get("type") == "allowed_tools":
        return apply_allowed_tools(config, choice)
    return dataclasses.replace(config, choice=parse_tool_choice(choice))


def _legacy_choice(function_call: Any) -> Any:
    if isinstance(function_call, Mapping):
        return {"type": "function", "function": {"name": function_call.get("name")}}
    if function_call in ("auto", "none"):
        return function_call
    raise BadRequestError('must be "auto", "none" or {"name": ...}', param="function_call")


def _model(model: Any) -> str:
    if not isinstance(model, str) or not model.strip():
        raise BadRequestError("must be a non-empty string (see models.list())", param="model")
    return model


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadRequestError(f"must be a number, got {describe(value)}", param=name)
    low, high = FIELDS[name].minimum, FIELDS[name].maximum
    assert low is not None and high is not None, "every float field has a range"
    if not low <= value <= high:
        raise BadRequestError(f"must be between {low:g} and {high:g}, got {describe(value)}", param=name)
    return float(value)


def _max_tokens(max_tokens: Any, max_completion_tokens: Any) -> int:
    """``max_tokens`` or OpenAI's newer ``max_completion_tokens``: one budget, named as it was sent."""
    value, name = max_tokens, "max_tokens"
    if max_completion_tokens is not None:
        value, name = max_completion_tokens, "max_completion_tokens"
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequestError(f"must be an integer, got {describe(value)}", param=name)
    if value < 1:
        raise BadRequestError(f"must be at least 1, got {describe(value)}", param=name)
    return value


def _web_search(value: Any) -> WebSearchMode:
    if isinstance(value, int | float) and not isinstance(value, bool):
        # 0 is not false here: only the documented values are accepted
        raise BadRequestError(f'must be false, "auto", "force" or "images", got {describe(value)}', param="web_search")
    try:
        return WEB_SEARCH_VALUES[value]
    except (KeyError, TypeError):
        pass
    raise BadRequestError(f'must be false, "auto", "force" or "images", got {describe(value)}', param="web_search")

