"""The Ray Data engine on a local Ray instance: the same records as the local engine, bounded concurrency."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

import agent
from agent import OpenAICompatibleBackend, ScriptedModel
from benchmarks.fake_upstream import FakeUpstream
from tests.agent.test_extract import PERSON_SCHEMA, kv_model
from tests.agent.test_extract_cli import CLI

# Before Ray is imported (it reads them then): a single-node instance on loopback only (Ray otherwise
# binds to the machine's address, which the test network guard refuses) and no usage-stats probes of
# cloud metadata endpoints.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
ray = pytest.importorskip("ray")
ray_data = pytest.importorskip("ray.data")

INPUTS = [{"id": f"d{n}", "text": f"name: P{n}\nage: {n}"} for n in range(10)] + [
    {"id": "bad", "text": "UNPARSEABLE"}, {"id": "long", "text": "name: L\n\n" + "filler\n\n" * 4 + "age: 9"}]


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    ray_data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


def kv_backend() -> ScriptedModel:
    """Built inside each actor (a module-level function pickles by reference)."""
    return kv_model()


def by_id(path: Path) -> dict[str, Any]:
    return {row["id"]: row for row in map(json.loads, path.read_text().splitlines())}


def test_the_ray_engine_gives_the_local_engines_records(tmp_path: Path) -> None:
    local_out, local_err = tmp_path / "local.jsonl", tmp_path / "local.errors.jsonl"
    with agent.Client(backend=kv_model(), search="none") as client:
        agent.extract(INPUTS, PERSON_SCHEMA, client=client, output=local_out, errors=local_err, chunk_chars=20)
    ray_out, ray_err = tmp_path / "ray.jsonl", tmp_path / "ray.errors.jsonl"
    summary = agent.extract_dataset(ray_data.from_items(INPUTS), PERSON_SCHEMA, output=ray_out, errors=ray_err,
                                    backend_factory=kv_backend, chunk_chars=20, concurrency=3, actors=1)
    assert (summary.ok, summary.failed) == (11, 1)
    assert by_id(ray_out) == by_id(local_out)  # records and provenance, order aside
    assert by_id(ray_err).keys() == by_id(local_err).keys() == {"bad"}
    assert len(by_id(ray_out)["long"]["provenance"]["chunks"]) > 1

    resumed = agent.extract_dataset(ray_data.from_items(INPUTS), PERSON_SCHEMA, output=ray_out, errors=ray_err,
                                    backend_factory=kv_backend, chunk_chars=20, resume=True)
    assert (resumed.ok, resumed.failed, resumed.skipped) == (0, 0, 12)
    assert len(ray_out.read_text().splitlines()) == 11


def test_concurrency_is_bounded_across_actors(tmp_path: Path) -> None:
    with FakeUpstream(delay=0.2) as upstream:
        factory = partial(OpenAICompatibleBackend, "test", upstream.base_url)
        summary = agent.extract_dataset(ray_data.from_items(INPUTS[:10]), PERSON_SCHEMA, output=tmp_path / "o.jsonl",
                                        errors=tmp_path / "e.jsonl", backend_factory=factory, concurrency=4,
                                        actors=2)
        assert summary.ok == 10
        assert 2 <= upstream.max_in_flight <= 4


def test_cli_engine_ray(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for n in range(5):
        (docs / f"d{n}.txt").write_text(f"name: P{n}\nage: {n}")
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(PERSON_SCHEMA))
    out = tmp_path / "out.jsonl"
    with FakeUpstream(delay=0.01) as upstream:
        env = {**os.environ, "STUDIOLM_BASE_URL": upstream.base_url, "STUDIOLM_API_KEY": "test",
               "RAY_ADDRESS": ray.get_runtime_context().gcs_address}
        done = subprocess.run([*CLI, "extract", "--schema", str(schema), str(docs), "-o", str(out), "--engine", "ray"],
                              env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "5 inputs: 5 ok, 0 failed" in done.stderr
    assert sorted(by_id(out)) == sorted(str(p) for p in docs.iterdir())
    assert by_id(out)[str(docs / "d3.txt")]["record"] == {"name": "P3", "age": 3}
