"""Shared fixtures, and the guard that keeps the suite off the internet (see tests/netguard/_guard.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes import FakeSearch
from tests.netguard import _guard

NETGUARD_DIR = Path(__file__).parent / "netguard"


def pytest_configure(config: pytest.Config) -> None:
    # Subprocesses (examples, docs samples, the CLI) inherit the guard and offline defaults: the
    # default search is `auto` (DuckDuckGo first), which would go online in a test.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(NETGUARD_DIR), os.environ.get("PYTHONPATH")]))
    os.environ.setdefault("STUDIOLM_SEARCH", "local")


@pytest.fixture(autouse=True)
def _no_internet(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Fail any test that tried to reach a non-loopback address, in-process or in a subprocess."""
    if request.node.get_closest_marker("live"):
        _guard.uninstall()
        yield
        _guard.install()
        return
    log = tmp_path_factory.mktemp("netguard") / "attempts.log"
    os.environ[_guard.LOG_ENV] = str(log)
    _guard.install()
    try:
        yield
    finally:
        os.environ.pop(_guard.LOG_ENV, None)
    attempts = log.read_text().splitlines() if log.exists() else []
    assert not attempts, f"the test tried to reach the internet: {attempts}"


@pytest.fixture
def fake_search() -> FakeSearch:
    return FakeSearch()
