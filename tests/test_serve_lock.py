"""A second `serve` on one SQLite file is refused however it names the file (a hard link, a
symlink), while the ingress and worker roles of one deployment lock apart."""

from __future__ import annotations

import os
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


def test_a_second_serve_through_a_symlink_elsewhere_is_refused(
    tmp_path: Path, held: list[ServeLock]
) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "elsewhere").mkdir()
    db = tmp_path / "data" / "bot.db"
    db.write_bytes(b"")
    link = tmp_path / "elsewhere" / "link.db"
    link.symlink_to(db)
    assert _take(held, link, "worker")
    assert not _take(held, db, "worker")


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
