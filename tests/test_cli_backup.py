"""`shuangsuiji backup FILE` and `restore FILE` (docs/operations.md, "Backups and restore"):
a consistent copy while writes go on, a restore that the bot then serves from, and PostgreSQL
told what to run. SQLite-only where the backend is what is tested."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from pathlib import Path

import pytest

from bot.chat.context import FixedClock
from bot.cli import main
from bot.runtime.app import Runtime
from bot.wecom.standin import WeComStandIn
from storage.backup import check_copy
from storage.db import ServeLock
from tests.conftest import make_settings

ROWS_PER_COMMIT = 5


def _config(tmp_path: Path, url: str) -> str:
    path = tmp_path / "c.toml"
    path.write_text(f'[database]\nurl = "{url}"\n', encoding="utf-8")
    return str(path)


def _migrated(tmp_path: Path) -> tuple[Path, str]:
    db = tmp_path / "live" / "bot.db"
    config = _config(tmp_path, f"sqlite+aiosqlite:///{db}")
    assert main(["migrate", "--config", config]) == 0
    return db, config


class Writer(threading.Thread):
    """Commits ROWS_PER_COMMIT role bindings per transaction until stopped."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.commits = 0
        self.stop = threading.Event()
        self.started_writing = threading.Event()

    def run(self) -> None:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        n = 0
        while not self.stop.is_set():
            conn.execute("BEGIN IMMEDIATE")
            for _ in range(ROWS_PER_COMMIT):
                n += 1
                conn.execute(
                    "INSERT INTO role_binding (userid, role, org_code, dept_code, granted_by,"
                    " granted_at) VALUES (?, 'chief', '150100', '', 'load', '2026-11-30 01:00')",
                    (f"load{n}",),
                )
            conn.execute("COMMIT")
            self.commits += 1
            if self.commits >= 20:
                self.started_writing.set()
        conn.close()


def _bindings(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM role_binding").fetchone()[0])


def test_backup_while_writes_go_on_is_one_consistent_commit_that_passes_integrity(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, config = _migrated(tmp_path)
    writer = Writer(db)
    writer.start()
    try:
        assert writer.started_writing.wait(timeout=30), "the writer never got going"
        copy = tmp_path / "copy.db"
        assert main(["backup", str(copy), "--config", config]) == 0
        commits_at_backup_end = writer.commits
    finally:
        writer.stop.set()
        writer.join(timeout=30)
    out = capsys.readouterr()
    assert "Traceback" not in out.err and "integrity ok" in out.out
    copied = check_copy(copy)  # opens read-only, PRAGMA integrity_check == ok
    assert copied.revision is not None
    in_copy = _bindings(copy)
    assert in_copy > 0 and in_copy % ROWS_PER_COMMIT == 0  # whole transactions only
    # The writer was not held up: it went on committing while the copy was taken and after.
    assert writer.commits >= commits_at_backup_end
    assert _bindings(db) >= in_copy
    assert not list(copy.parent.glob(f".{copy.name}*"))  # no partial file left behind
    assert not Path(f"{copy}-wal").exists()  # the copy is one file


def test_backup_refuses_an_existing_file_and_a_missing_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, config = _migrated(tmp_path)
    taken = tmp_path / "taken.db"
    taken.write_bytes(b"keep me")
    assert main(["backup", str(taken), "--config", config]) == 2
    assert taken.read_bytes() == b"keep me"
    missing = _config(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'typo.db'}")
    assert main(["backup", str(tmp_path / "x.db"), "--config", missing]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert str(taken) in err and "typo.db" in err
    assert not (tmp_path / "x.db").exists() and not (tmp_path / "typo.db").exists()


def test_backup_on_postgresql_names_pg_dump_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, "postgresql://bot:secret@db.internal:5433/shuangsuiji")
    assert main(["backup", "/srv/b.dump", "--config", config]) == 2
    assert main(["restore", "/srv/b.dump", "--config", config]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "Traceback" not in "".join(err)
    assert "pg_dump" in err[0] and "--port 5433" in err[0] and "/srv/b.dump" in err[0]
    assert "pg_restore" in err[1] and "shuangsuiji" in err[1]
    assert "secret" not in "".join(err)


def test_restore_is_refused_while_serve_holds_the_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, config = _migrated(tmp_path)
    copy = tmp_path / "copy.db"
    assert main(["backup", str(copy), "--config", config]) == 0
    lock = ServeLock(db, "worker")
    assert lock.acquire()
    try:
        assert main(["restore", str(copy), "--config", config]) == 2
    finally:
        lock.release()
    err = capsys.readouterr().err
    assert "serve" in err and str(db) in err and "Traceback" not in err
    assert not list(db.parent.glob("*.before-restore-*"))


async def test_a_restored_backup_is_what_the_bot_then_serves(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The procedure of docs/operations.md: stop, `restore FILE`, start; the bot answers from
    the backup (a role granted after the backup is gone, the one before it is there)."""
    import asyncio

    db, config = await asyncio.to_thread(_migrated, tmp_path)

    def cli(*argv: str) -> int:
        return main([*argv, "--config", config])

    # The CLI runs its own event loop: off this test's loop, in a thread.
    assert await asyncio.to_thread(cli, "role", "grant", "wanghai", "admin", "150100") == 0
    copy = tmp_path / "nightly.db"
    assert await asyncio.to_thread(cli, "backup", str(copy)) == 0
    assert await asyncio.to_thread(cli, "role", "grant", "wanghai", "chief", "150100") == 0
    assert await asyncio.to_thread(cli, "restore", str(copy)) == 0
    out = capsys.readouterr()
    assert "before-restore" in out.err and "Traceback" not in out.err
    kept = list(db.parent.glob("bot.db.before-restore-*"))
    assert len(kept) == 1 and check_copy(kept[0]).revision is not None

    clock = FixedClock(dt.datetime.now(dt.UTC))
    wecom = WeComStandIn(clock=lambda: clock.now().timestamp())
    api_base = await wecom.start()
    settings = make_settings(f"sqlite+aiosqlite:///{db}", wecom, api_base)
    runtime = Runtime(settings, clock=clock, wecom_backoff=0.0)
    port = await runtime.start(background=False)
    try:
        xml = wecom.text_message_xml("wanghai", "我的角色", 1, int(clock.now().timestamp()))
        status, _ = await wecom.post_callback(
            f"http://127.0.0.1:{port}{settings.server.callback_path}", xml
        )
        assert status == 200
        for _ in range(10):
            if not (await runtime.worker.run_once()) and not (await runtime.sender.run_once()):
                break
        reply = "\n".join(wecom.texts_to("wanghai"))
    finally:
        await runtime.stop()
        await wecom.stop()
    assert "管理员" in reply and ("150100" in reply or "呼和浩特" in reply), reply
    assert "负责人" not in reply  # the chief role was granted after the backup
