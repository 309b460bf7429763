"""What every CLI verb shares: the parser class, the common options, the user's-mistake error,
settings, the database and the clock. A leaf: imports nothing from bot.cli, and nothing heavy at
import time, so `shuangsuiji --help` stays fast."""

from __future__ import annotations

import argparse
import contextlib
import contextvars
import datetime as dt
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeAlias

from bot.config import Settings, load_settings

if TYPE_CHECKING:
    from bot.chat.context import Clock
    from storage.db import Database
    from storage.draws import DrawRefused

Verb = Callable[[argparse.Namespace, Settings], Awaitable[int]]
Verbs: TypeAlias = "argparse._SubParsersAction[Parser]"


class CliError(Exception):
    """A user's mistake on the command line: printed as one line, exit 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def add_common(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS keeps a sub-parser from overwriting a --config given before the verb.
    parser.add_argument(
        "--config", default=argparse.SUPPRESS, help="TOML config file (or $SHUANGSUIJI_CONFIG)"
    )
    parser.add_argument("--database-url", default=argparse.SUPPRESS, help="override [database] url")


def add_verb(verbs: Verbs, name: str, help: str, run: Verb) -> argparse.ArgumentParser:
    """A top-level verb with the common options; `main` awaits ``run(args, settings)``."""
    sub = verbs.add_parser(name, help=help, description=help)
    add_common(sub)
    sub.set_defaults(run=run)
    return sub


def add_actions(verb: argparse.ArgumentParser, dest: str) -> Verbs:
    """The required ACTION under a verb (`role grant`, `audit show`, ...)."""
    actions = verb.add_subparsers(dest=dest, metavar="ACTION", parser_class=Parser)
    actions.required = True
    return actions


def add_action(actions: Verbs, name: str, help: str) -> argparse.ArgumentParser:
    sub = actions.add_parser(name, help=help)
    add_common(sub)
    return sub


def load(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "database_url", None):
        overrides["database"] = {"url": args.database_url}
    return load_settings(getattr(args, "config", None), **overrides)


@contextlib.asynccontextmanager
async def database(
    settings: Settings, *, upgrade: bool = True, create: bool = False
) -> AsyncIterator[Database]:
    """Open the configured database, bring its schema up to date, and always dispose.

    Only ``create=True`` (`migrate`, `serve`) may make a new database: elsewhere a missing
    SQLite file, or a database without our schema, is refused by name, so a mistyped URL is
    not answered from a fresh, empty database."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    from bot.runtime.clock import domain_clock, refusal_line
    from storage import migrate
    from storage.clock import ClockRefused
    from storage.db import Database, sqlite_path

    path = sqlite_path(settings.database.url)
    if not create and path is not None and not path.is_file():
        raise CliError(f"database {path} does not exist (create it with `shuangsuiji migrate`)")
    try:
        db = Database(settings.database.url, echo=settings.database.echo)
    except ModuleNotFoundError as exc:
        raise CliError(_missing_driver(exc)) from None
    try:
        try:
            if not create and await migrate.current_revision(db) is None:
                raise CliError(
                    f"database {_safe_url(settings)} has no shuangsuiji schema "
                    "(create it with `shuangsuiji migrate`)"
                )
            if upgrade:
                await migrate.upgrade(db)
        except (OperationalError, DBAPIError, OSError) as exc:
            raise CliError(
                f"database {_safe_url(settings)} is unreachable: {first_line(exc)}"
            ) from exc
        except ModuleNotFoundError as exc:
            raise CliError(_missing_driver(exc)) from None
        token = None
        if upgrade:
            try:
                token = _clock.set(await domain_clock(db, settings))
            except ClockRefused as exc:
                raise CliError(refusal_line(exc)) from None
        try:
            yield db
        finally:
            if token is not None:
                _clock.reset(token)
    except (OperationalError, DBAPIError) as exc:
        raise CliError(f"database {_safe_url(settings)} is unreachable: {first_line(exc)}") from exc
    finally:
        await db.dispose()


def _missing_driver(exc: ModuleNotFoundError) -> str:
    if exc.name == "asyncpg":
        return "PostgreSQL needs the asyncpg driver: pip install 'shuangsuiji[postgres]'"
    return f"a module is missing: {exc.name} (reinstall shuangsuiji)"


def output_file(name: str) -> Path:
    """A file the verb will write: its folder must exist (said before any work is done)."""
    out = Path(name)
    if not out.parent.is_dir():
        raise CliError(f"folder {out.parent} does not exist")
    return out


def first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def _safe_url(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.database.url).render_as_string(hide_password=True)


# The domain clock of the database opened by `database()`: the real one or a drill's.
_clock: contextvars.ContextVar[Clock | None] = contextvars.ContextVar("clock", default=None)


def clock() -> Clock:
    from bot.chat.context import SystemClock

    return _clock.get() or SystemClock()


def now() -> dt.datetime:
    return clock().now()


def refusal_line(exc: DrawRefused) -> str:
    """The command line's wording of a refused draw operation (``storage.draws.DrawRefused``)."""
    f = exc.facts
    task = f.get("task", "")
    lines = {
        "already_drawn": f"task {task} was already drawn (attempt {f.get('attempt')}, "
        f"{f.get('status')})",
        "task_complete": "task is complete",
        "task_cancelled": f"task {task} was cancelled",
        "task_sealed": f"task {task} has a sealed draw (attempt {f.get('attempt')}); its terms "
        "can no longer change",
        "outside_draw": "check outside the draw",
        "not_approved": f"task {task} is {f.get('status')}: its league/city bureau approves it "
        "first (Art. 5)",
        "not_proposed": f"task {task} is {f.get('status')}, not awaiting approval",
        "pool_insufficient": "the pool cannot satisfy the task: "
        + " | ".join(f.get("problems", [])),
        "draw_closed": f"draw {f.get('attempt')} of {task} is {f.get('status')}",
        "redraw_not_drawn": "task not drawn yet",
        "redraw_already_approved": "a re-draw is already approved",
        "redraw_task_complete": "task is complete",
        "redraw_has_results": "results were already recorded",
        "amendment_mismatch": f"amendment {f.get('seq')}: recorded {f.get('recorded')}, "
        f"replayed {f.get('replayed')}",
        "no_live_draw": "inspection has no live draw",
        "no_part": f"draw has no {f.get('part')} result",
        "no_draw": f"task {task} has no draw",
        "no_attempt": f"task {task} has no attempt {f.get('attempt')}",
        "awaiting_witness": f"draw {f.get('attempt')} of {task} awaits its witness value; "
        "the export would reveal the secret",
        "public_not_drawn": f"the draw of {task} is {f.get('status')}: only a drawn draw "
        "(version 2) has a public export",
        "public_inspections_open": f"{f.get('open')} inspection(s) of {task} are not done: "
        "no public export before they are",
    }
    return lines.get(exc.reason, exc.reason)
