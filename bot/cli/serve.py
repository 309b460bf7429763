"""CLI verbs `serve` (run the bot, whole or one role of it) and `migrate`."""

from __future__ import annotations

import argparse
import asyncio

from bot.cli._base import CliError, Verbs, add_verb, clock, database, first_line
from bot.config import Settings


def register(verbs: Verbs) -> None:
    serve = add_verb(
        verbs, "serve", "run the bot: callback endpoint, workers, sender, scheduler", cmd_serve
    )
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument(
        "--role",
        choices=["all", "ingress", "worker"],
        default="all",
        help="all (default); or split: ingress acknowledges and records callbacks, worker "
        "handles events, sends the outbox and runs due actions",
    )
    add_verb(verbs, "migrate", "bring the database schema up to date", cmd_migrate)


async def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from storage import migrate

    async with database(settings, create=True) as db:
        print(f"database at revision {await migrate.current_revision(db)}")
    return 0


async def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from sqlalchemy.exc import DBAPIError, OperationalError

    from bot.runtime.app import Runtime
    from storage.db import ServeLock, sqlite_path

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
    try:
        async with database(
            settings, create=True
        ):  # the schema, and the clock this database runs on
            domain = clock()
    except CliError:
        for lock in locks:
            lock.release()
        raise
    runtime = Runtime(settings, clock=domain)
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
        raise CliError(f"cannot serve: {first_line(exc)}") from exc
    finally:
        await runtime.stop()
        for lock in locks:
            lock.release()
    return 0
