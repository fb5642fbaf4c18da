"""studiolm-agent: the studiolm chat-completions API for any chat model.

Everything a user touches is importable from here: the clients, the response types, the model
backends, the search backends and toolsets, the budgets, and every error of the one exception tree.
``import agent as studiolm`` makes the studiolm documentation samples run as written::

    client = studiolm.Client()          # embedded default: a local GGUF model + the offline Wikipedia index
    response = client.chat.completions.create(
        model="gemma-3-12b-it-qat",
        messages=[{"role": "user", "content": "Who directed 2001: A Space Odyssey?"}],
        web_search="force",
    )
    print(response["choices"][0]["message"]["content"], response["citations"])

The layers run one way: ``agent`` (SDK, server, CLI, model backends) → ``graphs`` (the LangGraph
state machines and the model protocol they call) → ``tools`` (search, schemas, toolsets).
"""

import importlib
from typing import TYPE_CHECKING, Any

from agent._client import (
    AsyncClient,
    AsyncStream,
    Client,
    Stream,
)
from agent._exceptions import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    CorpusNotFoundError,
    FetchBlockedError,
    FetchError,
    GraphLimitError,
    InternalServerError,
    InvalidSchemaError,
    McpConnectionError,
    McpError,
    ModelError,
    NotFoundError,
    OutputValidationError,
    RateLimitError,
    SchemaBudgetError,
    SchemaError,
    SearchError,
    SearchRateLimitedError,
    SearchUnavailableError,
    ServerRefusal,
    StudiolmError,
    ToolArgumentsError,
    ToolDefinitionError,
    ToolsError,
    ToolsetError,
    ToolsUsageError,
    UnsupportedSchemaError,
    UnsupportedSearchError,
    UpstreamBadRequestError,
    UpstreamNotFoundError,
    UpstreamTooLargeError,
    UsageError,
)
from agent._response_store import MemoryResponseStore, ResponseStore, SqliteResponseStore, StoredResponse
from agent._responses_api import AsyncResponseStream, ResponseStream
from agent._responses_wire import Response, ResponseStreamEvent
from agent._types import (
    ChatCompletion,
    ChatCompletionChunk,
    Model,
    ModelList,
    WireObject,
)
from agent.models import (
    DEFAULT_LOCAL_MODEL,
    LlamaBackend,
    OpenAICompatibleBackend,
    ScriptedCall,
    ScriptedModel,
    ScriptedReply,
)
from agent.server import ServerLimits
from graphs import (
    Capabilities,
    ChatLimits,
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
from tools import (
    CachedSearch,
    DuckDuckGoSearch,
    FunctionTool,
    ImageResult,
    ImageSearchResponse,
    LocalIndex,
    McpToolset,
    Page,
    PageFetcher,
    SearchBackend,
    SearchChain,
    SearchResult,
    TextSearchResponse,
    ToolDefinition,
    ToolOutput,
    Toolset,
    mcp_server,
)

if TYPE_CHECKING:
    from agent.server import create_app, serve

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncClient",
    "AsyncResponseStream",
    "AsyncStream",
    "AuthenticationError",
    "BadRequestError",
    "CachedSearch",
    "Capabilities",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatLimits",
    "Client",
    "CorpusNotFoundError",
    "DEFAULT_LOCAL_MODEL",
    "DuckDuckGoSearch",
    "FetchBlockedError",
    "FetchError",
    "FunctionTool",
    "GraphLimitError",
    "ImageResult",
    "ImageSearchResponse",
    "InternalServerError",
    "InvalidSchemaError",
    "LlamaBackend",
    "LocalIndex",
    "McpConnectionError",
    "McpError",
    "McpToolset",
    "MemoryResponseStore",
    "Message",
    "Model",
    "ModelBackend",
    "ModelError",
    "ModelEvent",
    "ModelList",
    "ModelRequest",
    "ModelResult",
    "NotFoundError",
    "OpenAICompatibleBackend",
    "OutputValidationError",
    "Page",
    "PageFetcher",
    "RateLimitError",
    "Response",
    "ResponseStore",
    "ResponseStream",
    "ResponseStreamEvent",
    "SamplingParams",
    "SchemaBudgetError",
    "SchemaError",
    "ScriptedCall",
    "ScriptedModel",
    "ScriptedReply",
    "SearchBackend",
    "SearchChain",
    "SearchError",
    "SearchRateLimitedError",
    "SearchResult",
    "SearchUnavailableError",
    "ServerLimits",
    "ServerRefusal",
    "SqliteResponseStore",
    "StoredResponse",
    "Stream",
    "StudiolmError",
    "TextDelta",
    "TextSearchResponse",
    "ToolArgumentsError",
    "ToolCall",
    "ToolDefinition",
    "ToolDefinitionError",
    "ToolOutput",
    "ToolSpec",
    "ToolsError",
    "ToolsUsageError",
    "Toolset",
    "ToolsetError",
    "UnsupportedSchemaError",
    "UnsupportedSearchError",
    "UpstreamBadRequestError",
    "UpstreamNotFoundError",
    "UpstreamTooLargeError",
    "Usage",
    "UsageError",
    "WireObject",
    "create_app",
    "mcp_server",
    "serve",
]


def __getattr__(name: str) -> Any:
    # The server needs the optional `server` extra (starlette, uvicorn): loaded only when asked for.
    if name in ("create_app", "serve"):
        return getattr(importlib.import_module("agent.server"), name)
    raise AttributeError(f"module 'agent' has no attribute {name!r}")
