"""The whole exception tree of studiolm-agent, re-exported from one place.

One root, :class:`StudiolmError`, defined in the lowest layer (``tools``); ``graphs`` and this package
add their branches. Usage errors (the caller's mistake, raised before anything is sent anywhere)
stand apart from run-time failures (upstream model, search, validation, limits)::

    StudiolmError                          .message; envelope values .error_type, .code, .param
    ├── UsageError                         the caller's mistake; nothing was sent anywhere
    │   ├── BadRequestError                a parameter is missing, mistyped or out of range (.param)   tools
    │   ├── NotFoundError                  unknown model id (.model, .available)                       graphs
    │   └── ToolsUsageError                a tools-layer usage error                                   tools
    │       ├── FetchBlockedError          a URL the page fetcher refuses (.url, .reason)
    │       ├── ToolDefinitionError        a Python function cannot be made into a tool (.tool)
    │       ├── UnsupportedSearchError     the backend cannot do this kind of search (.backend, .kind)
    │       ├── CorpusNotFoundError        the offline corpus package is not installed (.package)
    │       └── SchemaError                a JSON schema cannot be used (.errors)
    │           ├── InvalidSchemaError     it breaks its metaschema, or a local $ref points nowhere
    │           └── UnsupportedSchemaError valid, but refused (remote $ref, unknown dialect)
    │               └── SchemaBudgetError  checking or using it costs more than a budget (.budget, .limit)
    ├── ServerRefusal                      the HTTP server itself refused (auth, size, overload) (.status_code)  agent
    └── APIError                           a run-time failure while serving the request                tools
        ├── APIConnectionError             could not reach the upstream model server (.attempts)       agent
        │   └── APITimeoutError            the upstream did not answer in time
        ├── APIStatusError                 the upstream answered with an error status (.status_code, .body)
        │   ├── UpstreamBadRequestError    400/422: upstream rejected a parameter (.param)
        │   ├── AuthenticationError        401/403: the upstream refused the API key
        │   ├── UpstreamNotFoundError      404: the upstream does not know the model/route
        │   ├── RateLimitError             429 after all retries (.retry_after)
        │   ├── InternalServerError        5xx after all retries
    │   └── UpstreamTooLargeError      the upstream's answer exceeded a size cap (.limit_name, .limit)
        ├── ModelError                     a model backend failed to load or generate                  graphs
        │   └── ModelIntegrityError        a model file is not the pinned sha256 (.path, .expected, .actual)
        ├── OutputValidationError          JSON-mode output never validated (.attempts)                graphs
        ├── GraphLimitError                the graph hit its step budget (.limit)                      graphs
        ├── ToolsetError                   a toolset failed outside a tool call (.toolset)             graphs
        ├── SearchError                    a search failed at run time (.backend, .query)              tools
        │   ├── SearchUnavailableError     the backend cannot be reached (network down, circuit open)
        │   └── SearchRateLimitedError     the backend is rate limiting us (.retry_after)
        ├── ToolArgumentsError             a model's arguments for a tool call are invalid (.tool, .errors)  tools
        ├── McpError                       an MCP server failed a request (.server, .rpc_code)         tools
        │   └── McpConnectionError         it cannot be started or reached, or went away (.stderr)
        └── FetchError                     a page fetch failed (.url, .reason, .status)

``tools.ToolsError`` is a marker base of every error the ``tools`` package raises, beside the tree.
Exceptions carry their data as attributes and never log.
"""

from __future__ import annotations

from typing import Any

from graphs.errors import GraphLimitError, ModelError, NotFoundError, OutputValidationError, ToolsetError
from tools import (
    APIError,
    BadRequestError,
    CorpusNotFoundError,
    FetchBlockedError,
    FetchError,
    InvalidSchemaError,
    McpConnectionError,
    McpError,
    SchemaBudgetError,
    SchemaError,
    SearchError,
    SearchRateLimitedError,
    SearchUnavailableError,
    StudiolmError,
    ToolArgumentsError,
    ToolDefinitionError,
    ToolsError,
    ToolsUsageError,
    UnsupportedSchemaError,
    UnsupportedSearchError,
    UsageError,
)

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "CorpusNotFoundError",
    "FetchBlockedError",
    "FetchError",
    "GraphLimitError",
    "InternalServerError",
    "InvalidSchemaError",
    "McpConnectionError",
    "McpError",
    "ModelError",
    "ModelIntegrityError",
    "NotFoundError",
    "OutputValidationError",
    "RateLimitError",
    "SchemaBudgetError",
    "SchemaError",
    "SearchError",
    "SearchRateLimitedError",
    "SearchUnavailableError",
    "ServerRefusal",
    "StudiolmError",
    "ToolArgumentsError",
    "ToolDefinitionError",
    "ToolsError",
    "ToolsUsageError",
    "ToolsetError",
    "UnsupportedSchemaError",
    "UnsupportedSearchError",
    "UpstreamBadRequestError",
    "UpstreamNotFoundError",
    "UpstreamTooLargeError",
    "UsageError",
]


class ServerRefusal(StudiolmError):
    """An answer the HTTP server gives on its own: 401, 403, 413, 415, 429, 503, or a generic 500.

    ``status_code`` is the HTTP status; the envelope values are given per instance.
    """

    def __init__(
        self, message: str, *, status_code: int, error_type: str, code: str, param: str | None = None
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error_type = error_type
        self.code = code
        self.param = param


class APIConnectionError(APIError):
    """The upstream model server could not be reached (after ``attempts`` tries)."""

    code = "upstream_unreachable"

    def __init__(self, message: str, *, attempts: int = 1) -> None:
        super().__init__(message)
        self.attempts = attempts


class APITimeoutError(APIConnectionError):
    """The upstream model server did not answer in time."""

    code = "upstream_timeout"


class APIStatusError(APIError):
    """The upstream answered with an error status; ``body`` is what it said."""

    code = "upstream_error"

    def __init__(self, message: str, *, status_code: int, body: Any = None, attempts: int = 1) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body
        self.attempts = attempts


class UpstreamBadRequestError(APIStatusError):
    """The upstream rejected a parameter (``param`` when it named one)."""

    error_type = "invalid_request_error"
    code = "upstream_rejected_parameter"

    def __init__(
        self, message: str, *, status_code: int, body: Any = None, attempts: int = 1, param: str | None = None
    ) -> None:
        super().__init__(message, status_code=status_code, body=body, attempts=attempts)
        self.param = param


class AuthenticationError(APIStatusError):
    """The upstream refused the configured API key."""

    error_type = "authentication_error"
    code = "upstream_auth_failed"


class UpstreamNotFoundError(APIStatusError):
    """The upstream does not know the model or route."""

    code = "upstream_not_found"


class RateLimitError(APIStatusError):
    """The upstream kept answering 429; ``retry_after`` is its last hint in seconds."""

    error_type = "rate_limit_error"
    code = "upstream_rate_limited"

    def __init__(
        self,
        message: str,
        *,
        status_code: int = 429,
        body: Any = None,
        attempts: int = 1,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, body=body, attempts=attempts)
        self.retry_after = retry_after


class InternalServerError(APIStatusError):
    """The upstream kept failing with 5xx."""




class ModelIntegrityError(ModelError):
    """A model file's sha256 is not the pinned one: it is refused, never loaded.

    ``path`` is the checked file, ``expected`` the pinned hex digest, ``actual`` the file's.
    """

    code = "model_integrity_error"

    def __init__(self, message: str, *, path: str, expected: str, actual: str) -> None:
        super().__init__(message)
        self.path = path
        self.expected = expected
        self.actual = actual


class UpstreamTooLargeError(APIStatusError):
    """The upstream's answer exceeded one of our size caps (``limit_name``, ``limit`` in bytes): a
    whole JSON body, one SSE line or event, or a whole stream. Never retried: it would be as large again.
    """

    code = "upstream_too_large"

    def __init__(
        self,
        message: str,
        *,
        limit_name: str,
        limit: int,
        status_code: int = 200,
        body: Any = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message, status_code=status_code, body=body, attempts=attempts)
        self.limit_name = limit_name
        self.limit = limit
