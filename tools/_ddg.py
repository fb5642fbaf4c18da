"""Live web search through the ``ddgs`` metasearch package: DuckDuckGo first, other engines as fallback.

ddgs is synchronous, brings its own HTTP client (primp, so no httpx seam) and reports almost every
failure as a bare ``DDGSException``: a rate limit and "nothing came back" both read
``"No results found."``, network errors arrive as ``"DNSError: …"`` / ``"ConnectError: …"``. This
module runs ddgs in a worker thread and turns that into our error model:

* DNS / connect failures -> :class:`SearchUnavailableError`, quickly: the other ddgs backends are
  tried once, but nothing is retried or slept on (the network is down; waiting will not help).
* timeouts, rate limits and "No results found." -> retried with exponential backoff and jitter,
  then :class:`SearchRateLimitedError`.
* a circuit breaker: after :data:`CIRCUIT_FAILURE_THRESHOLD` consecutive unavailable searches the
  backend fails fast for :data:`CIRCUIT_COOLDOWN_SECONDS`, so an offline machine does not pay a
  network round trip on every question before falling back to the local index.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ddgs import DDGS
from ddgs.exceptions import DDGSException

from tools._exceptions import SearchRateLimitedError, SearchUnavailableError, ToolsUsageError
from tools._search import (
    ImageResult,
    ImageSearchResponse,
    SearchBackend,
    SearchFallback,
    SearchResult,
    TextSearchResponse,
)
from tools._searchutil import check_max_results, collapse_space, truncate

__all__ = [
    "BACKOFF_INITIAL_SECONDS",
    "BACKOFF_JITTER",
    "BACKOFF_MAX_SECONDS",
    "CIRCUIT_COOLDOWN_SECONDS",
    "CIRCUIT_FAILURE_THRESHOLD",
    "IMAGE_BACKENDS",
    "RATE_LIMIT_RETRIES",
    "REQUEST_TIMEOUT_SECONDS",
    "SNIPPET_MAX_CHARS",
    "TEXT_BACKENDS",
    "CircuitBreaker",
    "DuckDuckGoSearch",
]

#: ddgs ``backend=`` values tried in order for text search. DuckDuckGo's HTML endpoint first; then,
#: in one ddgs call, independent engines (ddgs runs them in parallel and merges what comes back).
TEXT_BACKENDS: tuple[str, ...] = ("duckduckgo", "brave,mojeek,yahoo,startpage")
#: ddgs ``backend=`` values tried in order for image search.
IMAGE_BACKENDS: tuple[str, ...] = ("duckduckgo", "bing")
#: Per-request timeout handed to ddgs (it also bounds how long ddgs waits for its engine threads).
REQUEST_TIMEOUT_SECONDS = 5
#: Extra rounds over the backend list after a rate-limited round (so at most 1 + 2 rounds).
RATE_LIMIT_RETRIES = 2
#: Backoff before retry n (0-based) is min(INITIAL * 2**n, MAX), shortened by up to JITTER of itself.
BACKOFF_INITIAL_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 8.0
BACKOFF_JITTER = 0.25
#: Consecutive unavailable searches that open the circuit, and how long it then stays open.
CIRCUIT_FAILURE_THRESHOLD = 3
CIRCUIT_COOLDOWN_SECONDS = 60.0
#: Web snippets longer than this are cut at a word boundary.
SNIPPET_MAX_CHARS = 400

SOURCE = "duckduckgo"

Kind = Literal["text", "images"]
Failure = Literal["unavailable", "rate_limited"]

# Exception class names (anywhere in the MRO, anywhere in the cause chain) that mean "the network or
# host cannot be reached". Matched by name so we need not import primp, ddgs' private HTTP client.
_UNAVAILABLE_TYPES = frozenset({"DNSError", "ConnectError", "ConnectionError"})
_RATE_LIMIT_TYPES = frozenset({"TimeoutError", "TimeoutException", "RatelimitException"})
# Fallback when only the message survived (ddgs re-wraps errors as strings in places).
_UNAVAILABLE_MARKERS = (
    "dnserror",
    "connecterror",
    "error resolving dns",
    "failed to lookup address",
    "name or service not known",
    "temporary failure in name resolution",
    "connection refused",
    "network is unreachable",
    "no route to host",
)
_RATE_LIMIT_MARKERS = ("no results found", "ratelimit", "rate limit", "timed out", "could not extract vqd")


def classify_error(exc: BaseException) -> Failure:
    """Decide whether a ddgs failure means "unreachable" or "rate limited / try again later".

    "No results found." is what ddgs says when every engine answered with a non-200 status (how
    DuckDuckGo rate limits) *or* with an empty page; with several engines behind a query the former is
    far more likely, so it counts as a rate limit. Unknown errors count as unavailable: waiting is
    not known to help, and the caller's chain can fall back at once.
    """
    chain = list(_exception_chain(exc))
    names = {cls.__name__ for err in chain for cls in type(err).__mro__}
    if names & _UNAVAILABLE_TYPES:
        return "unavailable"
    if names & _RATE_LIMIT_TYPES:
        return "rate_limited"
    text = " ".join(str(err) for err in chain).lower()
    if any(marker in text for marker in _UNAVAILABLE_MARKERS):
        return "unavailable"
    if any(marker in text for marker in _RATE_LIMIT_MARKERS):
        return "rate_limited"
    return "unavailable"


def _exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception reachable through causes, contexts and exception-valued args.

    ddgs raises ``DDGSException(err)`` with the engine's exception as its *argument*, not as its
    cause, so args have to be walked too.
    """
    pending, seen = [exc], set()
    while pending:
        err = pending.pop()
        if id(err) in seen:
            continue
        seen.add(id(err))
        yield err
        pending.extend(arg for arg in err.args if isinstance(arg, BaseException))
        pending.extend(e for e in (err.__cause__, err.__context__) if e is not None)


def backoff_delay(retry: int) -> float:
    """Seconds to wait before retry number ``retry`` (0-based): exponential, capped, with jitter."""
    base = min(BACKOFF_INITIAL_SECONDS * 2.0**retry, BACKOFF_MAX_SECONDS)
    # Jitter spreads out concurrent clients that were rate limited together.
    return base * (1 - BACKOFF_JITTER * random.random())


class CircuitBreaker:
    """Counts consecutive unavailable outcomes; refuses calls for a cooldown once the count hits the limit.

    After the cooldown one call is let through (half-open): success closes the circuit, another
    failure opens it again for a full cooldown.
    """

    def __init__(
        self,
        *,
        threshold: int = CIRCUIT_FAILURE_THRESHOLD,
        cooldown: float = CIRCUIT_COOLDOWN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._failures = 0
        self._opened_at = 0.0

    def retry_in(self) -> float:
        """Seconds until calls are allowed again; 0.0 when the circuit is closed or half-open."""
        if self._failures < self.threshold:
            return 0.0
        return max(0.0, self._opened_at + self.cooldown - self._clock())

    def record_failure(self) -> None:
        """Count an unavailable outcome; (re)open the circuit when the threshold is reached."""
        self._failures += 1
        if self._failures >= self.threshold:
            self._opened_at = self._clock()

    def record_reachable(self) -> None:
        """The backend answered (even if only to rate limit us): close the circuit."""
        self._failures = 0


@dataclass(frozen=True, slots=True)
class _Round:
    """What one pass over the backend list produced."""

    results: list[dict[str, Any]] | None
    failures: tuple[tuple[str, Failure, str], ...]  # (ddgs backend, failure kind, reason)


class DuckDuckGoSearch(SearchBackend):
    """Web text and image search through ``ddgs`` (DuckDuckGo, falling back to other engines).

    ``text_backends`` / ``image_backends`` are ddgs ``backend=`` values tried in order. ``sleep``
    (the backoff wait) and ``circuit_breaker`` (with its ``clock``) are injectable so tests can drive
    retries and the breaker without waiting.
    """

    name = "duckduckgo"

    def __init__(
        self,
        *,
        timeout: int = REQUEST_TIMEOUT_SECONDS,
        region: str = "us-en",
        safesearch: Literal["on", "moderate", "off"] = "moderate",
        text_backends: Sequence[str] = TEXT_BACKENDS,
        image_backends: Sequence[str] = IMAGE_BACKENDS,
        rate_limit_retries: int = RATE_LIMIT_RETRIES,
        circuit_breaker: CircuitBreaker | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not text_backends or not image_backends:
            raise ToolsUsageError("text_backends and image_backends must each name at least one ddgs backend")
        if rate_limit_retries < 0:
            raise ToolsUsageError(f"rate_limit_retries must be >= 0, got {rate_limit_retries}")
        self.timeout = timeout
        self.region = region
        self.safesearch = safesearch
        self.text_backends = tuple(text_backends)
        self.image_backends = tuple(image_backends)
        self.rate_limit_retries = rate_limit_retries
        self.circuit_breaker = circuit_breaker or CircuitBreaker()
        self._sleep = sleep

    async def search(self, query: str, *, max_results: int = 5) -> TextSearchResponse:
        """Web text search; results carry ``source="duckduckgo"`` whichever ddgs engine found them."""
        check_max_results(max_results)
        if not query.strip():
            return TextSearchResponse(results=(), backend=self.name)
        raw, fallbacks = await self._run("text", query, max_results, self.text_backends)
        results = [r for r in map(_text_result, raw) if r is not None]
        return TextSearchResponse(tuple(results[:max_results]), self.name, fallbacks)

    async def search_images(self, query: str, *, max_results: int = 5) -> ImageSearchResponse:
        """Web image search."""
        check_max_results(max_results)
        if not query.strip():
            return ImageSearchResponse(results=(), backend=self.name)
        raw, fallbacks = await self._run("images", query, max_results, self.image_backends)
        results = [r for r in map(_image_result, raw) if r is not None]
        return ImageSearchResponse(tuple(results[:max_results]), self.name, fallbacks)

    async def _run(
        self, kind: Kind, query: str, max_results: int, backends: tuple[str, ...]
    ) -> tuple[list[dict[str, Any]], tuple[SearchFallback, ...]]:
        """Rounds over ``backends`` with backoff between rate-limited rounds; raises when all fail."""
        self._check_circuit(query)
        fallbacks: dict[SearchFallback, None] = {}  # ordered set: the same failure may repeat per round
        for retry in range(self.rate_limit_retries + 1):
            if retry:
                await self._sleep(backoff_delay(retry - 1))
            outcome = await self._round(kind, query, max_results, backends)
            fallbacks.update(dict.fromkeys(SearchFallback(f"ddgs:{b}", r) for b, _, r in outcome.failures))
            if outcome.results is not None:
                self.circuit_breaker.record_reachable()
                return outcome.results, tuple(fallbacks)
            if all(failure == "unavailable" for _, failure, _ in outcome.failures):
                self.circuit_breaker.record_failure()
                raise SearchUnavailableError(_summary("unreachable", outcome), backend=self.name, query=query)
        self.circuit_breaker.record_reachable()
        raise SearchRateLimitedError(
            _summary(f"rate limited after {self.rate_limit_retries} retries", outcome),
            backend=self.name,
            query=query,
            retry_after=backoff_delay(self.rate_limit_retries),
        )

    def _check_circuit(self, query: str) -> None:
        if (wait := self.circuit_breaker.retry_in()) > 0:
            message = (
                f"{self.name} search is unavailable (circuit open after "
                f"{self.circuit_breaker.threshold} consecutive network failures; next try in {wait:.0f}s)"
            )
            raise SearchUnavailableError(message, backend=self.name, query=query)

    async def _round(self, kind: Kind, query: str, max_results: int, backends: tuple[str, ...]) -> _Round:
        failures: list[tuple[str, Failure, str]] = []
        for backend in backends:
            try:
                results = await asyncio.to_thread(self._call_ddgs, kind, query, max_results, backend)
            except DDGSException as exc:
                failures.append((backend, classify_error(exc), _reason(exc)))
                continue
            return _Round(results, tuple(failures))
        return _Round(None, tuple(failures))

    def _call_ddgs(self, kind: Kind, query: str, max_results: int, backend: str) -> list[dict[str, Any]]:
        # A fresh DDGS per call: its engine instances (and their HTTP clients) are not shared
        # between worker threads.
        ddgs = DDGS(timeout=self.timeout)
        search = ddgs.text if kind == "text" else ddgs.images
        return search(
            query, region=self.region, safesearch=self.safesearch, max_results=max_results, backend=backend
        )


def _reason(exc: BaseException) -> str:
    """A one-line, bounded description of a ddgs failure for fallbacks and error messages."""
    return truncate(collapse_space(str(exc)) or type(exc).__name__, 300)


def _summary(what: str, outcome: _Round) -> str:
    detail = "; ".join(f"{backend}: {reason}" for backend, _, reason in outcome.failures)
    return f"{SOURCE} search {what} ({detail})"


def _text(raw: Mapping[str, Any], key: str) -> str:
    value = raw.get(key)
    return collapse_space(value) if isinstance(value, str) else ""


def _web_url(raw: Mapping[str, Any], key: str) -> str:
    url = _text(raw, key)
    return url if url.startswith(("https://", "http://")) else ""


def _text_result(raw: object) -> SearchResult | None:
    """Map a ddgs text dict ``{title, href, body}``; None when it has no usable URL."""
    if not isinstance(raw, Mapping) or not (url := _web_url(raw, "href")):
        return None
    snippet = truncate(_text(raw, "body"), SNIPPET_MAX_CHARS)
    return SearchResult(title=_text(raw, "title") or url, url=url, snippet=snippet, source=SOURCE)


def _image_result(raw: object) -> ImageResult | None:
    """Map a ddgs image dict ``{title, image, thumbnail, url, width, height}``; None without an image URL."""
    if not isinstance(raw, Mapping) or not (image := _web_url(raw, "image")):
        return None
    return ImageResult(
        image_url=image,
        thumbnail_url=_web_url(raw, "thumbnail") or image,
        source_url=_web_url(raw, "url") or image,
        title=_text(raw, "title"),
        width=_dimension(raw.get("width")),
        height=_dimension(raw.get("height")),
    )


def _dimension(value: object) -> int | None:
    """ddgs gives ints (DuckDuckGo JSON) or digit strings (Bing HTML); anything else is unknown."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip()) or None
    return None
