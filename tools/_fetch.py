"""Fetching a web page for research, safe against server-side request forgery (SSRF).

A research agent fetches URLs that came from search results or from a user, and page text it has
read can try to steer it, so a URL must never reach the machine's own network. :class:`PageFetcher`:

* accepts only ``http`` and ``https`` URLs without credentials in them;
* resolves the host itself and refuses it unless *every* address is public (see
  :mod:`tools._netguard`; one private record among public ones is enough to refuse);
* connects to an address it checked, not to the name: the request goes to ``http://<address>/…``
  with the original ``Host`` header and, for https, the original name as TLS SNI (certificates are
  still verified against the name), so DNS rebinding between the check and the connection cannot
  redirect it;
* follows redirects itself, at most :data:`MAX_REDIRECTS`, checking every target the same way;
* ignores the environment's proxy settings (``trust_env=False``);
* limits the bytes read off the wire (:data:`MAX_BODY_BYTES`), the bytes they decompress to
  (:data:`MAX_DECODED_BYTES`, so a gzip bomb stops early) and the time the whole fetch takes
  (:data:`TOTAL_TIMEOUT_SECONDS`);
* accepts only text pages (:data:`TEXT_CONTENT_TYPES`) and extracts the main text of HTML in a
  worker thread, from at most :data:`MAX_EXTRACT_CHARS` characters of it.

Refusals before connecting raise :class:`FetchBlockedError`; failures after, :class:`FetchError`.

``allowed_networks=`` lets an operator (or a test serving pages on loopback) allow named non-public
networks on purpose; everything outside them keeps being refused. ``transport=`` / ``http_client=``
replace the HTTP layer (tests use ``httpx.MockTransport``): requests they receive are already pinned,
so they see the checked address in the URL and the name in ``Host`` and the ``sni_hostname``
extension.
"""

from __future__ import annotations

import asyncio
import codecs
import re
import ssl
import zlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

import httpx

from tools._exceptions import FetchBlockedError, FetchError, ToolsUsageError
from tools._extract import extract_html
from tools._netguard import (
    IPAddress,
    IPNetwork,
    Resolver,
    checked_addresses,
    literal_address,
    parse_networks,
    system_resolver,
)

__all__ = [
    "ACCEPT_ENCODING",
    "ALLOWED_SCHEMES",
    "CONNECT_TIMEOUT_SECONDS",
    "HTML_CONTENT_TYPES",
    "MAX_ADDRESSES_TRIED",
    "MAX_BODY_BYTES",
    "MAX_DECODED_BYTES",
    "MAX_EXTRACT_CHARS",
    "MAX_REDIRECTS",
    "READ_TIMEOUT_SECONDS",
    "TEXT_CONTENT_TYPES",
    "TOTAL_TIMEOUT_SECONDS",
    "USER_AGENT",
    "Page",
    "PageFetcher",
]

#: URL schemes a fetch may use (for the first URL and every redirect target).
ALLOWED_SCHEMES = frozenset({"http", "https"})
#: Redirects followed before giving up (each target is checked like the first URL).
MAX_REDIRECTS = 5
#: Addresses of one host tried in turn when connecting fails (all of them were checked first).
MAX_ADDRESSES_TRIED = 3
#: Bytes read off the wire for one response body (compressed size); more is refused while streaming.
MAX_BODY_BYTES = 2 * 1024 * 1024
#: Bytes a body may decompress to: stops gzip/deflate bombs without inflating them.
MAX_DECODED_BYTES = 5 * 1024 * 1024
#: Characters of HTML handed to the main-text extractor, which is CPU-bound: a page this long takes
#: trafilatura about a second of one core (html.parser, a tenth of that).
MAX_EXTRACT_CHARS = 1_000_000
#: Wall-clock limit of a whole fetch: resolving, connecting, redirects, reading and extracting.
TOTAL_TIMEOUT_SECONDS = 20.0
#: Limit of one TCP (and TLS) connection attempt, and of one wait for bytes from the server.
CONNECT_TIMEOUT_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 10.0
#: Media types accepted as pages; anything else (images, PDFs, JSON, binaries) is refused.
TEXT_CONTENT_TYPES = frozenset({"text/html", "application/xhtml+xml", "text/plain", "text/markdown", "text/x-markdown"})
#: The media types whose main text is extracted; the others are returned as they are.
HTML_CONTENT_TYPES = frozenset({"text/html", "application/xhtml+xml"})
#: The content codings we can decode with a cap on the output (zlib's ``max_length``); we ask for these
#: only, and refuse a body in any other coding (br, zstd…) rather than decode it without a cap.
ACCEPT_ENCODING = "gzip, deflate"
USER_AGENT = "studiolm-agent/0.1 (research page fetcher)"

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# ``charset=`` in a Content-Type's parameters or in an HTML <meta> (either form) near the page's top.
_CHARSET = re.compile(rb"""charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


@dataclass(frozen=True)
class Page:
    """A fetched text page.

    ``url`` is the final URL (after redirects); ``redirects`` the URLs that answered with a redirect,
    in order, starting with the requested one (empty when there was none). ``content_type`` is the
    media type without parameters. ``title`` and ``text`` are the page's title and main text (``""``
    when it has none; plain-text pages have no title). ``size`` is the body's decoded size in bytes.
    """

    url: str
    status: int
    content_type: str
    title: str
    text: str
    size: int
    redirects: tuple[str, ...] = ()


class PageFetcher:
    """Fetches web pages without letting a URL reach a private, loopback or metadata address.

    ``resolver`` maps a host name to its addresses (plain or async callable; default: the system's
    ``getaddrinfo``). ``allowed_networks`` are non-public networks to allow anyway (an intranet, a
    test server on ``127.0.0.2/32``); default none. ``transport`` or ``http_client`` replaces the
    HTTP layer (give one at most); an ``http_client``'s own settings (proxies included) are the
    caller's choice, whereas the default client ignores environment proxies. ``ssl_context`` is the
    default client's TLS trust (default: certifi's CA bundle); certificates are always checked
    against the URL's host name. The limits default to the module's constants.
    """

    def __init__(
        self,
        http_client: httpx.AsyncClient | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        resolver: Resolver | None = None,
        allowed_networks: Iterable[str | IPNetwork] = (),
        max_redirects: int = MAX_REDIRECTS,
        max_bytes: int = MAX_BODY_BYTES,
        max_decoded_bytes: int = MAX_DECODED_BYTES,
        timeout: float = TOTAL_TIMEOUT_SECONDS,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if http_client is not None and transport is not None:
            raise ToolsUsageError("pass http_client= or transport=, not both")
        if ssl_context is not None and (http_client is not None or transport is not None):
            raise ToolsUsageError("ssl_context= is for the default client; configure TLS on your http_client/transport")
        for name, value in (("max_bytes", max_bytes), ("max_decoded_bytes", max_decoded_bytes), ("timeout", timeout)):
            if not value > 0:
                raise ToolsUsageError(f"{name} must be positive, got {value!r}")
        if max_redirects < 0:
            raise ToolsUsageError(f"max_redirects must be 0 or more, got {max_redirects!r}")
        self._http_client = http_client
        self._transport = transport
        self._resolver: Resolver = resolver if resolver is not None else system_resolver
        self._allowed = parse_networks(allowed_networks)
        self._max_redirects = max_redirects
        self._max_bytes = max_bytes
        self._max_decoded_bytes = max_decoded_bytes
        self._timeout = timeout
        self._ssl_context = ssl_context

    async def fetch(self, url: str) -> Page:
        """Fetch ``url`` and extract its main text.

        Raises :class:`FetchBlockedError` for a URL (or redirect target) it will not connect to, and
        :class:`FetchError` when the fetch fails (timeout, limits, content type, HTTP error status).
        """
        if not isinstance(url, str):
            raise ToolsUsageError(f"url must be a string, got {type(url).__name__}")
        try:
            async with asyncio.timeout(self._timeout):
                return await self._fetch(url)
        except TimeoutError:
            raise FetchError(url, f"took longer than {self._timeout:g} s") from None
        except httpx.TimeoutException as error:
            raise FetchError(url, f"timed out ({type(error).__name__})") from error
        except httpx.TransportError as error:
            raise FetchError(url, f"connection failed: {type(error).__name__}: {error}") from error

    async def _fetch(self, url: str) -> Page:
        client = self._client()
        try:
            return await self._follow(client, url)
        finally:
            if client is not self._http_client and self._transport is None:
                await client.aclose()  # our own client and transport; an injected transport stays open

    def _client(self) -> httpx.AsyncClient:
        if self._http_client is not None:
            return self._http_client
        # A client per fetch, without keep-alive: a connection pinned to one address and verified for
        # one TLS name is never reused for another name that happens to share the address.
        transport = self._transport or httpx.AsyncHTTPTransport(
            verify=self._tls(), trust_env=False, limits=httpx.Limits(max_keepalive_connections=0)
        )
        return httpx.AsyncClient(transport=transport, trust_env=False, follow_redirects=False)

    def _tls(self) -> ssl.SSLContext:
        if self._ssl_context is None:  # loading the CA bundle takes a while; once per fetcher is enough
            self._ssl_context = httpx.create_ssl_context(trust_env=False)
        return self._ssl_context

    async def _follow(self, client: httpx.AsyncClient, url: str) -> Page:
        current = _checked_url(url, url)
        redirects: list[str] = []
        while True:
            addresses = await self._addresses(url, current, redirected=bool(redirects))
            response = await _send(client, current, addresses[:MAX_ADDRESSES_TRIED])
            try:
                location = response.headers.get("location")
                if response.status_code not in _REDIRECT_STATUSES or location is None:
                    return await self._page(url, current, response, tuple(redirects))
                if len(redirects) >= self._max_redirects:
                    raise FetchError(url, f"more than {self._max_redirects} redirects")
                redirects.append(str(current))
                current = _checked_url(url, location, base=current)
            finally:
                await response.aclose()

    async def _addresses(self, url: str, current: httpx.URL, *, redirected: bool) -> list[IPAddress]:
        try:
            # The IDNA form: what the Host header carries, and what DNS knows the name as.
            return await checked_addresses(url, current.raw_host.decode("ascii"), self._resolver, self._allowed)
        except FetchBlockedError as error:
            if not redirected:
                raise
            raise FetchBlockedError(url, f"redirect to {current}: {error.reason}") from None

    async def _page(self, url: str, current: httpx.URL, response: httpx.Response, redirects: tuple[str, ...]) -> Page:
        status = response.status_code
        if not 200 <= status < 300:
            raise FetchError(url, f"the server answered HTTP {status}", status=status)
        media_type, _, params = response.headers.get("content-type", "").partition(";")
        media_type = media_type.strip().lower()
        if media_type not in TEXT_CONTENT_TYPES:
            raise FetchError(url, f"content type {media_type or '(none)'!r} is not a text page", status=status)
        body = await self._read_body(url, response)
        text = _decode(body, params, html=media_type in HTML_CONTENT_TYPES)
        title = ""
        if media_type in HTML_CONTENT_TYPES:
            title, text = await asyncio.to_thread(extract_html, text[:MAX_EXTRACT_CHARS])
        return Page(str(current), status, media_type, title, text, len(body), redirects)

    async def _read_body(self, url: str, response: httpx.Response) -> bytes:
        declared = response.headers.get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > self._max_bytes:
            raise FetchError(url, f"body of {declared} bytes is over the {self._max_bytes}-byte limit")
        coding = response.headers.get("content-encoding", "")
        if response.is_stream_consumed:  # built in memory (httpx.MockTransport): httpx already decoded it
            coding, chunks = "identity", _once(response.content)
        else:
            chunks = response.aiter_raw()
        decoder = _Decoder.for_coding(url, coding, self._max_decoded_bytes)
        body = bytearray()
        received = 0
        async for chunk in chunks:
            received += len(chunk)
            if received > self._max_bytes:
                raise FetchError(url, f"body is over the {self._max_bytes}-byte limit")
            body += decoder.decode(chunk)
        return bytes(body)


async def _send(client: httpx.AsyncClient, url: httpx.URL, addresses: list[IPAddress]) -> httpx.Response:
    """GET ``url`` from the first of ``addresses`` that accepts a connection (all of them are checked)."""
    for address in addresses[:-1]:
        try:
            return await client.send(_pinned_request(url, address), stream=True, follow_redirects=False)
        except (httpx.ConnectError, httpx.ConnectTimeout):
            continue  # e.g. an IPv6 address on a machine without an IPv6 route: try the next one
    return await client.send(_pinned_request(url, addresses[-1]), stream=True, follow_redirects=False)


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _checked_url(url: str, target: str, *, base: httpx.URL | None = None) -> httpx.URL:
    """``target`` (a redirect's Location is relative to ``base``) as a URL we may request."""
    redirect = "" if base is None else f"redirect to {target}: "
    try:
        parsed = base.join(target) if base is not None else httpx.URL(target)
    except (httpx.InvalidURL, ValueError) as error:
        raise FetchBlockedError(url, f"{redirect}not a valid URL ({error})") from None
    if parsed.scheme not in ALLOWED_SCHEMES:
        raise FetchBlockedError(url, f"{redirect}scheme {parsed.scheme or '(none)'!r} is not http or https")
    if parsed.userinfo:
        raise FetchBlockedError(url, f"{redirect}credentials in URLs are not sent")
    if not parsed.host:
        raise FetchBlockedError(url, f"{redirect}the URL has no host")
    literal = literal_address(parsed.host)
    if literal is not None and parsed.host != str(literal):
        parsed = parsed.copy_with(host=str(literal))  # http://2130706433/ is http://127.0.0.1/, as in browsers
    return parsed


def _pinned_request(url: httpx.URL, address: IPAddress) -> httpx.Request:
    """A GET of ``url`` sent to ``address``: the name goes only in the Host header and TLS SNI."""
    extensions: dict[str, object] = {
        "timeout": httpx.Timeout(READ_TIMEOUT_SECONDS, connect=CONNECT_TIMEOUT_SECONDS).as_dict(),
    }
    if url.scheme == "https" and url.raw_host.decode("ascii") != str(address):
        extensions["sni_hostname"] = url.raw_host.decode("ascii")
    headers = {
        "Host": url.netloc.decode("ascii"),
        "User-Agent": USER_AGENT,
        "Accept": ", ".join(sorted(TEXT_CONTENT_TYPES)) + ", */*;q=0.1",
        "Accept-Encoding": ACCEPT_ENCODING,
    }
    return httpx.Request("GET", url.copy_with(host=str(address), fragment=None), headers=headers, extensions=extensions)


def _decode(body: bytes, content_type_params: str, *, html: bool) -> str:
    """The body as text: the charset the Content-Type names, else an HTML ``<meta charset>``, else UTF-8."""
    charset = _charset(content_type_params.encode("latin-1", "replace"))
    if charset is None and html:
        charset = _charset(body[:4096])
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:  # a codec that is not a text encoding (charset=rot13, base64…)
        return body.decode("utf-8", errors="replace")


def _charset(text: bytes) -> str | None:
    """A known codec named by ``charset=`` in ``text``, else None (an unknown name is ignored)."""
    match = _CHARSET.search(text)
    if match is None:
        return None
    try:
        return codecs.lookup(match.group(1).decode("ascii")).name
    except LookupError:
        return None


class _Decoder:
    """Undoes one content coding, failing as soon as the output would pass ``limit`` bytes.

    zlib is given ``max_length`` so a bomb is never inflated past the limit, not even inside one
    chunk. A gzip body is one member (HTTP servers do not concatenate members; bytes after the
    first member are ignored, as browsers do).
    """

    def __init__(self, url: str, coding: str, wbits: int | None, limit: int) -> None:
        self._url = url
        self._coding = coding
        self._limit = limit
        self._produced = 0
        self._inflater = zlib.decompressobj(wbits) if wbits is not None else None
        self._sniffing = coding == "deflate"  # until the first bytes decode: zlib-wrapped or raw?

    @classmethod
    def for_coding(cls, url: str, header: str, limit: int) -> _Decoder:
        """The decoder for a ``Content-Encoding`` header value; FetchError for one we do not support."""
        coding = header.strip().lower()
        if coding in ("", "identity"):
            return cls(url, "identity", None, limit)
        if coding in ("gzip", "x-gzip"):
            return cls(url, coding, 16 + zlib.MAX_WBITS, limit)
        if coding == "deflate":
            return cls(url, coding, zlib.MAX_WBITS, limit)
        raise FetchError(url, f"content encoding {coding!r} is not supported (we ask for {ACCEPT_ENCODING})")

    def decode(self, chunk: bytes) -> bytes:
        """``chunk`` decoded; FetchError once the body decodes to more than the limit."""
        room = self._limit - self._produced
        output = chunk if self._inflater is None else self._inflate(chunk, room)
        self._produced += len(output)
        if self._produced > self._limit:
            raise FetchError(self._url, f"body decodes to more than the {self._limit}-byte limit")
        return output

    def _inflate(self, chunk: bytes, room: int) -> bytes:
        assert self._inflater is not None
        try:
            output = self._inflater.decompress(chunk, room + 1)  # room + 1: overflowing is detectable
        except zlib.error:
            if not self._sniffing:
                raise FetchError(self._url, f"the {self._coding} body is corrupt") from None
            # Some servers send raw deflate data without the zlib wrapper that HTTP asks for.
            self._sniffing = False
            self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
            return self._inflate(chunk, room)
        self._sniffing = False
        return output
