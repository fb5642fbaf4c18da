"""Every error the ``agent`` package raises.

The tree separates the caller's mistakes (raised before any model call, fix the request) from
run-time failures (upstream model, validation, graph limits)::

    StudiolmError
    ├── UsageError                     the caller's mistake; nothing was sent anywhere
    │   ├── BadRequestError            a parameter is missing, mistyped or out of range (.param)
    │   └── NotFoundError              unknown model id (.model, .available)
    ├── ServerRefusal                  the HTTP server itself refused (auth, size, overload) (.status_code)
    └── APIError                       something failed while serving the request
        ├── APIConnectionError         could not reach the upstream model server (.attempts)
        │   └── APITimeoutError        the upstream did not answer in time
        ├── APIStatusError             the upstream answered with an error status (.status_code, .body)
        │   ├── UpstreamBadRequestError    400/422: upstream rejected a parameter (.param)
        │   ├── AuthenticationError        401/403: the upstream refused the API key
        │   ├── UpstreamNotFoundError      404: the upstream does not know the model/route
        │   ├── RateLimitError             429 after all retries (.retry_after)
        │   └── InternalServerError        5xx after all retries
        ├── ModelError                 a local model failed to load or generate
        │   └── ModelIntegrityError    a model file's sha256 is not the pinned one (.path, .expected, .actual)
        ├── OutputValidationError      JSON-mode output never validated (.attempts)
        ├── GraphLimitError            the graph hit its step budget (.limit)
        └── ToolsetError               a toolset failed outside a tool call, e.g. listing its tools (.toolset)

Exceptions carry their data as attributes and never log. ``error_type`` and ``code`` are the values
the HTTP edge puts into the OpenAI error envelope.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "GraphLimitError",
    "InternalServerError",
    "ModelError",
    "ModelIntegrityError",
    "NotFoundError",
    "OutputValidationError",
    "RateLimitError",
    "ServerRefusal",
    "StudiolmError",
    "ToolsetError",
    "UpstreamBadRequestError",
    "UpstreamNotFoundError",
    "UsageError",
]


class StudiolmError(Exception):
    """Base class of every error raised by studiolm-agent."""

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


class NotFoundError(UsageError, LookupError):
    """The requested model does not exist; ``available`` lists the ones that do."""

    code = "model_not_found"

    def __init__(self, model: str, available: Sequence[str]) -> None:
        listed = ", ".join(available) if available else "(none)"
        super().__init__(f"model {model!r} does not exist; available models: {listed}")
        self.model = model
        self.available = list(available)
        self.param = "model"


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


class APIError(StudiolmError):
    """A run-time failure while serving a request."""


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


class ModelError(APIError):
    """A local model could not be loaded or failed while generating."""

    code = "model_error"


class OutputValidationError(APIError):
    """JSON-mode output never validated; ``attempts`` holds every raw output and its errors."""

    error_type = "invalid_output_error"
    code = "output_validation_failed"

    def __init__(self, message: str, *, attempts: Sequence[Any]) -> None:
        super().__init__(message)
        self.attempts = list(attempts)


class GraphLimitError(APIError):
    """The chat graph used up its step budget without finishing."""

    code = "step_limit_exceeded"

    def __init__(self, message: str, *, limit: int) -> None:
        super().__init__(message)
        self.limit = limit


class ToolsetError(APIError):
    """A toolset failed outside a tool call (listing its tools: an MCP server that is down).

    A failing *call* never raises: it becomes an error result the model reads.
    """

    code = "toolset_failed"

    def __init__(self, message: str, *, toolset: str) -> None:
        super().__init__(message)
        self.toolset = toolset


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
