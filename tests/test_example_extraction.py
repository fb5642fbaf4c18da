"""examples/extraction.py and its notebook twin: offline on the embedded default (the accuracy is reported,
not asserted: it is whatever the small model manages)."""

from __future__ import annotations

import nbformat
import pytest

from tests.test_examples import EXAMPLES, _needs_embedded_default, build_notebook, run_notebook

SCRIPT = EXAMPLES / "extraction.py"
NOTEBOOK = EXAMPLES / "extraction.ipynb"
RUN_SECONDS = 600  # ~40 s on 2 cores; the bound is for a slow CI machine


def check_output(out: str) -> None:
    assert out.startswith("24 documents, e.g.: Ada Lovelace is 21 years old and lives in London.")
    assert "24 inputs: " in out and " 0 skipped" in out
    assert sum(line.startswith("doc-") for line in out.splitlines()) == 24
    assert "field accuracy: name " in out and "| overall " in out
    assert '"model": "smollm2-135m-instruct"' in out


def test_the_notebook_is_the_script_with_outputs_cleared() -> None:
    on_disk = nbformat.read(NOTEBOOK, as_version=4)
    built = build_notebook.notebook(SCRIPT.read_text(encoding="utf-8"))
    assert [(c.cell_type, c.source) for c in on_disk.cells] == [(c.cell_type, c.source) for c in built.cells], (
        "examples/extraction.ipynb is out of date: python examples/build_notebook.py extraction"
    )


@pytest.mark.local_model
def test_the_extraction_notebook_runs_offline() -> None:
    _needs_embedded_default()
    check_output(run_notebook(NOTEBOOK))
