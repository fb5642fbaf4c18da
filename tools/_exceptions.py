"""Every error the ``tools`` package raises.

::

    ToolsError
    ├── ToolsUsageError                 the caller's mistake (bad query, bad path, missing extra)
    │   ├── ToolDefinitionError         a Python function cannot be made into a tool (.tool)
    │   ├── UnsupportedSearchError      the backend cannot do this kind of search (.backend, .kind)
    │   ├── CorpusNotFoundError         the offline corpus package is not installed (.package)
    │   └── SchemaError                 a JSON schema cannot be used (.errors: JSON Pointer + message)
    │       ├── InvalidSchemaError      it breaks its metaschema, or a local $ref points nowhere
    │       └── UnsupportedSchemaError  valid, but refused: remote $ref, too large, too deep, unknown dialect
    │           └── SchemaBudgetError   checking or using it would cost more than a budget allows (.budget, .limit)
    ├── SearchError                     a search failed at run time (.backend, .query)
    │   ├── SearchUnavailableError      the backend cannot be reached (network down, circuit open)
    │   └── SearchRateLimitedError      the backend is rate limiting us (.retry_after)
    ├── ToolArgumentsError              a model's arguments for a tool call are invalid (.tool, .errors)
    └── McpError                        an MCP server answered a request with an error (.server, .code)
        └── McpConnectionError          it cannot be started or reached, or went away (.stderr)

Exceptions carry their data as attributes and never log.
"""

from __future__ import annotations

__all__ = [
    "CorpusNotFoundError",
    "InvalidSchemaError",
    "McpConnectionError",
    "McpError",
    "SchemaBudgetError",
    "SchemaError",
    "SearchError",
    "SearchRateLimitedError",
    "SearchUnavailableError",
    "ToolArgumentsError",
    "ToolDefinitionError",
    "ToolsError",
    "ToolsUsageError",
    "UnsupportedSchemaError",
    "UnsupportedSearchError",
]


class ToolsError(Exception):
    """Base class of every error raised by ``tools``."""


class ToolsUsageError(ToolsError, ValueError):
    """The caller's mistake."""


class UnsupportedSearchError(ToolsUsageError):
    """``backend`` cannot run a ``kind`` search (e.g. images on a text-only index)."""

    def __init__(self, backend: str, kind: str) -> None:
        super().__init__(f"search backend {backend!r} does not support {kind} search")
        self.backend = backend
        self.kind = kind


class CorpusNotFoundError(ToolsUsageError):
    """The offline corpus package is not installed."""

    def __init__(self, package: str, hint: str) -> None:
        super().__init__(f"offline corpus package {package!r} is not installed; {hint}")
        self.package = package


class SearchError(ToolsError):
    """A search failed while running."""

    def __init__(self, message: str, *, backend: str, query: str) -> None:
        super().__init__(message)
        self.backend = backend
        self.query = query


class SearchUnavailableError(SearchError):
    """The backend cannot be reached right now (network down, DNS failure, circuit open)."""


class SearchRateLimitedError(SearchError):
    """The backend is rate limiting us; ``retry_after`` is the suggested wait in seconds."""

    def __init__(self, message: str, *, backend: str, query: str, retry_after: float | None = None) -> None:
        super().__init__(message, backend=backend, query=query)
        self.retry_after = retry_after


class SchemaError(ToolsUsageError):
    """A JSON schema cannot be used; ``errors`` lists ``{"path": <JSON Pointer into the schema>, "message"}``."""

    def __init__(self, message: str, *, errors: list[dict[str, str]]) -> None:
        super().__init__(message)
        self.errors = errors


class InvalidSchemaError(SchemaError):
    """The schema is not valid against its metaschema (or a local ``$ref`` points nowhere)."""


class UnsupportedSchemaError(SchemaError):
    """The schema is valid but refused: remote ``$ref``, over the size or nesting bounds, unknown dialect."""


class ToolDefinitionError(ToolsUsageError):
    """A Python function cannot be made into a tool (``tool`` names it): a bad name, ``*args``…"""

    def __init__(self, message: str, *, tool: str) -> None:
        super().__init__(f"tool {tool!r}: {message}")
        self.tool = tool


class ToolArgumentsError(ToolsError):
    """The arguments a model wrote for ``tool`` do not fit its parameters.

    ``errors`` lists ``{"path": <JSON Pointer into the arguments>, "message"}``; the message is
    written for the model, which gets it back as the tool's result.
    """

    def __init__(self, message: str, *, tool: str, errors: list[dict[str, str]]) -> None:
        super().__init__(message)
        self.tool = tool
        self.errors = errors


class McpError(ToolsError):
    """An MCP server failed a request: a JSON-RPC error (``code``), or a result the ``mcp`` SDK rejected
    (``code`` None). ``server`` is the toolset's name. A tool's own failure (an ``isError`` result) is a
    result, not this."""

    def __init__(self, message: str, *, server: str, code: int | None) -> None:
        super().__init__(message)
        self.server = server
        self.code = code


class McpConnectionError(McpError):
    """An MCP server cannot be started or reached, or the connection was lost; ``stderr`` is the end of
    what a stdio server wrote there (``""`` for HTTP servers, or when it wrote nothing)."""

    def __init__(self, message: str, *, server: str, stderr: str = "") -> None:
        super().__init__(message, server=server, code=None)
        self.stderr = stderr


class SchemaBudgetError(UnsupportedSchemaError):
    """Checking or using the schema would cost more than a budget allows (see ``tools._schema_budget``).

    ``budget`` names the budget (``"expanded subschemas"``, ``"schema nodes"``, ``"validation time"``…),
    ``limit`` is its value; ``errors`` holds the JSON Pointer into the schema where it was exceeded.
    """

    def __init__(self, message: str, *, budget: str, limit: float, errors: list[dict[str, str]]) -> None:
        super().__init__(message, errors=errors)
        self.budget = budget
        self.limit = limit
