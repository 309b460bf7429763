"""Engines and transactions for SQLite (embedded default) and PostgreSQL (several instances)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import sqlite3
import struct
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import StaticPool

from storage import sqlite_inline


def is_postgresql(db: AsyncSession | Connection) -> bool:
    dialect = db.dialect if isinstance(db, Connection) else db.get_bind().dialect
    return dialect.name == "postgresql"


def insert_for(db: AsyncSession | Connection) -> Any:
    """The dialect's INSERT, which has ON CONFLICT (both SQLite and PostgreSQL have it)."""
    return pg_insert if is_postgresql(db) else sqlite_insert


# session.info key of a transaction that never reads the rule parameters (storage.params)
SKIP_RULES = "skip_rule_params"


class DatabaseUnavailable(Exception):
    """The database cannot be reached (or the SQLite file cannot be opened)."""


def sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database
    if not database or database == ":memory:":
        return None
    return Path(database)


SQLITE_CACHE_KIB = 32 * 1024


def _configure_sqlite(
    engine: Engine, *, own_checkpoints: bool = False, busy_wait: bool = True
) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let us emit BEGIN ourselves (pysqlite's own BEGIN is deferred, which fails with
        # SQLITE_BUSY when a reader later upgrades to a writer).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        if busy_wait:  # (the inline driver waits for a busy database in a thread instead)
            cursor.execute("PRAGMA busy_timeout=30000")
        # 32 MiB of page cache (SQLite's default is 2 MiB), filled only as pages are read. A
        # draw writes 10,000 inspections and 20,000 team members whose foreign keys look up
        # the target and inspector tables at random: with the default cache that thrashes
        # (about 1.7x slower writes at 100,000 targets; bench/bench_draw.py).
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        if own_checkpoints:
            # A server checkpoints in a thread of its own (Database.checkpoint_every), so no
            # request waits for the checkpoint's fsync.
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_engine(url: str, echo: bool, own_checkpoints: bool) -> AsyncEngine:
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    if path is None:  # in memory: aiosqlite
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})
        _configure_sqlite(engine.sync_engine, own_checkpoints=own_checkpoints)
        return engine
    # A file: each call runs on the loop's thread (storage/sqlite_inline.py).
    engine = create_async_engine(
        url, echo=echo, async_creator=sqlite_inline.creator(str(path), timeout=30)
    )
    _configure_sqlite(engine.sync_engine, own_checkpoints=own_checkpoints, busy_wait=False)
    return engine


class Database:
    """One engine and session factory; `transaction()` is the only way handlers touch data."""

    def __init__(self, url: str, *, echo: bool = False, own_checkpoints: bool = False) -> None:
        self.url = url
        self.own_checkpoints = own_checkpoints and sqlite_path(url) is not None
        if make_url(url).get_backend_name() == "sqlite":
            self.engine = _sqlite_engine(url, echo, self.own_checkpoints)
        else:
            # Connecting, and any one statement, are bounded (asyncpg's own timeouts: a
            # statement cut short leaves a usable or a closed connection, never a half-read one),
            # so a black-holed server fails the loops instead of hanging them.
            self.engine = create_async_engine(
                url,
                echo=echo,
                pool_pre_ping=True,
                pool_size=10,
                connect_args={"timeout": 10, "command_timeout": 300},
            )
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer. Inside this process writers queue here, in order, instead of
        # polling in SQLite's busy handler (which sleeps up to 100 ms a try); other processes
        # (the CLI beside a server) still meet the busy timeout.
        self._writer = asyncio.Lock() if self.is_sqlite else None
        self._sync_writer: Engine | None = None
        self._quick: AsyncEngine | None = None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @contextlib.asynccontextmanager
    async def _turn(self) -> AsyncIterator[None]:
        if self._writer is None:
            yield
        else:
            async with self._writer:
                yield

    @contextlib.asynccontextmanager
    async def transaction(self, *, rules: bool = True) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: commit on success, roll back on error.

        ``rules=False``: a transaction that never reads the rule parameters (the runtime's
        claims, heartbeats, sending) skips loading them (storage.params).

        Never nest two in one task: on SQLite the second would wait for the first forever."""
        info = {SKIP_RULES: True} if not rules else {}
        async with self._turn(), self.sessions(info=info) as session, session.begin():
            # Begin on the database now: the rule parameters in force load as it begins
            # (storage.params), before anything reads them.
            await session.connection()
            yield session

    @contextlib.asynccontextmanager
    async def core_transaction(self) -> AsyncIterator[AsyncConnection]:
        """A Core connection in one transaction, for hot paths that need no ORM."""
        async with self._turn(), self.engine.begin() as conn:
            yield conn

    def _quick_engine(self, timeout: float) -> AsyncEngine:
        """PostgreSQL: a small pool for the acknowledgement path whose connecting and every
        statement give up after `timeout` inside asyncpg (cancelling a statement from outside
        would leave its connection mid-protocol and poison the pool)."""
        if self._quick is None:
            self._quick = create_async_engine(
                self.url,
                pool_pre_ping=True,
                pool_size=4,
                connect_args={"timeout": timeout, "command_timeout": timeout},
            )
        return self._quick

    async def run_write(
        self, work: Callable[[Connection], None], *, give_up_after: float | None = None
    ) -> None:
        """Run `work(connection)` in one transaction: the callback's hot path. On SQLite it runs
        on a synchronous connection on the loop's own thread: a small insert and a commit
        without fsync (WAL, synchronous=NORMAL) cost well under a millisecond, less than the
        thread hops of the async driver. Writers of this process queue on the lock first, so
        the database is only ever busy because of another process (the CLI): then the loop
        must not block, and the write waits in a thread instead.

        With `give_up_after`, the write gives up after about that many seconds (busy timeout on
        SQLite, asyncpg's timeouts on PostgreSQL): the callback's bound."""
        busy_ms = 30000 if give_up_after is None else int(give_up_after * 1000)
        if not self.is_sqlite:
            pg = self.engine if give_up_after is None else self._quick_engine(give_up_after)
            async with pg.begin() as conn:
                await conn.run_sync(work)
            return
        if self._sync_writer is None:
            self._sync_writer = create_engine(
                self.url.replace("+aiosqlite", ""),
                # One connection, used by one writer at a time (the lock), from whichever thread.
                connect_args={"timeout": 30, "check_same_thread": False},
                poolclass=StaticPool,
            )
            _configure_sqlite(self._sync_writer, own_checkpoints=self.own_checkpoints)
        engine = self._sync_writer

        def run(busy_ms: int) -> None:
            with engine.connect() as conn:
                # On the DBAPI connection itself: through SQLAlchemy it would autobegin first.
                conn.connection.driver_connection.execute(f"PRAGMA busy_timeout={busy_ms}")  # type: ignore[union-attr]
                with conn.begin():
                    work(conn)

        async with self._turn():
            try:
                run(0)
            except OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                await asyncio.get_running_loop().run_in_executor(None, run, busy_ms)

    async def checkpoint_every(self, seconds: float, stop: asyncio.Event) -> None:
        """SQLite with own_checkpoints: move the WAL into the database file in a thread."""
        if not self.own_checkpoints:
            return
        path = sqlite_path(self.url)
        loop = asyncio.get_running_loop()

        def checkpoint() -> None:
            conn = sqlite3.connect(str(path), timeout=30)
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            finally:
                conn.close()

        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), seconds)
            with contextlib.suppress(sqlite3.Error):
                await loop.run_in_executor(None, checkpoint)

    async def ping(self, give_up_after: float | None = None) -> bool:
        """SELECT 1; with `give_up_after`, False when no answer comes within about that long."""
        if give_up_after is not None and not self.is_sqlite:
            engine = self._quick_engine(give_up_after)
            try:
                async with engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
                return True
            except Exception:
                return False
        try:
            # SQLite: only waiting for this process's writer can take long; that wait is safe to
            # cut short.
            async with asyncio.timeout(give_up_after):
                async with self._turn(), self.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._quick is not None:
            await self._quick.dispose()
            self._quick = None
        if self._sync_writer is not None:
            self._sync_writer.dispose()
            self._sync_writer = None


# `serve`'s lock bytes in the SQLite file (ServeLock): one a role, far past SQLite's own.
_SERVE_LOCK_BYTE = 1 << 40
_SERVE_LOCK_PARTS = ("ingress", "worker")


class ServeLock:
    """A second `serve` on the same SQLite file is refused: several instances need PostgreSQL.

    The lock is a byte-range lock on the database file itself (Linux's open file description
    locks), so it belongs to the file's (device, inode) and a second server meets it whatever
    name it reaches the file by: a symlink, or a hard link in any directory. Each role (ingress,
    worker) locks a byte of its own, so the two roles of one deployment lock apart. The bytes
    lie far past SQLite's own lock bytes (at 1 GiB), and unlike a classic POSIX lock this one is
    not dropped when SQLite closes a descriptor of the same file in this process."""

    def __init__(self, db_path: Path, part: str = "ingress") -> None:
        self.part = part
        self.db_path = db_path
        self._fd: int | None = None
        self._adopted = False

    def _lock(self, fd: int, kind: int) -> None:
        start = _SERVE_LOCK_BYTE + _SERVE_LOCK_PARTS.index(self.part)
        # struct flock: l_type, l_whence, l_start, l_len, l_pid (0 for these locks), padded.
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack("hhqqi4x", kind, os.SEEK_SET, start, 1, 0))

    def acquire(self) -> bool:
        """Take the lock (creating the database file, empty, if it does not exist)."""
        real = Path(os.path.realpath(self.db_path))
        real.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(real, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            self._lock(fd, fcntl.F_WRLCK)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                return False
            raise
        self._fd = fd
        return True

    @property
    def fd(self) -> int:
        """The held lock's descriptor, to hand to a child process (`adopt`)."""
        assert self._fd is not None, "not held"
        return self._fd

    def adopt(self, fd: int) -> bool:
        """In a child started with the descriptor of this lock held by its parent: share the
        parent's hold (an open file description lock belongs to the open file, which the two
        processes share). False if `fd` is not this database file or does not hold this role's
        byte. Releasing an adopted lock only closes the child's descriptor: the parent still
        holds it, so nobody else takes it while the child restarts."""
        try:
            st = os.fstat(fd)
            db = os.stat(os.path.realpath(self.db_path))
        except OSError:
            return False
        if (st.st_dev, st.st_ino) != (db.st_dev, db.st_ino):
            return False
        try:
            self._lock(fd, fcntl.F_WRLCK)  # ours already: succeeds at once
        except OSError:
            return False
        self._fd = fd
        self._adopted = True
        return True

    def release(self) -> None:
        if self._fd is not None:
            if not self._adopted:  # the parent's hold stays while a child lets go
                self._lock(self._fd, fcntl.F_UNLCK)
            os.close(self._fd)
            self._fd = None
