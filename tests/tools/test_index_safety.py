"""Issue 10, rows 4, 5 and 7: a folder index never leaves its folder, never blocks on a special file,
caps each file, says why it skipped one, and searches in time linear in the documents' size."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools import LocalIndex
from tools._corpus import MAX_FILE_BYTES, FolderDocuments, load_folder
from tools._local_index import SNIPPET_WINDOW_CHARS

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="symbolic links, FIFOs and /dev are POSIX")
# Generous: these loads take milliseconds; the bound only turns a hang into a failure.
HANG_GUARD_SECONDS = 10


def _load(folder: Path) -> FolderDocuments:
    """``load_folder`` in a daemon thread, failing (instead of hanging the suite) if it blocks."""
    result: list[FolderDocuments] = []
    thread = threading.Thread(target=lambda: result.append(load_folder(folder)), daemon=True)
    thread.start()
    thread.join(HANG_GUARD_SECONDS)
    assert not thread.is_alive(), "load_folder blocked"
    return result[0]


def _skipped(loaded: FolderDocuments) -> dict[str, str]:
    return {Path(s.path).name: s.reason for s in loaded.skipped}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "notes.txt").write_text("The harbour lighthouse is painted red.", encoding="utf-8")
    return root


@pytest.fixture
def fifo(folder: Path) -> Iterator[Path]:
    path = folder / "pipe.txt"
    os.mkfifo(path)
    yield path
    _release(path)


def _release(fifo: Path) -> None:
    """Unblock a reader stuck opening ``fifo`` (only unfixed code gets stuck), so its thread can end."""
    with contextlib.suppress(OSError):  # nobody is waiting
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


@posix_only
def test_a_link_to_a_file_outside_the_folder_is_not_read(folder: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("password hunter2", encoding="utf-8")
    (folder / "x.txt").symlink_to(secret)

    loaded = _load(folder)

    assert [d.title for d in loaded.documents] == ["notes.txt"]
    assert _skipped(loaded) == {"x.txt": "a symbolic link to outside the folder"}
    assert not any("hunter2" in d.body for d in loaded.documents)


@posix_only
def test_a_link_to_a_device_is_not_read(folder: Path) -> None:
    (folder / "zero.txt").symlink_to("/dev/zero")
    assert _skipped(_load(folder)) == {"zero.txt": "a symbolic link to outside the folder"}


@posix_only
def test_a_fifo_is_skipped_without_blocking(folder: Path, fifo: Path) -> None:
    loaded = _load(folder)
    assert _skipped(loaded) == {fifo.name: "not a regular file (a FIFO)"}
    assert [d.title for d in loaded.documents] == ["notes.txt"]


@posix_only
def test_links_inside_the_folder_are_followed_and_bad_links_reported(folder: Path) -> None:
    (folder / "sub").mkdir()
    (folder / "sub" / "alias.md").symlink_to(folder / "notes.txt")
    (folder / "broken.txt").symlink_to(folder / "missing.txt")
    (folder / "loop.txt").symlink_to(folder / "loop.txt")

    loaded = _load(folder)

    assert sorted(d.title for d in loaded.documents) == ["alias.md", "notes.txt"]
    reasons = _skipped(loaded)
    assert reasons["broken.txt"].startswith("unreadable")
    assert reasons["loop.txt"].startswith("unreadable")
    assert all("\n" not in reason for reason in reasons.values())


def test_a_file_over_the_cap_is_skipped_and_reported(folder: Path) -> None:
    with open(folder / "huge.txt", "wb") as handle:  # sparse: no disk space used
        handle.truncate(MAX_FILE_BYTES + 1)
    assert _skipped(_load(folder)) == {"huge.txt": f"larger than {MAX_FILE_BYTES} bytes"}


@posix_only
async def test_the_index_of_a_hostile_folder_builds_and_searches(folder: Path, fifo: Path, tmp_path: Path) -> None:
    (folder / "passwd.txt").symlink_to("/etc/passwd")
    index = LocalIndex.from_folder(folder, db_path=tmp_path / "i.sqlite3")

    try:
        response = await asyncio.wait_for(index.search("lighthouse root"), HANG_GUARD_SECONDS)
    finally:
        _release(fifo)  # before the event loop waits for its worker threads

    results = response.results

    assert [r.title for r in results] == ["notes.txt"]
    assert sorted(Path(s.path).name for s in index.skipped) == ["passwd.txt", "pipe.txt"]


async def test_a_repetitive_megabyte_is_searched_in_linear_time(folder: Path, tmp_path: Path) -> None:
    # Every word matches: FTS5's snippet() compared each occurrence with every other (62 s per query).
    (folder / "log.txt").write_text("lighthouse ships " * 60_000, encoding="utf-8")
    index = await LocalIndex.from_folder(folder, db_path=tmp_path / "i.sqlite3").prepare()

    started = time.monotonic()
    results = (await index.search("lighthouse ships")).results
    elapsed = time.monotonic() - started

    assert elapsed < HANG_GUARD_SECONDS / 2
    assert results[0].title == "log.txt"
    assert results[0].snippet.startswith("lighthouse ships")
    assert len(results[0].snippet) <= SNIPPET_WINDOW_CHARS + 1


async def test_the_snippet_of_a_late_match_in_a_long_document_is_bounded(folder: Path, tmp_path: Path) -> None:
    filler = "Nothing of note happened on this day at the harbour. " * 200
    (folder / "diary.txt").write_text(filler + "The keeper finally saw the comet. " + filler, encoding="utf-8")
    index = await LocalIndex.from_folder(folder, db_path=tmp_path / "i.sqlite3").prepare()

    snippet = (await index.search("comet keeper")).results[0].snippet

    assert "The keeper finally saw the comet." in snippet
    assert snippet.startswith("…") and len(snippet) <= SNIPPET_WINDOW_CHARS + 1
