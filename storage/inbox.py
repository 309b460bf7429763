"""The callback inbox: a second SQLite file beside the database, written by the ingress alone.

SQLite has one writer per file. With the ingress and the worker in two processes on one file
(the all-in-one `serve`, or `--role ingress` beside `--role worker`), an acknowledgement had to
wait for the worker's transaction to end: handling a few events holds the write lock for
milliseconds, and SQLite's busy wait retries after 1, 2, 5, 10, 15 ms... (ack p99 well over
50 ms at 200 events/s). So the ingress records into a file of its own, `<database>-inbox`,
whose lock it shares with nobody but the worker's brief `move`: the worker copies what arrived
into `inbound_event` (a key seen before is skipped, as always), commits, and only then deletes
what it copied from the inbox.

Nothing is lost or doubled: an acknowledged event is durable in the inbox (WAL,
synchronous=NORMAL, as the database); a worker killed between its commit and the delete copies
the same rows again next time and the dedup key skips them. Events keep their order (copied by
inbox id, which only grows while rows are there). A backup taken while events wait in the inbox
lacks them; they wait there for milliseconds while a worker runs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import os
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

from storage import inbound
from storage.db import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS inbox_event (
    id INTEGER PRIMARY KEY,
    dedup_key TEXT NOT NULL,
    userid TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    received_at TEXT NOT NULL,
    channel TEXT NOT NULL
)
"""
INSERT = (
    "INSERT INTO inbox_event (dedup_key, userid, kind, payload, received_at, channel) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
# The ingress's write, when the worker's delete holds the inbox: the first pause between tries
# and the longest (seconds). SQLite's own busy wait would sleep 1, 2, 5, 10 ms between tries.
POLL_FIRST = 0.0002
POLL_MAX = 0.002
MOVE_BATCH = 500  # rows copied per transaction
CHECKPOINT_EVERY = 1.0  # seconds between the worker's checkpoints of the inbox


def inbox_path(db_path: Path) -> Path:
    """The inbox of the database at `db_path` (symlinks resolved, as the serve lock does)."""
    real = Path(os.path.realpath(db_path))
    return real.with_name(real.name + "-inbox")


def _connect(path: Path, busy_ms: int) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), timeout=0, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout={busy_ms}")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")  # the worker checkpoints, off the ack path
    conn.execute(SCHEMA)
    return conn


def _busy(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


class InboxWriter:
    """The ingress's side: one connection, used by one group commit at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = _connect(path, busy_ms=0)

    def _insert(self, rows: Sequence[tuple[str, ...]]) -> None:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.executemany(INSERT, rows)
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    def _polling(self, rows: Sequence[tuple[str, ...]], deadline: float) -> None:
        pause = POLL_FIRST
        while True:
            try:
                return self._insert(rows)
            except sqlite3.OperationalError as exc:
                if not _busy(exc) or time.monotonic() >= deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 1.5, POLL_MAX)

    async def record(self, events: list[inbound.NewEvent], *, give_up_after: float) -> None:
        """Commit `events` to the inbox: at once on the loop's thread (a small insert, no
        fsync), or, while the worker's delete holds the file, in a thread that tries again
        every fraction of a millisecond for at most `give_up_after` seconds."""
        rows: list[tuple[str, ...]] = [
            (e.dedup_key, e.userid, e.kind, e.payload, e.received_at.isoformat(), e.channel)
            for e in events
        ]
        try:
            self._insert(rows)
        except sqlite3.OperationalError as exc:
            if not _busy(exc):
                raise
            deadline = time.monotonic() + give_up_after
            work = functools.partial(self._polling, rows, deadline)
            await asyncio.get_running_loop().run_in_executor(None, work)

    def close(self) -> None:
        self._conn.close()


class InboxDrain:
    """The worker's side: copies what the inbox holds into `inbound_event`, then deletes it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._checkpointed = time.monotonic()
        self._checkpoint: asyncio.Future[None] | None = None

    async def move(self, db: Database) -> int:
        """Returns how many rows were copied (events seen before included)."""
        if self._conn is None:
            if not self.path.exists():  # no ingress of this database ever used one
                return 0
            self._conn = _connect(self.path, busy_ms=5000)
        moved = 0
        while True:
            rows = self._conn.execute(
                "SELECT id, dedup_key, userid, kind, payload, received_at, channel "
                "FROM inbox_event ORDER BY id LIMIT ?",
                (MOVE_BATCH,),
            ).fetchall()
            if not rows:
                break
            events = [
                inbound.NewEvent(key, user, kind, payload, dt.datetime.fromisoformat(at), channel)
                for _, key, user, kind, payload, at, channel in rows
            ]
            await db.run_write(functools.partial(inbound.record_many, events=events))
            # Only after the commit: a crash in between copies them again, skipped as seen.
            self._conn.execute("DELETE FROM inbox_event WHERE id <= ?", (rows[-1][0],))
            moved += len(rows)
            if len(rows) < MOVE_BATCH:
                break
        self._checkpoint_now()
        return moved

    def _checkpoint_now(self) -> None:
        """Now and then, move the inbox's WAL into its file, in a thread (it fsyncs)."""
        if time.monotonic() - self._checkpointed < CHECKPOINT_EVERY:
            return
        if self._checkpoint is not None and not self._checkpoint.done():
            return
        self._checkpointed = time.monotonic()
        path = str(self.path)

        def checkpoint() -> None:
            try:
                conn = sqlite3.connect(path, timeout=5)
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                finally:
                    conn.close()
            except sqlite3.Error:
                pass  # the next one will

        self._checkpoint = asyncio.get_running_loop().run_in_executor(None, checkpoint)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
