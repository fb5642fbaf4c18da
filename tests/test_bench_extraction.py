"""The extraction benchmark runs end to end (tiny sizes: it checks the harness, not the speed)."""

from __future__ import annotations

from tests.test_benchmarks import run


def test_extraction_benchmark_reports_efficiency() -> None:
    out = run("benchmarks.bench_extraction", "--delay", "0.01", "--docs-per-slot", "2", "--concurrency", "1", "2")
    assert "| engine | concurrency | documents | seconds | documents/s | efficiency | max in flight |" in out
    assert "| local | 2 | 4 |" in out
