"""SQLite for the async engine without a thread hop per call.

aiosqlite runs every call (cursor, execute, fetch, close, commit) on a thread of its own and
wakes the event loop for each answer: four or five thread hand-offs a statement, which on a
busy 2-core machine cost more than the statements themselves (bench/bench_worker.py: most of
the worker's time was spent waiting for those hand-offs). This driver has aiosqlite's shape,
as SQLAlchemy's aiosqlite dialect uses it, but runs each call at once on the loop's thread:
a statement of this bot (a few rows by index, WAL, no fsync at commit) takes microseconds.

What would block the loop instead is handled:
- a database locked by another process (the CLI writing beside a server): each call runs with
  no busy wait; a call refused as busy runs again in a thread, with the engine's busy timeout,
  while the loop goes on;
- a long run of calls (a big handler, a report): after ``YIELD_AFTER`` seconds of inline work
  the next call first lets the loop run (acknowledgements go out), as aiosqlite's hops did.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterable
from typing import Any

YIELD_AFTER = 0.004  # seconds of inline work before the loop gets a turn

_last_yield = time.perf_counter()
_THREADS = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="sqlite-busy")


def _busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc)
    return "locked" in text or "busy" in text


class _Immediately:
    """Stands in for aiosqlite's request queue (SQLAlchemy sets the isolation level through
    it): runs the function at once and resolves its future."""

    def put_nowait(self, item: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as exc:
            future.set_exception(exc)


class InlineConnection:
    def __init__(self, conn: sqlite3.Connection, busy_ms: int) -> None:
        self._conn = conn
        self._connection: sqlite3.Connection | None = conn  # SQLAlchemy checks it is open
        self._tx = _Immediately()
        self.busy_ms = busy_ms
        # A call waiting in a thread for a busy database: nothing else may use the connection
        # (or close it) until it returns, even if whoever awaited it was cancelled.
        self._in_thread: concurrent.futures.Future[Any] | None = None

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        global _last_yield
        if self._in_thread is not None and not self._in_thread.done():
            with contextlib.suppress(Exception):
                await asyncio.wrap_future(self._in_thread)
        now = time.perf_counter()
        if now - _last_yield > YIELD_AFTER:
            await asyncio.sleep(0)
            _last_yield = time.perf_counter()
        try:
            return fn(*args)
        except sqlite3.OperationalError as exc:
            if not _busy(exc):
                raise
        # Another process holds the lock: wait for it in a thread, the loop goes on.
        _last_yield = time.perf_counter()
        self._in_thread = _THREADS.submit(self._waiting, fn, args)
        return await asyncio.wrap_future(self._in_thread)

    def _waiting(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        self._conn.execute(f"PRAGMA busy_timeout={self.busy_ms}")
        try:
            return fn(*args)
        finally:
            self._conn.execute("PRAGMA busy_timeout=0")

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> InlineCursor:
        return InlineCursor(self)

    async def execute_fetchall(self, sql: str, parameters: Any = ()) -> list[Any]:
        """aiosqlite's shortcut (storage.bulk reads a draw's rows through it)."""
        return list(await self.run(lambda: self._conn.execute(sql, parameters).fetchall()))

    async def create_function(self, *args: Any, **kw: Any) -> None:
        self._conn.create_function(*args, **kw)

    async def commit(self) -> None:
        await self.run(self._conn.commit)

    async def rollback(self) -> None:
        await self.run(self._conn.rollback)

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        if self._connection is None:
            return
        self._connection = None
        running = self._in_thread
        if running is not None and not running.done():
            running.add_done_callback(lambda _: self._conn.close())  # never under its feet
        else:
            self._conn.close()


class InlineCursor:
    def __init__(self, connection: InlineConnection) -> None:
        self._connection = connection
        self._cursor = connection._conn.cursor()

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Any = None) -> InlineCursor:
        if parameters is None:
            await self._connection.run(self._cursor.execute, sql)
        else:
            await self._connection.run(self._cursor.execute, sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> InlineCursor:
        await self._connection.run(self._cursor.executemany, sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


def creator(path: str, timeout: float) -> Callable[[], Any]:
    """An ``async_creator`` for ``create_async_engine``: inline connections to ``path``."""

    async def connect() -> InlineConnection:
        conn = sqlite3.connect(path, timeout=0, check_same_thread=False, isolation_level=None)
        return InlineConnection(conn, int(timeout * 1000))

    return connect
