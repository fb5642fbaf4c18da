"""The errors ``graphs`` raises: the model protocol's and the chat graph's branches of the one tree.

The root and the tools branches are in :mod:`tools` (the lowest layer); the whole tree is drawn in
:mod:`agent._exceptions`. The branches defined here::

    StudiolmError (tools)
    ├── UsageError (tools)
    │   └── NotFoundError              unknown model id (.model, .available)
    └── APIError (tools)
        ├── ModelError                 a model backend failed to load or generate
        ├── OutputValidationError      JSON-mode output never validated (.attempts)
        ├── GraphLimitError            the graph hit a step budget (.limit)
        └── ToolsetError               a toolset failed outside a tool call, e.g. listing its tools (.toolset)

Exceptions carry their data as attributes and never log.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tools import APIError, UsageError

__all__ = ["GraphLimitError", "ModelError", "NotFoundError", "OutputValidationError", "ToolsetError"]


class NotFoundError(UsageError, LookupError):
    """The requested model does not exist; ``available`` lists the ones that do."""

    code = "model_not_found"

    def __init__(self, model: str, available: Sequence[str]) -> None:
        listed = ", ".join(available) if available else "(none)"
        super().__init__(f"model {model!r} does not exist; available models: {listed}")
        self.model = model
        self.available = list(available)
        self.param = "model"


class ModelError(APIError):
    """A model backend could not be loaded or failed while generating."""

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
