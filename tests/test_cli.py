"""The ``studiolm`` command line, run as users run it (a subprocess of the installed console script)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.embedded import TINY, needs_embedded_model

STUDIOLM = shutil.which("studiolm", path=str(Path(sys.executable).parent)) or "studiolm"


def run(*args: str, cache: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STUDIOLM_CACHE_DIR": str(cache)}
    env.pop("STUDIOLM_API_KEY", None)
    env.pop("STUDIOLM_BASE_URL", None)
    return subprocess.run([STUDIOLM, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "llamas.md").write_text("# Llama care\n\nLlamas need hay, fresh water and the company of other llamas.\n")
    (folder / "alpaca.html").write_text(
        "<html><head><title>Alpaca fiber</title><style>p{}</style></head>"
        "<body><p>Alpacas are shorn once a year for their fiber.</p></body></html>"
    )
    (folder / "broken.txt").write_bytes(b"\xff\xfe\x00\xd8 not text \x81")
    return folder


def test_index_builds_a_folder_index_and_reports_skipped_files(notes: Path, tmp_path: Path) -> None:
    done = run("index", str(notes), "--db", str(tmp_path / "notes.db"), cache=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"index ready: {tmp_path / 'notes.db'} (2 documents, 1 files skipped)" in done.stdout
    assert "broken.txt" in done.stderr


def test_ask_with_a_bad_model_is_a_clear_error(tmp_path: Path) -> None:
    done = run("ask", "hi", "--model", "gpt-9", "--search", "none", cache=tmp_path)
    assert done.returncode == 2
    assert "model 'gpt-9' does not exist; available models:" in done.stderr
    assert "Traceback" not in done.stderr


def test_bad_flag_value_is_rejected_by_the_parser(tmp_path: Path) -> None:
    done = run("ask", "hi", "--web-search", "sometimes", cache=tmp_path)
    assert done.returncode == 2 and "invalid choice: 'sometimes'" in done.stderr


needs_model = needs_embedded_model


@pytest.mark.local_model
@needs_model
def test_ask_force_on_a_folder_index_streams_steps_and_cites_the_file(notes: Path, tmp_path: Path) -> None:
    db = tmp_path / "notes.db"
    assert run("index", str(notes), "--db", str(db), cache=tmp_path).returncode == 0
    done = run("ask", "What do llamas need?", "--web-search", "force", "--index", str(db), "--model", TINY,
               "--temperature", "0", "--max-tokens", "40", cache=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "search.started" in done.stderr and "search.completed: 1 result from local" in done.stderr
    assert f"[1] Llama care — {(notes / 'llamas.md').as_uri()}" in done.stdout


@pytest.mark.local_model
@needs_model
def test_ask_raw_no_stream_prints_the_response_json(tmp_path: Path) -> None:
    # The tiny tier: the default's first use would join its 491 MB file into this test's own cache.
    done = run("ask", "Say hello", "--no-stream", "--raw", "--search", "none", "--max-tokens", "8", "--model", TINY,
               cache=tmp_path)
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert body["object"] == "chat.completion" and body["model"] == TINY


def test_an_unwritable_index_path_is_an_error_not_a_traceback(notes: Path, tmp_path: Path) -> None:
    done = run("index", str(notes), "--db", "/proc/no-such-dir/notes.db", cache=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr
