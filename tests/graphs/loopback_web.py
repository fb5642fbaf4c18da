"""A tiny "web" on loopback for research tests: a site serving pages on 127.0.0.2 and an attacker
server on 127.0.0.3 that records every connection (it must see none)."""

from __future__ import annotations

import contextlib
import socketserver
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SITE_IP = "127.0.0.2"
ATTACKER_IP = "127.0.0.3"


class _Site(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, pages: dict[str, str]) -> None:
        self.pages = pages
        self.requests: list[str] = []
        super().__init__((SITE_IP, 0), _SiteHandler)


class _SiteHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        server = self.server
        assert isinstance(server, _Site)
        server.requests.append(self.path)
        body = server.pages.get(self.path)
        status = 200 if body is not None else 404
        data = (body if body is not None else "<p>not found</p>").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Attacker(socketserver.ThreadingTCPServer):
    """Counts every TCP connection."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        self.hits: list[str] = []
        super().__init__((ATTACKER_IP, 0), _AttackerHandler)


class _AttackerHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server = self.server
        assert isinstance(server, _Attacker)
        self.request.settimeout(2)
        with contextlib.suppress(OSError):
            server.hits.append(self.request.recv(65536).decode(errors="replace"))
            self.request.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n<p>thanks</p>")


@dataclass
class LoopbackWeb:
    """The running servers: page URLs by path, what the site served, what the attacker received."""

    site: _Site
    attacker: _Attacker

    def url(self, path: str) -> str:
        return f"http://{SITE_IP}:{self.site.server_address[1]}{path}"

    def attacker_url(self, path: str = "/") -> str:
        return f"http://{ATTACKER_IP}:{self.attacker.server_address[1]}{path}"


@contextlib.contextmanager
def loopback_web(pages: dict[str, str]) -> Iterator[LoopbackWeb]:
    """Serve ``pages`` (path -> HTML) on 127.0.0.2 and run the attacker on 127.0.0.3 until the block ends."""
    site, attacker = _Site(pages), _Attacker()
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (site, attacker)]
    for thread in threads:
        thread.start()
    try:
        yield LoopbackWeb(site, attacker)
    finally:
        for server in (site, attacker):
            server.shutdown()
            server.server_close()


def html(title: str, *paragraphs: str) -> str:
    """A small article page."""
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    head = f"<!doctype html><html><head><title>{title}</title></head>"
    return f"{head}<body><article><h1>{title}</h1>{body}</article></body></html>"
