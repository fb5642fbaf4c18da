"""Fixtures for the tools tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from ddgs.http_client import HttpClient

from tests.tools.ddgs_fake import FakeWeb


@pytest.fixture
def fake_web(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeWeb]:
    """Serve every HTTP request ddgs makes from a :class:`FakeWeb` instead of the internet.

    Why a patch: ddgs does not use httpx, so there is no transport to inject. Every ddgs engine
    sends its requests through ``ddgs.http_client.HttpClient.request``, which wraps a primp
    (Rust) client. We patch that one method, and only so that it swaps the primp client for the
    fake before running ddgs' own ``request``: ddgs' real error handling still runs, so a primp
    exception raised by a route (``primp.DNSError``, ``primp.TimeoutError``, …) reaches our code
    wrapped exactly as it is in production.
    """
    web = FakeWeb()
    original = HttpClient.request

    def request(self: HttpClient, *args: Any, **kwargs: Any) -> Any:
        self.client = web  # type: ignore[assignment]  # duck-typed stand-in for primp.Client
        return original(self, *args, **kwargs)

    monkeypatch.setattr(HttpClient, "request", request)
    yield web
