"""The field sweep (issue 9, deliverable 6): every field of OpenAI's chat-completions request
(``openai_fields.FIELDS``, plus the server extras) and every message role/part
(``openai_fields.MESSAGE_EXAMPLES``), posted with a valid value.

* Over an OpenAI-compatible upstream: 200, and the upstream received the field (where ``upstream`` is
  "forwarded").
* Over the local (scripted) model: 200 with the answer where ``local`` is "applied"/"no-op"; a 400
  naming the field where it is "400".

The cases that fail against today's server are strict xfails (``FAILING_TODAY``): when a feature
lands they XPASS, which fails the run and says to drop the entry.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from agent import ScriptedModel
from tests.agent.server.server_harness import ServerThread
from tests.compat.conftest import ANSWER, API_KEY, MODEL, PERSON, Compat
from tests.compat.openai_fields import FIELDS, MESSAGE_EXAMPLES, SERVER_EXTRAS, FieldSpec, MessageExample

USER = [{"role": "user", "content": "Hi"}]
HEADERS = {"Authorization": f"Bearer {API_KEY}"}

# Case ids (field[i] / messages:id) that today's server gets wrong; measured 2026-12-02 on `compat`.
FAILING_TODAY_UPSTREAM: set[str] = set()
FAILING_TODAY_LOCAL: set[str] = set()
REASON = "issue 9: field not accepted/forwarded yet"


def _field_cases(where: str) -> list[Any]:
    failing = FAILING_TODAY_UPSTREAM if where == "upstream" else FAILING_TODAY_LOCAL
    cases = []
    for spec in FIELDS + SERVER_EXTRAS:
        for i, example in enumerate(spec["examples"]):
            case_id = f"{spec['name']}[{i}]"
            marks = [pytest.mark.xfail(strict=True, reason=REASON)] if case_id in failing else []
            cases.append(pytest.param(spec, example, id=case_id, marks=marks))
    return cases


def _message_cases(where: str) -> list[Any]:
    failing = FAILING_TODAY_UPSTREAM if where == "upstream" else FAILING_TODAY_LOCAL
    return [pytest.param(ex, id=f"messages:{ex['id']}", marks=[pytest.mark.xfail(strict=True, reason=REASON)]
                         if f"messages:{ex['id']}" in failing else []) for ex in MESSAGE_EXAMPLES]


def _post(url: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(f"{url}/v1/chat/completions", json=body, headers=HEADERS, timeout=10)


def _content(response: requests.Response, stream: bool) -> str:
    if not stream:
        return str(response.json()["choices"][0]["message"]["content"])
    text = ""
    for line in response.text.splitlines():
        if line.startswith("data: {"):
            chunk = json.loads(line[6:])
            text += "".join(c.get("delta", {}).get("content") or "" for c in chunk.get("choices", []))
    return text


def _expected(example: dict[str, Any]) -> Any:
    wants_json = (example.get("response_format") or {}).get("type") in ("json_object", "json_schema")
    return PERSON if wants_json else ANSWER


def _answer(response: requests.Response, example: dict[str, Any]) -> Any:
    text = _content(response, bool(example.get("stream"))).strip()
    return json.loads(text) if isinstance(_expected(example), dict) else text


def _same_tools(sent: list[dict[str, Any]], got: Any) -> bool:
    """Function tools arrive with their name, and their parameters and ``strict`` when given."""
    got_fns = {t["function"]["name"]: t["function"] for t in got or [] if t.get("type") == "function"}
    for tool in sent:
        fn = tool.get("function") or {"name": tool.get("name")}  # `functions` items are bare
        theirs = got_fns.get(fn["name"])
        if theirs is None or any(theirs.get(k) != fn[k] for k in ("parameters", "strict") if k in fn):
            return False
    return True


def _forwarded(name: str, value: Any, body: dict[str, Any], example: dict[str, Any]) -> bool:
    """Whether the upstream got ``name: value``, allowing the equivalent spellings an upstream may need."""
    if name == "tools" and example.get("tool_choice") == "none" and not body.get("tools"):
        return True  # "none" may be honoured by not offering the tools at all
    if name in ("max_completion_tokens", "max_tokens"):
        return value in (body.get("max_completion_tokens"), body.get("max_tokens"))
    if name in ("tools", "functions"):
        return _same_tools(value, body.get("tools")) or body.get("functions") == value
    if name == "tool_choice" and value == "none":
        return body.get("tool_choice") == "none" or not body.get("tools")
    if name == "function_call":
        wanted = value if isinstance(value, str) else {"type": "function", "function": value}
        return body.get("function_call") == value or body.get("tool_choice") == wanted
    if name == "response_format" and value["type"] == "text":
        return body.get(name, value) == value
    if name == "response_format" and value["type"] == "json_schema" and "schema" not in value["json_schema"]:
        return body.get(name) in ({"type": "json_object"}, value)  # no schema: any JSON object
    if name == "tool_choice" and isinstance(value, dict) and value.get("type") == "allowed_tools":
        allowed = {t["function"]["name"] for t in value["allowed_tools"]["tools"]}
        offered = {t["function"]["name"] for t in body.get("tools") or []}
        return body.get(name) == value["allowed_tools"]["mode"] and offered <= allowed  # the same choice, applied
    if name == "response_format" and value["type"] == "json_schema":
        got = (body.get(name) or {}).get("json_schema") or {}
        return all(got.get(k) == v for k, v in value["json_schema"].items())
    if name == "stop" and isinstance(value, str):
        return body.get(name) == [value]  # one stop string is a list of one, as the upstream reads it
    if value is None or (name in _DEFAULTS and _DEFAULTS[name] == value):
        return body.get(name, value) == value  # null / the default: sending nothing means the same
    return name in body and body[name] == value


# Values that mean "the default": an upstream that is not sent them behaves the same.
_DEFAULTS: dict[str, Any] = {"logprobs": False, "parallel_tool_calls": True}


@pytest.mark.parametrize(("spec", "example"), _field_cases("upstream"))
def test_field_is_accepted_and_forwarded_upstream(shared_compat: Compat, spec: FieldSpec,
                                                  example: dict[str, Any]) -> None:
    response = _post(shared_compat.server.url, {"model": MODEL, "messages": USER, **example})
    if spec["upstream"] == "400":
        assert response.status_code == 400, response.text
        assert any((response.json()["error"]["param"] or "").startswith(k) for k in example), response.text
        return
    assert response.status_code == 200, response.text
    assert _answer(response, example) == _expected(example)
    if spec["upstream"] == "forwarded":
        sent = shared_compat.forwarded[-1]
        missing = {k: v for k, v in example.items() if not _forwarded(k, v, sent, example)}
        assert not missing, f"not forwarded: {missing}; upstream got {sorted(sent)}"


@pytest.mark.parametrize(("spec", "example"), _field_cases("local"))
def test_field_on_the_local_model(local_server: tuple[ServerThread, ScriptedModel], spec: FieldSpec,
                                  example: dict[str, Any]) -> None:
    server, model = local_server
    before = len(model.requests)
    response = _post(server.url, {"model": MODEL, "messages": USER, **example})
    if spec["local"] == "400":
        assert response.status_code == 400, response.text
        param = response.json()["error"]["param"] or ""
        assert any(param.startswith(k) for k in example), f"400 names {param!r}, not one of {sorted(example)}"
        assert len(model.requests) == before  # refused before any model call
        return
    assert response.status_code == 200, response.text
    assert _answer(response, example) == _expected(example)
    limit = example.get("max_completion_tokens", example.get("max_tokens"))
    if limit is not None:  # the one limit both names set reaches the model
        assert model.requests[-1].sampling.max_tokens == limit


@pytest.mark.parametrize("example", _message_cases("upstream"))
def test_message_shape_is_accepted_and_forwarded_upstream(shared_compat: Compat, example: MessageExample) -> None:
    response = _post(shared_compat.server.url, {"model": MODEL, "messages": example["messages"]})
    if example["upstream"] == "400":
        assert response.status_code == 400, response.text
        assert response.json()["error"]["param"] == example["param"]
        return
    assert response.status_code == 200, response.text
    assert _content(response, False).strip() == ANSWER
    sent = shared_compat.forwarded[-1]["messages"]
    assert len(sent) == len(example["messages"])
    for ours, theirs in zip(example["messages"], sent, strict=True):
        # developer -> system (every upstream knows it); the deprecated function role -> tool.
        assert theirs["role"] == ours["role"] or (ours["role"], theirs["role"]) in (("developer", "system"),
                                                                                     ("function", "tool"))
        parts = ours.get("content")
        if isinstance(parts, list) and any(p.get("type") not in ("text", "refusal") for p in parts):
            assert theirs["content"] == parts  # images/audio/files travel on unchanged
        elif isinstance(parts, list) and ours["role"] == "assistant":  # a refusal part: its text
            assert theirs["content"] == "".join(p.get("text") or p.get("refusal") for p in parts)


@pytest.mark.parametrize("example", _message_cases("local"))
def test_message_shape_on_the_local_model(local_server: tuple[ServerThread, ScriptedModel],
                                          example: MessageExample) -> None:
    server, model = local_server
    response = _post(server.url, {"model": MODEL, "messages": example["messages"]})
    if example["local"] == "400":
        assert response.status_code == 400, response.text
        assert response.json()["error"]["param"] == example["param"]
        return
    assert response.status_code == 200, response.text
    assert _content(response, False).strip() == ANSWER
    assert len(model.requests[-1].messages) >= len(example["messages"])
