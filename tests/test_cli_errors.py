"""The command line on everyday mistakes: exit 2 with one English line, never a traceback; a
database is created only by `migrate` (and `serve`), never by a mistyped URL."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main
from tests.test_cli import run


def one_line_error(err: str, *facts: str) -> None:
    assert "Traceback" not in err and err.count("\n") == 1, err
    for fact in facts:
        assert fact in err, err


def test_template_into_a_missing_folder_names_the_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "nonexistent" / "dir" / "x.xlsx"
    assert main(["template", "targets", str(target)]) == 2
    one_line_error(capsys.readouterr().err, str(target.parent))
    assert not target.parent.exists()


def test_export_into_a_missing_folder_names_the_folder(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "nope" / "targets.xlsx"
    assert main(["export", "targets", str(target), "--database-url", db_url]) == 2
    one_line_error(capsys.readouterr().err, str(target.parent))


def test_draw_export_into_a_missing_folder_names_the_folder(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "nope" / "d.json"
    assert main(["draw", "export", "T-1", str(target), "--database-url", db_url]) == 2
    one_line_error(capsys.readouterr().err, str(target.parent))


def test_import_report_into_a_missing_folder_is_refused_before_importing(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sheet = tmp_path / "t.xlsx"
    assert main(["template", "targets", str(sheet)]) == 0
    report = tmp_path / "nope" / "r.xlsx"
    args = ["import", "targets", str(sheet), "--report", str(report), "--database-url", db_url]
    assert main(args) == 2
    one_line_error(capsys.readouterr().err, str(report.parent))


@pytest.mark.parametrize("source", ["{}", "[]", "{'a': 1}"])
def test_draw_verify_of_malformed_input_exits_2(
    db_url: str, source: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["draw", "verify", source, "--database-url", db_url]) == 2
    one_line_error(capsys.readouterr().err, source)


def test_postgresql_without_asyncpg_names_the_extra_to_install(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['asyncpg'] = None\n"
        "from bot.cli import main\n"
        "sys.exit(main(['role', 'list', '--database-url', 'postgresql://u@127.0.0.1:1/x']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    one_line_error(result.stderr, "pip install 'shuangsuiji[postgres]'")


async def _audit_entries(url: str, count: int) -> None:
    from storage import audit
    from storage.db import Database

    db = Database(url.replace("sqlite://", "sqlite+aiosqlite://"))
    try:
        async with db.transaction() as session:
            for n in range(count):
                await audit.append(
                    session,
                    at=dt.datetime(2026, 3, 2, tzinfo=dt.UTC),
                    actor="cli",
                    action="role.grant",
                    subject=f"user:u{n}",
                    payload={"role": "admin", "org": "150000", "dept": ""},
                )
    finally:
        await db.dispose()


@pytest.mark.parametrize("entries", [3, 2000])  # output inside one buffer, and many buffers
def test_a_closed_pipe_ends_the_verb_quietly(tmp_path: Path, entries: int) -> None:
    url = f"sqlite:///{tmp_path}/p.db"
    assert run("migrate", "--database-url", url).returncode == 0
    asyncio.run(_audit_entries(url, entries))
    shown = subprocess.Popen(
        [sys.executable, "-m", "bot", "audit", "show", "--database-url", url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert shown.stdout is not None and shown.stderr is not None
    shown.stdout.close()  # `| head -0`: the reader is gone before the first line
    err = shown.stderr.read().decode()
    assert shown.wait(timeout=60) == 141
    assert err == "", err


# Item 2: a mistyped URL must not become a new, empty database.


def test_a_missing_sqlite_file_is_refused_by_name_and_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "typo" / "shuangsuiji.db"
    for verb in (["role", "list"], ["audit", "show"], ["export", "targets", str(tmp_path / "t")]):
        assert main([*verb, "--database-url", f"sqlite:///{path}"]) == 2
        one_line_error(capsys.readouterr().err, str(path), "migrate")
    assert not path.parent.exists()


def test_a_sqlite_file_without_our_schema_is_refused_and_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as other:
        other.execute("CREATE TABLE notes (body TEXT)")
    assert main(["role", "list", "--database-url", f"sqlite:///{path}"]) == 2
    one_line_error(capsys.readouterr().err, str(path), "schema")
    with sqlite3.connect(path) as other:
        tables = {r[0] for r in other.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"notes"}


def test_migrate_creates_the_database_and_then_every_verb_opens_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path}/new/shuangsuiji.db"
    assert main(["migrate", "--database-url", url]) == 0
    assert main(["role", "list", "--database-url", url]) == 0
    assert "no role bindings" in capsys.readouterr().out


# Item 3: a role grant checks its values as the directory import does.


async def _department(url: str, org: str, code: str, name: str) -> None:
    from storage.db import Database
    from storage.models import Department

    db = Database(url)
    try:
        async with db.transaction() as session:
            session.add(Department(org_code=org, code=code, name=name))
    finally:
        await db.dispose()


@pytest.mark.parametrize(
    ("userid", "dept"), [("x y", ""), ("", ""), ("a" * 65, ""), ("boss", "不存在科")]
)
def test_role_grant_refuses_a_bad_userid_or_unknown_department(
    db_url: str, userid: str, dept: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["role", "grant", userid, "chief", "150100", "--database-url", db_url]
    assert main([*args, *(["--dept", dept] if dept else [])]) == 2
    one_line_error(capsys.readouterr().err, dept or repr(userid))
    assert main(["role", "list", "--database-url", db_url]) == 0
    assert "no role bindings" in capsys.readouterr().out


def test_role_grant_takes_a_department_by_code_or_name(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(_department(db_url, "150100", "zfk", "执法科"))
    base = ["chief", "150100", "--database-url", db_url]
    assert main(["role", "grant", "boss", *base, "--dept", "执法科"]) == 0
    assert main(["role", "grant", "deputy", *base, "--dept", "zfk"]) == 0
    assert main(["role", "list", "--database-url", db_url]) == 0
    out = capsys.readouterr().out
    assert "boss\tchief\t150100 dept=zfk" in out and "deputy\tchief\t150100 dept=zfk" in out
