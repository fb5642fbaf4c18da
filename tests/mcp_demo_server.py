"""A small MCP server for the tests, built with the ``mcp`` package's MCPServer (FastMCP in mcp 1.x).

``python tests/mcp_demo_server.py`` serves it over stdio; the tests also mount :func:`build_server`'s
streamable-HTTP app on a loopback port in-process.
"""

from __future__ import annotations

import asyncio
import base64
import os
import sys
from typing import Annotated

import mcp.types as types
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

# A 1x1 PNG: 70 bytes once decoded.
PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def build_server() -> MCPServer:
    server = MCPServer("demo", log_level="WARNING")

    @server.tool()
    def add(a: int, b: Annotated[int, Field(ge=0, description="A non-negative addend")]) -> int:
        """Add two integers."""
        return a + b

    @server.tool()
    def fail(message: str) -> str:
        """Always fails with the given message."""
        raise ToolError(f"demo failure: {message}")

    @server.tool(name="notes.get")
    def notes_get(key: str) -> str:
        """A note by key (a dotted MCP tool name)."""
        return {"paris": "Paris is the capital of France."}.get(key, "no such note")

    @server.tool()
    def rich() -> types.CallToolResult:
        """Every kind of content block at once."""
        encoded = base64.b64encode(PIXEL).decode()
        return types.CallToolResult(content=[
            types.TextContent(text="a chart of sales"),
            types.ImageContent(data=encoded, mime_type="image/png"),
            types.AudioContent(data=base64.b64encode(b"\0" * 30).decode(), mime_type="audio/wav"),
            types.EmbeddedResource(resource=types.TextResourceContents(uri="file:///notes.txt", text="note body")),
            types.EmbeddedResource(resource=types.BlobResourceContents(uri="file:///data.bin", blob=encoded,
                                                                       mime_type="application/octet-stream")),
            types.ResourceLink(name="report", uri="https://example.org/report.pdf", mime_type="application/pdf",
                               description="the full report"),
        ])

    @server.tool()
    def structured_only() -> types.CallToolResult:
        """Structured content and no content blocks."""
        return types.CallToolResult(content=[], structured_content={"total": 42})

    @server.tool()
    async def slow(seconds: float) -> str:
        """Sleeps, then answers."""
        await asyncio.sleep(seconds)
        return "finally"

    @server.tool()
    def pid() -> int:
        """The server's process id."""
        return os.getpid()

    @server.tool()
    def env(name: str) -> str:
        """An environment variable of the server process."""
        return os.environ.get(name, "<unset>")

    @server.tool()
    def crash() -> str:
        """Ends the server process at once, as a crash would."""
        print("fatal: the demo server crashed on purpose", file=sys.stderr, flush=True)
        os._exit(3)

    return server


if __name__ == "__main__":
    build_server().run()
