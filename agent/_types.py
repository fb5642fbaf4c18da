"""Wire types: OpenAI-shaped responses and chunks that read both like dicts and like objects.

``response["choices"][0]["message"]["content"]`` (the studiolm docs) and
``response.choices[0].message.content`` (openai-python habit) both work, and the object *is* a
``dict``, so ``json.dumps(response)`` gives the exact HTTP body.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ChatCompletion", "ChatCompletionChunk", "Model", "ModelList", "WireObject"]


class WireObject(dict[str, Any]):
    """A JSON object with attribute access; nested objects and lists are wrapped on creation."""

    def __init__(self, data: dict[str, Any] | None = None, /, **kwargs: Any) -> None:
        super().__init__({k: _wrap(v) for k, v in {**(data or {}), **kwargs}.items()})

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


class ChatCompletion(WireObject):
    """A ``chat.completion`` response."""


class ChatCompletionChunk(WireObject):
    """One ``chat.completion.chunk`` of a stream (a token, a step, or the final chunk)."""


class Model(WireObject):
    """One model: ``{"id", "object": "model", "created", "owned_by"}`` (``GET /v1/models/{id}``)."""


class ModelList(WireObject):
    """The ``GET /v1/models`` response: ``{"object": "list", "data": [...]}``."""


def _wrap(value: Any) -> Any:
    if isinstance(value, dict) and not isinstance(value, WireObject):
        return WireObject(value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


def _unwrap(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value
