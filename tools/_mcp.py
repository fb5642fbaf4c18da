"""MCP servers as a :class:`~tools._functions.Toolset`: their tools offered to the model, their calls run by the graph.

:func:`mcp_server` describes a server, over stdio (``command=[...]``: a subprocess spoken to on its
stdin/stdout) or over streamable HTTP (``url=...``), through the official ``mcp`` package (the
``mcp`` extra, imported only when a server is first used). Nothing starts until the toolset is
first listed; the session then stays open and is reused by every request, until :meth:`aclose`.

* **Listing**: every tool the server lists, with its input schema as the parameters. MCP allows
  names OpenAI does not (``.``, ``/``, up to 128 characters); those become ``_`` and are cut to 64,
  and the call goes out under the server's own name. ``prefix="fs"`` offers ``read`` as ``fs_read``
  (two servers with a tool of the same name, side by side).
* **Calling**: the model's arguments are checked against the tool's input schema first (a
  :class:`ToolArgumentsError` the model reads, without a round trip; a schema we cannot compile is
  left to the server). The result's text blocks become the text the model reads; images, audio and
  binary resources are described in a line each (type, size, URI), since a text model cannot read
  them; an embedded text resource is included; ``isError`` results stay error results. A result
  with no content but structured content is that content as JSON.
* **Errors**: a JSON-RPC error or a result the SDK rejects is an :class:`McpError`; a server that
  cannot be started or reached, or that goes away, is an :class:`McpConnectionError` with the tail
  of its stderr (stdio servers' stderr is captured for this). A lost connection is dropped, and the
  next call connects again (a fresh process for stdio); a failed call is not retried, since a tool
  call may not be idempotent, but a listing is, once.
* **Lifetime**: the session lives in one task of the event loop that first used it (the ``mcp``
  transports are anyio task groups, which must be entered and left by the same task), so calls from
  any task of that loop share it. :meth:`aclose` stops it from any thread or loop: stdin is closed,
  then the process tree is terminated, then killed (the ``mcp`` SDK's shutdown, bounded). A loop that
  ends with the session still open (``asyncio.run`` returning) cancels that task, which shuts the
  server down the same way. Using one toolset from two live loops at once is a
  :class:`ToolsUsageError`. Pass servers to ``Client(tools=[...])`` and the client closes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import re
import shlex
import tempfile
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from tools._exceptions import (
    McpConnectionError,
    McpError,
    SchemaError,
    ToolArgumentsError,
    ToolsUsageError,
)
from tools._functions import TOOL_NAME_PATTERN, ToolDefinition, ToolOutput, Toolset, result_text
from tools._schema import CompiledSchema, compile_schema

if TYPE_CHECKING:
    import httpx2
    import mcp
    import mcp.types

__all__ = [
    "CALL_TIMEOUT_SECONDS",
    "CLOSE_TIMEOUT_SECONDS",
    "CONNECT_TIMEOUT_SECONDS",
    "HTTP_STREAM_READ_TIMEOUT_SECONDS",
    "HTTP_TIMEOUT_SECONDS",
    "LIST_TIMEOUT_SECONDS",
    "MAX_LIST_PAGES",
    "STDERR_TAIL_CHARS",
    "McpToolset",
    "mcp_server",
]

#: Starting the server (a subprocess, or the HTTP connection) and the protocol handshake.
CONNECT_TIMEOUT_SECONDS = 30.0
#: One ``tools/list`` page.
LIST_TIMEOUT_SECONDS = 30.0
#: A tool call, when the toolset has no ``timeout`` of its own: a backstop for use outside the chat
#: graph, which cancels calls after its own per-call timeout (``ChatLimits.tool_timeout``) first.
CALL_TIMEOUT_SECONDS = 300.0
#: Shutting the session down before its task is cancelled (the SDK bounds its own stdio shutdown
#: at about 6 s: stdin closed, 2 s, SIGTERM, 2 s, SIGKILL).
CLOSE_TIMEOUT_SECONDS = 10.0
#: HTTP servers: connect, write and pool timeouts of the client we make (the ``mcp`` SDK's defaults)…
HTTP_TIMEOUT_SECONDS = 30.0
#: …and its read timeout, long because a server may hold a response stream open between events.
HTTP_STREAM_READ_TIMEOUT_SECONDS = 300.0
#: Pages of ``tools/list`` followed (a server paginating forever cannot hang a request).
MAX_LIST_PAGES = 50
#: Characters of a stdio server's stderr quoted in an :class:`McpConnectionError`.
STDERR_TAIL_CHARS = 2000

_T = TypeVar("_T")
_INSTALL_HINT = "MCP servers need the mcp extra: pip install 'studiolm-agent[mcp]'"
_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_-]")
# JSON-RPC error code the SDK uses when the connection is gone (mcp.types.CONNECTION_CLOSED).
_CONNECTION_CLOSED = -32000


@dataclass(frozen=True, slots=True)
class _Stdio:
    command: tuple[str, ...]
    env: dict[str, str] | None
    cwd: str | None


@dataclass(frozen=True, slots=True)
class _Http:
    url: str
    headers: dict[str, str] | None
    http_client: httpx2.AsyncClient | None


@dataclass(frozen=True, slots=True)
class _Tool:
    """One listed tool: the server's name for it, and its input schema compiled (None: the server checks)."""

    remote: str
    schema: CompiledSchema | None


@dataclass(slots=True)
class _Session:
    """One connection: the task that holds it open, and how to reach and stop that task."""

    loop: asyncio.AbstractEventLoop
    ready: asyncio.Future[mcp.Client]
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    stderr: TextIO | None = None


def mcp_server(
    command: Sequence[str] | None = None,
    *,
    url: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    headers: Mapping[str, str] | None = None,
    http_client: httpx2.AsyncClient | None = None,
    name: str | None = None,
    prefix: str | None = None,
    timeout: float | None = None,
) -> McpToolset:
    """An MCP server's tools, for ``tools=[...]``: ``command=[...]`` (stdio) or ``url=...`` (streamable HTTP).

    ``env`` is added to the small environment the ``mcp`` SDK lets a stdio server inherit (``PATH``,
    ``HOME``…; not the whole of ours, which may hold secrets); ``cwd`` is its working directory.
    ``headers`` go with every HTTP request (an ``Authorization`` token); ``http_client`` is an
    ``httpx2.AsyncClient`` of your own instead (the ``mcp`` SDK's HTTP client; then set headers on
    it). ``name`` is shown in steps and errors (default: the command or URL); ``prefix`` is put
    before every tool name (``prefix_tool``); ``timeout`` (seconds) bounds each call instead of the
    run's per-call default. Nothing connects until the tools are first listed.

    Raises :class:`ToolsUsageError` for a mix that does not describe one server, or when the ``mcp``
    package is not installed.
    """
    if importlib.util.find_spec("mcp") is None:
        raise ToolsUsageError(_INSTALL_HINT)
    if (command is None) == (url is None):
        raise ToolsUsageError("mcp_server() takes either command=[...] (stdio) or url=... (streamable HTTP)")
    server: _Stdio | _Http
    if command is not None:
        server = _stdio(command, env, cwd, headers, http_client)
    else:
        server = _http(str(url), env, cwd, headers, http_client)
    return McpToolset(server, name=name, prefix=prefix, timeout=timeout)


def _stdio(command: Sequence[str], env: Mapping[str, str] | None, cwd: str | os.PathLike[str] | None,
           headers: object, http_client: object) -> _Stdio:
    if isinstance(command, str) or not command or not all(isinstance(part, str) and part for part in command):
        raise ToolsUsageError("command must be a non-empty list of strings: the program, then its arguments")
    if headers is not None or http_client is not None:
        raise ToolsUsageError("headers= and http_client= are for url=... servers, not command=[...] ones")
    return _Stdio(tuple(command), dict(env) if env is not None else None, os.fspath(cwd) if cwd is not None else None)


def _http(url: str, env: object, cwd: object, headers: Mapping[str, str] | None,
          http_client: httpx2.AsyncClient | None) -> _Http:
    if not url.startswith(("http://", "https://")):
        raise ToolsUsageError(f"url must be an http:// or https:// URL, got {url!r}")
    if env is not None or cwd is not None:
        raise ToolsUsageError("env= and cwd= are for command=[...] servers, not url=... ones")
    if headers is not None and http_client is not None:
        raise ToolsUsageError("pass headers= or http_client=, not both (set the headers on your client)")
    return _Http(url, dict(headers) if headers is not None else None, http_client)


class McpToolset(Toolset):
    """The tools of one MCP server (make one with :func:`mcp_server`; see the module docstring).

    An async context manager too: ``async with mcp_server(...) as server:`` closes it on the way out.
    """

    def __init__(self, server: _Stdio | _Http, *, name: str | None = None, prefix: str | None = None,
                 timeout: float | None = None) -> None:
        if prefix is not None and not TOOL_NAME_PATTERN.match(f"{prefix}_x"):
            raise ToolsUsageError(f"prefix must be letters, digits, _ and -, got {prefix!r}")
        if timeout is not None and not timeout > 0:
            raise ToolsUsageError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self._server = server
        self.name = name or _default_name(server)
        self._prefix = prefix
        self._timeout = timeout
        self._session: _Session | None = None
        self._tools: dict[str, _Tool] = {}

    def __repr__(self) -> str:
        return f"McpToolset({self.name!r})"

    async def __aenter__(self) -> McpToolset:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def list_tools(self) -> Sequence[ToolDefinition]:
        """The server's tools (connecting first if needed); a connection found lost is replaced once.

        Raises :class:`McpConnectionError` or :class:`McpError` when the server cannot list them.
        """
        reused = self._session is not None and _established(self._session)
        try:
            return await self._list()
        except McpConnectionError:
            if not reused:
                raise  # it could not connect just now: trying again at once would not help
            return await self._list()  # an open connection was lost (a server restarted): connect afresh

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolOutput:
        """Check ``arguments`` against the tool's schema, call it on the server, return its result as text.

        Raises :class:`ToolArgumentsError` for invalid arguments, :class:`McpError` /
        :class:`McpConnectionError` when the call fails below the tool (an ``isError`` result is
        returned, not raised).
        """
        if not self._tools:
            await self.list_tools()
        tool = self._tools.get(name)
        if tool is None:
            raise ToolsUsageError(f"{self!r} has no tool {name!r}")
        _check_arguments(name, tool, arguments)
        timeout = self._timeout or CALL_TIMEOUT_SECONDS
        result = await self._request(partial(_call, name=tool.remote, arguments=arguments, read_timeout=timeout))
        return _output(result)

    async def aclose(self) -> None:
        """Close the session and stop the server process (from any loop or thread). Idempotent."""
        session, self._session = self._session, None
        if session is None or session.task is None or session.task.done():
            return
        if session.loop.is_closed():
            return
        if _running_loop() is session.loop:
            await _stop(session)
        else:  # the session lives on another loop (a sync Client's thread): stop it there
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(_stop(session), session.loop))

    # --- internals ------------------------------------------------------------------------------

    async def _list(self) -> Sequence[ToolDefinition]:
        listed: list[mcp.types.Tool] = []
        cursor: str | None = None
        for _ in range(MAX_LIST_PAGES):
            page = await self._request(partial(_list_page, cursor=cursor))
            listed += page.tools
            cursor = page.next_cursor
            if cursor is None:
                break
        self._tools = {self._model_name(t.name): _Tool(t.name, _compiled(t.input_schema)) for t in listed}
        return tuple(self._definition(t) for t in listed)

    def _definition(self, tool: mcp.types.Tool) -> ToolDefinition:
        parameters = dict(tool.input_schema)
        parameters.setdefault("type", "object")
        parameters.setdefault("properties", {})  # OpenAI wants "properties", even when there are none
        description = tool.description or tool.title or ""
        return ToolDefinition(self._model_name(tool.name), description.strip(), parameters, self._timeout)

    def _model_name(self, remote: str) -> str:
        name = f"{self._prefix}_{remote}" if self._prefix else remote
        return _NAME_CHARS.sub("_", name)[:64]

    async def _request(self, send: Callable[[mcp.Client], Awaitable[_T]]) -> _T:
        """``send(client)`` on the open session; SDK errors become :class:`McpError` / :class:`McpConnectionError`."""
        session = self._open()
        try:
            client = await asyncio.shield(session.ready)
            return await send(client)
        except (McpError, ToolArgumentsError):
            raise
        except Exception as exc:
            raise await self._failure(session, exc) from exc

    def _open(self) -> _Session:
        loop = asyncio.get_running_loop()
        session = self._session
        if session is not None and session.task is not None and not session.task.done():
            if session.loop is loop:
                return session
            if not session.loop.is_closed() and session.loop.is_running():
                raise ToolsUsageError(f"{self!r} is connected on another running event loop; "
                                      "close it (await server.aclose()) before using it on this one")
        session = _Session(loop, loop.create_future())
        session.ready.add_done_callback(_retrieve)  # a failure nobody awaited is not "never retrieved"
        session.task = loop.create_task(self._hold(session), name=f"mcp-session {self.name}")
        self._session = session
        return session

    async def _hold(self, session: _Session) -> None:
        """The session's task: connect, hand the client over, keep it open until asked to stop."""
        import mcp

        with _stderr_file(self._server) as stderr:
            session.stderr = stderr
            try:
                async with contextlib.AsyncExitStack() as stack:
                    async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
                        client = mcp.Client(_transport(self._server, stderr), read_timeout_seconds=LIST_TIMEOUT_SECONDS)
                        await stack.enter_async_context(client)
                    session.ready.set_result(client)
                    await session.stop.wait()
            except Exception as exc:  # the connection failed, or was lost: the next use connects again
                if not session.ready.done():
                    session.ready.set_exception(self._connection_error(_connect_problem(exc), session))
            finally:
                if not session.ready.done():
                    session.ready.set_exception(self._connection_error("the connection was closed", session))

    async def _failure(self, session: _Session, exc: Exception) -> McpError:
        import mcp

        if isinstance(exc, mcp.MCPError) and exc.code != _CONNECTION_CLOSED:
            return McpError(f"MCP server {self.name!r}: {exc.message} (JSON-RPC error {exc.code})",
                            server=self.name, rpc_code=exc.code)
        if isinstance(exc, mcp.MCPError | OSError | EOFError) or _is_stream_error(exc):
            error = self._connection_error(f"the connection was lost ({_leaf_text(exc)})", session)
            if self._session is session:
                self._session = None
            await _stop(session)  # drop it: the next use starts a fresh connection
            return error
        return McpError(f"MCP server {self.name!r}: {_leaf_text(exc)}", server=self.name, rpc_code=None)

    def _connection_error(self, problem: str, session: _Session) -> McpConnectionError:
        stderr = _tail(session.stderr)
        where = f"; its stderr ends:\n{stderr}" if stderr else ""
        return McpConnectionError(f"MCP server {self.name!r}: {problem}{where}", server=self.name, stderr=stderr)


async def _list_page(client: mcp.Client, *, cursor: str | None) -> mcp.types.ListToolsResult:
    return await client.list_tools(cursor=cursor)


async def _call(client: mcp.Client, *, name: str, arguments: dict[str, Any],
                read_timeout: float) -> mcp.types.CallToolResult:
    return await client.call_tool(name, arguments, read_timeout_seconds=read_timeout)


def _stderr_file(server: _Stdio | _Http) -> contextlib.AbstractContextManager[TextIO | None]:
    """Where a stdio server's stderr goes: a temporary file, so errors can quote its end."""
    if isinstance(server, _Http):
        return contextlib.nullcontext()
    return tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")


def _transport(server: _Stdio | _Http, stderr: TextIO | None) -> Any:
    if isinstance(server, _Stdio):
        from mcp.client.stdio import StdioServerParameters, stdio_client

        params = StdioServerParameters(command=server.command[0], args=list(server.command[1:]), env=server.env,
                                       cwd=server.cwd)
        assert stderr is not None, "stdio sessions capture stderr"
        return stdio_client(params, errlog=stderr)
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    if server.http_client is not None:
        return streamable_http_client(server.url, http_client=server.http_client)
    timeout = httpx2.Timeout(HTTP_TIMEOUT_SECONDS, read=HTTP_STREAM_READ_TIMEOUT_SECONDS)
    client = httpx2.AsyncClient(headers=server.headers, timeout=timeout)
    return _owning(streamable_http_client(server.url, http_client=client), client)


@contextlib.asynccontextmanager
async def _owning(transport: Any, client: httpx2.AsyncClient) -> Any:
    """``transport``, closing the HTTP ``client`` made for it (the SDK closes only the ones it makes)."""
    async with client, transport as streams:
        yield streams


async def _stop(session: _Session) -> None:
    """Ask the session's task to leave the connection, and wait (bounded) until it has."""
    task = session.task
    if task is None or task.done():
        return
    session.stop.set()
    done, _ = await asyncio.wait({task}, timeout=CLOSE_TIMEOUT_SECONDS)
    if not done:
        task.cancel()  # the SDK's shutdown is shielded and bounded: it still stops the process
        await asyncio.wait({task}, timeout=CLOSE_TIMEOUT_SECONDS)


def _established(session: _Session) -> bool:
    """Whether the session connected and is still held open."""
    ready = session.ready
    return ready.done() and not ready.cancelled() and ready.exception() is None and not (
        session.task is None or session.task.done())


def _check_arguments(name: str, tool: _Tool, arguments: dict[str, Any]) -> None:
    if tool.schema is None:
        return
    errors = [dict(e) for e in tool.schema.validate(arguments)]
    if errors:
        listed = "; ".join(f"{e['path'] or '(arguments)'}: {e['message']}" for e in errors)
        raise ToolArgumentsError(f"invalid arguments for {name}: {listed}", tool=name, errors=errors)


def _compiled(schema: dict[str, Any]) -> CompiledSchema | None:
    try:
        return compile_schema(schema)
    except SchemaError:
        return None  # a schema we cannot use is the server's to enforce


def _output(result: mcp.types.CallToolResult) -> ToolOutput:
    """An MCP ``CallToolResult`` as the text a model reads (non-text content described, not dropped)."""
    parts = [_describe(block) for block in result.content]
    text = "\n".join(part for part in parts if part)
    if not text and result.structured_content is not None:
        text = result_text(result.structured_content)
    if result.is_error and not text:
        text = "the MCP tool reported an error"
    return ToolOutput(text, is_error=bool(result.is_error))


def _describe(block: Any) -> str:
    kind = getattr(block, "type", "")
    if kind == "text":
        return str(block.text)
    if kind in ("image", "audio"):
        return f"[{kind}: {block.mime_type}, {_decoded_size(block.data)} bytes; not shown here]"
    if kind == "resource_link":
        about = f" ({block.mime_type})" if block.mime_type else ""
        note = f": {block.description}" if block.description else ""
        return f"[resource link: {block.name} <{block.uri}>{about}{note}]"
    if kind == "resource":
        contents = block.resource
        if hasattr(contents, "text"):
            return f"[resource <{contents.uri}>]\n{contents.text}"
        mime = contents.mime_type or "binary"
        return f"[resource <{contents.uri}>: {mime}, {_decoded_size(contents.blob)} bytes; not shown here]"
    return f"[{kind or 'unknown'} content; not shown here]"


def _decoded_size(data: str) -> int:
    """Bytes in base64 ``data`` (without decoding it)."""
    return len(data) * 3 // 4 - data[-2:].count("=")


def _default_name(server: _Stdio | _Http) -> str:
    if isinstance(server, _Http):
        return re.sub(r"//[^/@]*@", "//", server.url).split("?", 1)[0]  # no credentials, no query
    text = shlex.join((os.path.basename(server.command[0]), *server.command[1:]))
    return text if len(text) <= 60 else text[:59] + "…"


def _connect_problem(exc: BaseException) -> str:
    leaf = _leaf(exc)
    if isinstance(leaf, TimeoutError):
        return f"no MCP handshake within {CONNECT_TIMEOUT_SECONDS:g} s"
    if isinstance(leaf, FileNotFoundError):
        return f"cannot start it: {leaf.strerror}: {leaf.filename}"
    return f"cannot connect: {_leaf_text(leaf)}"


def _leaf(exc: BaseException) -> BaseException:
    """The first real error inside (anyio task groups wrap errors in exception groups)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _leaf_text(exc: BaseException) -> str:
    leaf = _leaf(exc)
    return f"{type(leaf).__name__}: {leaf}" if str(leaf) else type(leaf).__name__


def _is_stream_error(exc: BaseException) -> bool:
    # anyio's closed/broken stream errors, and httpx2's transport errors, without importing either here.
    leaf = _leaf(exc)
    names = {cls.__name__ for cls in type(leaf).__mro__}
    return bool(names & {"ClosedResourceError", "BrokenResourceError", "EndOfStream", "TransportError"})


def _tail(stderr: TextIO | None) -> str:
    """The end of what the server wrote to stderr (read by offset: the file is the child's, not ours to seek)."""
    if stderr is None or stderr.closed:
        return ""
    with contextlib.suppress(OSError, ValueError):
        size = os.fstat(stderr.fileno()).st_size
        chunk = STDERR_TAIL_CHARS * 4  # up to 4 bytes a character
        data = os.pread(stderr.fileno(), chunk, max(0, size - chunk))
        return data.decode("utf-8", errors="replace")[-STDERR_TAIL_CHARS:].strip()
    return ""


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
