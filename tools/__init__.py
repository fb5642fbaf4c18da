"""What graph tool nodes call: web and image search, the local full-text index, their caches, SSRF-safe page
fetching, JSON schemas, and the root of the one exception tree (the lowest layer: it imports nothing else of ours)."""

from tools._cache import CachedSearch
from tools._chain import SearchChain
from tools._corpus import Document, SkippedFile
from tools._ddg import CircuitBreaker, DuckDuckGoSearch
from tools._exceptions import (
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
from tools._extract import extract_html
from tools._fetch import Page, PageFetcher
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
from tools._text import terminal_safe

__all__ = [
    "APIError",
    "BadRequestError",
    "CachedSearch",
    "CircuitBreaker",
    "CompiledSchema",
    "CorpusNotFoundError",
    "Document",
    "DuckDuckGoSearch",
    "FetchBlockedError",
    "FetchError",
    "FunctionTool",
    "ImageResult",
    "ImageSearchResponse",
    "InvalidSchemaError",
    "LocalIndex",
    "McpConnectionError",
    "McpError",
    "McpToolset",
    "OutputCheck",
    "Page",
    "PageFetcher",
    "PartialJson",
    "SchemaBudgetError",
    "SchemaError",
    "SearchBackend",
    "SearchChain",
    "SearchError",
    "SearchFallback",
    "SearchRateLimitedError",
    "SearchResult",
    "SearchUnavailableError",
    "SkippedFile",
    "StudiolmError",
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
    "UsageError",
    "bound_for_decoding",
    "compile_schema",
    "default_cache_dir",
    "extract_html",
    "json_pointer",
    "mcp_server",
    "terminal_safe",
]
