"""``studiolm extract`` as users run it: a subprocess against a fake upstream on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.fake_upstream import FakeUpstream

CLI = [sys.executable, "-c", "import sys; from agent._cli import main; sys.exit(main())"]
SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
          "required": ["name", "age"]}


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream(delay=0.05) as server:
        yield server


def command(upstream: FakeUpstream, *args: str) -> tuple[list[str], dict[str, str]]:
    env = {**os.environ, "STUDIOLM_BASE_URL": upstream.base_url, "STUDIOLM_API_KEY": "test"}
    return [*CLI, "extract", *args], env


def corpus(folder: Path, count: int, *, bad_every: int = 0) -> Path:
    folder.mkdir()
    for n in range(count):
        text = "UNPARSEABLE" if bad_every and n % bad_every == 0 else f"name: P{n}\nage: {n}"
        (folder / f"doc{n:03}.txt").write_text(text)
    return folder


def ids(path: Path) -> list[str]:
    return [json.loads(line)["id"] for line in path.read_text().splitlines()] if path.exists() else []


def test_extract_writes_records_and_errors_and_a_summary(tmp_path: Path, upstream: FakeUpstream) -> None:
    docs = corpus(tmp_path / "docs", 6, bad_every=3)
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    out = tmp_path / "out.jsonl"
    args, env = command(upstream, "--schema", str(schema), str(docs), "-o", str(out), "--concurrency", "3")
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    errors = tmp_path / "out.errors.jsonl"
    assert len(ids(out)) == 4 and len(ids(errors)) == 2
    assert "6 inputs: 4 ok, 2 failed" in done.stderr and "output_validation_failed: 2" in done.stderr
    record: dict[str, Any] = json.loads(out.read_text().splitlines()[0])
    assert record["provenance"]["model"] == "fake" and record["provenance"]["source"] == record["id"]
    again = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert again.returncode == 2 and "already exists" in again.stderr


def test_a_killed_run_resumes_with_no_duplicates_and_nothing_lost(tmp_path: Path) -> None:
    count = 40
    docs = corpus(tmp_path / "docs", count, bad_every=7)
    out, err = tmp_path / "out.jsonl", tmp_path / "err.jsonl"
    with FakeUpstream(delay=0.1) as slow:
        args, env = command(slow, "--schema", "tests.agent.test_extract:Person", str(docs), "-o", str(out),
                            "--errors", str(err), "--concurrency", "2", "--no-progress")
        process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while len(ids(out)) + len(ids(err)) < 6 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
        assert process.returncode == -signal.SIGKILL
        written = len(ids(out)) + len(ids(err))
        assert 6 <= written < count
        resumed = subprocess.run([*args, "--resume"], env=env, capture_output=True, text=True, timeout=120,
                                 check=False)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{written} skipped" in resumed.stderr
    ok, bad = ids(out), ids(err)
    assert len(ok) == len(set(ok)) and len(bad) == len(set(bad)) and not set(ok) & set(bad)
    assert sorted(ok + bad) == sorted(str(p) for p in docs.iterdir())
    assert len(bad) == len(range(0, count, 7))
