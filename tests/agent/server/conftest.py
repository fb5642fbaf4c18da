"""Fixtures for the HTTP server tests: real uvicorn servers on loopback ports."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from agent import AsyncClient, MemoryResponseStore, ModelBackend
from agent.server._app import create_app
from tests.agent.server.server_harness import API_KEY, FakeUpstream, ServerThread, StartServer, scripted_model
from tools import SearchBackend


@pytest.fixture
def start_server() -> Iterator[StartServer]:
    """Start ``create_app(AsyncClient(backend=..., search=...), **options)`` (or a given ASGI app) under
    uvicorn on a free loopback port; every server started is stopped at teardown."""
    servers: list[ServerThread] = []

    def start(backend: ModelBackend | None = None, *, search: SearchBackend | None = None, app: Any = None,
              host: str = "127.0.0.1", **options: Any) -> ServerThread:
        if app is None:
            # Stored responses stay in memory: a test never writes to the user's cache folder.
            client = AsyncClient(backend=backend, search=search, response_store=MemoryResponseStore())
            app = create_app(client, **options)
        server = ServerThread(app, host).__enter__()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.__exit__()


@pytest.fixture
def docs_server(start_server: StartServer, fake_search: SearchBackend) -> ServerThread:
    """The scripted model and the fake search behind a server that wants API_KEY."""
    return start_server(scripted_model(), search=fake_search, api_keys=[API_KEY])


@pytest.fixture
def upstream(start_server: StartServer) -> Iterator[tuple[FakeUpstream, ServerThread]]:
    """A fake OpenAI-compatible upstream on its own loopback server."""
    fake = FakeUpstream()
    yield fake, start_server(app=fake)
