"""Each package exports an explicit, sorted ``__all__`` whose names all exist; modules are private."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys

import pytest

PACKAGES = ["agent", "agent.models", "agent.server", "tools", "graphs"]
#: Public modules: the folders that show the architecture, and the interfaces graphs owns.
PUBLIC_MODULES = {"agent": ["models", "server"], "graphs": ["errors", "model"]}


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
    assert sorted(public) == PUBLIC_MODULES.get(name, [])


@pytest.mark.parametrize("name", PACKAGES)
def test_public_names_have_docstrings(name: str) -> None:
    package = importlib.import_module(name)
    objects = {s: getattr(package, s) for s in package.__all__}
    missing = [s for s, o in objects.items() if (inspect.isclass(o) or inspect.isfunction(o)) and not o.__doc__]
    assert missing == []


def _modules() -> list[str]:
    names = []
    for package in ("tools", "graphs", "agent"):
        root = importlib.import_module(package)
        names += [m.name for m in pkgutil.walk_packages(root.__path__, f"{package}.")]
    return [n for n in names if n != "agent.__main__"]


@pytest.mark.parametrize("lower", ["tools", "graphs"])
def test_lower_layers_import_nothing_above_them(lower: str) -> None:
    code = (f"import sys, {lower}; above = [m for m in sys.modules if m.split('.')[0] in ('agent', 'graphs') "
            f"and m.split('.')[0] != '{lower}']; assert not above, above")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("order", ["forward", "reversed"])
def test_every_module_imports_eagerly_in_any_order(order: str) -> None:
    """No import cycle hides behind lazy loading: each module imports first in a fresh interpreter."""
    modules = _modules() if order == "forward" else _modules()[::-1]
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)"
    subprocess.run([sys.executable, "-c", code, *modules], check=True)
    for first in ("agent.server._app", "agent._client", "graphs._chat", "agent.models._llama"):
        subprocess.run([sys.executable, "-c", f"import {first}"], check=True)


def test_one_exception_tree_reexported_by_agent() -> None:
    import agent

    # Private (`_Name`) exceptions are control flow inside one module and never reach a caller.
    errors = {cls for module in map(importlib.import_module, _modules()) for cls in vars(module).values()
              if inspect.isclass(cls) and issubclass(cls, Exception) and cls.__module__.split(".")[0] in PACKAGES
              and not cls.__name__.startswith("_")}
    assert errors and all(issubclass(cls, agent.StudiolmError) for cls in errors), errors
    for cls in errors:
        assert getattr(agent, cls.__name__) is cls, f"agent does not re-export {cls.__name__}"
    assert issubclass(agent.CorpusNotFoundError, agent.UsageError)
    assert issubclass(agent.SearchError, agent.APIError) and issubclass(agent.ModelError, agent.APIError)
