"""Who may talk to the HTTP server: API keys, and the loopback-only rule when there are none.

* Keys come from the caller (``--api-key``) or ``STUDIOLM_SERVER_API_KEYS`` (comma-separated). A
  request to a protected path must carry ``Authorization: Bearer <key>``; the token is compared with
  every key, on bytes, in constant time (:func:`hmac.compare_digest`). The header is never decoded, so
  a header with non-ASCII bytes, a second ``Authorization`` header, an empty token or another scheme is
  a plain 401, never a 500.
* With no key the server is for this machine only: :func:`check_bind` refuses a non-loopback bind
  address, and every request must name a loopback ``Host`` (``localhost``, ``127.x.x.x``, ``[::1]``).
  That stops DNS rebinding, where a web page on ``evil.example`` re-resolves its name to 127.0.0.1 so
  the browser sends our server requests with ``Host: evil.example``.

Nothing here logs, and no response repeats what the caller sent.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping

from starlette.types import ASGIApp, Receive, Scope, Send

from agent._exceptions import BadRequestError

__all__ = ["API_KEYS_ENV", "AccessMiddleware", "check_bind", "is_loopback_host", "resolve_api_keys"]

API_KEYS_ENV = "STUDIOLM_SERVER_API_KEYS"

# Denials are handed to the server, which builds the error response: (status, code, message).
Deny = Callable[[Scope, Receive, Send, int, str, str], Awaitable[None]]


def resolve_api_keys(api_keys: Iterable[str] | None, env: Mapping[str, str] | None = None) -> tuple[bytes, ...]:
    """The server's keys: ``api_keys`` when given (even empty), else ``$STUDIOLM_SERVER_API_KEYS``.

    Raises :class:`BadRequestError` (``param="api_keys"``) for a key with whitespace, control or
    non-ASCII characters: no client could send it in a header reliably.
    """
    if api_keys is None:
        env = os.environ if env is None else env
        api_keys = (env.get(API_KEYS_ENV) or "").split(",")
    keys = [key.strip() for key in api_keys]
    for key in keys:
        if key and not all("!" <= ch <= "~" and ch != "," for ch in key):
            raise BadRequestError("keys must be printable ASCII without spaces or commas", param="api_keys")
    return tuple(dict.fromkeys(key.encode("ascii") for key in keys if key))


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback IP literals (``127.0.0.1``, ``::1``, ``[::1]``)."""
    host = host.strip().lower().removeprefix("[").removesuffix("]")
    if host in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, api_keys: tuple[bytes, ...]) -> None:
    """Refuse to serve a non-loopback address without an API key (:class:`BadRequestError`, ``host``)."""
    if not api_keys and not is_loopback_host(host):
        raise BadRequestError(
            f"refusing to listen on {host!r} without an API key: pass --api-key or set {API_KEYS_ENV}, "
            "or listen on 127.0.0.1",
            param="host",
        )


class AccessMiddleware:
    """ASGI middleware: the Host rule (no keys) and bearer auth (keys) described in the module docstring.

    ``protected(path)`` says which paths need a key; ``deny`` sends the error response.
    """

    def __init__(
        self, app: ASGIApp, *, api_keys: tuple[bytes, ...], protected: Callable[[str], bool], deny: Deny
    ) -> None:
        self.app = app
        self._keys = api_keys
        self._protected = protected
        self._deny = deny

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        if not self._keys and not _loopback_host_header(headers):
            await self._deny(scope, receive, send, 403, "host_not_allowed",
                             "this server has no API key, so it only answers requests addressed to "
                             "localhost or a loopback address (Host header)")
            return
        if self._keys and self._protected(scope["path"]) and not self._authorized(headers):
            await self._deny(scope, receive, send, 401, "invalid_api_key",
                             "missing or invalid API key: send 'Authorization: Bearer <key>'")
            return
        await self.app(scope, receive, send)

    def _authorized(self, headers: list[tuple[bytes, bytes]]) -> bool:
        values = [value for name, value in headers if name == b"authorization"]
        if len(values) != 1:
            return False
        scheme, _, token = values[0].strip(b" \t").partition(b" ")
        token = token.strip(b" \t")
        if scheme.lower() != b"bearer" or not token:
            return False
        # Compare against every key, without stopping early, so timing says nothing about which matched.
        matched = False
        for key in self._keys:
            matched |= hmac.compare_digest(token, key)
        return matched


def _loopback_host_header(headers: list[tuple[bytes, bytes]]) -> bool:
    values = [value for name, value in headers if name == b"host"]
    if len(values) != 1 or not values[0].isascii():
        return False
    host = values[0].decode("ascii")
    if host.startswith("["):  # [::1]:8000
        host = host.partition("]")[0] + "]"
    else:
        host = host.rpartition(":")[0] if host.count(":") == 1 else host
    return is_loopback_host(host)
