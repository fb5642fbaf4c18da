"""Wire types: OpenAI-shaped responses and chunks that read both like dicts and like objects.

``response["choices"][0]["message"]["content"]`` (the studiolm docs) and
``response.choices[0].message.content`` (openai-python habit) both work, and the object *is* a
``dict``, so ``json.dumps(response)`` gives the exact HTTP body.

Nested objects are wrapped when first read (``[]``, ``.get``, attribute access), not on creation:
a stream's chunks are built by the thousand and most are only encoded or skimmed, so only what a
caller actually reads pays for the wrapping. A wrapped value replaces the plain one in its parent,
so it is wrapped once and edits to it stick.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ChatCompletion", "ChatCompletionChunk", "Model", "ModelList", "WireObject"]


class WireObject(dict[str, Any]):
    """A JSON object with attribute access; nested objects and lists are wrapped when first read."""

    def __init__(self, data: dict[str, Any] | None = None, /, **kwargs: Any) -> None:
        dict.__init__(self, data or (), **kwargs)

    def __getitem__(self, key: str) -> Any:
        value = dict.__getitem__(self, key)
        kind = type(value)
        if kind is dict or kind is list:  # plain: not read through this object yet
            value = _wrap(value)
            dict.__setitem__(self, key, value)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default  # noqa: SIM401 - this is get: [] wraps

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no field {name!r}") from None

    def to_dict(self) -> dict[str, Any]:
        """A plain-``dict`` deep copy (for serialisers that insist on exact types)."""
        return _unwrap(self)  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict.__repr__(self)})"


class _WireList(list[Any]):
    """A list whose objects are wrapped (a plain ``list`` otherwise: ``json.dumps`` takes it as one)."""


class ChatCompletion(WireObject):
    """A ``chat.completion`` response."""


class ChatCompletionChunk(WireObject):
    """One ``chat.completion.chunk`` of a stream (a token, a step, or the final chunk)."""


class Model(WireObject):
    """One model: ``{"id", "object": "model", "created", "owned_by"}`` (``GET /v1/models/{id}``)."""


class ModelList(WireObject):
    """The ``GET /v1/models`` response: ``{"object": "list", "data": [...]}``."""


def _wrap(value: Any) -> Any:
    """One level: a plain dict becomes a WireObject (its own values wrap when read), a plain list a
    _WireList of wrapped items."""
    kind = type(value)
    if kind is dict:
        return WireObject(value)
    if kind is list:
        return _WireList([_wrap(v) for v in value])
    return value


def _unwrap(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value
