"""The root of studiolm-agent's one exception tree, and every error the ``tools`` package raises.

Every error of the distribution derives from :class:`StudiolmError`, defined here because ``tools``
is the lowest layer; ``graphs`` (:mod:`graphs.errors`) and ``agent`` add their own branches, and
``agent`` re-exports the whole tree (drawn in full in :mod:`agent._exceptions`). The tools branches::

    StudiolmError                       root: .message, and the HTTP envelope's .error_type, .code, .param
    ├── UsageError                      the caller's mistake; nothing was sent anywhere
    │   ├── BadRequestError             a parameter is missing, mistyped or out of range (.param)
    │   └── ToolsUsageError             a tools-layer usage error (bad query, bad path, missing extra)
    │       ├── FetchBlockedError       a URL the page fetcher will not connect to: not http(s), or a
    │       │                           non-public address, directly or after a redirect (.url, .reason)
    │       ├── ToolDefinitionError     a Python function cannot be made into a tool (.tool)
    │       ├── UnsupportedSearchError  the backend cannot do this kind of search (.backend, .kind)
    │       ├── CorpusNotFoundError     the offline corpus package is not installed (.package)
    │       └── SchemaError             a JSON schema cannot be used (.errors: JSON Pointer + message)
    │           ├── InvalidSchemaError      it breaks its metaschema, or a local $ref points nowhere
    │           └── UnsupportedSchemaError  valid, but refused: remote $ref, too large, too deep, unknown dialect
    │               └── SchemaBudgetError   checking or using it would cost more than a budget (.budget, .limit)
    └── APIError                        a run-time failure while serving a request
        ├── SearchError                 a search failed at run time (.backend, .query)
        │   ├── SearchUnavailableError  the backend cannot be reached (network down, circuit open)
        │   └── SearchRateLimitedError  the backend is rate limiting us (.retry_after)
        ├── ToolArgumentsError          a model's arguments for a tool call are invalid (.tool, .errors)
        ├── McpError                    an MCP server answered a request with an error (.server, .rpc_code)
        │   └── McpConnectionError      it cannot be started or reached, or went away (.stderr)
        └── FetchError                  a page fetch failed at run time: timeout, too large, not a text
                                        page, too many redirects, HTTP error (.url, .reason, .status)

:class:`ToolsError` is a marker base of every error raised *by this package* (``except
tools.ToolsError``); it sits beside the tree's branches, never instead of them.

Exceptions carry their data as attributes and never log.
"""

from __future__ import annotations

__all__ = [
    "APIError",
    "BadRequestError",
    "CorpusNotFoundError",
    "FetchBlockedError",
    "FetchError",
    "InvalidSchemaError",
    "McpConnectionError",
    "McpError",
    "SchemaBudgetError",
    "SchemaError",
    "SearchError",
    "SearchRateLimitedError",
    "SearchUnavailableError",
    "StudiolmError",
    "ToolArgumentsError",
    "ToolDefinitionError",
    "ToolsError",
    "ToolsUsageError",
    "UnsupportedSchemaError",
    "UnsupportedSearchError",
    "UsageError",
]


class StudiolmError(Exception):
    """Base class of every error raised by studiolm-agent.

    ``error_type``, ``code`` and ``param`` are what the HTTP edge puts into OpenAI's error envelope.
    """

    error_type: str = "api_error"
    code: str | None = None
    param: str | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(StudiolmError):
    """The caller's mistake: the request cannot be served as written."""

    error_type = "invalid_request_error"


class BadRequestError(UsageError, ValueError):
    """A request parameter is missing, of the wrong type or out of range."""

    code = "invalid_parameter"

    def __init__(self, message: str, *, param: str | None) -> None:
        super().__init__(f"{param}: {message}" if param else message)
        self.param = param


class APIError(StudiolmError):
    """A run-time failure while serving a request."""


class ToolsError(StudiolmError):
    """Marker base of every error raised by ``tools`` (usage errors and run-time failures alike)."""


class ToolsUsageError(ToolsError, UsageError, ValueError):
    """The caller's mistake, found by the tools layer."""

    code = "invalid_tool_usage"


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


class SearchError(ToolsError, APIError):
    """A search failed while running."""

    code = "search_failed"

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


class ToolArgumentsError(ToolsError, APIError):
    """The arguments a model wrote for ``tool`` do not fit its parameters.

    ``errors`` lists ``{"path": <JSON Pointer into the arguments>, "message"}``; the message is
    written for the model, which gets it back as the tool's result.
    """

    def __init__(self, message: str, *, tool: str, errors: list[dict[str, str]]) -> None:
        super().__init__(message)
        self.tool = tool
        self.errors = errors


class McpError(ToolsError, APIError):
    """An MCP server failed a request: a JSON-RPC error (``rpc_code``), or a result the ``mcp`` SDK
    rejected (``rpc_code`` None). ``server`` is the toolset's name. A tool's own failure (an ``isError``
    result) is a result, not this. (``code`` is the error envelope's string code, as on every error.)"""

    code = "mcp_failed"

    def __init__(self, message: str, *, server: str, rpc_code: int | None) -> None:
        super().__init__(message)
        self.server = server
        self.rpc_code = rpc_code


class McpConnectionError(McpError):
    """An MCP server cannot be started or reached, or the connection was lost; ``stderr`` is the end of
    what a stdio server wrote there (``""`` for HTTP servers, or when it wrote nothing)."""

    def __init__(self, message: str, *, server: str, stderr: str = "") -> None:
        super().__init__(message, server=server, rpc_code=None)
        self.stderr = stderr


class FetchBlockedError(ToolsUsageError):
    """The page fetcher refused a URL before connecting to it: a scheme other than http/https,
    credentials in the URL, or a host (of the URL or of a redirect target) that is or resolves to a
    non-public address. ``url`` is the URL given to ``fetch``; ``reason`` says what was refused and why."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"refused to fetch {url}: {reason}")
        self.url = url
        self.reason = reason


class FetchError(ToolsError, APIError):
    """A page fetch failed at run time: a timeout, a body over the size limits, a content type that is
    not a text page, too many redirects, an HTTP error status or a network failure. ``url`` is the URL
    given to ``fetch``, ``reason`` says what went wrong, ``status`` is the HTTP status when the failure
    is the server's answer (else None)."""

    code = "fetch_failed"

    def __init__(self, url: str, reason: str, *, status: int | None = None) -> None:
        super().__init__(f"could not fetch {url}: {reason}")
        self.url = url
        self.reason = reason
        self.status = status


class SchemaBudgetError(UnsupportedSchemaError):
    """Checking or using the schema would cost more than a budget allows (see ``tools._schema_budget``).

    ``budget`` names the budget (``"expanded subschemas"``, ``"schema nodes"``, ``"validation time"``…),
    ``limit`` is its value; ``errors`` holds the JSON Pointer into the schema where it was exceeded.
    """

    def __init__(self, message: str, *, budget: str, limit: float, errors: list[dict[str, str]]) -> None:
        super().__init__(message, errors=errors)
        self.budget = budget
        self.limit = limit
