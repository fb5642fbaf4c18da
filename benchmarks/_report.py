"""Shared by the benchmark scripts: print a markdown report and optionally write it to a file."""

from __future__ import annotations

from pathlib import Path


def publish(text: str, path: Path | None) -> None:
    """Print ``text``; also write it to ``path`` (creating its folder) when one is given."""
    print(text)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
