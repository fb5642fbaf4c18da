"""Configuration: constructor arguments first, then the environment, then the embedded default.

Environment variables:

* ``STUDIOLM_API_KEY`` / ``STUDIOLM_BASE_URL`` — drive an OpenAI-compatible endpoint.
* ``STUDIOLM_MODEL_PATH`` — a GGUF file the embedded backend serves besides its model tiers.
* ``STUDIOLM_SEARCH`` — ``auto`` (web, then the offline index), ``web``, ``local``, or ``none``.
* ``STUDIOLM_CACHE_DIR`` — where the offline index and the joined model files are cached
  (default ``~/.cache/studiolm``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import httpx

from agent._exceptions import BadRequestError
from graphs.model import ModelBackend
from tools import CorpusNotFoundError, SearchBackend

__all__ = ["DEFAULT_BASE_URL", "SEARCH_CHOICES", "resolve_model_backend", "resolve_search"]

DEFAULT_BASE_URL = "https://api.studiolm.dev/v1"
SEARCH_CHOICES = ("auto", "web", "local", "none")


def resolve_model_backend(
    *,
    backend: ModelBackend | None,
    api_key: str | None,
    base_url: str | None,
    http_client: httpx.AsyncClient | None,
    timeout: float | None,
    max_retries: int,
    env: Mapping[str, str] | None = None,
) -> ModelBackend:
    """The backend for a client: explicit backend, else key/URL (argument or env), else embedded."""
    if backend is not None:
        return backend
    env = os.environ if env is None else env
    api_key = api_key or env.get("STUDIOLM_API_KEY") or None
    base_url = base_url or env.get("STUDIOLM_BASE_URL") or None
    if api_key or base_url:
        from agent.models import DEFAULT_TIMEOUT, OpenAICompatibleBackend

        return OpenAICompatibleBackend(
            api_key, base_url or DEFAULT_BASE_URL, http_client=http_client, max_retries=max_retries,
            timeout=DEFAULT_TIMEOUT if timeout is None else timeout,
        )
    from agent.models import LlamaBackend

    return LlamaBackend(env.get("STUDIOLM_MODEL_PATH") or None)


def resolve_search(search: SearchBackend | str | None, env: Mapping[str, str] | None = None) -> SearchBackend | None:
    """The search backend: an instance as given, else a named choice (argument or env, default auto)."""
    if isinstance(search, SearchBackend):
        return search
    env = os.environ if env is None else env
    choice = search or env.get("STUDIOLM_SEARCH") or "auto"
    if choice not in SEARCH_CHOICES:
        raise BadRequestError(f"must be a SearchBackend or one of {', '.join(SEARCH_CHOICES)}, got {choice!r}",
                              param="search")
    if choice == "none":
        return None
    from tools import CachedSearch, DuckDuckGoSearch, LocalIndex, SearchChain

    backends: list[SearchBackend] = []
    if choice in ("auto", "web"):
        backends.append(DuckDuckGoSearch())
    if choice in ("auto", "local"):
        try:
            backends.append(LocalIndex.from_corpus())
        except CorpusNotFoundError:
            if choice == "local":
                raise
    return CachedSearch(backends[0] if len(backends) == 1 else SearchChain(backends))
