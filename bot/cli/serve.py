"""CLI verbs `serve` (run the bot, whole or one role of it) and `migrate`."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import TYPE_CHECKING

from bot.cli._base import CliError, Verbs, add_verb, clock, database, first_line
from bot.config import Settings

if TYPE_CHECKING:
    from storage.db import ServeLock


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
        help="all (default): this process acknowledges and records callbacks and runs the "
        "worker role as a child process it restarts; or one role: ingress acknowledges and "
        "records callbacks, worker handles events, sends the outbox and runs due actions",
    )
    serve.add_argument(
        "--one-process",
        action="store_true",
        help="role all in this one process (one event loop, one core): for debugging",
    )
    serve.add_argument(
        "--restart-delay",
        type=float,
        default=1.0,
        help="seconds before restarting a dead worker child (doubling up to 30 s while it "
        "keeps dying)",
    )
    serve.add_argument(
        "--niceness",
        type=int,
        default=5,
        choices=range(20),
        metavar="0-19",
        help="how much lower the worker child's CPU priority is than the acknowledging "
        "process's (nice(1); default 5, 0 for the same)",
    )
    # Set by the all-in-one `serve` on the worker child it starts.
    serve.add_argument("--supervisor", type=int, help=argparse.SUPPRESS)
    serve.add_argument("--lock-fd", type=int, help=argparse.SUPPRESS)
    serve.add_argument("--wake-fd", type=int, help=argparse.SUPPRESS)
    add_verb(verbs, "migrate", "bring the database schema up to date", cmd_migrate)


async def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from storage import migrate

    async with database(settings, create=True) as db:
        print(f"database at revision {await migrate.current_revision(db)}")
    return 0


async def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from sqlalchemy.exc import DBAPIError, OperationalError

    from bot.runtime.app import Runtime
    from bot.runtime.supervisor import ChildSupervisor, WakePipe, die_with_parent, listen

    missing = settings.wecom.missing()
    if missing:
        raise CliError(f"config key {missing[0]} is required to serve (see config.example.toml)")
    if args.one_process and args.role != "all":
        raise CliError("--one-process is for role all (the default)")
    if args.restart_delay <= 0:
        raise CliError("--restart-delay must be more than 0 seconds")
    split = args.role == "all" and not args.one_process
    if args.supervisor is not None:  # a supervised worker: die with the `serve` that started it
        die_with_parent(args.supervisor)
    locks = _locks(args, settings)
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
    child: ChildSupervisor | None = None
    wake = WakePipe() if split else None
    if wake is not None:
        runtime.on_recorded = wake.notify
    if split or args.role == "ingress":
        runtime.use_inbox()
    try:
        await runtime.migrate()
        port = await runtime.start(
            host=args.host,
            port=args.port,
            http=args.role in ("all", "ingress"),
            background=args.role == "worker" or not split,
        )
        s = settings.server
        where = f"{s.callback_path} on {args.host or s.host}:{port}" if port else "no HTTP"
        print(f"serving ({args.role}): {where}", flush=True)
        if args.supervisor is not None:
            # Acknowledging comes first: where the two processes want the same core, the
            # kernel runs the ingress's (WeCom gives up after 5 s; a reply can wait a little).
            # Once serving: starting up is not slowed down.
            os.nice(args.niceness)
        if wake is not None:
            worker_lock = [lock.fd for lock in locks if lock.part == "worker"]
            child = ChildSupervisor(
                _worker_argv(args, wake.read_fd, worker_lock),
                pass_fds=[wake.read_fd, *worker_lock],
                delay=args.restart_delay,
                announce=lambda line: print(line, flush=True),
            )
            try:
                await child.start()
            except (RuntimeError, TimeoutError) as exc:
                raise CliError(f"cannot serve: {exc}") from None
        if args.wake_fd is not None:  # until the supervisor is gone, or SIGTERM
            await listen(args.wake_fd, runtime.worker.wake.set)
        else:
            await asyncio.Event().wait()
    except (OperationalError, DBAPIError, OSError) as exc:
        raise CliError(f"cannot serve: {first_line(exc)}") from exc
    finally:
        if child is not None:
            await child.stop()
        await runtime.stop()
        if wake is not None:
            wake.close()
        for lock in locks:
            lock.release()
    return 0


# How long the all-in-one `serve` waits for the worker lock when the ingress lock was free: a
# `serve` killed just before leaves its worker child dying (it is killed with its parent).
WORKER_LOCK_WAIT = 5.0


def _locks(args: argparse.Namespace, settings: Settings) -> list[ServeLock]:
    """The single-SQLite-file locks of this role, held until it stops (none on PostgreSQL). A
    supervised worker shares its parent's worker lock instead of taking it."""
    import time

    from storage.db import ServeLock, sqlite_path

    path = sqlite_path(settings.database.url)
    if path is None:
        return []
    if args.lock_fd is not None:
        lock = ServeLock(path, "worker")
        if not lock.adopt(args.lock_fd):
            raise CliError(f"--lock-fd {args.lock_fd} is not the worker lock of {path}")
        return [lock]
    parts = {"all": ("ingress", "worker"), "ingress": ("ingress",), "worker": ("worker",)}
    locks: list[ServeLock] = []
    for part in parts[args.role]:
        lock = ServeLock(path, part)
        deadline = time.monotonic() + (WORKER_LOCK_WAIT if locks else 0)
        while not lock.acquire():
            if time.monotonic() >= deadline:
                for held in locks:
                    held.release()
                raise CliError(
                    f"another `serve` is already using {path} as {part}; several instances "
                    "need PostgreSQL (set [database] url to a postgresql:// URL)"
                )
            time.sleep(0.1)
        locks.append(lock)
    return locks


def _worker_argv(args: argparse.Namespace, wake_fd: int, lock_fds: list[int]) -> list[str]:
    """The supervised worker's command line: this `serve`'s configuration, role worker."""
    argv = [sys.executable, "-m", "bot", "serve", "--role", "worker"]
    if getattr(args, "config", None):
        argv += ["--config", args.config]
    if getattr(args, "database_url", None):
        argv += ["--database-url", args.database_url]
    argv += ["--supervisor", str(os.getpid()), "--wake-fd", str(wake_fd)]
    argv += ["--niceness", str(args.niceness)]
    if lock_fds:
        argv += ["--lock-fd", str(lock_fds[0])]
    return argv
