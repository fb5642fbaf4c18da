"""The tools of one chat request: built-ins by name, toolsets the graph runs, the caller's function tools.

Three kinds of tool can be offered to the model in one request, all under one namespace:

* **built-ins** (``web_search``, ``image_search``, ``local_search``): run inside the graph by its
  search nodes; their results get the stable ``[n]`` numbers and end up in ``citations``.
  ``web_search="auto"`` offers ``web_search`` too.
* **toolsets** (:class:`tools.Toolset`: Python functions, MCP servers…): run inside the graph.
* **external** function tools (OpenAI's ``{"type": "function", ...}``) the caller declared but we
  cannot run: a call of one ends the run with ``finish_reason="tool_calls"`` and goes back to the
  caller, who answers with ``tool`` messages in the next request.

:func:`bind_tools` lists every toolset once, before the model runs, and checks that names are
unique and that a forced ``tool_choice`` names one of the offered tools.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from graphs._prompts import SEARCH_QUERY_SCHEMA, WEB_SEARCH_TOOL
from graphs.errors import ToolsetError
from graphs.model import ToolSpec
from tools import TOOL_NAME_PATTERN, BadRequestError, ToolDefinition, Toolset

__all__ = [
    "BUILTIN_TOOLS",
    "IMAGE_SEARCH_TOOL",
    "LOCAL_SEARCH_TOOL",
    "PLANNED_BUILTINS",
    "SEARCH_BUILTINS",
    "TOOL_CHOICES",
    "BoundTool",
    "ToolConfig",
    "bind_tools",
]

#: Built-in tools a request can name.
BUILTIN_TOOLS = ("web_search", "image_search", "local_search")
#: Built-ins that search text; their results share the ``[n]`` numbering and the search budget.
SEARCH_BUILTINS = ("web_search", "local_search")
#: Names reserved for built-ins that do not exist yet (the SSRF-safe page fetcher).
PLANNED_BUILTINS = ("fetch_url",)
#: ``tool_choice`` values besides the name of one tool.
TOOL_CHOICES = ("auto", "none", "required")

IMAGE_SEARCH_TOOL = ToolSpec(
    name="image_search",
    description="Search the web for images. Results come back numbered, with their URLs; they are shown to "
    "the user with the answer.",
    parameters=SEARCH_QUERY_SCHEMA,
)
LOCAL_SEARCH_TOOL = ToolSpec(
    name="local_search",
    description="Search the local document index (offline). Results come back numbered; cite them like [1].",
    parameters=SEARCH_QUERY_SCHEMA,
)
_BUILTIN_SPECS = {"web_search": WEB_SEARCH_TOOL, "image_search": IMAGE_SEARCH_TOOL, "local_search": LOCAL_SEARCH_TOOL}


@dataclass(frozen=True, slots=True)
class BoundTool:
    """A toolset's tool, ready to offer: its spec, the toolset that runs it, its own timeout if any."""

    spec: ToolSpec
    toolset: Toolset
    timeout: float | None = None


@dataclass(frozen=True, slots=True)
class ToolConfig:
    """The tools of one request and its ``tool_choice`` (``"auto"``, ``"none"``, ``"required"`` or a name).

    ``toolsets`` are listed by :func:`bind_tools` into ``bound``; until then ``bound`` is empty.
    """

    builtins: tuple[str, ...] = ()
    toolsets: tuple[Toolset, ...] = ()
    external: tuple[ToolSpec, ...] = ()
    choice: str = "auto"
    bound: tuple[BoundTool, ...] = field(default=())

    def merged(self, extra: ToolConfig) -> ToolConfig:
        """This config with ``extra``'s tools added (``extra``'s choice wins unless it is the default)."""
        builtins = (*self.builtins, *(b for b in extra.builtins if b not in self.builtins))
        choice = extra.choice if extra.choice != "auto" else self.choice
        return ToolConfig(builtins, (*self.toolsets, *extra.toolsets), (*self.external, *extra.external), choice)

    def specs(self, *, web_search: bool) -> tuple[ToolSpec, ...]:
        """Every tool's spec, built-ins first (``web_search`` when the request's mode offers it)."""
        names = [b for b in BUILTIN_TOOLS if b in self.builtins or (b == "web_search" and web_search)]
        return (*(_BUILTIN_SPECS[n] for n in names), *(t.spec for t in self.bound), *self.external)

    def find(self, name: str) -> BoundTool | None:
        """The bound tool called ``name``, if one is."""
        return next((t for t in self.bound if t.spec.name == name), None)

    def is_external(self, name: str) -> bool:
        """Whether ``name`` is one of the caller's own tools (its calls go back to the caller)."""
        return any(spec.name == name for spec in self.external)


async def bind_tools(config: ToolConfig, *, web_search: bool) -> ToolConfig:
    """List every toolset concurrently and check the whole set of tools.

    Raises :class:`BadRequestError` for a duplicate or malformed name (``param="tools"``) and for a
    forced ``tool_choice`` that names no offered tool or has nothing to force (``param="tool_choice"``);
    :class:`ToolsetError` when a toolset cannot list its tools.
    """
    listed = await asyncio.gather(*(_list(toolset) for toolset in config.toolsets))
    bound = tuple(
        BoundTool(ToolSpec(d.name, d.description, d.parameters), toolset, d.timeout)
        for toolset, definitions in zip(config.toolsets, listed, strict=True)
        for d in definitions
    )
    config = replace(config, bound=bound)
    names = [spec.name for spec in config.specs(web_search=web_search)]
    _check_names(names, config)
    _check_choice(config.choice, names)
    return config


async def _list(toolset: Toolset) -> Sequence[ToolDefinition]:
    try:
        return await toolset.list_tools()
    except Exception as exc:
        name = getattr(toolset, "name", type(toolset).__name__)
        raise ToolsetError(f"toolset {name!r} could not list its tools: {type(exc).__name__}: {exc}",
                           toolset=name) from exc


def _check_names(names: list[str], config: ToolConfig) -> None:
    for tool in config.bound:
        if not TOOL_NAME_PATTERN.match(tool.spec.name):
            raise BadRequestError(f"toolset {tool.toolset.name!r} offers a tool named {tool.spec.name!r}; "
                                  "names are 1-64 of a-z, A-Z, 0-9, _ and -", param="tools")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            where = " (web_search is already offered by web_search=\"auto\")" if name == "web_search" else ""
            raise BadRequestError(f"two tools are named {name!r}{where}; tool names must be unique", param="tools")
        seen.add(name)


def _check_choice(choice: str, names: list[str]) -> None:
    if choice in ("auto", "none"):
        return
    if not names:
        raise BadRequestError(f"{choice!r} needs tools to choose from, and the request has none",
                              param="tool_choice")
    if choice != "required" and choice not in names:
        raise BadRequestError(f"names no tool of this request: {choice!r} (tools: {', '.join(names)})",
                              param="tool_choice")

