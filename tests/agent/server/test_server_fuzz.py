"""Property-based fuzzing of the live server from its own OpenAPI document (schemathesis): valid and
invalid requests alike never get a 5xx."""

from __future__ import annotations

import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from tests.agent.server.server_harness import API_KEY, ServerThread

AUTH = {"Authorization": f"Bearer {API_KEY}"}
#: Bounded: a few seconds for the whole run.
MAX_EXAMPLES = 50


def fuzz(server: ServerThread, mode: GenerationMode) -> list[str]:
    document = requests.get(f"{server.url}/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(document)
    failures: list[str] = []
    tried = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if mode is GenerationMode.NEGATIVE and operation.method.upper() != "POST":
            continue  # nothing in a GET without parameters can be made invalid

        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case: schemathesis.Case) -> None:
            nonlocal tried
            tried += 1
            response = case.call(base_url=server.url, headers=AUTH, timeout=30)
            if response.status_code >= 500:
                failures.append(f"{response.status_code} for {case.method} {case.path} {case.body!r}: "
                                f"{response.text[:300]}")

        run()
    assert tried >= MAX_EXAMPLES
    return failures


def test_valid_requests_from_the_openapi_document_get_no_5xx(docs_server: ServerThread) -> None:
    assert fuzz(docs_server, GenerationMode.POSITIVE) == []


def test_invalid_requests_from_the_openapi_document_get_no_5xx(docs_server: ServerThread) -> None:
    assert fuzz(docs_server, GenerationMode.NEGATIVE) == []


def test_the_document_describes_the_routes_and_the_request(docs_server: ServerThread) -> None:
    document = requests.get(f"{docs_server.url}/openapi.json", timeout=10).json()
    assert set(document["paths"]) == {"/v1/chat/completions", "/v1/models", "/health", "/v1/health",
                                      "/v1/responses", "/v1/responses/{response_id}"}
    request = document["components"]["schemas"]["ChatCompletionRequest"]
    assert request["required"] == ["model", "messages"]
    assert request["additionalProperties"] is False
    assert set(request["properties"]) >= {"model", "messages", "temperature", "max_tokens", "stream", "top_p",
                                          "frequency_penalty", "presence_penalty", "web_search", "response_format"}
    assert request["properties"]["temperature"]["default"] == 0.7
    statuses = set(document["paths"]["/v1/chat/completions"]["post"]["responses"])
    assert statuses >= {"200", "400", "401", "404", "413", "422", "429", "502", "503", "504"}
