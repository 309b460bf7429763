"""CLI verbs `backup FILE` and `restore FILE` (SQLite; for PostgreSQL they print what to run).

`backup` copies the live database while the bot runs (SQLite's online backup API: one
consistent read, writers not held up) and checks the copy. `restore` refuses while a `serve`
holds the database, saves the current database beside it, and copies the backup in."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from pathlib import Path

from bot.cli._base import CliError, Verbs, add_verb
from bot.config import Settings


def register(verbs: Verbs) -> None:
    backup = add_verb(
        verbs,
        "backup",
        "copy the database to FILE while the bot runs (SQLite); checks the copy",
        cmd_backup,
    )
    backup.add_argument("file", metavar="FILE", help="the copy to write (must not exist)")
    restore = add_verb(
        verbs,
        "restore",
        "replace the database by a backup FILE (SQLite; stop `serve` first)",
        cmd_restore,
    )
    restore.add_argument("file", metavar="FILE", help="a file written by `shuangsuiji backup`")


def _refusal(exc: Exception) -> str:
    from storage.backup import BackupRefused

    assert isinstance(exc, BackupRefused)
    path = exc.facts.get("path")
    lines = {
        "missing": f"{path} does not exist",
        "exists": f"{path} already exists (choose a new file name)",
        "no_folder": f"folder {path} does not exist",
        "corrupt": f"{path} fails the integrity check: {exc.facts.get('detail')}",
        "unreadable": f"{path} is not an SQLite database: {exc.facts.get('detail')}",
        "no_schema": f"{path} has no shuangsuiji schema (not a backup of this bot)",
    }
    return lines.get(exc.reason, exc.reason)


def _postgres(settings: Settings, file: str, verb: str) -> CliError:
    from storage.backup import pg_commands

    dump, load = pg_commands(settings.database.url, file)
    command = dump if verb == "backup" else load
    return CliError(f"{verb} works on SQLite only; for PostgreSQL run: {command}")


async def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    from storage.backup import BackupRefused, backup
    from storage.db import sqlite_path

    path = sqlite_path(settings.database.url)
    if path is None:
        raise _postgres(settings, args.file, "backup")
    try:
        copied = await asyncio.to_thread(backup, path, Path(args.file))
    except BackupRefused as exc:
        raise CliError(_refusal(exc)) from None
    print(
        f"backed up {path} to {copied.path}: {copied.bytes} bytes, {copied.tables} tables, "
        f"schema revision {copied.revision}, integrity ok"
    )
    return 0


async def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    from storage import migrate
    from storage.backup import BackupRefused, restore
    from storage.db import ServeLock, sqlite_path

    path = sqlite_path(settings.database.url)
    if path is None:
        raise _postgres(settings, args.file, "restore")
    source = Path(args.file)
    locks = [ServeLock(path, part) for part in ("ingress", "worker")]
    held = []
    try:
        for lock in locks:
            if not lock.acquire():
                raise CliError(f"a `serve` is running on {path} ({lock.part}): stop it first")
            held.append(lock)
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        keep = path.with_name(f"{path.name}.before-restore-{stamp}")
        try:
            restored = await asyncio.to_thread(restore, source, path, keep_as=keep)
        except BackupRefused as exc:
            raise CliError(_refusal(exc)) from None
    finally:
        for lock in held:
            lock.release()
    if await asyncio.to_thread(keep.exists):
        print(f"the database as it was is kept in {keep}", file=sys.stderr)
    head = migrate.head_revision()
    later = "" if restored.revision == head else f"; `serve` (or `migrate`) upgrades it to {head}"
    print(f"restored {path} from {source}: schema revision {restored.revision}{later}")
    return 0
