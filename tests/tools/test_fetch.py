"""The SSRF-safe page fetcher (issue 14): what it refuses, why, and that refused targets see nothing.

Two loopback servers share one port number:

* the *victim* on 127.0.0.1 (and ::1 when the machine has IPv6) stands for an internal service or a
  cloud metadata endpoint. It counts TCP connections, so "zero hits" means nothing even connected.
* the *site* on 127.0.0.2 stands for the public web. Tests allow it with
  ``allowed_networks=["127.0.0.2/32"]``; everything else on loopback stays refused.

Because the port is the same, a fetcher that let the HTTP stack resolve a name again (instead of
connecting to the address it checked) would land on the victim: ``localhost`` resolves to 127.0.0.1
on the system while the tests' resolver says 127.0.0.2. Non-loopback private addresses are tested
through ``httpx.MockTransport`` so that no test can open a connection off this machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
import socketserver
import ssl
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import trustme

from tools import FetchBlockedError, FetchError, Page, PageFetcher, ToolsUsageError
from tools._extract import _trafilatura, extract_with_stdlib

SITE_IP = "127.0.0.2"
VICTIM_IP = "127.0.0.1"

ARTICLE = """<!doctype html>
<html><head><title>Rivers of Europe</title><script>var tracker = "TRACKING-CODE";</script>
<style>body { color: red }</style></head>
<body>
<header><a href="/">Home</a> <a href="/about">About us</a></header>
<nav><ul><li>Navigation link one</li><li>Navigation link two</li></ul></nav>
<article>
<h1>Rivers of Europe</h1>
<p>The Danube is Europe's second-longest river. It flows through ten countries, more than any other
river in the world, and empties into the Black Sea after a journey of about 2,850 kilometres.</p>
<p>The Rhine rises in the Swiss Alps and flows north to the North Sea. For centuries it has been one
of the most important trade routes of the continent, carrying coal, grain and containers.</p>
<p>The Volga, entirely within Russia, is the longest river in Europe and drains into the Caspian Sea.</p>
</article>
<aside>Sidebar advertisement</aside>
<footer>Copyright notice and footer links</footer>
</body></html>
"""
NOTES = "Plain notes.\nSecond line of the notes.\n"


def _bomb(compress: Callable[[bytes], bytes]) -> bytes:
    return compress(b"\0" * (16 * 1024 * 1024))  # 16 MiB of zeros, about 16 KiB compressed: 3x the limit


GZIP_BOMB = _bomb(gzip.compress)
DEFLATE_BOMB = _bomb(zlib.compress)


# --------------------------------------------------------------------------------------- servers


class _Victim(socketserver.ThreadingTCPServer):
    """Counts every TCP connection and answers anything with a secret."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], family: int = socket.AF_INET) -> None:
        self.address_family = family
        self.hits: list[str] = []
        super().__init__(address, _VictimHandler)


class _VictimHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server = self.server
        assert isinstance(server, _Victim)
        server.hits.append(str(self.client_address))
        self.request.settimeout(2)
        with contextlib.suppress(OSError):
            self.request.recv(65536)
            self.request.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n<p>internal secret</p>")


class _Site(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int]) -> None:
        self.requests: list[tuple[str, str]] = []  # (path, Host header)
        super().__init__(address, _SiteHandler)


class _SiteHandler(BaseHTTPRequestHandler):
    """The "public web": pages, redirects, oversized and compressed bodies, wrong types."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        server = self.server
        assert isinstance(server, _Site)
        server.requests.append((self.path, self.headers.get("Host", "")))
        port = server.server_address[1]
        route = self.path.split("?")[0]
        if route.startswith("/hops/"):
            left = int(route.rsplit("/", 1)[1])
            self._redirect(f"/hops/{left - 1}" if left > 1 else "/article.html")
        elif route in _REDIRECTS:
            self._redirect(_REDIRECTS[route].format(port=port))
        elif route == "/slow":
            time.sleep(3)
            self._send("text/html", b"<p>too late</p>")
        elif route == "/big-streamed":
            self._send_streamed("text/plain", b"x" * (3 * 1024 * 1024))
        elif route in _PAGES:
            status, headers, body = _PAGES[route]
            self._send_raw(status, headers, body)
        else:
            self._send_raw(404, {"Content-Type": "text/html"}, b"<p>not found</p>")

    def _redirect(self, location: str) -> None:
        self._send_raw(302, {"Location": location}, b"")

    def _send(self, content_type: str, body: bytes) -> None:
        self._send_raw(200, {"Content-Type": content_type}, body)

    def _send_raw(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(body)

    def _send_streamed(self, content_type: str, body: bytes) -> None:
        """No Content-Length: the body ends when the connection closes (HTTP/1.0 style)."""
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.end_headers()
        with contextlib.suppress(OSError):
            for start in range(0, len(body), 65536):
                self.wfile.write(body[start : start + 65536])


_REDIRECTS = {
    "/to-internal": "http://127.0.0.1:{port}/secret",
    "/to-internal-decimal": "http://2130706433:{port}/secret",
    "/to-internal-name": "http://internal.test:{port}/secret",
    "/to-file": "file:///etc/passwd",
    "/to-gopher": "gopher://127.0.0.1:{port}/_INFO",
    "/relative": "article.html",
}
_PAGES: dict[str, tuple[int, dict[str, str], bytes]] = {
    "/article.html": (200, {"Content-Type": "text/html; charset=utf-8"}, ARTICLE.encode()),
    "/notes.txt": (200, {"Content-Type": "text/plain"}, NOTES.encode()),
    "/latin1.txt": (200, {"Content-Type": "text/plain; charset=iso-8859-1"}, "Café crème".encode("latin-1")),
    "/article.gz": (200, {"Content-Type": "text/html", "Content-Encoding": "gzip"}, gzip.compress(ARTICLE.encode())),
    "/big": (200, {"Content-Type": "text/html"}, b"<p>" + b"x" * (3 * 1024 * 1024) + b"</p>"),
    "/gzip-bomb": (200, {"Content-Type": "text/html", "Content-Encoding": "gzip"}, GZIP_BOMB),
    "/deflate-bomb": (200, {"Content-Type": "text/html", "Content-Encoding": "deflate"}, DEFLATE_BOMB),
    "/brotli": (200, {"Content-Type": "text/html", "Content-Encoding": "br"}, b"\x1b\x00"),
    "/image.png": (200, {"Content-Type": "image/png"}, b"\x89PNG\r\n\x1a\n"),
    "/data.json": (200, {"Content-Type": "application/json"}, b'{"a": 1}'),
    "/untyped": (200, {}, b"<p>no content type</p>"),
    "/gone": (410, {"Content-Type": "text/html"}, b"<p>gone</p>"),
}


@dataclass
class Web:
    """The two servers, on one port; ``hits`` are connections the victim received."""

    port: int
    victims: list[_Victim]
    site: _Site
    threads: list[threading.Thread] = field(default_factory=list)

    @property
    def hits(self) -> list[str]:
        return [hit for victim in self.victims for hit in victim.hits]

    def url(self, path: str, host: str = "public.test") -> str:
        return f"http://{host}:{self.port}{path}"


def _start(server: socketserver.BaseServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return thread


def _bind_pair() -> tuple[_Victim, _Site]:
    for _ in range(20):  # the victim picks a free port; the site needs the same one on 127.0.0.2
        victim = _Victim((VICTIM_IP, 0))
        try:
            return victim, _Site((SITE_IP, victim.server_address[1]))
        except OSError:
            victim.server_close()
    raise RuntimeError("no port free on both 127.0.0.1 and 127.0.0.2")


@pytest.fixture(scope="module")
def web_servers() -> Iterator[Web]:
    victim, site = _bind_pair()
    victims = [victim]
    with contextlib.suppress(OSError):  # also guard [::1]:port where the machine has IPv6
        victims.append(_Victim(("::1", victim.server_address[1]), socket.AF_INET6))
    servers: list[socketserver.BaseServer] = [*victims, site]
    web = Web(victim.server_address[1], victims, site, [_start(server) for server in servers])
    yield web
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def web(web_servers: Web) -> Web:
    """The servers, with no hits or requests recorded yet."""
    for victim in web_servers.victims:
        victim.hits.clear()
    web_servers.site.requests.clear()
    return web_servers


class FakeDns:
    """A resolver: each name answers its list of records in turn (the last answer repeats)."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self._answers = answers
        self.calls: list[str] = []

    async def __call__(self, host: str) -> list[str]:
        self.calls.append(host)
        if host not in self._answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        answers = self._answers[host]
        return answers.pop(0) if len(answers) > 1 else answers[0]


def _fetcher(dns: FakeDns | None = None, **kwargs: object) -> PageFetcher:
    """A fetcher that may reach the site (127.0.0.2) and nothing else on loopback."""
    dns = dns or FakeDns({"public.test": [[SITE_IP]], "internal.test": [[VICTIM_IP]]})
    return PageFetcher(resolver=dns, allowed_networks=[f"{SITE_IP}/32"], **kwargs)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------- what gets through


async def test_html_page_main_text_is_extracted(web: Web) -> None:
    page = await _fetcher().fetch(web.url("/article.html"))
    assert isinstance(page, Page)
    assert (page.url, page.status, page.content_type) == (web.url("/article.html"), 200, "text/html")
    assert page.title == "Rivers of Europe"
    assert "Danube is Europe's second-longest river" in page.text
    assert "Volga" in page.text
    for boilerplate in ("TRACKING-CODE", "color: red", "Navigation link", "Sidebar advertisement", "Copyright"):
        assert boilerplate not in page.text
    assert page.size == len(ARTICLE.encode())
    assert page.redirects == ()


async def test_plain_text_is_returned_as_it_is(web: Web) -> None:
    page = await _fetcher().fetch(web.url("/notes.txt"))
    assert (page.content_type, page.title, page.text) == ("text/plain", "", NOTES)


async def test_charset_from_content_type(web: Web) -> None:
    page = await _fetcher().fetch(web.url("/latin1.txt"))
    assert page.text == "Café crème"


async def test_gzip_page_is_decoded(web: Web) -> None:
    page = await _fetcher().fetch(web.url("/article.gz"))
    assert "Danube" in page.text
    assert page.size == len(ARTICLE.encode())


async def test_redirects_are_followed_up_to_the_limit(web: Web) -> None:
    page = await _fetcher().fetch(web.url("/hops/5"))
    assert page.url == web.url("/article.html")
    assert page.redirects == tuple(web.url(f"/hops/{n}") for n in (5, 4, 3, 2, 1))
    assert "Danube" in page.text


async def test_relative_redirect_resolves_against_the_name_not_the_address(web: Web) -> None:
    page = await _fetcher().fetch(web.url("/relative"))
    assert page.url == web.url("/article.html")
    assert web.site.requests[-1] == ("/article.html", f"public.test:{web.port}")


async def test_https_request_is_pinned_with_the_name_in_host_and_sni() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, headers={"Content-Type": "text/plain"}, content=b"hello")

    dns = FakeDns({"example.org": [["93.184.216.34"]]})  # never connected to: the transport is a mock
    fetcher = PageFetcher(transport=httpx.MockTransport(handler), resolver=dns)
    page = await fetcher.fetch("https://example.org/a/b?q=1#part")
    assert page.text == "hello"
    assert page.url == "https://example.org/a/b?q=1#part"
    [request] = seen
    assert str(request.url) == "https://93.184.216.34/a/b?q=1"
    assert request.headers["Host"] == "example.org"
    assert request.extensions["sni_hostname"] == "example.org"


async def test_an_address_spelled_oddly_is_requested_in_its_usual_form() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, headers={"Content-Type": "text/plain"}, content=b"hello")

    fetcher = PageFetcher(transport=httpx.MockTransport(handler), resolver=FakeDns({}))
    page = await fetcher.fetch("https://134744072/x")  # 8.8.8.8, never connected to: the transport is a mock
    assert page.url == "https://8.8.8.8/x"
    [request] = seen
    assert (str(request.url), request.headers["Host"]) == ("https://8.8.8.8/x", "8.8.8.8")
    assert "sni_hostname" not in request.extensions  # no SNI for an address; its certificate names it


# ------------------------------------------------------------------ refused before any connection


LOOPBACK_SPELLINGS = [
    ("127.0.0.1", "loopback address 127.0.0.1"),
    ("2130706433", "loopback address 127.0.0.1"),  # decimal
    ("0x7f000001", "loopback address 127.0.0.1"),  # hex
    ("0x7f.1", "loopback address 127.0.0.1"),  # hex, short form
    ("017700000001", "loopback address 127.0.0.1"),  # octal
    ("0177.0.0.1", "0177.0.0.1"),  # octal dotted: httpx itself rejects it as an invalid IPv4 address
    ("127.1", "loopback address 127.0.0.1"),  # short form
    ("127.0.0.1.", "loopback address 127.0.0.1"),  # fully qualified
    ("0", "unspecified address 0.0.0.0"),  # connecting to 0.0.0.0 reaches this machine
    ("0.0.0.0", "unspecified address 0.0.0.0"),
    ("[::1]", "loopback address ::1"),
    ("[::ffff:127.0.0.1]", "reaches loopback address 127.0.0.1"),  # IPv4-mapped IPv6
    ("[::ffff:7f00:1]", "reaches loopback address 127.0.0.1"),
    ("[::]", "unspecified address ::"),
]


@pytest.mark.parametrize(("host", "reason"), LOOPBACK_SPELLINGS)
async def test_every_spelling_of_loopback_is_refused(web: Web, host: str, reason: str) -> None:
    dns = FakeDns({})
    with pytest.raises(FetchBlockedError) as raised:
        await _fetcher(dns).fetch(web.url("/secret", host=host))
    assert reason in raised.value.reason
    assert raised.value.url == web.url("/secret", host=host)
    assert dns.calls == []  # an address literal is checked as it is, never looked up
    assert web.hits == []


async def test_localhost_through_the_system_resolver_is_refused(web: Web) -> None:
    with pytest.raises(FetchBlockedError, match=r"localhost resolves to loopback address 127\.0\.0\.1"):
        await PageFetcher().fetch(web.url("/secret", host="localhost"))
    assert web.hits == []


PRIVATE_ADDRESSES = [
    ("169.254.169.254", "link-local (cloud metadata) address 169.254.169.254"),
    ("10.0.0.1", "private or special-purpose address 10.0.0.1"),
    ("172.16.5.4", "private or special-purpose address 172.16.5.4"),
    ("192.168.1.1", "private or special-purpose address 192.168.1.1"),
    ("100.64.0.1", "shared (CGNAT) address 100.64.0.1"),
    ("192.0.2.1", "private or special-purpose address 192.0.2.1"),  # documentation
    ("224.0.0.1", "multicast address 224.0.0.1"),
    ("240.0.0.1", "reserved address 240.0.0.1"),
    ("255.255.255.255", "reserved address 255.255.255.255"),
    ("2852039166", "link-local (cloud metadata) address 169.254.169.254"),  # decimal metadata
    ("[fe80::1]", "link-local address fe80::1"),
    ("[fc00::1]", "private or special-purpose address fc00::1"),
    ("[fd12:3456::1]", "private or special-purpose address fd12:3456::1"),
    ("[fec0::1]", "site-local address fec0::1"),
    ("[ff02::1]", "multicast address ff02::1"),
    ("[::ffff:169.254.169.254]", "reaches link-local (cloud metadata) address 169.254.169.254"),
    ("[64:ff9b::a9fe:a9fe]", "reaches link-local (cloud metadata) address 169.254.169.254"),  # NAT64
    ("[2002:a00:1::]", "reaches private or special-purpose address 10.0.0.1"),  # 6to4
    ("[2001:db8::1]", "private or special-purpose address 2001:db8::1"),
    ("[2001::1]", "private or special-purpose address 2001::1"),  # Teredo
]


@pytest.mark.parametrize(("host", "reason"), PRIVATE_ADDRESSES)
async def test_private_and_metadata_addresses_are_refused(host: str, reason: str) -> None:
    sent: list[httpx.Request] = []
    fetcher = PageFetcher(transport=httpx.MockTransport(sent.append), resolver=FakeDns({}))  # type: ignore[arg-type]
    with pytest.raises(FetchBlockedError) as raised:
        await fetcher.fetch(f"http://{host}/latest/meta-data/")
    assert reason in raised.value.reason
    assert sent == []


async def test_a_name_resolving_to_private_addresses_is_refused() -> None:
    sent: list[httpx.Request] = []
    dns = FakeDns({"metadata.test": [["169.254.169.254"]]})
    fetcher = PageFetcher(transport=httpx.MockTransport(sent.append), resolver=dns)  # type: ignore[arg-type]
    with pytest.raises(FetchBlockedError, match=r"metadata\.test resolves to link-local .*169\.254\.169\.254"):
        await fetcher.fetch("http://metadata.test/latest/meta-data/")
    assert sent == []


@pytest.mark.parametrize("records", [[SITE_IP, VICTIM_IP], [VICTIM_IP, SITE_IP]])
async def test_a_mix_of_public_and_private_records_is_refused(web: Web, records: list[str]) -> None:
    dns = FakeDns({"mixed.test": [records]})
    with pytest.raises(FetchBlockedError, match=r"mixed\.test resolves to loopback address 127\.0\.0\.1"):
        await _fetcher(dns).fetch(web.url("/article.html", host="mixed.test"))
    assert web.hits == []
    assert web.site.requests == []  # refused as a whole: not even the allowed record was used


async def test_rebinding_cannot_move_the_connection(web: Web) -> None:
    """The name resolves to the site once, then to the victim: the request still goes to the site."""
    dns = FakeDns({"localhost": [[SITE_IP], [VICTIM_IP]]})
    fetcher = _fetcher(dns)
    page = await fetcher.fetch(web.url("/article.html", host="localhost"))
    assert "Danube" in page.text
    assert dns.calls == ["localhost"]  # resolved once; the system (localhost = 127.0.0.1) never asked
    assert web.site.requests == [("/article.html", f"localhost:{web.port}")]
    with pytest.raises(FetchBlockedError, match=r"localhost resolves to loopback address 127\.0\.0\.1"):
        await fetcher.fetch(web.url("/article.html", host="localhost"))
    assert web.hits == []


async def test_the_next_checked_address_is_tried_when_one_refuses_connections(web: Web) -> None:
    dns = FakeDns({"public.test": [["127.0.0.3", SITE_IP]]})  # nothing listens on 127.0.0.3
    fetcher = PageFetcher(resolver=dns, allowed_networks=["127.0.0.2/31"])
    page = await fetcher.fetch(web.url("/notes.txt"))
    assert page.text == NOTES
    assert web.hits == []


@pytest.mark.parametrize("url", [
    "file:///etc/passwd",
    "ftp://public.test/file.txt",
    "gopher://127.0.0.1:70/_stats",
    "data:text/html,<p>hi</p>",
    "javascript:alert(1)",
    "dict://127.0.0.1:11211/stat",
    "//public.test/article.html",
    "public.test/article.html",
])
async def test_non_http_schemes_are_refused(url: str) -> None:
    with pytest.raises(FetchBlockedError, match=r"scheme .* is not http or https"):
        await _fetcher().fetch(url)


async def test_credentials_in_the_url_are_refused(web: Web) -> None:
    with pytest.raises(FetchBlockedError, match="credentials"):
        await _fetcher().fetch(web.url("/article.html", host="user:secret@public.test"))
    assert web.site.requests == []


# ------------------------------------------------------------------------- refused redirect targets


@pytest.mark.parametrize(("path", "reason"), [
    ("/to-internal", r"redirect to http://127\.0\.0\.1:\d+/secret: loopback address 127\.0\.0\.1"),
    ("/to-internal-decimal", r"redirect to http://127\.0\.0\.1:\d+/secret: loopback address 127\.0\.0\.1"),
    ("/to-internal-name", r"internal\.test resolves to loopback address 127\.0\.0\.1"),
    ("/to-file", r"redirect to file:///etc/passwd: scheme 'file' is not http or https"),
    ("/to-gopher", r"scheme 'gopher' is not http or https"),
])
async def test_a_public_page_redirecting_inside_is_refused(web: Web, path: str, reason: str) -> None:
    with pytest.raises(FetchBlockedError, match=reason):
        await _fetcher().fetch(web.url(path))
    assert [p for p, _ in web.site.requests] == [path]
    assert web.hits == []


async def test_too_many_redirects(web: Web) -> None:
    with pytest.raises(FetchError, match="more than 5 redirects") as raised:
        await _fetcher().fetch(web.url("/hops/6"))
    assert raised.value.reason == "more than 5 redirects"
    assert len(web.site.requests) == 6


async def test_redirect_limit_is_configurable(web: Web) -> None:
    with pytest.raises(FetchError, match="more than 0 redirects"):
        await _fetcher(max_redirects=0).fetch(web.url("/hops/1"))


# ------------------------------------------------------------------------------ limits and content


@pytest.mark.parametrize(("path", "reason"), [
    ("/big", r"body of \d+ bytes is over the 2097152-byte limit"),  # declared by Content-Length
    ("/big-streamed", r"body is over the 2097152-byte limit"),  # found out while reading
    ("/gzip-bomb", r"body decodes to more than the 5242880-byte limit"),
    ("/deflate-bomb", r"body decodes to more than the 5242880-byte limit"),
    ("/brotli", r"content encoding 'br' is not supported"),
    ("/image.png", r"content type 'image/png' is not a text page"),
    ("/data.json", r"content type 'application/json' is not a text page"),
    ("/untyped", r"content type '\(none\)' is not a text page"),
])
async def test_bodies_over_the_limits_or_not_text_are_refused(web: Web, path: str, reason: str) -> None:
    with pytest.raises(FetchError, match=reason):
        await _fetcher().fetch(web.url(path))


async def test_http_error_status(web: Web) -> None:
    with pytest.raises(FetchError, match="HTTP 410") as raised:
        await _fetcher().fetch(web.url("/gone"))
    assert raised.value.status == 410


async def test_the_whole_fetch_is_time_limited(web: Web) -> None:
    with pytest.raises(FetchError, match=r"took longer than 0\.3 s"):
        await _fetcher(timeout=0.3).fetch(web.url("/slow"))


async def test_a_name_that_does_not_resolve(web: Web) -> None:
    with pytest.raises(FetchError, match=r"cannot resolve nowhere\.test"):
        await _fetcher().fetch(web.url("/", host="nowhere.test"))


async def test_environment_proxies_are_ignored(web: Web, monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = f"http://{VICTIM_IP}:{web.port}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    page = await _fetcher().fetch(web.url("/notes.txt"))
    assert page.text == NOTES
    assert web.hits == []


async def test_concurrent_fetches(web: Web) -> None:
    fetcher = _fetcher()
    pages = await asyncio.gather(*(fetcher.fetch(web.url(p)) for p in ("/article.html", "/notes.txt", "/hops/2")))
    assert [p.content_type for p in pages] == ["text/html", "text/plain", "text/html"]


# ------------------------------------------------------------------------------------ bad arguments


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"transport": httpx.MockTransport(lambda r: httpx.Response(200)), "http_client": httpx.AsyncClient()},
     "not both"),
    ({"allowed_networks": ["not-a-network"]}, "allowed_networks: 'not-a-network' is not an IP network"),
    ({"allowed_networks": "127.0.0.2/32"}, "allowed_networks must be a collection"),
    ({"max_bytes": 0}, "max_bytes must be positive"),
    ({"timeout": -1}, "timeout must be positive"),
    ({"max_redirects": -1}, "max_redirects must be 0 or more"),
])
def test_bad_arguments_name_the_parameter(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ToolsUsageError, match=message):
        PageFetcher(**kwargs)  # type: ignore[arg-type]


async def test_url_must_be_a_string() -> None:
    with pytest.raises(ToolsUsageError, match="url must be a string"):
        await PageFetcher().fetch(b"http://example.org/")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the fallback extractor


def test_stdlib_extractor_keeps_the_article_and_the_title() -> None:
    title, text = extract_with_stdlib(ARTICLE)
    assert title == "Rivers of Europe"
    assert text.startswith("Rivers of Europe\nThe Danube")
    for boilerplate in ("TRACKING-CODE", "color: red", "Navigation link", "Sidebar", "Copyright", "About us"):
        assert boilerplate not in text


def test_stdlib_extractor_without_main_markup_reads_the_body() -> None:
    title, text = extract_with_stdlib("<p>One &amp; two</p><script>x()</script><div>three<br>four</div>")
    assert (title, text) == ("", "One & two\nthree\nfour")


async def test_without_trafilatura_the_fetcher_uses_the_stdlib_extractor(
    web: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "trafilatura", None)  # what an install without the research extra sees
    _trafilatura.cache_clear()
    try:
        page = await _fetcher().fetch(web.url("/article.html"))
    finally:
        _trafilatura.cache_clear()
    assert page.title == "Rivers of Europe"
    assert page.text == extract_with_stdlib(ARTICLE)[1]
    assert "Danube" in page.text


# ------------------------------------------------------------------------------ https, pinned for real


@dataclass
class TlsSite:
    port: int
    site: _Site
    client_context: ssl.SSLContext
    server_names: list[str | None]  # the TLS SNI of each handshake


@pytest.fixture
def tls_site() -> Iterator[TlsSite]:
    """The site over https on 127.0.0.2, with a certificate for ``public.test`` only."""
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("public.test").configure_cert(server_context)
    server_names: list[str | None] = []
    server_context.sni_callback = lambda _sock, name, _ctx: server_names.append(name)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    site = _Site((SITE_IP, 0))
    site.socket = server_context.wrap_socket(site.socket, server_side=True)
    _start(site)
    yield TlsSite(site.server_address[1], site, client_context, server_names)
    site.shutdown()
    site.server_close()


async def test_https_connects_to_the_checked_address_and_verifies_the_name(tls_site: TlsSite) -> None:
    dns = FakeDns({"public.test": [[SITE_IP]]})
    fetcher = _fetcher(dns, ssl_context=tls_site.client_context)
    page = await fetcher.fetch(f"https://public.test:{tls_site.port}/article.html")
    assert "Danube" in page.text
    assert tls_site.server_names == ["public.test"]
    assert tls_site.site.requests == [("/article.html", f"public.test:{tls_site.port}")]


async def test_https_certificate_must_match_the_name_not_the_address(tls_site: TlsSite) -> None:
    dns = FakeDns({"other.test": [[SITE_IP]]})  # same address, but the certificate is for public.test
    fetcher = _fetcher(dns, ssl_context=tls_site.client_context)
    with pytest.raises(FetchError, match="CERTIFICATE_VERIFY_FAILED"):
        await fetcher.fetch(f"https://other.test:{tls_site.port}/article.html")
    assert tls_site.server_names == ["other.test"]
    assert tls_site.site.requests == []


def test_ssl_context_is_for_the_default_client_only() -> None:
    with pytest.raises(ToolsUsageError, match="ssl_context= is for the default client"):
        transport = httpx.MockTransport(lambda r: httpx.Response(200))
        PageFetcher(transport=transport, ssl_context=ssl.create_default_context())
