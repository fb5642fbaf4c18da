"""studiolm-agent: the studiolm chat-completions API for any chat model.

``import agent as studiolm`` makes the studiolm documentation samples run as written::

    client = studiolm.Client()          # embedded default: Qwen2.5-Coder-0.5B + offline Wikipedia index
    response = client.chat.completions.create(
        model="qwen2.5-coder-0.5b-instruct",
        messages=[{"role": "user", "content": "Who directed 2001: A Space Odyssey?"}],
        web_search="force",
    )
    print(response["choices"][0]["message"]["content"], response["citations"])
"""

import importlib
from typing import TYPE_CHECKING, Any

from agent._exceptions import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    GraphLimitError,
    InternalServerError,
    ModelError,
    ModelIntegrityError,
    NotFoundError,
    OutputValidationError,
    RateLimitError,
    ServerRefusal,
    StudiolmError,
    ToolsetError,
    UpstreamBadRequestError,
    UpstreamNotFoundError,
    UsageError,
)
from agent._limits import ServerLimits
from agent._llama_backend import DEFAULT_LOCAL_MODEL, LlamaBackend
from agent._models import (
    Capabilities,
    Message,
    ModelBackend,
    ModelEvent,
    ModelRequest,
    ModelResult,
    SamplingParams,
    TextDelta,
    ToolCall,
    ToolSpec,
    Usage,
)
from agent._openai_backend import OpenAICompatibleBackend
from agent._scripted import ScriptedCall, ScriptedModel, ScriptedReply
from agent._types import ChatCompletion, ChatCompletionChunk, ModelList, WireObject

if TYPE_CHECKING:
    from agent._client import AsyncClient, AsyncStream, Client, Stream
    from agent._server import create_app, serve

# The clients run the graphs, and the graphs use this package's model interface. Loading the
# clients on first access lets `import graphs` work before (or without) `import agent`; the server
# also needs the optional `server` extra (starlette, uvicorn), so it loads only when asked for.
_LAZY = {"AsyncClient": "_client", "AsyncStream": "_client", "Client": "_client", "Stream": "_client",
         "create_app": "_server", "serve": "_server"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f"agent.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'agent' has no attribute {name!r}")

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncClient",
    "AsyncStream",
    "AuthenticationError",
    "BadRequestError",
    "Capabilities",
    "ChatCompletion",
    "ChatCompletionChunk",
    "Client",
    "DEFAULT_LOCAL_MODEL",
    "GraphLimitError",
    "InternalServerError",
    "LlamaBackend",
    "Message",
    "ModelBackend",
    "ModelError",
    "ModelEvent",
    "ModelIntegrityError",
    "ModelList",
    "ModelRequest",
    "ModelResult",
    "NotFoundError",
    "OpenAICompatibleBackend",
    "OutputValidationError",
    "RateLimitError",
    "SamplingParams",
    "ScriptedCall",
    "ScriptedModel",
    "ScriptedReply",
    "ServerLimits",
    "ServerRefusal",
    "Stream",
    "StudiolmError",
    "TextDelta",
    "ToolCall",
    "ToolSpec",
    "ToolsetError",
    "UpstreamBadRequestError",
    "UpstreamNotFoundError",
    "Usage",
    "UsageError",
    "WireObject",
    "create_app",
    "serve",
]
