"""The ``tools`` and ``tool_choice`` parameters: every accepted form, checked before any model call.

``tools`` is a list whose items may be:

* ``"web_search"``, ``"image_search"``, ``"local_search"`` (or ``{"type": "<that name>"}``, the shape
  OpenAI's Responses API uses for its own tools): a built-in tool the graph runs. ``web_search`` in
  ``tools`` with ``web_search=False`` turns on ``web_search="auto"``, which offers the same tool.
  ``"fetch_url"`` is reserved for the safe page fetcher and refused until it exists.
* ``{"type": "function", "function": {"name", "description", "parameters", "strict"}}`` (OpenAI's
  function tool): the caller's own tool. The graph never runs it; a call of it ends the run with
  ``finish_reason="tool_calls"`` and the call in ``message.tool_calls``.
* In the Python SDK also: a plain function, sync or async (wrapped in :class:`tools.FunctionTool`),
  or any :class:`tools.Toolset` (a :class:`~tools.FunctionTool`, an MCP server…): run by the graph.

``tool_choice``: ``"auto"`` (default), ``"none"`` (no tool is offered, built-ins included),
``"required"`` or ``{"type": "function", "function": {"name": ...}}`` (forced, for the first model
turn; see :mod:`graphs._tools`). Every error is a :class:`BadRequestError` whose ``param`` is the
path of the bad value (``tools[2].function.name``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from agent._exceptions import BadRequestError
from graphs import BUILTIN_TOOLS, PLANNED_BUILTINS, TOOL_CHOICES, ToolConfig, ToolSpec
from tools import TOOL_NAME_PATTERN, FunctionTool, SchemaError, ToolDefinitionError, Toolset, compile_schema

__all__ = ["MAX_TOOLS", "apply_allowed_tools", "parse_legacy_functions", "parse_tool_choice", "parse_tools"]

#: Tools in one request (OpenAI's limit).
MAX_TOOLS = 128
_FUNCTION_KEYS = {"name", "description", "parameters", "strict"}
_EMPTY_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}


def parse_tools(tools: Any, *, param: str = "tools") -> ToolConfig:
    """The ``tools`` list as a :class:`graphs._toolbox.ToolConfig` (``choice`` left at ``"auto"``)."""
    if tools is None:
        return ToolConfig()
    if isinstance(tools, str | bytes | Mapping) or not isinstance(tools, Sequence):
        raise BadRequestError("must be a list of tools", param=param)
    if len(tools) > MAX_TOOLS:
        raise BadRequestError(f"at most {MAX_TOOLS} tools, got {len(tools)}", param=param)
    builtins: list[str] = []
    toolsets: list[Toolset] = []
    external: list[ToolSpec] = []
    for index, item in enumerate(tools):
        where = f"{param}[{index}]"
        if isinstance(item, Toolset):
            toolsets.append(item)
        elif isinstance(item, str) or (isinstance(item, Mapping) and item.get("type") != "function"):
            builtins.append(_builtin(where, item))
        elif isinstance(item, Mapping):
            external.append(_function(where, item))
        elif callable(item):
            toolsets.append(_wrap(where, item))
        else:
            raise BadRequestError(f"unsupported tool {type(item).__name__!r}: {_FORMS}", param=where)
    return ToolConfig(tuple(dict.fromkeys(builtins)), tuple(toolsets), tuple(external))


def parse_legacy_functions(functions: Any) -> ToolConfig:
    """OpenAI's deprecated ``functions`` list, as the caller's own function tools."""
    if isinstance(functions, str | bytes | Mapping) or not isinstance(functions, Sequence):
        raise BadRequestError("must be a list of function definitions", param="functions")
    external = tuple(_definition(f"functions[{i}]", f) for i, f in enumerate(functions))
    return ToolConfig(external=external)


def apply_allowed_tools(config: ToolConfig, value: Mapping[str, Any]) -> ToolConfig:
    """OpenAI's ``{"type": "allowed_tools", "allowed_tools": {"mode", "tools"}}`` choice: only the named
    built-ins and function tools are offered, with ``mode`` ("auto" or "required") as the choice."""
    where = "tool_choice.allowed_tools"
    allowed = value.get("allowed_tools")
    if set(value) != {"type", "allowed_tools"} or not isinstance(allowed, Mapping):
        raise BadRequestError('must be {"type": "allowed_tools", "allowed_tools": {"mode", "tools"}}', param=where)
    mode, tools = allowed.get("mode"), allowed.get("tools")
    if mode not in ("auto", "required"):
        raise BadRequestError(f'must be "auto" or "required", got {mode!r}', param=f"{where}.mode")
    if not isinstance(tools, list) or not tools:
        raise BadRequestError("must be a non-empty list of tools", param=f"{where}.tools")
    names = {_allowed_name(f"{where}.tools[{i}]", tool) for i, tool in enumerate(tools)}
    return replace(config, builtins=tuple(b for b in config.builtins if b in names),
                   external=tuple(t for t in config.external if t.name in names), choice=mode)


def _allowed_name(where: str, tool: Any) -> str:
    if isinstance(tool, Mapping) and tool.get("type") == "function":
        function = tool.get("function")
        name = function.get("name") if isinstance(function, Mapping) else tool.get("name")
    else:
        name = tool.get("type") if isinstance(tool, Mapping) else tool
    if not isinstance(name, str) or not name:
        raise BadRequestError('must be {"type": "function", "function": {"name": ...}} or a built-in', param=where)
    return name


def parse_tool_choice(value: Any) -> str:
    """``tool_choice`` as ``"auto"``, ``"none"``, ``"required"`` or the name of one tool."""
    if value is None:
        return "auto"
    if isinstance(value, str):
        if value in TOOL_CHOICES:
            return value
        raise BadRequestError(f'must be "auto", "none", "required" or {_NAMED}, got {value!r}', param="tool_choice")
    if not isinstance(value, Mapping) or value.get("type") != "function" or set(value) - {"type", "function"}:
        raise BadRequestError(f'must be "auto", "none", "required" or {_NAMED}', param="tool_choice")
    function = value.get("function")
    name = function.get("name") if isinstance(function, Mapping) else None
    if not isinstance(name, str) or not name:
        raise BadRequestError("must name the tool: {\"name\": \"...\"}", param="tool_choice.function")
    return name


_FORMS = ('use a built-in name ("web_search", "image_search", "local_search"), an OpenAI function tool '
          '{"type": "function", "function": {...}}, a Python function or a tools.Toolset')
_NAMED = '{"type": "function", "function": {"name": "..."}}'


def _builtin(where: str, item: Any) -> str:
    if isinstance(item, Mapping):
        if set(item) != {"type"}:
            raise BadRequestError(f"unsupported tool: {_FORMS}", param=where)
        item = item["type"]
        where = f"{where}.type"
    if item in PLANNED_BUILTINS:
        raise BadRequestError(f"{item!r} is not available yet (the safe page fetcher is not built)", param=where)
    if item not in BUILTIN_TOOLS:
        raise BadRequestError(f"unknown built-in tool {item!r}; the built-ins are {', '.join(BUILTIN_TOOLS)}",
                              param=where)
    return str(item)


def _function(where: str, item: Mapping[str, Any]) -> ToolSpec:
    if set(item) - {"type", "function"}:
        extra = sorted(set(item) - {"type", "function"})
        raise BadRequestError(f"unknown field {extra[0]!r}", param=f"{where}.{extra[0]}")
    return _definition(f"{where}.function", item.get("function"))


def _definition(where: str, function: Any) -> ToolSpec:
    """An OpenAI function definition (``{"name", "description", "parameters", "strict"}``) at ``where``."""
    if not isinstance(function, Mapping):
        raise BadRequestError('must be an object: {"name", "description", "parameters"}', param=where)
    unknown = sorted(set(function) - _FUNCTION_KEYS)
    if unknown:
        raise BadRequestError(f"unknown field {unknown[0]!r}", param=f"{where}.{unknown[0]}")
    name = function.get("name")
    if not isinstance(name, str) or not TOOL_NAME_PATTERN.match(name):
        raise BadRequestError("must be 1-64 of a-z, A-Z, 0-9, _ and -", param=f"{where}.name")
    description = function.get("description")
    if description is not None and not isinstance(description, str):
        raise BadRequestError("must be a string", param=f"{where}.description")
    strict = function.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise BadRequestError("must be true or false", param=f"{where}.strict")
    return ToolSpec(name, description or "", _parameters(f"{where}.parameters", function.get("parameters")),
                    strict=strict)


def _parameters(where: str, parameters: Any) -> dict[str, Any]:
    if parameters is None:
        return dict(_EMPTY_PARAMETERS)
    if not isinstance(parameters, Mapping):
        raise BadRequestError("must be a JSON schema object", param=where)
    try:
        compile_schema(dict(parameters))
    except SchemaError as exc:
        first = exc.errors[0] if exc.errors else {"path": "", "message": str(exc)}
        raise BadRequestError(f"not a usable JSON schema: {first['path'] or '(root)'}: {first['message']}",
                              param=where) from None
    return dict(parameters)


def _wrap(where: str, fn: Any) -> Toolset:
    try:
        return FunctionTool(fn)
    except ToolDefinitionError as exc:
        raise BadRequestError(str(exc), param=where) from None
