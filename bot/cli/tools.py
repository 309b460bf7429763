"""CLI verbs `console` (chat with the bot in this terminal) and `demo` (a guided tour)."""

from __future__ import annotations

import argparse
from pathlib import Path

from bot.cli._base import Verbs, add_verb, clock, database
from bot.config import Settings


def register(verbs: Verbs) -> None:
    console = add_verb(
        verbs,
        "console",
        "chat with the bot in this terminal, through the real router",
        cmd_console,
    )
    console.add_argument("--as", dest="userid", required=True, metavar="USERID")
    demo = add_verb(
        verbs,
        "demo",
        "fresh SQLite, synthetic directory, a local WeCom stand-in: a tour",
        cmd_demo,
    )
    demo.add_argument("--dir", default="./data/demo", help="where the demo database goes")
    demo.add_argument("--keep-running", action="store_true", help="serve after the tour")


async def cmd_console(args: argparse.Namespace, settings: Settings) -> int:
    from bot.tools.console import run_console

    async with database(settings) as db:
        return await run_console(db, settings, args.userid, clock=clock())


async def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from bot.tools.demo import run_demo

    return await run_demo(Path(args.dir), keep_running=args.keep_running)
