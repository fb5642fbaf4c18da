"""A stream's content is never taken back (issue 9 deliverable 4, DESIGN §4): in JSON mode, when the
model's first attempt fails validation and the graph re-asks, the concatenated ``delta.content`` every
client sees must be exactly ONE valid document — the validated one — not the rejected attempt followed
by the fixed one (``{"name": 5}{"name": "Ada", "year": 1843}``).

Each client path streams from ``studiolm serve`` over a scripted upstream whose first reply is rejected.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from tests.compat.conftest import API_KEY, MODEL, PERSON, Compat

QUESTION: Any = [{"role": "user", "content": "Who wrote the first program?"}]
SCHEMA: dict[str, Any] = {
    "type": "object", "properties": {"name": {"type": "string"}, "year": {"type": "integer"}},
    "required": ["name", "year"], "additionalProperties": False}
RESPONSE_FORMAT: Any = {"type": "json_schema", "json_schema": {"name": "Person", "schema": SCHEMA, "strict": True}}
REJECTED = '{"name": 5}'  # valid JSON, fails the schema
NOT_JSON = '{"name": "Ada", "year":'  # fails JSON mode too (for paths that ask for any JSON object)
REASON = "issue 9: the rejected attempt is streamed as content before the valid one"


class Person(BaseModel):
    """A person and their birth year."""

    name: str
    year: int


def openai_client(compat: Compat) -> openai.OpenAI:
    return openai.OpenAI(base_url=compat.base_url, api_key=API_KEY, max_retries=0)


def via_naive_concatenation(compat: Compat) -> Any:
    stream = openai_client(compat).chat.completions.create(model=MODEL, messages=QUESTION, stream=True,
                                                           response_format=RESPONSE_FORMAT)
    return json.loads("".join(c.choices[0].delta.content or "" for c in stream if c.choices))


def via_openai_stream_helper(compat: Compat) -> Any:
    with openai_client(compat).chat.completions.stream(model=MODEL, messages=QUESTION,
                                                       response_format=Person) as stream:
        text = "".join(e.delta for e in stream if e.type == "content.delta")
        parsed = stream.get_final_completion().choices[0].message.parsed
    assert parsed == Person(**PERSON)
    return json.loads(text)


def via_langchain_stream(compat: Compat) -> Any:
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(model=MODEL, base_url=compat.base_url, api_key=API_KEY, max_retries=0)  # type: ignore[arg-type]
    chunks = list(llm.bind(response_format=RESPONSE_FORMAT).stream("Who wrote the first program?"))
    return json.loads("".join(str(c.content) for c in chunks))


def via_pydantic_ai_run_stream(compat: Compat) -> Any:
    from pydantic_ai import Agent, NativeOutput
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    model = OpenAIChatModel(MODEL, provider=OpenAIProvider(base_url=compat.base_url, api_key=API_KEY))
    agent = Agent(model, output_type=NativeOutput(Person))

    async def main() -> Person:
        async with agent.run_stream("Who wrote the first program?") as run:
            return await run.get_output()

    return asyncio.run(main()).model_dump()


def via_instructor_create_partial(compat: Compat) -> Any:
    instructor = pytest.importorskip("instructor")
    client = instructor.from_openai(openai_client(compat), mode=instructor.Mode.JSON)
    partials = list(client.chat.completions.create_partial(model=MODEL, response_model=Person, messages=QUESTION,
                                                           max_retries=0))
    return partials[-1].model_dump()


def via_litellm_stream(compat: Compat) -> Any:
    import litellm

    stream = litellm.completion(model=f"openai/{MODEL}", api_base=compat.base_url, api_key=API_KEY, stream=True,
                                messages=QUESTION, response_format=RESPONSE_FORMAT, num_retries=0)
    return json.loads("".join(chunk.choices[0].delta.content or "" for chunk in stream))


PATHS: dict[str, tuple[Callable[[Compat], Any], str]] = {
    "naive_concatenation": (via_naive_concatenation, REJECTED),
    "openai_stream_helper": (via_openai_stream_helper, REJECTED),
    "langchain_stream": (via_langchain_stream, REJECTED),
    "pydantic_ai_run_stream": (via_pydantic_ai_run_stream, REJECTED),
    "instructor_create_partial": (via_instructor_create_partial, NOT_JSON),
    "litellm_stream": (via_litellm_stream, REJECTED),
}


@pytest.mark.parametrize(("path", "first_attempt"), PATHS.values(), ids=PATHS.keys())
def test_streamed_json_content_is_one_valid_document(compat: Compat, path: Callable[[Compat], Any],
                                                     first_attempt: str) -> None:
    compat.upstream.script = [first_attempt, json.dumps(PERSON)]
    assert path(compat) == PERSON
    assert len(compat.forwarded) == 2  # the graph really re-asked after the rejected attempt


def test_streamed_json_without_a_retry_is_one_document_today(compat: Compat) -> None:
    compat.upstream.script = [json.dumps(PERSON)]
    assert via_naive_concatenation(compat) == PERSON
    assert len(compat.forwarded) == 1
