"""Tools the graphs run themselves: the :class:`Toolset` interface, and plain Python functions as tools.

A :class:`Toolset` lists :class:`ToolDefinition` items (name, description, JSON-schema parameters)
and runs calls of them. :class:`FunctionTool` is one typed Python function, sync or async; an MCP
server's tools, or a group of tools behind one connection, plug in through the same interface.

The contract every toolset keeps (the chat graph relies on it):

* :meth:`Toolset.list_tools` is awaited once per request, before the model runs; a toolset may
  cache the answer. Names are unique across everything one request offers (``^[a-zA-Z0-9_-]{1,64}$``,
  as OpenAI requires).
* :meth:`Toolset.call_tool` gets the arguments the model wrote, already parsed from JSON into a
  ``dict`` (but not yet checked against the schema: validation is the toolset's job, so it can use
  its own rules). Invalid arguments raise :class:`ToolArgumentsError` with a message written for the
  model; a tool that fails may raise anything else or return ``ToolOutput(..., is_error=True)``. The
  graph turns both into an error result the model reads, plus a step event; a tool never ends a run.
* Calls of one model turn run concurrently, and each is cancelled after its timeout
  (``ToolDefinition.timeout``, else the run's default), so ``call_tool`` must be safe to cancel.
* :meth:`Toolset.aclose` releases connections and processes; it is idempotent.

:class:`FunctionTool` builds the parameter schema from the signature with pydantic (so
``Annotated[int, Field(ge=0, description=...)]``, defaults, enums, nested models all work),
validates the model's arguments with the same pydantic model before calling, runs a sync function
in a worker thread (``asyncio.to_thread``: a timed-out sync function cannot be interrupted, only
abandoned, so its thread runs on until it returns), and turns the return value into text: ``str`` as
is, anything else as JSON (pydantic's serialiser, ``str()`` for what it cannot encode).
"""

from __future__ import annotations

import abc
import asyncio
import inspect
import re
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pydantic
import pydantic_core

from tools._exceptions import ToolArgumentsError, ToolDefinitionError, ToolsUsageError
from tools._schema import json_pointer

__all__ = ["TOOL_NAME_PATTERN", "FunctionTool", "ToolDefinition", "ToolOutput", "Toolset", "result_text"]

#: Tool names OpenAI accepts (and so every OpenAI-compatible model was trained on).
TOOL_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
# Keys whose values are data, not subschemas: titles inside them are left alone.
_DATA_KEYS = frozenset({"default", "enum", "const", "examples"})
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions"})


@dataclass(frozen=True, slots=True)
class ToolDefinition:
    """A tool as a model sees it; ``timeout`` (seconds) overrides the run's per-call default, and
    ``strict`` is OpenAI's flag asking an upstream model to follow ``parameters`` exactly."""

    name: str
    description: str
    parameters: dict[str, Any]
    timeout: float | None = None
    strict: bool | None = None


@dataclass(frozen=True, slots=True)
class ToolOutput:
    """What one call produced: the text the model reads, and whether it reports a failure."""

    content: str
    is_error: bool = False


class Toolset(abc.ABC):
    """A source of tools the graph runs itself (see the module docstring for the contract)."""

    #: Short name shown in steps and errors.
    name: str = "toolset"

    @abc.abstractmethod
    async def list_tools(self) -> Sequence[ToolDefinition]:
        """The tools this toolset offers."""

    @abc.abstractmethod
    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolOutput:
        """Run tool ``name`` with the model's ``arguments``; :class:`ToolArgumentsError` when they are invalid."""

    async def aclose(self) -> None:
        """Release what the toolset holds (connections, processes). Idempotent."""
        return


class FunctionTool(Toolset):
    """A plain typed Python function (sync or async) as a tool.

    ``name`` defaults to the function's name, ``description`` to its docstring, and the parameters
    schema comes from its signature. ``timeout`` (seconds) overrides the run's per-call default.
    Raises :class:`ToolDefinitionError` when the function cannot be described to a model (a lambda
    without ``name=``, ``*args``/``**kwargs``, a parameter type with no JSON form).
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = None,
    ) -> None:
        tool_name = name or getattr(fn, "__name__", "") or type(fn).__name__
        if not TOOL_NAME_PATTERN.match(tool_name):
            raise ToolDefinitionError("a tool name is 1-64 of a-z, A-Z, 0-9, _ and -; pass name=...", tool=tool_name)
        if timeout is not None and not timeout > 0:
            raise ToolDefinitionError(f"timeout must be a positive number of seconds, got {timeout!r}", tool=tool_name)
        self.fn = fn
        self.name = tool_name
        self._arguments, self._kinds = _arguments_model(fn, tool_name)
        self._is_async = _is_async(fn)
        doc = description if description is not None else inspect.getdoc(fn) or ""
        self.definition = ToolDefinition(tool_name, doc.strip(), _parameters_schema(self._arguments, tool_name),
                                         timeout)

    def __repr__(self) -> str:
        return f"FunctionTool({self.name!r})"

    async def list_tools(self) -> Sequence[ToolDefinition]:
        """The one tool this function is."""
        return (self.definition,)

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolOutput:
        """Validate ``arguments`` against the signature, call the function, return its result as text."""
        if name != self.name:
            raise ToolsUsageError(f"{self!r} has no tool {name!r}")
        args, kwargs = self._bind(arguments)
        if self._is_async:
            value = await self.fn(*args, **kwargs)
        else:
            value = await asyncio.to_thread(self.fn, *args, **kwargs)
        if inspect.isawaitable(value):  # a sync callable that returned a coroutine
            value = await value
        return value if isinstance(value, ToolOutput) else ToolOutput(result_text(value))

    def _bind(self, arguments: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        try:
            validated = self._arguments.model_validate(dict(arguments))
        except pydantic.ValidationError as exc:
            errors = [{"path": json_pointer(e["loc"]), "message": e["msg"]} for e in exc.errors()]
            listed = "; ".join(f"{e['path'] or '(arguments)'}: {e['message']}" for e in errors)
            raise ToolArgumentsError(f"invalid arguments for {self.name}: {listed}", tool=self.name,
                                     errors=errors) from None
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for index, (param, kind) in enumerate(self._kinds):
            value = getattr(validated, f"p{index}")
            if kind is inspect.Parameter.POSITIONAL_ONLY:
                args.append(value)
            else:
                kwargs[param] = value
        return args, kwargs


def result_text(value: Any) -> str:
    """A tool's return value as the text a model reads: strings as they are, anything else as JSON."""
    if isinstance(value, str):
        return value
    return pydantic_core.to_json(value, fallback=str).decode()


# --- signature to pydantic model --------------------------------------------------------------------


def _arguments_model(
    fn: Callable[..., Any], name: str
) -> tuple[type[pydantic.BaseModel], list[tuple[str, Any]]]:
    """A pydantic model of ``fn``'s parameters, and each parameter's name and kind in order.

    Fields are named ``p0``, ``p1``… with the parameter name as alias, so parameter names that
    pydantic reserves (``schema``, ``model_config``, ``_private``) still work.
    """
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise ToolDefinitionError(f"has no inspectable signature ({exc})", tool=name) from None
    hints = _type_hints(fn)
    fields: dict[str, Any] = {}
    kinds: list[tuple[str, Any]] = []
    for index, param in enumerate(signature.parameters.values()):
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            raise ToolDefinitionError(f"*{param.name} cannot be described to a model; name each parameter",
                                      tool=name)
        annotation = hints.get(param.name, param.annotation)
        if annotation is inspect.Parameter.empty or isinstance(annotation, str):
            annotation = Any
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[f"p{index}"] = (annotation, pydantic.Field(default, alias=param.name))
        kinds.append((param.name, param.kind))
    config = pydantic.ConfigDict(extra="forbid", arbitrary_types_allowed=False)
    try:
        model = pydantic.create_model(f"{name}_arguments", __config__=config, **fields)
    except (pydantic.PydanticSchemaGenerationError, pydantic.PydanticUserError, TypeError) as exc:
        raise ToolDefinitionError(f"its parameters have no JSON form: {_first_line(exc)}", tool=name) from None
    return model, kinds


def _type_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    # Resolves string annotations (`from __future__ import annotations`); callable objects and
    # partials keep theirs on __call__ / .func.
    for target in (fn, getattr(fn, "func", None), _call_method(fn)):
        if target is None:
            continue
        try:
            return typing.get_type_hints(target, include_extras=True)
        except Exception:  # unresolvable forward references: try the next place
            continue
    return {}


def _call_method(fn: Callable[..., Any]) -> Any:
    """``__call__`` of a callable object (None for functions, whose ``__call__`` says nothing)."""
    return None if inspect.isroutine(fn) or isinstance(fn, type) else type(fn).__call__


def _is_async(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(_call_method(fn))


def _parameters_schema(model: type[pydantic.BaseModel], name: str) -> dict[str, Any]:
    try:
        schema = model.model_json_schema(by_alias=True)
    except (pydantic.PydanticUserError, pydantic_core.PydanticSerializationError, TypeError, ValueError) as exc:
        raise ToolDefinitionError(f"its parameters have no JSON schema: {_first_line(exc)}", tool=name) from None
    schema = _without_titles(schema)
    schema.setdefault("properties", {})  # OpenAI wants "properties", even when there are none
    return schema  # type: ignore[no-any-return]


def _without_titles(node: Any) -> Any:
    """The schema without pydantic's generated ``title`` keywords (noise in a model's prompt)."""
    if isinstance(node, list):
        return [_without_titles(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title" and isinstance(value, str):
            continue
        if key in _DATA_KEYS:
            out[key] = value
        elif key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: _without_titles(sub) for name, sub in value.items()}
        else:
            out[key] = _without_titles(value)
    return out


def _first_line(exc: Exception) -> str:
    # pydantic's messages go on with paragraphs of advice; the first line says what is wrong.
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


