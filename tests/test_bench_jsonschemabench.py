"""The JSONSchemaBench report: runs merge per (model, engine) and render into one markdown."""

from __future__ import annotations

from benchmarks.bench_jsonschemabench import Outcome, merge, render, run_key

META = {"command": "python -m benchmarks.bench_jsonschemabench", "schemas": 2, "wall_minutes": 1.0,
        "date": "2026-12-02 07:00 UTC", "settings": {}}


def test_a_schema_run_again_replaces_its_outcome_and_others_are_kept() -> None:
    key = run_key("smollm2-135m-instruct", "gbnf")
    first = merge({}, key, META, [Outcome("A", "a.json", "failed", 1.0, "bad"),
                                  Outcome("B", "b.json", "validated", 2.0)])
    again = merge(first, key, META, [Outcome("A", "a.json", "validated", 1.5, attempts=1, constrained=True)])
    outcomes = {o["schema"]: o["status"] for o in again[key]["outcomes"]}
    assert outcomes == {"a.json": "validated", "b.json": "validated"}
    assert len(again[key]["runs"]) == 2


def test_runs_of_different_engines_stay_apart_and_render_side_by_side() -> None:
    results = merge({}, run_key("m", "llguidance"), META, [Outcome("A", "a.json", "validated", 1.0, attempts=1,
                                                                   constrained=True)])
    results = merge(results, run_key("m", "gbnf"), META, [Outcome("A", "a.json", "failed", 3.0, "x", 3, False)])
    text = render(results)
    assert "| m / llguidance | 1.00 (1) | 1.00 (1) |" in text
    assert "| m / gbnf | 0.00 (1) | 0.00 (1) |" in text
    assert "| A | 1 | 0/1 | 0.00 | 0.00 | 1.00 | 0.00 | 3.0 |" in text
    assert "A/a.json — failed (constrained False): x" in text


def test_failures_are_told_apart_by_kind() -> None:
    from benchmarks.bench_jsonschemabench import failure_kind

    cut = Outcome("A", "a.json", "failed", 1.0, "(root): the output was cut off at the token limit", 3, True)
    assert failure_kind(cut).startswith("ran away")
    assert failure_kind(Outcome("A", "a.json", "failed", 1.0, "x", 3, False)).startswith("unconstrained")
    assert failure_kind(Outcome("A", "a.json", "failed", 1.0, "x", 3, True)).startswith("constrained but invalid")
    assert failure_kind(Outcome("A", "a.json", "failed", 1.0, "crashed")).startswith("other")
