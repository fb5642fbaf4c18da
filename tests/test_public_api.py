"""Each package exports an explicit, sorted ``__all__`` whose names all exist; modules are private."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

PACKAGES = ["agent", "tools", "graphs"]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_unique_and_resolvable(name: str) -> None:
    package = importlib.import_module(name)
    exported = package.__all__
    assert exported == sorted(exported)
    assert len(set(exported)) == len(exported)
    for symbol in exported:
        assert getattr(package, symbol) is not None, symbol


@pytest.mark.parametrize("name", PACKAGES)
def test_implementation_modules_are_private(name: str) -> None:
    package = importlib.import_module(name)
    public = [m.name for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith("_")]
    assert public == []


@pytest.mark.parametrize("name", PACKAGES)
def test_public_names_have_docstrings(name: str) -> None:
    package = importlib.import_module(name)
    objects = {s: getattr(package, s) for s in package.__all__}
    missing = [s for s, o in objects.items() if (inspect.isclass(o) or inspect.isfunction(o)) and not o.__doc__]
    assert missing == []


def test_graphs_imports_without_agent_first() -> None:
    import subprocess
    import sys

    code = "import graphs, agent; assert agent.Client and graphs.run_chat"
    subprocess.run([sys.executable, "-c", code], check=True)
