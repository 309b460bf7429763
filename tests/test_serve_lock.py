"""A second `serve` on one SQLite file is refused however it names the file (a hard link, a
symlink), while the ingress and worker roles of one deployment lock apart."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.db import ServeLock


@pytest.fixture
def held() -> Iterator[list[ServeLock]]:
    locks: list[ServeLock] = []
    yield locks
    for lock in locks:
        lock.release()


def _take(locks: list[ServeLock], path: Path, part: str) -> bool:
    lock = ServeLock(path, part)
    if lock.acquire():
        locks.append(lock)
        return True
    return False


def test_a_second_serve_through_a_hard_link_is_refused(
    tmp_path: Path, held: list[ServeLock]
) -> None:
    db = tmp_path / "bot.db"
    db.write_bytes(b"")
    os.link(db, tmp_path / "alias.db")
    assert _take(held, db, "ingress")
    assert not _take(held, tmp_path / "alias.db", "ingress")


@pytest.mark.parametrize("kind", ["symlink", "hard link"])
def test_a_second_serve_through_a_link_in_another_directory_is_refused(
    tmp_path: Path, held: list[ServeLock], kind: str
) -> None:
    """Issue 10: the lock is the file's, not a name's, wherever the second name lies."""
    (tmp_path / "data").mkdir()
    (tmp_path / "elsewhere").mkdir()
    db = tmp_path / "data" / "bot.db"
    db.write_bytes(b"")
    link = tmp_path / "elsewhere" / "link.db"
    if kind == "symlink":
        link.symlink_to(db)
    else:
        os.link(db, link)
    assert _take(held, link, "worker")
    assert not _take(held, db, "worker")
    assert _take(held, db, "ingress")  # the other role's own


def test_ingress_and_worker_roles_lock_apart_and_a_released_lock_is_free(
    tmp_path: Path, held: list[ServeLock]
) -> None:
    db = tmp_path / "fresh" / "bot.db"  # not there yet: the first serve creates it
    assert _take(held, db, "ingress")
    assert _take(held, db, "worker")
    held.pop().release()
    assert _take(held, db, "worker")


def test_a_different_file_of_the_same_name_elsewhere_is_not_locked(
    tmp_path: Path, held: list[ServeLock]
) -> None:
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "bot.db").write_bytes(b"")
    assert _take(held, tmp_path / "a" / "bot.db", "ingress")
    assert _take(held, tmp_path / "b" / "bot.db", "ingress")


def _taken_by_another_process(path: Path, part: str) -> bool:
    """Whether a separate process can take the lock now (it releases it on exit)."""
    probe = f"from storage.db import ServeLock; print(ServeLock({str(path)!r}, {part!r}).acquire())"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout.strip() == "True"


def test_the_lock_outlives_sqlite_opening_and_closing_the_same_file(
    tmp_path: Path, held: list[ServeLock]
) -> None:
    """The serving process's own SQLite connections open and close the file; a classic POSIX
    lock would be dropped by the first close, this one holds until released."""
    db = tmp_path / "bot.db"
    assert _take(held, db, "ingress")
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("CREATE TABLE t (x INTEGER)")
        conn.execute("INSERT INTO t VALUES (1)")
    assert not _taken_by_another_process(db, "ingress")
    held.pop().release()
    assert _taken_by_another_process(db, "ingress")
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT x FROM t").fetchall() == [(1,)]
