"""What each CLI verb does. Each returns an exit code; a user's mistake raises CliError."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy.exc import DBAPIError, OperationalError

from bot.chat.context import GRANTABLE, Role
from bot.cli import CliError, Verb
from bot.config import Settings
from storage import audit, migrate
from storage.db import Database, ServeLock, sqlite_path
from storage.repos import Repositories


@contextlib.asynccontextmanager
async def database(settings: Settings, *, upgrade: bool = True) -> AsyncIterator[Database]:
    """Open the configured database, bring its schema up to date, and always dispose."""
    db = Database(settings.database.url, echo=settings.database.echo)
    try:
        if upgrade:
            await migrate.upgrade(db)
        yield db
    except (OperationalError, DBAPIError, OSError) as exc:
        raise CliError(
            f"database {_safe_url(settings)} is unreachable: {_first_line(exc)}"
        ) from exc
    finally:
        await db.dispose()


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def _safe_url(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.database.url).render_as_string(hide_password=True)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    async with database(settings) as db:
        print(f"database at revision {await migrate.current_revision(db)}")
    return 0


async def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from bot.runtime.app import Runtime

    missing = settings.wecom.missing()
    if missing:
        raise CliError(f"config key {missing[0]} is required to serve (see config.example.toml)")
    path = sqlite_path(settings.database.url)
    parts = {"all": ("ingress", "worker"), "ingress": ("ingress",), "worker": ("worker",)}
    locks = [ServeLock(path, part) for part in parts[args.role]] if path is not None else []
    for n, lock in enumerate(locks):
        if not lock.acquire():
            for held in locks[:n]:
                held.release()
            raise CliError(
                f"another `serve` is already using {path} as {lock.part}; several instances "
                "need PostgreSQL (set [database] url to a postgresql:// URL)"
            )
    runtime = Runtime(settings)
    try:
        await runtime.migrate()
        port = await runtime.start(
            host=args.host,
            port=args.port,
            http=args.role in ("all", "ingress"),
            background=args.role in ("all", "worker"),
        )
        s = settings.server
        where = f"{s.callback_path} on {args.host or s.host}:{port}" if port else "no HTTP"
        print(f"serving ({args.role}): {where}", flush=True)
        await asyncio.Event().wait()
    except (OperationalError, DBAPIError, OSError) as exc:
        raise CliError(f"cannot serve: {_first_line(exc)}") from exc
    finally:
        await runtime.stop()
        for lock in locks:
            lock.release()
    return 0


def _role(word: str) -> Role:
    role = next((r for r in GRANTABLE if r.value == word), None)
    if role is None:
        raise CliError(
            f"unknown role {word!r}; choose one of {', '.join(r.value for r in GRANTABLE)}"
        )
    return role


async def cmd_role(args: argparse.Namespace, settings: Settings) -> int:
    async with database(settings) as db, db.transaction() as session:
        repos = Repositories(session)
        if args.role_verb == "list":
            bindings = await repos.roles.all([args.org] if args.org else None)
            for b in bindings:
                dept = f" dept={b.dept_code}" if b.dept_code else ""
                print(f"{b.userid}\t{b.role}\t{b.org_code}{dept}\tgranted by {b.granted_by}")
            if not bindings:
                print("no role bindings")
            return 0
        role = _role(args.role)
        if await repos.orgs.get(args.org) is None:
            raise CliError(f"unknown organisation code {args.org!r} (e.g. 150000, 150100)")
        now = _now()
        if args.role_verb == "grant":
            changed = await repos.roles.grant(args.userid, role, args.org, args.dept, "cli", now)
            verb = "granted" if changed else "already had"
        else:
            changed = await repos.roles.revoke(args.userid, role, args.org, args.dept)
            if not changed:
                raise CliError(f"{args.userid} has no {role.value} role at {args.org}")
            verb = "revoked"
        if changed:
            await audit.append(
                session,
                at=now,
                actor="cli",
                action=f"role.{args.role_verb}",
                subject=f"user:{args.userid}",
                payload={"role": role.value, "org": args.org, "dept": args.dept},
            )
        print(f"{verb}: {args.userid} {role.value} at {args.org}")
    return 0


async def cmd_audit(args: argparse.Namespace, settings: Settings) -> int:
    async with database(settings) as db, db.transaction() as session:
        if args.audit_verb == "verify":
            report = await audit.verify(session)
            if report.ok:
                print(f"audit chain intact: {report.entries} entries")
                return 0
            print(f"audit chain BROKEN at entry {report.first_bad_id}: {report.problem}")
            return 1
        prefix = f"task:{args.task}" if args.task else args.subject
        entries = await audit.history(session, prefix)
        from bot.tools.audit_view import render  # Chinese action names, local times, names

        for line in await render(session, entries, settings.tz):
            print(line)
        if not entries:
            print("no entries" + (f" for {prefix}" if prefix else ""))
    return 0


async def cmd_console(args: argparse.Namespace, settings: Settings) -> int:
    from bot.tools.console import run_console

    async with database(settings) as db:
        return await run_console(db, settings, args.userid)


async def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from bot.tools.demo import run_demo

    return await run_demo(Path(args.dir), keep_running=args.keep_running)


async def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise CliError(f"file {path} does not exist")
    from storage import directory
    from storage.spreadsheet import SpreadsheetError

    async with database(settings) as db:
        try:
            async with db.transaction() as session:
                report = await directory.import_rows(
                    session, args.kind, path, actor="cli", now=_now(), strict=args.strict
                )
        except directory.StrictImportError as failed:
            report = failed.report
            print(report.to_text())
            print("strict mode: nothing was imported")
            _write_report(args, report)
            return 2
        except SpreadsheetError as exc:
            raise CliError(f"cannot read {path}: {exc}") from exc
    print(report.to_text())
    _write_report(args, report)
    return 0 if not report.rejected else 2


def _write_report(args: argparse.Namespace, report: object) -> None:
    if args.report and getattr(report, "rejected", 0):
        Path(args.report).write_bytes(report.rejections_xlsx())  # type: ignore[attr-defined]
        print(f"rejected rows written to {args.report}")


async def cmd_template(args: argparse.Namespace, settings: Settings) -> int:
    from storage import directory

    path = Path(args.file or f"{args.kind}-template.xlsx")
    directory.write_template(args.kind, path)
    print(f"template written to {path}")
    return 0


async def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from storage import directory

    path = Path(args.file or f"{args.kind}.xlsx")
    async with database(settings) as db, db.transaction() as session:
        count = await directory.export(session, args.kind, path)
    print(f"{count} rows written to {path}")
    return 0


async def cmd_plan(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli.draw_commands import plan

    return await plan(args, settings)


async def cmd_task(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli.draw_commands import task

    return await task(args, settings)


async def cmd_draw(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli.draw_commands import draw

    return await draw(args, settings)


VERBS: dict[str, Verb] = {
    "serve": cmd_serve,
    "migrate": cmd_migrate,
    "console": cmd_console,
    "demo": cmd_demo,
    "role": cmd_role,
    "audit": cmd_audit,
    "import": cmd_import,
    "template": cmd_template,
    "export": cmd_export,
    "plan": cmd_plan,
    "task": cmd_task,
    "draw": cmd_draw,
}
