"""Backups of the SQLite database with SQLite's online backup API, and restoring one.

The backup reads the live database through SQLite's own pager, in one step: in WAL mode that
step is one read transaction, so the copy is the database as of one commit, whatever is being
written meanwhile, and writers are not held up. The copy is written to a temporary file in the
target's folder, checked (`PRAGMA integrity_check`, and our schema's revision), and only then
renamed into place, so a failed backup never leaves a half-written file under the given name.

Restoring goes the other way, also through the backup API into the configured database file
(its WAL handled by SQLite itself): the database as it was is first saved beside it. A server
must not be running on the file (its serve lock is checked by the caller).

PostgreSQL has its own tools (pg_dump / pg_restore); `pg_commands` says what to run."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url


class BackupRefused(Exception):
    """Why a backup or a restore cannot go ahead: ``reason`` and the facts, for the caller's
    wording."""

    def __init__(self, reason: str, **facts: object) -> None:
        super().__init__(reason)
        self.reason = reason
        self.facts = facts


@dataclass(frozen=True)
class Copied:
    path: Path
    revision: str | None
    tables: int
    bytes: int


@contextlib.contextmanager
def _connect(path: Path, *, readonly: bool = False) -> Iterator[sqlite3.Connection]:
    uri = f"file:{path}?mode=ro" if readonly else f"file:{path}"
    conn = sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def check_copy(path: Path) -> Copied:
    """The copy at ``path`` opens, passes SQLite's integrity check and carries our schema."""
    try:
        with _connect(path, readonly=True) as conn:
            result = [row[0] for row in conn.execute("PRAGMA integrity_check")]
            if result != ["ok"]:
                raise BackupRefused("corrupt", path=path, detail="; ".join(result[:3]))
            tables = conn.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
            ).fetchone()[0]
            try:
                row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            except sqlite3.OperationalError:
                row = None
    except sqlite3.DatabaseError as exc:
        raise BackupRefused("unreadable", path=path, detail=str(exc)) from None
    if row is None:
        raise BackupRefused("no_schema", path=path)
    return Copied(path, row[0], int(tables), path.stat().st_size)


def backup(source: Path, target: Path) -> Copied:
    """Copy the live database ``source`` to ``target`` (which must not exist yet)."""
    if not source.is_file():
        raise BackupRefused("missing", path=source)
    if target.exists():
        raise BackupRefused("exists", path=target)
    if not target.parent.is_dir():
        raise BackupRefused("no_folder", path=target.parent)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        with _connect(source) as src, _connect(partial) as dst:
            src.backup(dst)  # pages=-1: all pages in one step, one consistent read
            # The copy stands alone: one file, no WAL beside it.
            dst.execute("PRAGMA journal_mode=DELETE")
        copied = check_copy(partial)
        os.replace(partial, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return Copied(target, copied.revision, copied.tables, target.stat().st_size)


def restore(backup_file: Path, database: Path, *, keep_as: Path) -> Copied:
    """Replace the database at ``database`` by ``backup_file``; the database as it was (if
    any) is first saved to ``keep_as``."""
    if not backup_file.is_file():
        raise BackupRefused("missing", path=backup_file)
    copied = check_copy(backup_file)
    if database.is_file() and database.stat().st_size > 0:
        backup(database, keep_as)
    database.parent.mkdir(parents=True, exist_ok=True)
    with _connect(backup_file, readonly=True) as src, _connect(database) as dst:
        src.backup(dst)
    check_copy(database)
    return Copied(database, copied.revision, copied.tables, database.stat().st_size)


def pg_commands(url: str, file: str) -> tuple[str, str]:
    """What to run on PostgreSQL instead: (backup, restore), password left out (use PGPASSWORD
    or ~/.pgpass)."""
    parsed = make_url(url)
    conn = f"--host {parsed.host or 'localhost'} --port {parsed.port or 5432}"
    if parsed.username:
        conn += f" --username {parsed.username}"
    name = parsed.database or "shuangsuiji"
    dump = f"pg_dump {conn} --format=custom --file {file} {name}"
    load = f"pg_restore {conn} --clean --if-exists --no-owner --dbname {name} {file}"
    return dump, load
