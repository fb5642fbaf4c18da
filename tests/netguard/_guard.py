"""The test suite's network guard: a connection or name lookup that would leave this machine fails.

Installed in-process by ``tests/conftest.py`` and in every Python subprocess a test starts (through
``sitecustomize.py`` beside this file, put on ``PYTHONPATH`` by the same fixture). A refused attempt
raises ``ConnectionRefusedError`` in the code under test — which may well handle it as "offline" — and
is also appended to the file named by ``$STUDIOLM_NETGUARD_LOG``, which the fixture checks after each
test, so the test fails even when the code swallowed the error. Loopback addresses, ``localhost``
and Unix sockets are allowed. Tests marked ``live`` run without the guard.

(ddgs does its HTTP in Rust, below this guard; the tests replace it at its Python entry point.)
"""

from __future__ import annotations

import ipaddress
import os
import socket
from typing import Any

LOG_ENV = "STUDIOLM_NETGUARD_LOG"
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", ""})
_original: dict[str, Any] = {}


def _is_local(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return True  # not an internet address (AF_UNIX paths arrive as str/bytes tuples handled below)
    name = host.strip("[]").split("%")[0].lower()
    if name in _LOCAL_NAMES or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool(address.is_loopback or address.is_unspecified or (mapped is not None and mapped.is_loopback))


def _refuse(what: str) -> None:
    log = os.environ.get(LOG_ENV)
    if log:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(what + "\n")
    raise ConnectionRefusedError(f"network guard: tests may not reach the internet ({what})")


def _check_address(sock: socket.socket, address: Any) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple) and not _is_local(address[0]):
        _refuse(f"connect to {address[0]}:{address[1]}")


def _connect(self: socket.socket, address: Any) -> None:
    _check_address(self, address)
    return _original["connect"](self, address)  # type: ignore[no-any-return]


def _connect_ex(self: socket.socket, address: Any) -> int:
    _check_address(self, address)
    return _original["connect_ex"](self, address)  # type: ignore[no-any-return]


def _getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if not _is_local(host):
        _refuse(f"name lookup of {host!r}")
    return _original["getaddrinfo"](host, *args, **kwargs)


def install() -> None:
    """Guard this process (idempotent)."""
    if _original:
        return
    _original.update(connect=socket.socket.connect, connect_ex=socket.socket.connect_ex,
                     getaddrinfo=socket.getaddrinfo)
    socket.socket.connect = _connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = _getaddrinfo


def uninstall() -> None:
    """Remove the guard (for ``live`` tests)."""
    if not _original:
        return
    socket.socket.connect = _original["connect"]  # type: ignore[method-assign]
    socket.socket.connect_ex = _original["connect_ex"]  # type: ignore[method-assign]
    socket.getaddrinfo = _original["getaddrinfo"]
    _original.clear()
