"""Extraction inputs and outputs: what counts as a document, and the JSONL files records go to.

Inputs (:func:`iter_inputs`), each with a stable id (the key ``resume`` skips by):

* a path to a text, markdown or HTML file (id: the path as given; HTML is reduced to its main text);
* a folder: every ``.txt``/``.md``/``.markdown``/``.html``/``.htm`` file below it, recursively, sorted;
* a glob (``docs/**/*.md``): the files it matches, sorted;
* a ``.jsonl`` file: one document per line, its text in ``text_field`` (id: ``id_field`` when the line
  has it, else ``<path>:<line number>``);
* an ``http(s)://`` URL: fetched through :class:`tools.PageFetcher` when it is processed (id: the URL);
* in Python, an iterable of strings (each one a document's *text*, id ``item-<index>``), of dicts with
  ``text`` or ``url`` (id: their ``id`` field, else ``item-<index>``), or of paths (:class:`os.PathLike`).

A line of a JSONL file or a dict that holds no text becomes a failure (reason ``bad_input``) in the
errors file, not an exception: every input is accounted for. A path that does not exist is the
caller's mistake (:class:`BadRequestError` naming ``inputs``), raised before anything runs.

Outputs (:class:`JsonlLog`): each line is written whole by one ``write`` of the complete line, then
flushed to disk (``fsync``), so a crash or a kill leaves at most a torn last line; opening a file to
resume drops such a line (its input runs again) and collects the ids already written.
"""

from __future__ import annotations

import glob
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent._exceptions import BadRequestError, UsageError

__all__ = ["DOCUMENT_SUFFIXES", "Item", "JsonlLog", "iter_inputs", "read_document"]

#: File types read from folders and globs (matched case-insensitively).
DOCUMENT_SUFFIXES = frozenset({".txt", ".md", ".markdown", ".html", ".htm"})
_HTML_SUFFIXES = frozenset({".html", ".htm"})
_GLOB_CHARS = re.compile(r"[*?\[]")
# Files larger than this are refused (reason "bad_input") rather than read into memory.
MAX_DOCUMENT_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Item:
    """One input: ``text`` given, or a ``path`` to read, or a ``url`` to fetch; ``problem`` when it is unusable."""

    id: str
    text: str | None = None
    path: Path | None = None
    url: str | None = None
    problem: str | None = None

    @property
    def source(self) -> str | None:
        """The path or URL the document came from (None for text given directly)."""
        return self.url or (str(self.path) if self.path is not None else None)


def iter_inputs(
    inputs: Any, *, text_field: str = "text", id_field: str = "id", as_paths: bool = False
) -> Iterator[Item]:
    """The items of ``inputs`` (see the module docstring). ``as_paths``: the strings of an iterable are
    paths, URLs or globs (the command line's INPUT arguments), not texts. Paths are checked now; files
    are read lazily."""
    if isinstance(inputs, str | os.PathLike):
        specs: Iterable[Any] = [inputs]
        as_paths = True
    elif isinstance(inputs, Mapping):
        specs = [inputs]
    elif isinstance(inputs, Iterable):
        specs = inputs
    else:
        raise BadRequestError(f"must be a path, URL, glob, or an iterable of texts, dicts or paths; "
                              f"got {type(inputs).__name__}", param="inputs")
    if as_paths:
        specs = list(specs)
        for spec in specs:
            _check_spec(spec)
    return _iter_items(specs, text_field, id_field, top_level=as_paths)


def _iter_items(items: Iterable[Any], text_field: str, id_field: str, *, top_level: bool = False) -> Iterator[Item]:
    for index, value in enumerate(items):
        if isinstance(value, os.PathLike) or (top_level and isinstance(value, str)):
            _check_spec(value)  # again for paths inside an iterable; cheap for the top level
            yield from _expand(value, text_field, id_field)
        elif isinstance(value, str):
            yield Item(id=f"item-{index}", text=value)
        elif isinstance(value, Mapping):
            yield _from_dict(value, f"item-{index}", text_field, id_field)
        else:
            yield Item(id=f"item-{index}", problem=f"expected a text, a dict or a path, got {type(value).__name__}")


def _check_spec(spec: Any) -> None:
    if not isinstance(spec, str | os.PathLike):
        raise BadRequestError(f"expected a path, URL or glob, got {type(spec).__name__}", param="inputs")
    text = os.fspath(spec)
    if _is_url(text) or _GLOB_CHARS.search(text) or Path(text).exists():
        return
    raise BadRequestError(f"no such file or folder: {text!r} (and not an http(s) URL or a glob)", param="inputs")


def _expand(spec: str | os.PathLike[str], text_field: str, id_field: str) -> Iterator[Item]:
    text = os.fspath(spec)
    if _is_url(text):
        yield Item(id=text, url=text)
    elif not Path(text).exists() and _GLOB_CHARS.search(text):
        for match in sorted(glob.glob(text, recursive=True)):
            if Path(match).is_file():
                yield from _file_items(Path(match), text_field, id_field)
    elif Path(text).is_dir():
        for path in sorted(p for p in Path(text).rglob("*") if p.is_file() and p.suffix.lower() in DOCUMENT_SUFFIXES):
            yield Item(id=str(path), path=path)
    else:
        yield from _file_items(Path(text), text_field, id_field)


def _file_items(path: Path, text_field: str, id_field: str) -> Iterator[Item]:
    if path.suffix.lower() != ".jsonl":
        yield Item(id=str(path), path=path)
        return
    with path.open(encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            fallback = f"{path}:{number}"
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                yield Item(id=fallback, path=path, problem=f"line {number} is not JSON: {exc}")
                continue
            if not isinstance(value, Mapping):
                yield Item(id=fallback, path=path, problem=f"line {number} is not a JSON object")
                continue
            yield _from_dict(value, fallback, text_field, id_field, path=path)


def _from_dict(value: Mapping[str, Any], fallback: str, text_field: str, id_field: str,
               path: Path | None = None) -> Item:
    raw_id = value.get(id_field)
    item_id = str(raw_id) if isinstance(raw_id, str | int) and not isinstance(raw_id, bool) else fallback
    text, url = value.get(text_field), value.get("url")
    if isinstance(text, str):
        return Item(id=item_id, text=text, path=path)
    if isinstance(url, str) and _is_url(url):
        return Item(id=item_id, url=url)
    return Item(id=item_id, path=path, problem=f"no string {text_field!r} (or http(s) 'url') field")


def read_document(path: Path) -> str:
    """The text of a file: HTML reduced to its main text, anything else read as UTF-8 (bad bytes replaced)."""
    size = path.stat().st_size
    if size > MAX_DOCUMENT_BYTES:
        raise ValueError(f"{size} bytes, over the {MAX_DOCUMENT_BYTES}-byte limit")
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix.lower() in _HTML_SUFFIXES:
        from tools import extract_html

        title, body = extract_html(text)
        return f"{title}\n\n{body}" if title and not body.startswith(title) else body
    return text


def _is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


# --- outputs -----------------------------------------------------------------------------------


class JsonlLog:
    """An append-only JSONL file of results keyed by ``"id"``, written one whole line at a time.

    ``resume=True`` keeps what is there (dropping a torn last line) and collects its ids in ``ids``;
    otherwise an existing non-empty file is refused unless ``overwrite=True`` (then it is emptied), so
    a run never silently appends to, or wipes, an earlier one. ``param`` names the file in errors.
    """

    def __init__(self, path: str | os.PathLike[str], *, resume: bool, overwrite: bool, param: str) -> None:
        self.path = Path(path)
        self.ids: set[str] = set()
        exists = self.path.exists() and self.path.stat().st_size > 0
        if exists and not resume and not overwrite:
            raise UsageError(f"{param}: {self.path} already exists; pass resume (--resume) to continue that run "
                             "or overwrite (--overwrite) to start again")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if exists and resume:
            self.ids = _repair(self.path, param)
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (0 if resume else os.O_TRUNC)
        self._fd = os.open(self.path, flags, 0o644)

    def write(self, line: Mapping[str, Any]) -> None:
        """Append ``line`` as one JSON line, on disk before this returns."""
        data = (json.dumps(line, ensure_ascii=False, default=str) + "\n").encode()
        view = memoryview(data)
        while view:  # one write for a regular file; the loop only guards against a short write
            view = view[os.write(self._fd, view):]
        os.fsync(self._fd)
        self.ids.add(str(line["id"]))

    def close(self) -> None:
        """Close the file. Idempotent."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _repair(path: Path, param: str) -> set[str]:
    """Drop a torn last line (no newline: the writer died mid-line) and return the ids of the others."""
    data = path.read_bytes()
    keep = data.rfind(b"\n") + 1
    if keep < len(data):
        with path.open("r+b") as handle:
            handle.truncate(keep)
    ids: set[str] = set()
    for number, line in enumerate(data[:keep].splitlines(), 1):
        try:
            ids.add(str(json.loads(line)["id"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"{param}: {path} line {number} is not a result line ({exc}); "
                             "was the file edited? fix or remove that line to resume") from exc
    return ids
