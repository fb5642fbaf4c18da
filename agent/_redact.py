"""Credentials never leave in text we print: URL userinfo and query-string values are redacted.

An upstream URL may carry a secret (``http://admin:pw@host/v1``, ``https://host/v1?api_key=...``).
Every message, log line or error that names such a URL shows :func:`redact_url` of it, and text we
relay from elsewhere (an httpx error, an upstream's echo) passes :func:`redact_secrets` first.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable

__all__ = ["REDACTED", "redact_secrets", "redact_url", "url_secrets"]

#: What stands in place of a secret.
REDACTED = "[redacted]"


def redact_url(url: str) -> str:
    """``url`` without its secrets: the userinfo and every query value become ``[redacted]``.

    Query values are all redacted, not only the ones whose names look secret (``api_key``, ``sig``,
    ``token``...): no list of names is complete, and the names alone are enough to debug with.
    """
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rpartition('@')[2]}"
    query = parts.query
    if query:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
        query = "&".join(f"{name}={REDACTED}" for name, _ in pairs) or REDACTED
    fragment = REDACTED if parts.fragment else ""
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def url_secrets(url: str) -> list[str]:
    """The secret pieces of ``url`` (raw and percent-decoded): its userinfo and query values."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return [url]
    found: list[str] = []
    if "@" in parts.netloc:
        userinfo = parts.netloc.rpartition("@")[0]
        found += [userinfo, urllib.parse.unquote(userinfo)]
        found += [piece for piece in userinfo.split(":") if piece]
    for raw in parts.query.split("&"):
        value = raw.partition("=")[2]
        if value:
            found += [value, urllib.parse.unquote_plus(value)]
    if parts.fragment:
        found.append(parts.fragment)
    # Longest first, so a whole userinfo is replaced before its pieces are.
    return sorted({secret for secret in found if len(secret) >= 2}, key=len, reverse=True)


def redact_secrets(text: str, url: str, extra: Iterable[str | None] = ()) -> str:
    """``text`` with ``url`` shown redacted and every secret of it (and of ``extra``) replaced."""
    text = text.replace(url, redact_url(url))
    for secret in [*url_secrets(url), *(s for s in extra if s)]:
        text = text.replace(secret, REDACTED)
    return text
