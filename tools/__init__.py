"""What graph tool nodes call: web and image search, the local full-text index, and their caches."""

from tools._exceptions import (
    CorpusNotFoundError,
    SearchError,
    SearchRateLimitedError,
    SearchUnavailableError,
    ToolsError,
    ToolsUsageError,
    UnsupportedSearchError,
)
from tools._search import (
    ImageResult,
    ImageSearchResponse,
    SearchBackend,
    SearchFallback,
    SearchResult,
    TextSearchResponse,
)

__all__ = [
    "CorpusNotFoundError",
    "ImageResult",
    "ImageSearchResponse",
    "SearchBackend",
    "SearchError",
    "SearchFallback",
    "SearchRateLimitedError",
    "SearchResult",
    "SearchUnavailableError",
    "TextSearchResponse",
    "ToolsError",
    "ToolsUsageError",
    "UnsupportedSearchError",
]
