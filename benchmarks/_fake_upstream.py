"""A fast fake OpenAI-compatible upstream: ``python -m benchmarks._fake_upstream PORT [--words N] [--delay S]``.

A bare :mod:`asyncio` protocol speaking just enough HTTP/1.1 (keep-alive, Content-Length bodies)
to answer ``POST …/chat/completions`` and ``GET …/models`` with canned bytes prepared at start-up:
``stream: true`` gets ``--words`` SSE chunks (chunked transfer encoding, one socket write unless
``--delay`` spaces the chunks out), anything else one JSON completion. No framework, no JSON
encoding per request, so that it costs far less per request than anything measured against it
(the harness measures it alone to show that).
"""

from __future__ import annotations

import argparse
import asyncio
import json

MODEL = "bench-model"


def _chunked(payload: bytes) -> bytes:
    return f"{len(payload):x}\r\n".encode() + payload + b"\r\n"


def canned(words: int) -> tuple[bytes, list[bytes], bytes]:
    """(non-stream response, stream response pieces, models response), headers included."""
    usage = {"prompt_tokens": 5, "completion_tokens": words, "total_tokens": words + 5}
    completion = json.dumps({
        "id": "chatcmpl-up", "object": "chat.completion", "created": 1700000000, "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "word " * words},
                     "finish_reason": "stop", "logprobs": None}],
        "usage": usage,
    }).encode()
    base = {"id": "chatcmpl-up", "object": "chat.completion.chunk", "created": 1700000000, "model": MODEL}
    chunk = {**base, "choices": [{"index": 0, "delta": {"content": "word "}, "finish_reason": None}]}
    first = {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}
    final = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": usage}
    events = [first] + [chunk] * words + [final]
    pieces = [_chunked(b"data: " + json.dumps(e).encode() + b"\n\n") for e in events]
    pieces.append(_chunked(b"data: [DONE]\n\n") + b"0\r\n\r\n")
    pieces[0] = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
                 + pieces[0])
    models = json.dumps({"object": "list", "data": [{"id": MODEL, "object": "model", "created": 0,
                                                     "owned_by": "bench"}]}).encode()
    return _response(completion), pieces, _response(models)


def _response(body: bytes) -> bytes:
    return (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            + f"content-length: {len(body)}\r\n\r\n".encode() + body)


class _Upstream(asyncio.Protocol):
    def __init__(self, answers: tuple[bytes, list[bytes], bytes], delay: float) -> None:
        self.answers, self.delay = answers, delay
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4:end + 4 + length]
            self.buffer = self.buffer[end + 4 + length:]
            self.answer(head.split(" ", 2)[1], body)

    def answer(self, path: str, body: bytes) -> None:
        assert self.transport is not None
        completion, pieces, models = self.answers
        if path.endswith("/models"):
            self.transport.write(models)
        elif not _wants_stream(body):
            self.transport.write(completion)
        elif self.delay <= 0:
            self.transport.write(b"".join(pieces))
        else:
            asyncio.get_running_loop().create_task(self.trickle(pieces))

    async def trickle(self, pieces: list[bytes]) -> None:
        for piece in pieces:
            if self.transport is None or self.transport.is_closing():
                return
            self.transport.write(piece)
            await asyncio.sleep(self.delay)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


def _wants_stream(body: bytes) -> bool:
    if b'"stream"' not in body:
        return False
    try:
        return bool(json.loads(body).get("stream"))
    except ValueError:
        return False


async def serve(port: int, words: int, delay: float) -> None:
    answers = canned(words)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Upstream(answers, delay), "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--words", type=int, default=20)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds between streamed chunks")
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.words, args.delay))


if __name__ == "__main__":
    main()
