"""A stand-in for the primp HTTP client inside ddgs: canned responses, recorded requests.

Used by the ``fake_web`` fixture in conftest.py; tests import the types from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Canned:
    """A canned HTTP response, shaped like the primp response ddgs reads (status, bytes, text)."""

    status_code: int = 200
    text: str = ""

    @property
    def content(self) -> bytes:
        return self.text.encode()


@dataclass(frozen=True)
class SentRequest:
    """One request ddgs sent: method, URL and its query parameters / form data."""

    method: str
    url: str
    params: dict[str, str]
    data: dict[str, str]


Reply = Canned | BaseException


@dataclass
class FakeWeb:
    """Answers ddgs' HTTP requests from routes (URL prefix -> replies), recording every request.

    A route's replies are used in turn, the last one repeating; an exception reply is raised the way
    primp raises it. Unrouted URLs get ``default`` (404 unless a test sets it, e.g. to a DNS error).
    """

    routes: dict[tuple[str, str], list[Reply]] = field(default_factory=dict)
    default: Reply = field(default_factory=lambda: Canned(404, "not found"))
    requests: list[SentRequest] = field(default_factory=list)

    def route(self, method: str, url_prefix: str, *replies: Reply) -> None:
        self.routes[(method, url_prefix)] = list(replies)

    def urls(self, method: str | None = None) -> list[str]:
        return [r.url for r in self.requests if method is None or r.method == method]

    # The primp.Client surface ddgs uses.
    def request(self, method: str, url: str, **kwargs: Any) -> Canned:
        self.requests.append(SentRequest(method, url, dict(kwargs.get("params") or {}),
                                         dict(kwargs.get("data") or {})))
        reply = self._reply(method, url)
        if isinstance(reply, BaseException):
            raise reply
        return reply

    def headers_update(self, headers: Any) -> None:
        pass

    def set_cookies(self, url: str, cookies: Any) -> None:
        pass

    def _reply(self, method: str, url: str) -> Reply:
        matches = [key for key in self.routes if key[0] == method and url.startswith(key[1])]
        if not matches:
            return self.default
        replies = self.routes[max(matches, key=lambda key: len(key[1]))]
        return replies.pop(0) if len(replies) > 1 else replies[0]
