"""Write ``quickstart.ipynb`` from its script twin ``quickstart.py`` (``make notebook``).

The script is the source: its ``# %%`` lines start code cells and ``# %% [markdown]`` lines start
markdown cells (the "percent" format editors such as VS Code and Jupytext understand), so the two
cannot drift apart; ``tests/test_examples.py`` checks the notebook on disk is what this writes.
The notebook is written with its outputs cleared.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).parent
CELL = "# %%"
MARKDOWN = "# %% [markdown]"


def cells(script: str) -> list[tuple[str, str]]:
    """``(kind, source)`` of every cell of a percent-format script ("code" or "markdown")."""
    found: list[tuple[str, list[str]]] = []
    for line in script.splitlines():
        if line.startswith(CELL):
            found.append(("markdown" if line.startswith(MARKDOWN) else "code", []))
        elif found:
            found[-1][1].append(line)
    return [(kind, _source(kind, lines)) for kind, lines in found]


def _source(kind: str, lines: list[str]) -> str:
    if kind == "markdown":
        lines = [line[2:] if line.startswith("# ") else line.lstrip("#") for line in lines]
    return "\n".join(lines).strip("\n")


def notebook(script: str) -> nbformat.NotebookNode:
    """The notebook of ``script``, outputs cleared."""
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                   "language_info": {"name": "python"}}
    maker = {"code": nbformat.v4.new_code_cell, "markdown": nbformat.v4.new_markdown_cell}
    nb.cells = [maker[kind](source) for kind, source in cells(script)]
    for index, cell in enumerate(nb.cells):
        cell.id = f"cell-{index}"  # stable ids, so a rebuild only changes what changed
    return nb


def main(name: str = "quickstart") -> None:
    script = (HERE / f"{name}.py").read_text(encoding="utf-8")
    nbformat.write(notebook(script), HERE / f"{name}.ipynb")


if __name__ == "__main__":
    main(*sys.argv[1:])
