"""What graph tool nodes call: web and image search, the local full-text index, their caches, and JSON schemas."""

from tools._cache import CachedSearch
from tools._chain import SearchChain
from tools._corpus import Document, SkippedFile
from tools._ddg import CircuitBreaker, DuckDuckGoSearch
from tools._exceptions import (
    CorpusNotFoundError,
    InvalidSchemaError,
    McpConnectionError,
    McpError,
    SchemaError,
    SearchError,
    SearchRateLimitedError,
    SearchUnavailableError,
    ToolArgumentsError,
    ToolDefinitionError,
    ToolsError,
    ToolsUsageError,
    UnsupportedSchemaError,
    UnsupportedSearchError,
)
from tools._functions import TOOL_NAME_PATTERN, FunctionTool, ToolDefinition, ToolOutput, Toolset
from tools._json_text import PartialJson
from tools._local_index import LocalIndex, default_cache_dir
from tools._mcp import McpToolset, mcp_server
from tools._schema import CompiledSchema, OutputCheck, bound_for_decoding, compile_schema, json_pointer
from tools._search import (
    ImageResult,
    ImageSearchResponse,
    SearchBackend,
    SearchFallback,
    SearchResult,
    TextSearchResponse,
)

__all__ = [
    "CachedSearch",
    "CircuitBreaker",
    "CompiledSchema",
    "CorpusNotFoundError",
    "Document",
    "DuckDuckGoSearch",
    "FunctionTool",
    "ImageResult",
    "ImageSearchResponse",
    "InvalidSchemaError",
    "LocalIndex",
    "McpConnectionError",
    "McpError",
    "McpToolset",
    "OutputCheck",
    "PartialJson",
    "SchemaError",
    "SearchBackend",
    "SearchChain",
    "SearchError",
    "SearchFallback",
    "SearchRateLimitedError",
    "SearchResult",
    "SearchUnavailableError",
    "SkippedFile",
    "TOOL_NAME_PATTERN",
    "TextSearchResponse",
    "ToolArgumentsError",
    "ToolDefinition",
    "ToolDefinitionError",
    "ToolOutput",
    "ToolsError",
    "ToolsUsageError",
    "Toolset",
    "UnsupportedSchemaError",
    "UnsupportedSearchError",
    "bound_for_decoding",
    "compile_schema",
    "default_cache_dir",
    "json_pointer",
    "mcp_server",
]
