# The FastAPI peer's storage: orders and their events in SQLite, on one thread of its own.
"""SQLite for the FastAPI peer (app.py): the orders, their events, and the helpers both files share."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import sqlite3
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The only resource type and topic of the subset.
ORDER = "order"

# Compact separators: fewer bytes per message than json.dumps' default ", " and ": ", and a little less work.
_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
dumps = _encoder.encode


def now_ms() -> int:
    """Unix time in milliseconds, the protocol's timestamp."""
    return time.time_ns() // 1_000_000



# ---------------------------------------------------------------------------------------------------------------
# Storage: SQLite on one thread of its own.
# ---------------------------------------------------------------------------------------------------------------

SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    id            TEXT PRIMARY KEY,
    resource_type TEXT NOT NULL,
    version       INTEGER NOT NULL,
    owner_id      TEXT NOT NULL,
    data          TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    seq           INTEGER PRIMARY KEY,
    topic         TEXT NOT NULL,
    event_type    TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    version       INTEGER NOT NULL,
    owner_id      TEXT NOT NULL,
    actor_id      TEXT NOT NULL,
    occurred_at   INTEGER NOT NULL,
    data          TEXT NOT NULL
);
"""


class Store:
    """The orders and their events in SQLite, worked on by one thread that owns the connection.

    sqlite3 blocks, and FastAPI's documentation says to keep blocking calls off the event loop, in a thread. The
    thread here is a dedicated one-thread executor rather than the shared pool behind `run_in_threadpool`: a
    sqlite3 connection belongs to the thread that opened it, SQLite admits one writer at a time anyway, and one
    thread with one connection needs no locks. Each operation crosses to that thread once, with all its statements;
    aiosqlite works the same way underneath but crosses once per statement, and would add a dependency for it.

    Because that one thread runs jobs in submission order, their results come back to the event loop in commit
    order: the create handler publishes its event right after its await returns, so events go out in `seq` order.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._db: sqlite3.Connection | None = None
        # The last event's number; read and written only on the storage thread.
        self._seq = 0

    async def _run(self, function: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    async def open(self) -> int:
        """Opens the database, making its tables if needed; returns the last event's number."""
        return await self._run(self._open)

    async def close(self) -> None:
        await self._run(self._close)
        self._executor.shutdown(wait=True)

    async def create_order(self, owner_id: str, data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Stores a new order and its event in one transaction; returns the resource and the event's payload."""
        return await self._run(self._create_order, owner_id, data)

    async def read(self, resource_type: str, resource_id: str) -> dict[str, Any] | None:
        return await self._run(self._read, resource_type, resource_id)

    # The methods below run on the storage thread.

    def _open(self) -> int:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self._path)
        # WAL lets the commit be one append to the log; synchronous=FULL makes that append reach the disk before
        # COMMIT returns, so an acknowledged create survives a power cut, as in Tidings.
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(SCHEMA)
        (seq,) = db.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()
        self._db = db
        self._seq = seq
        return seq

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _create_order(self, owner_id: str, data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        assert self._db is not None
        resource_id = f"ORD-{uuid.uuid4().hex}"
        now = now_ms()
        seq = self._seq + 1
        data_text = dumps(data)
        # `with connection` is sqlite3's transaction: both rows commit together or neither does, and it returns
        # only once the commit is on disk (synchronous=FULL).
        with self._db:
            self._db.execute(
                "INSERT INTO resources (id, resource_type, version, owner_id, data, created_at, updated_at)"
                " VALUES (?, ?, 1, ?, ?, ?, ?)",
                (resource_id, ORDER, owner_id, data_text, now, now),
            )
            self._db.execute(
                "INSERT INTO events (seq, topic, event_type, resource_type, resource_id, version, owner_id,"
                " actor_id, occurred_at, data) VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?)",
                (seq, ORDER, f"{ORDER}_created", ORDER, resource_id, owner_id, owner_id, now, data_text),
            )
        self._seq = seq
        resource = {
            "resourceType": ORDER,
            "id": resource_id,
            "version": 1,
            "ownerId": owner_id,
            "data": data,
            "createdAt": now,
            "updatedAt": now,
        }
        event = {
            "eventType": f"{ORDER}_created",
            "topic": ORDER,
            "subscriptionId": ORDER,
            "seq": seq,
            "resourceType": ORDER,
            "id": resource_id,
            "version": 1,
            "ownerId": owner_id,
            "actor": {"kind": "user", "id": owner_id},
            "occurredAt": now,
            "data": data,
        }
        return resource, event

    def _read(self, resource_type: str, resource_id: str) -> dict[str, Any] | None:
        assert self._db is not None
        row = self._db.execute(
            "SELECT version, owner_id, data, created_at, updated_at FROM resources WHERE id = ? AND resource_type = ?",
            (resource_id, resource_type),
        ).fetchone()
        if row is None:
            return None
        version, owner_id, data_text, created_at, updated_at = row
        return {
            "resourceType": resource_type,
            "id": resource_id,
            "version": version,
            "ownerId": owner_id,
            "data": json.loads(data_text),
            "createdAt": created_at,
            "updatedAt": updated_at,
        }
