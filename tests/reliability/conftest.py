"""Fixtures of the reliability suite: real uvicorn servers on loopback ports (issue 10, deliver item 9)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from agent import AsyncClient, MemoryResponseStore, ModelBackend
from agent.server import create_app
from tests.agent.server.server_harness import ServerThread
from tools import SearchBackend

StartServer = Callable[..., ServerThread]


@pytest.fixture
def start_server() -> Iterator[StartServer]:
    """Start ``create_app(AsyncClient(backend=..., search=...), **options)`` (or a given ASGI ``app``)
    on a free loopback port; every server started is stopped at teardown."""
    servers: list[ServerThread] = []

    def start(backend: ModelBackend | None = None, *, search: SearchBackend | None = None, app: Any = None,
              **options: Any) -> ServerThread:
        if app is None:
            client = AsyncClient(backend=backend, search=search, response_store=MemoryResponseStore())
            app = create_app(client, **options)
        server = ServerThread(app).__enter__()
        servers.append(server)
        return server

    yield start
    for server in reversed(servers):
        server.__exit__()
