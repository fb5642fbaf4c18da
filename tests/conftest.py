"""Shared fixtures."""

from __future__ import annotations

import pytest
from fakes import FakeSearch


@pytest.fixture
def fake_search() -> FakeSearch:
    return FakeSearch()
