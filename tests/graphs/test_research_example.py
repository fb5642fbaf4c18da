"""examples/research.py and its notebook twin run offline on the embedded default (the model's prose is
not checked, only the structure they print)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from tests.test_examples import _needs_embedded_default, build_notebook, run_notebook

EXAMPLES = Path(__file__).parents[2] / "examples"
SCRIPT = EXAMPLES / "research.py"
NOTEBOOK = EXAMPLES / "research.ipynb"
RUN_SECONDS = 300  # about 10 s on 2 cores; the bound is for a slow CI machine


def check_research_output(out: str) -> None:
    """What every run prints, whatever the model writes."""
    assert out.startswith("step research.plan: ")
    assert "step search.started: 'Who directed 2001: A Space Odyssey, and in which year" in out  # the question itself
    assert "step page.read: [1] " in out and "step research.report: cites " in out
    assert "## Sources\n\n1. [" in out
    assert "source [1] " in out and "https://en.wikipedia.org/wiki/" in out
    assert "partial: False None" in out or "partial: True " in out


def test_the_notebook_is_the_script_with_outputs_cleared() -> None:
    on_disk = nbformat.read(NOTEBOOK, as_version=4)
    built = build_notebook.notebook(SCRIPT.read_text(encoding="utf-8"))
    assert [(c.cell_type, c.source) for c in on_disk.cells] == [(c.cell_type, c.source) for c in built.cells], (
        "examples/research.ipynb is out of date: make notebook"
    )
    assert all(c.outputs == [] for c in on_disk.cells if c.cell_type == "code")
    nbformat.validate(on_disk)


@pytest.mark.local_model
def test_the_research_notebook_runs_offline() -> None:
    _needs_embedded_default()
    check_research_output(run_notebook(NOTEBOOK))
