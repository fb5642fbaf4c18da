"""Where ``store=true`` Responses live: a small interface, an SQLite default, an in-memory one for tests.

A stored response is the response body (what ``GET /v1/responses/{id}`` returns) plus the
conversation it ended (chat-format messages: the inputs of every turn chained through
``previous_response_id``, and this turn's output), so a follow-up request with
``previous_response_id`` continues it without the caller resending anything. ``instructions`` are
not part of it: as in OpenAI's API, they apply to one request only.

Bounds (named constants below): a stored response expires :data:`RESPONSE_TTL_SECONDS` after it was
written (30 days, OpenAI's retention); at most :data:`MAX_STORED_RESPONSES` are kept (the oldest go
first); a record larger than :data:`MAX_RECORD_BYTES` is not stored (the response is still served,
and a later ``previous_response_id`` naming it is a 400).

Several server processes share state by sharing a store: the SQLite default works for the worker
processes of one machine (one file, WAL mode); a shared database behind
:class:`ResponseStore` serves several machines.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools import default_cache_dir

__all__ = [
    "MAX_RECORD_BYTES",
    "MAX_STORED_RESPONSES",
    "RESPONSE_TTL_SECONDS",
    "MemoryResponseStore",
    "ResponseStore",
    "SqliteResponseStore",
    "StoredResponse",
]

#: How long a stored response can be retrieved or continued (OpenAI keeps them 30 days).
RESPONSE_TTL_SECONDS = 30 * 24 * 3600
#: Stored responses kept at most; past this the oldest are dropped on the next write.
MAX_STORED_RESPONSES = 10_000
#: A response and its conversation larger than this (as JSON) are not stored.
MAX_RECORD_BYTES = 4 * 1024 * 1024
#: The SQLite file under the cache folder (``$STUDIOLM_CACHE_DIR``, else ``~/.cache/studiolm``).
DEFAULT_STORE_FILE = "responses.sqlite3"
# How long a writer waits for another process's lock before failing.
SQLITE_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A stored response body and the conversation (chat-format messages) it ended."""

    response: dict[str, Any]
    conversation: list[dict[str, Any]]


class ResponseStore(ABC):
    """Stored Responses by id. Implementations are safe to share between concurrent requests."""

    @abstractmethod
    async def get(self, response_id: str) -> StoredResponse | None:
        """The stored response, or None when unknown or expired."""

    @abstractmethod
    async def put(self, response_id: str, record: StoredResponse) -> bool:
        """Store ``record``; False when it is over :data:`MAX_RECORD_BYTES` (nothing is stored)."""

    @abstractmethod
    async def delete(self, response_id: str) -> bool:
        """Delete it; False when it was not there."""

    async def aclose(self) -> None:  # noqa: B027 - most stores hold nothing to release
        """Release connections."""


def _encode(record: StoredResponse) -> str | None:
    text = json.dumps({"response": record.response, "conversation": record.conversation}, separators=(",", ":"))
    return text if len(text.encode()) <= MAX_RECORD_BYTES else None


def _decode(text: str) -> StoredResponse:
    data = json.loads(text)
    return StoredResponse(response=data["response"], conversation=data["conversation"])


class MemoryResponseStore(ResponseStore):
    """A store in this process's memory, with the same bounds (for tests and single-process use)."""

    def __init__(self, *, ttl: float = RESPONSE_TTL_SECONDS, max_items: int = MAX_STORED_RESPONSES) -> None:
        self._items: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._ttl, self._max = ttl, max_items

    async def get(self, response_id: str) -> StoredResponse | None:
        """See :meth:`ResponseStore.get`."""
        item = self._items.get(response_id)
        if item is None or item[0] + self._ttl < time.time():
            return None
        return _decode(item[1])

    async def put(self, response_id: str, record: StoredResponse) -> bool:
        """See :meth:`ResponseStore.put`."""
        text = _encode(record)
        if text is None:
            return False
        self._items[response_id] = (time.time(), text)
        self._items.move_to_end(response_id)
        while len(self._items) > self._max:
            self._items.popitem(last=False)
        return True

    async def delete(self, response_id: str) -> bool:
        """See :meth:`ResponseStore.delete`."""
        return self._items.pop(response_id, None) is not None


class SqliteResponseStore(ResponseStore):
    """The default store: one SQLite file (``path``, default ``<cache dir>/responses.sqlite3``).

    The file is created on the first write, not before; queries run in a worker thread.
    """

    def __init__(self, path: str | Path | None = None, *, ttl: float = RESPONSE_TTL_SECONDS,
                 max_items: int = MAX_STORED_RESPONSES) -> None:
        self.path = Path(path) if path is not None else default_cache_dir() / DEFAULT_STORE_FILE
        self._ttl, self._max = ttl, max_items
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=SQLITE_TIMEOUT_SECONDS, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE IF NOT EXISTS responses (id TEXT PRIMARY KEY, stored_at REAL NOT NULL, "
                       "record TEXT NOT NULL)")
            db.execute("CREATE INDEX IF NOT EXISTS responses_age ON responses (stored_at)")
            self._db = db
        return self._db

    def _run(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        with self._lock:
            db = self._connect()
            with db:
                return db.execute(sql, args).fetchall()

    async def get(self, response_id: str) -> StoredResponse | None:
        """See :meth:`ResponseStore.get`."""
        if self._db is None and not self.path.exists():
            return None  # nothing was ever stored: do not create the file just to look
        rows = await asyncio.to_thread(self._run, "SELECT record FROM responses WHERE id = ? AND stored_at >= ?",
                                       (response_id, time.time() - self._ttl))
        return _decode(rows[0][0]) if rows else None

    async def put(self, response_id: str, record: StoredResponse) -> bool:
        """See :meth:`ResponseStore.put`."""
        text = _encode(record)
        if text is None:
            return False
        await asyncio.to_thread(self._put, response_id, text)
        return True

    def _put(self, response_id: str, text: str) -> None:
        with self._lock:
            db = self._connect()
            with db:  # one transaction: the write and the pruning
                db.execute("INSERT OR REPLACE INTO responses VALUES (?, ?, ?)", (response_id, time.time(), text))
                db.execute("DELETE FROM responses WHERE stored_at < ?", (time.time() - self._ttl,))
                db.execute("DELETE FROM responses WHERE id NOT IN "
                           "(SELECT id FROM responses ORDER BY stored_at DESC LIMIT ?)", (self._max,))

    async def delete(self, response_id: str) -> bool:
        """See :meth:`ResponseStore.delete`."""
        if self._db is None and not self.path.exists():
            return False
        rows = await asyncio.to_thread(self._run, "DELETE FROM responses WHERE id = ? RETURNING id", (response_id,))
        return bool(rows)

    async def aclose(self) -> None:
        """Close the database connection."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
