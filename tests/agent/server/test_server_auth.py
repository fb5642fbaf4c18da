"""API keys (bearer, constant-time, malformed headers are 401) and the loopback-only rule without keys."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests

from agent import AsyncClient, BadRequestError
from agent.server._app import serve
from agent.server._auth import check_bind, is_loopback_host, resolve_api_keys
from tests.agent.server.server_harness import (
    ANSWER,
    API_KEY,
    MODEL,
    FakeUpstream,
    ServerThread,
    StartServer,
    body_of,
    raw_request,
    scripted_model,
    status_of,
)

BODY = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}).encode()


def chat(host: bytes, *headers: bytes, body: bytes = BODY) -> bytes:
    lines = [b"POST /v1/chat/completions HTTP/1.1", b"Host: " + host, b"Content-Type: application/json",
             b"Content-Length: " + str(len(body)).encode(), b"Connection: close", *headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def host_of(server: ServerThread) -> bytes:
    return f"127.0.0.1:{server.port}".encode()


@pytest.mark.parametrize("authorization", [
    None,
    b"Authorization: Bearer sk-wrong",
    b"Authorization: Bearer " + API_KEY.encode() + b"x",
    b"Authorization: Bearer " + API_KEY.encode()[:-1],
    b"Authorization: Bearer ",
    b"Authorization: Bearer",
    b"Authorization: ",
    b"Authorization: Basic " + API_KEY.encode(),
    b"Authorization: " + API_KEY.encode(),
    b"Authorization: Bearer \xff\xfe\xc3\x28" + API_KEY.encode(),  # not ASCII, not even UTF-8
    b"Authorization: Bearer sk-t\xc3\xa9st",
    b"Authorization: Bearer " + API_KEY.encode() + b" extra",
])
def test_missing_or_malformed_authorization_is_401(docs_server: ServerThread, authorization: bytes | None) -> None:
    response = raw_request(docs_server.url, chat(host_of(docs_server), *([authorization] if authorization else [])))
    assert status_of(response) == 401
    assert b"www-authenticate: Bearer" in response
    error = body_of(response)["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "invalid_api_key")
    assert API_KEY.encode() not in response


def test_two_authorization_headers_are_401(docs_server: ServerThread) -> None:
    good = b"Authorization: Bearer " + API_KEY.encode()
    assert status_of(raw_request(docs_server.url, chat(host_of(docs_server), good, good))) == 401


@pytest.mark.parametrize("authorization", [
    b"Authorization: Bearer " + API_KEY.encode(),
    b"authorization: bearer " + API_KEY.encode(),
    b"Authorization: BEARER   " + API_KEY.encode() + b"  ",
])
def test_valid_key_in_any_spelling_of_the_scheme_is_accepted(docs_server: ServerThread, authorization: bytes) -> None:
    response = raw_request(docs_server.url, chat(host_of(docs_server), authorization))
    assert status_of(response) == 200
    assert body_of(response)["choices"][0]["message"]["content"] == ANSWER


def test_any_of_several_keys_works_and_health_needs_none(start_server: StartServer) -> None:
    server = start_server(scripted_model(), api_keys=["sk-one", "sk-two"])
    for key in ("sk-one", "sk-two"):
        response = requests.get(f"{server.url}/v1/models", headers={"Authorization": f"Bearer {key}"}, timeout=10)
        assert response.status_code == 200
    assert requests.get(f"{server.url}/v1/models", timeout=10).status_code == 401
    for path in ("/health", "/v1/health", "/openapi.json"):
        assert requests.get(server.url + path, timeout=10).status_code == 200
    assert requests.get(f"{server.url}/health", timeout=10).json() == {"status": "ok"}


def test_keys_come_from_the_environment(start_server: StartServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUDIOLM_SERVER_API_KEYS", " sk-env-1 , sk-env-2 ,")
    server = start_server(scripted_model())
    auth = {"Authorization": "Bearer sk-env-2"}
    assert requests.get(f"{server.url}/v1/models", headers=auth, timeout=10).status_code == 200
    assert requests.get(f"{server.url}/v1/models", timeout=10).status_code == 401


def test_resolve_api_keys() -> None:
    assert resolve_api_keys(None, {"STUDIOLM_SERVER_API_KEYS": "a,b, a ,,"}) == (b"a", b"b")
    assert resolve_api_keys([], {"STUDIOLM_SERVER_API_KEYS": "a"}) == ()  # given, even empty, wins
    assert resolve_api_keys(None, {}) == ()
    for bad in (["has space"], ["tab\tkey"], ["clé"], ["a,b"]):
        with pytest.raises(BadRequestError) as info:
            resolve_api_keys(bad)
        assert info.value.param == "api_keys"


# --- No key: loopback only ----------------------------------------------------------------------------

@pytest.mark.parametrize("host", [b"evil.example", b"evil.example:8000", b"127.0.0.1.evil.example",
                                  b"10.0.0.1", b"[::ffff:7f00:1]x", b"local\xc3\xa9host", b""])
def test_without_keys_a_foreign_host_header_is_403(start_server: StartServer, host: bytes) -> None:
    server = start_server(scripted_model(), api_keys=[])
    response = raw_request(server.url, chat(host))
    assert status_of(response) == 403
    assert body_of(response)["error"]["code"] == "host_not_allowed"


def test_without_keys_a_missing_host_header_is_403(start_server: StartServer) -> None:
    server = start_server(scripted_model(), api_keys=[])
    request = b"GET /health HTTP/1.0\r\n\r\n"
    assert status_of(raw_request(server.url, request)) == 403


@pytest.mark.parametrize("host", [b"localhost", b"localhost:8000", b"127.0.0.1", b"127.0.0.2:1",
                                  b"[::1]:8000", b"LOCALHOST:9"])
def test_without_keys_loopback_host_headers_are_served(start_server: StartServer, host: bytes) -> None:
    server = start_server(scripted_model(), api_keys=[])
    assert status_of(raw_request(server.url, chat(host))) == 200


def test_with_keys_any_host_is_fine(docs_server: ServerThread) -> None:
    response = raw_request(docs_server.url, chat(b"api.example.com", b"Authorization: Bearer " + API_KEY.encode()))
    assert status_of(response) == 200


def test_loopback_rules() -> None:
    assert all(map(is_loopback_host, ["localhost", "127.0.0.1", "127.1.2.3", "::1", "[::1]"]))
    assert not any(map(is_loopback_host, ["0.0.0.0", "::", "10.1.1.1", "example.com", "localhost.example"]))
    check_bind("127.0.0.1", ())
    check_bind("0.0.0.0", (b"key",))
    with pytest.raises(BadRequestError) as info:
        check_bind("0.0.0.0", ())
    assert info.value.param == "host"


def test_serve_refuses_a_public_address_without_keys_before_binding() -> None:
    client = AsyncClient(backend=scripted_model(), search="none")
    with pytest.raises(BadRequestError, match="refusing to listen"):
        asyncio.run(serve(client, host="0.0.0.0", port=1, api_keys=[]))


# --- The `studiolm serve` command ---------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_cli_refuses_a_public_address_without_keys() -> None:
    env = {k: v for k, v in os.environ.items() if k != "STUDIOLM_SERVER_API_KEYS"}
    done = subprocess.run([sys.executable, "-c", "from agent._cli import main; raise SystemExit(main())",
                           "serve", "--host", "0.0.0.0"], capture_output=True, text=True, env=env, timeout=60,
                          check=False)
    assert done.returncode == 2
    assert "refusing to listen on '0.0.0.0' without an API key" in done.stderr


def test_cli_serves_an_openai_compatible_upstream(upstream: tuple[FakeUpstream, ServerThread]) -> None:
    fake, fake_server = upstream
    port = _free_port()
    env = {**os.environ, "STUDIOLM_BASE_URL": f"{fake_server.url}/v1", "STUDIOLM_API_KEY": "sk-upstream-cli",
           "STUDIOLM_SEARCH": "none", "STUDIOLM_SERVER_API_KEYS": API_KEY}
    process = subprocess.Popen(
        [sys.executable, "-c", "from agent._cli import main; raise SystemExit(main())",
         "serve", "--port", str(port), "--model", MODEL],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{url}/health", timeout=1)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline and process.poll() is None, "studiolm serve did not start"
                time.sleep(0.1)
        auth = {"Authorization": f"Bearer {API_KEY}"}
        response = requests.post(f"{url}/v1/chat/completions", headers=auth, timeout=30,
                                 json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]})
        assert response.status_code == 200, response.text
        assert response.json()["choices"][0]["message"]["content"] == ANSWER
        assert fake.calls[0].authorization == "Bearer sk-upstream-cli"
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode in (0, 130), stderr  # uvicorn hands the Ctrl-C back; the CLI exits 130
    assert '"POST /v1/chat/completions" 200' in stderr  # our access log line
    assert API_KEY not in stderr and "sk-upstream-cli" not in stderr
