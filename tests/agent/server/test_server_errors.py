"""Every error status the server answers, in the OpenAI envelope, never a traceback or a secret."""

from __future__ import annotations

import json
import logging
import socket
from typing import Any

import pytest
import requests

from agent.models._openai import OpenAICompatibleBackend
from agent.server._limits import ServerLimits
from tests.agent.server.server_harness import (
    API_KEY,
    MODEL,
    FakeUpstream,
    ServerThread,
    SlowModel,
    StartServer,
    scripted_model,
)

QUESTION = [{"role": "user", "content": "Who directed 2001: A Space Odyssey?"}]
UPSTREAM_KEY = "sk-upstream-secret-4242"


def post(server: ServerThread, body: Any, *, key: str | None = API_KEY, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    headers.update(kwargs.pop("headers", {}))
    if not isinstance(body, bytes | str):
        body, headers["Content-Type"] = json.dumps(body), "application/json"
    headers.setdefault("Content-Type", "application/json")
    return requests.post(f"{server.url}/v1/chat/completions", data=body, headers=headers, timeout=30, **kwargs)


def envelope(response: requests.Response) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    # JSON-mode failures also carry every attempt (raw output and errors); nothing else is added.
    extra = {"attempts"} if body["error"].get("code") == "output_validation_failed" else set()
    assert set(body["error"]) == {"message", "type", "param", "code", *extra}
    assert "Traceback" not in response.text
    return body["error"]  # type: ignore[no-any-return]


def request(**overrides: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": QUESTION, **overrides}


@pytest.mark.parametrize(("overrides", "param"), [
    ({"temperature": 3}, "temperature"),
    ({"top_p": -0.1}, "top_p"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"max_tokens": ServerLimits().max_tokens + 1}, "max_tokens"),
    ({"max_tokens": 1.5}, "max_tokens"),
    ({"messages": []}, "messages"),
    ({"messages": "hi"}, "messages"),
    ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "messages[0].content[0].image_url"),
    ({"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]}, "messages[0].content[0].input_audio"),
    ({"web_search": "always"}, "web_search"),
    ({"stream": "yes"}, "stream"),
    ({"response_format": "xml"}, "response_format"),
    ({"model": ""}, "model"),
    ({"model": None}, "model"),
    ({"n": 99}, "n"),
    ({"user": 5}, "user"),
    ({"stream_options": {"include_usage": "yes"}}, "stream_options.include_usage"),
    ({"seed": "x"}, "seed"),
    ({"max_completion_tokens": 0}, "max_completion_tokens"),
    ({"max_completion_tokens": ServerLimits().max_tokens + 1}, "max_completion_tokens"),
    ({"metadata": {"k": 5}}, "metadata.k"),
    ({"top_logprobs": 21}, "top_logprobs"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
])
def test_bad_parameter_is_400_naming_it(docs_server: ServerThread, overrides: dict[str, Any], param: str) -> None:
    response = post(docs_server, request(**overrides))
    assert response.status_code == 400
    error = envelope(response)
    assert error["param"] == param
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith(param)


@pytest.mark.parametrize("missing", ["model", "messages"])
def test_missing_required_parameter_is_400(docs_server: ServerThread, missing: str) -> None:
    body = request()
    del body[missing]
    response = post(docs_server, body)
    assert response.status_code == 400
    assert envelope(response)["param"] == missing


def test_too_many_messages_is_400(start_server: StartServer) -> None:
    server = start_server(scripted_model(), api_keys=[], limits=ServerLimits(max_messages=3))
    response = post(server, request(messages=QUESTION * 4), key=None)
    assert response.status_code == 400
    assert envelope(response)["param"] == "messages"
    assert post(server, request(messages=QUESTION * 3), key=None).status_code == 200


@pytest.mark.parametrize("body", [
    b"{not json", b"", b"\xff\xfe{}", b"[" * 100_000 + b"]" * 100_000, b'{"model": 1e999999, "x": 1' + b"1" * 5000,
])
def test_body_that_is_not_json_is_400(docs_server: ServerThread, body: bytes) -> None:
    response = post(docs_server, body)
    assert response.status_code == 400
    assert envelope(response)["code"] == "invalid_json"


@pytest.mark.parametrize("body", [[1, 2], "text", 42, None])
def test_body_that_is_not_an_object_is_400(docs_server: ServerThread, body: Any) -> None:
    response = post(docs_server, json.dumps(body))
    assert response.status_code == 400
    assert envelope(response)["message"] == "the request body must be a JSON object"


def test_null_means_default_and_openai_extras_are_accepted(docs_server: ServerThread) -> None:
    nulls = dict.fromkeys(["temperature", "max_tokens", "stream", "top_p", "frequency_penalty", "presence_penalty",
                           "web_search", "response_format", "user", "n", "stream_options"])
    assert post(docs_server, request(**nulls)).status_code == 200
    extras = {"user": "u-1", "n": 1, "stream_options": {"include_usage": True}}
    response = post(docs_server, request(**extras, stream=True))
    assert response.status_code == 200
    assert response.text.endswith("data: [DONE]\n\n")


def test_wrong_content_type_is_415(docs_server: ServerThread) -> None:
    response = post(docs_server, json.dumps(request()), headers={"Content-Type": "text/plain"})
    assert response.status_code == 415
    assert envelope(response)["code"] == "unsupported_media_type"
    ok = post(docs_server, json.dumps(request()), headers={"Content-Type": "Application/JSON; charset=utf-8"})
    assert ok.status_code == 200


def test_unknown_model_is_404_listing_the_available_ones(docs_server: ServerThread) -> None:
    response = post(docs_server, request(model="gpt-nope"))
    assert response.status_code == 404
    error = envelope(response)
    assert (error["param"], error["code"]) == ("model", "model_not_found")
    assert MODEL in error["message"]


def test_served_models_can_be_restricted(start_server: StartServer) -> None:
    server = start_server(scripted_model(), api_keys=[], models=["other-model"])
    response = post(server, request(), key=None)
    assert response.status_code == 404
    assert "other-model" in envelope(response)["message"]
    listed = requests.get(f"{server.url}/v1/models", timeout=10).json()
    assert listed == {"object": "list", "data": []}


def test_unknown_route_is_404_and_wrong_method_405(docs_server: ServerThread) -> None:
    auth = {"Authorization": f"Bearer {API_KEY}"}
    missing = requests.get(f"{docs_server.url}/v1/engines", headers=auth, timeout=10)
    assert missing.status_code == 404
    assert envelope(missing)["code"] == "not_found"
    wrong = requests.get(f"{docs_server.url}/v1/chat/completions", headers=auth, timeout=10)
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "POST"
    assert envelope(wrong)["code"] == "method_not_allowed"


def test_json_output_that_never_validates_is_422(docs_server: ServerThread) -> None:
    response = post(docs_server, request(response_format="json"))
    assert response.status_code == 422
    error = envelope(response)
    assert (error["type"], error["code"]) == ("invalid_output_error", "output_validation_failed")
    assert len(error["attempts"]) == 3  # the first answer and two re-asks, each with its raw output and errors
    assert all(a["valid"] is False and a["errors"] and "output" in a for a in error["attempts"])


def test_json_output_that_never_validates_before_the_stream_starts_is_a_422(docs_server: ServerThread) -> None:
    # JSON-mode attempts stream as steps, never as content, so a quick failure is still a status.
    response = post(docs_server, request(response_format="json", stream=True))
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "output_validation_failed"


def test_json_output_that_never_validates_mid_stream_is_one_error_event(start_server: StartServer) -> None:
    slow = SlowModel(["not ", "json"], word_delay=0.3)
    server = start_server(slow, api_keys=[API_KEY], limits=ServerLimits(stream_hold=0.1))
    response = post(server, request(response_format="json", stream=True))
    assert response.status_code == 200  # the steps were already on their way
    events = [e for e in response.text.split("\n\n") if e]
    assert events[-1].startswith('data: {"error":')
    assert json.loads(events[-1][6:])["error"]["code"] == "output_validation_failed"
    assert sum(e.startswith('data: {"error"') for e in events) == 1
    assert "[DONE]" not in response.text


# --- The upstream (an OpenAI-compatible server behind us) ---------------------------------------------

def upstream_server(start_server: StartServer, base_url: str, timeout: float = 5.0) -> ServerThread:
    backend = OpenAICompatibleBackend(UPSTREAM_KEY, base_url, max_retries=0, timeout=timeout)
    return start_server(backend, api_keys=[API_KEY])


@pytest.mark.parametrize(("upstream_status", "status", "code"), [
    (500, 502, "upstream_error"),
    (503, 502, "upstream_error"),
    (401, 502, "upstream_auth_failed"),
    (404, 502, "upstream_not_found"),
    (429, 429, "upstream_rate_limited"),
    (400, 400, "upstream_rejected_parameter"),
])
@pytest.mark.parametrize("stream", [False, True])
def test_upstream_error_statuses(start_server: StartServer, upstream: tuple[FakeUpstream, ServerThread],
                                 upstream_status: int, status: int, code: str, stream: bool) -> None:
    fake, fake_server = upstream
    fake.mode, fake.status = "status", upstream_status
    # Upstreams quote the key they refused; it must not come through.
    fake.error_body = {"error": {"message": f"Incorrect API key provided: {UPSTREAM_KEY}", "param": "model"}}
    server = upstream_server(start_server, f"{fake_server.url}/v1")
    response = post(server, request(stream=stream))
    assert response.status_code == status  # even when streaming: the failure came before any token
    error = envelope(response)
    assert error["code"] == code or (upstream_status >= 500 and error["code"] == "upstream_error")
    assert UPSTREAM_KEY not in response.text
    assert fake.calls[0].authorization == f"Bearer {UPSTREAM_KEY}"


def test_upstream_unreachable_is_502(start_server: StartServer) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = upstream_server(start_server, f"http://127.0.0.1:{port}/v1")
    response = post(server, request())
    assert response.status_code == 502
    assert envelope(response)["code"] == "upstream_unreachable"


def test_upstream_timeout_is_504(start_server: StartServer, upstream: tuple[FakeUpstream, ServerThread]) -> None:
    fake, fake_server = upstream
    server = upstream_server(start_server, f"{fake_server.url}/v1", timeout=0.3)
    requests.get(f"{server.url}/v1/models", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10)
    fake.mode = "hang"
    response = post(server, request())
    assert response.status_code == 504
    assert envelope(response)["code"] == "upstream_timeout"


def test_upstream_rate_limit_passes_retry_after(start_server: StartServer,
                                                upstream: tuple[FakeUpstream, ServerThread]) -> None:
    fake, fake_server = upstream
    fake.mode, fake.status = "status", 429
    server = upstream_server(start_server, f"{fake_server.url}/v1")
    response = post(server, request())
    assert response.status_code == 429
    assert envelope(response)["type"] == "rate_limit_error"


class CrashingModel(SlowModel):
    """A backend with a bug: it raises an exception that is not one of ours, quoting a secret."""

    async def list_models(self) -> list[str]:
        return [MODEL]

    def stream(self, request: Any) -> Any:
        raise RuntimeError(f"bug while holding {UPSTREAM_KEY}")


@pytest.mark.parametrize("stream", [False, True])
def test_unexpected_error_is_a_generic_500_and_the_log_keeps_the_secret_out(
    start_server: StartServer, caplog: pytest.LogCaptureFixture, stream: bool
) -> None:
    caplog.set_level(logging.DEBUG)
    server = start_server(CrashingModel(), api_keys=[API_KEY])
    response = post(server, request(stream=stream))
    assert response.status_code == 500
    error = envelope(response)
    assert (error["type"], error["code"]) == ("server_error", "internal_error")
    assert UPSTREAM_KEY not in response.text and "RuntimeError" not in response.text
    assert "RuntimeError" in caplog.text  # the operator learns what broke, and where...
    assert UPSTREAM_KEY not in caplog.text  # ...but not the message, which may quote anything


def test_no_secret_in_any_body_or_log(start_server: StartServer, upstream: tuple[FakeUpstream, ServerThread],
                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fake, fake_server = upstream
    server = upstream_server(start_server, f"{fake_server.url}/v1")
    texts = [post(server, request()).text, post(server, request(stream=True)).text]
    fake.mode, fake.status = "status", 401
    fake.error_body = {"error": {"message": f"Incorrect API key provided: {UPSTREAM_KEY}"}}
    texts += [post(server, request()).text, post(server, request(), key="sk-wrong-" + API_KEY).text,
              post(server, request(), key=API_KEY + "x").text]
    for text in [*texts, caplog.text]:
        assert UPSTREAM_KEY not in text
        assert API_KEY not in text
