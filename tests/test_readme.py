"""The README's Python examples run as written on the embedded default (the server one has its own tests)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.embedded import needs_embedded_model

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
# Examples that need something outside this test: a running `studiolm serve` (tests/compat/
# test_readme_clients.py runs those against a live server) or the internet (an MCP server fetched by npx; tests/test_mcp
# runs mcp_server against servers it starts itself).
NOT_SELF_CONTAINED = ("127.0.0.1:8000", "localhost:8000", '"npx"')

pytestmark = [
    pytest.mark.local_model,
    needs_embedded_model,
]


def test_the_readme_has_examples() -> None:
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("index", [i for i, b in enumerate(BLOCKS) if not any(m in b for m in NOT_SELF_CONTAINED)])
def test_readme_example_runs(index: int) -> None:
    done = subprocess.run([sys.executable, "-c", BLOCKS[index]], capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
