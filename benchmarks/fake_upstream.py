"""A fixed-latency fake OpenAI-compatible upstream on loopback, for extraction tests and benchmarks.

``FakeUpstream(delay=0.1)`` serves ``GET /v1/models`` (one model, ``"fake"``) and ``POST
/v1/chat/completions``: it sleeps ``delay`` seconds, then answers one JSON completion (not a stream;
the backend understands both). It counts requests and the most it ever had in flight at once
(``max_in_flight``), which is how tests see that calls overlap without timing anything.

``python -m benchmarks.fake_upstream --delay 0.1`` serves it in a process of its own (so its threads
do not compete with the client for the GIL) and prints its base URL; ``GET /stats`` returns the
counters and ``POST /reset`` zeroes them.

The default reply reads ``key: value`` lines from the document in the prompt (numbers become numbers)
and answers them as the record (``[a, b]`` becomes a list), wrapped with an evidence map when the prompt asks for one. A
document containing ``UNPARSEABLE`` gets a reply that is not JSON.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeUpstream", "key_value_reply"]

_DOCUMENT = re.compile(r"<document>\n(.*)\n</document>", re.DOTALL)
_FIELD = re.compile(r"^(\w+):[ \t]*(.+?)[ \t]*$", re.MULTILINE)


def key_value_reply(messages: list[dict[str, Any]]) -> str:
    """The record of ``key: value`` lines in the prompt's document (see the module docstring)."""
    found = [m for m in (_DOCUMENT.search(str(m.get("content", ""))) for m in messages) if m]  # re-asks come after
    document = found[0].group(1) if found else str(messages[-1].get("content", ""))
    if "UNPARSEABLE" in document:
        return "I cannot find a record here."
    record: dict[str, Any] = {}
    evidence: dict[str, str] = {}
    for match in _FIELD.finditer(document):
        key, value = match.group(1), match.group(2)
        record[key] = _value(value)
        evidence[key] = match.group(0)
    wants_evidence = any('"record"' in str(m.get("content", "")) for m in messages if m.get("role") == "system")
    return json.dumps({"record": record, "evidence": evidence} if wants_evidence else record)


def _value(text: str) -> Any:
    if text.isdigit():
        return int(text)
    if text.startswith("[") and text.endswith("]"):
        return [item.strip() for item in text[1:-1].split(",") if item.strip()]
    return text


class FakeUpstream:
    """The server (a thread per request); use as a context manager. ``base_url`` ends in ``/v1``."""

    def __init__(self, delay: float = 0.0, reply: Callable[[list[dict[str, Any]]], str] = key_value_reply) -> None:
        self.delay = delay
        self.reply = reply
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> FakeUpstream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reset(self) -> None:
        """Zero the counters."""
        with self._lock:
            self.requests = self.max_in_flight = 0

    def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        """Answer one chat-completions request body (after the delay)."""
        with self._lock:
            self.requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            time.sleep(self.delay)
            content = self.reply(body.get("messages", []))
        finally:
            with self._lock:
                self.in_flight -= 1
        words = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
        return {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model", "fake"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": words, "completion_tokens": len(content.split()),
                          "total_tokens": words + len(content.split())}}


def _handler(upstream: FakeUpstream) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out as separate writes: without this, Nagle's algorithm meets the client's
        # delayed ACK and every response waits ~40 ms.
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            if self.path == "/stats":
                self._json({"requests": upstream.requests, "max_in_flight": upstream.max_in_flight})
            elif self.path.rstrip("/").endswith("/models"):
                self._json({"object": "list", "data": [{"id": "fake", "object": "model", "owned_by": "fake"}]})
            else:
                self._json({"error": {"message": "not found"}}, status=404)

        def do_POST(self) -> None:
            if self.path == "/reset":
                upstream.reset()
                self._json({})
                return
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
            self._json(upstream.complete(body))

        def _json(self, value: Any, status: int = 200) -> None:
            data = json.dumps(value).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return  # quiet

    return Handler


def _serve(argv: list[str]) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="a fixed-latency fake OpenAI-compatible upstream")
    parser.add_argument("--delay", type=float, default=0.1)
    args = parser.parse_args(argv)
    with FakeUpstream(delay=args.delay) as upstream:
        print(upstream.base_url, flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    import sys

    _serve(sys.argv[1:])
