"""The studiolm API over HTTP (``studiolm serve``): app, SSE, auth, limits and the OpenAPI document.

:func:`create_app` and :func:`serve` need the ``server`` extra (Starlette and uvicorn), so they are
loaded on first use: ``import agent`` works on the SDK-only install, and a missing extra is reported
when the server is asked for, naming the extra to install.
"""

import importlib
from typing import TYPE_CHECKING, Any

from agent.server._limits import ServerLimits, limits_from_env

if TYPE_CHECKING:
    from agent.server._app import create_app, serve

__all__ = ["ServerLimits", "create_app", "limits_from_env", "serve"]


def __getattr__(name: str) -> Any:
    if name in ("create_app", "serve"):
        try:
            module = importlib.import_module("agent.server._app")
        except ModuleNotFoundError as exc:
            raise ImportError(f"the HTTP server needs the 'server' extra (missing {exc.name!r}): "
                              "pip install 'studiolm-agent[server]'") from exc
        return getattr(module, name)
    raise AttributeError(f"module 'agent.server' has no attribute {name!r}")
