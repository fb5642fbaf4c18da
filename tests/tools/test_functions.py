"""Python functions as tools (tools.FunctionTool): the schema from the signature, validation, calling."""

from __future__ import annotations

import datetime
import functools
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field

from tools._exceptions import ToolArgumentsError, ToolDefinitionError
from tools._functions import FunctionTool, ToolOutput


class Box(BaseModel):
    width: int
    height: int


def test_the_schema_comes_from_the_signature_without_pydantic_titles() -> None:
    def pack(box: Box, label: Annotated[str, Field(description="Printed on the box", max_length=20)],
             mode: Literal["fast", "safe"] = "safe", *, title: str = "untitled") -> str:
        """Pack a box.

        Longer explanation."""
        return label

    tool = FunctionTool(pack)
    assert tool.definition.description == "Pack a box.\n\nLonger explanation."
    assert tool.definition.parameters == {
        "$defs": {"Box": {"properties": {"width": {"type": "integer"}, "height": {"type": "integer"}},
                          "required": ["width", "height"], "type": "object"}},
        "additionalProperties": False,
        "properties": {
            "box": {"$ref": "#/$defs/Box"},
            "label": {"description": "Printed on the box", "maxLength": 20, "type": "string"},
            "mode": {"default": "safe", "enum": ["fast", "safe"], "type": "string"},
            "title": {"default": "untitled", "type": "string"},  # a parameter named "title" stays
        },
        "required": ["box", "label"],
        "type": "object",
    }


async def test_arguments_are_validated_and_converted_before_the_call() -> None:
    seen: list[Any] = []

    def pack(box: Box, when: datetime.date, /, count: int = 1) -> dict[str, Any]:
        seen.append((box, when, count))
        return {"box": box, "when": when}

    tool = FunctionTool(pack, name="pack_box")
    output = await tool.call_tool("pack_box", {"box": {"width": 2, "height": 3}, "when": "2024-05-01"})
    assert seen == [(Box(width=2, height=3), datetime.date(2024, 5, 1), 1)]  # positional-only parameters work
    assert output == ToolOutput('{"box":{"width":2,"height":3},"when":"2024-05-01"}')
    with pytest.raises(ToolArgumentsError) as info:
        await tool.call_tool("pack_box", {"box": {"width": "wide"}, "when": "someday", "colour": "red"})
    assert [e["path"] for e in info.value.errors] == ["/box/width", "/box/height", "/when", "/colour"]
    assert str(info.value).startswith("invalid arguments for pack_box: /box/width: Input should be a valid integer")
    assert len(seen) == 1


async def test_results_become_text_and_a_returned_tool_output_passes_through() -> None:
    @dataclass
    class Reading:
        value: float

    async def read() -> Reading:
        return Reading(1.5)

    def fail_softly() -> ToolOutput:
        return ToolOutput("sensor offline", is_error=True)

    assert (await FunctionTool(read).call_tool("read", {})).content == '{"value":1.5}'
    assert await FunctionTool(fail_softly).call_tool("fail_softly", {}) == ToolOutput("sensor offline", True)
    assert (await FunctionTool(lambda: None, name="nothing").call_tool("nothing", {})).content == "null"


async def test_callable_objects_and_partials_are_tools() -> None:
    class Greeter:
        async def __call__(self, name: str) -> str:
            return f"hello {name}"

    def scale(factor: int, value: int) -> int:
        return factor * value

    greeter = FunctionTool(Greeter(), name="greet")
    assert greeter.definition.parameters["required"] == ["name"]
    assert (await greeter.call_tool("greet", {"name": "Ada"})).content == "hello Ada"
    double = FunctionTool(functools.partial(scale, 2), name="double")
    assert list(double.definition.parameters["properties"]) == ["value"]
    assert (await double.call_tool("double", {"value": 21})).content == "42"


class Opaque:
    pass


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: FunctionTool(lambda x: x), "pass name="),
        (lambda: FunctionTool(lambda *args: args, name="f"), "*args cannot be described"),
        (lambda: FunctionTool(lambda **kw: kw, name="f"), "*kw cannot be described"),
        (lambda: FunctionTool(_takes_opaque), "its parameters have no JSON form"),
        (lambda: FunctionTool(_takes_opaque, name="has space"), "1-64 of"),
        (lambda: FunctionTool(len, name="f", timeout=0), "timeout must be a positive number"),
    ],
)
def test_functions_that_cannot_be_described_are_refused(make: Any, message: str) -> None:
    with pytest.raises(ToolDefinitionError) as info:
        make()
    assert message in str(info.value)


def _takes_opaque(thing: Opaque) -> None:
    return None
