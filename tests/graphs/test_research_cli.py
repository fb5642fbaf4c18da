"""``studiolm research`` as users run it: the installed console script in a subprocess, its model an
OpenAI-compatible endpoint on loopback (our own server around a scripted model), offline pages from a
local index file."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent import AsyncClient, LocalIndex, create_app
from tests.agent.server.server_harness import ServerThread
from tests.graphs.test_research import DOCUMENTS, QUESTION, TWO_PARTS, scripted

STUDIOLM = shutil.which("studiolm", path=str(Path(sys.executable).parent)) or "studiolm"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    client = AsyncClient(backend=scripted(TWO_PARTS, "The Danube [1] and the Rhine [2] differ."), search="none")
    with ServerThread(create_app(client)) as server:
        yield server.url + "/v1"


def run(*args: str, endpoint: str, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STUDIOLM_CACHE_DIR": str(cache), "STUDIOLM_BASE_URL": endpoint,
           "STUDIOLM_API_KEY": "unused"}
    return subprocess.run([STUDIOLM, "research", *args], env=env, capture_output=True, text=True, timeout=120,
                          check=False)


def test_research_writes_the_report_and_resumes_by_id(endpoint: str, tmp_path: Path) -> None:
    index = tmp_path / "rivers.sqlite3"
    asyncio.run(LocalIndex.build(index, DOCUMENTS))
    out = tmp_path / "report.md"
    done = run(QUESTION, "--index", str(index), "-o", str(out), endpoint=endpoint, cache=tmp_path)
    assert done.returncode == 0, done.stderr
    report = out.read_text()
    assert "The Danube [1] and the Rhine [2] differ." in report
    assert "[Danube](https://en.wikipedia.org/wiki/Danube)" in report and "[Rhine](" in report
    assert "· plan (model): Where does the Danube flow?" in done.stderr
    assert "] read Danube" in done.stderr
    run_id = re.search(r"research run (\w+)", done.stderr).group(1)  # type: ignore[union-attr]

    again = run("--resume", run_id, "--index", str(index), endpoint=endpoint, cache=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == report.strip()  # the finished run's report, from its checkpoint


def test_research_without_a_question_is_a_clear_error(endpoint: str, tmp_path: Path) -> None:
    done = run(endpoint=endpoint, cache=tmp_path)
    assert done.returncode == 2 and "give a question, or --resume ID" in done.stderr


def test_review_reads_the_plan_from_stdin(endpoint: str, tmp_path: Path) -> None:
    index = tmp_path / "rivers.sqlite3"
    asyncio.run(LocalIndex.build(index, DOCUMENTS))
    env = {**os.environ, "STUDIOLM_CACHE_DIR": str(tmp_path), "STUDIOLM_BASE_URL": endpoint, "STUDIOLM_API_KEY": "x"}
    done = subprocess.run([STUDIOLM, "research", QUESTION, "--index", str(index), "--review"], env=env,
                          input="Where does the Rhine rise?\n\n", capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert "Plan:\n  1. Where does the Danube flow?" in done.stderr
    assert "· plan (human): Where does the Rhine rise?" in done.stderr
    assert "## Sources" in done.stdout
