"""The `shuangsuiji` command line. Exit 0 on success, 2 on a user's mistake (one clear line, no
traceback), 1 on a fault of ours. `--config` works before or after the verb.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NoReturn

from bot.config import ConfigError, Settings, load_settings

Verb = Callable[[argparse.Namespace, Settings], Awaitable[int]]


class CliError(Exception):
    """A user's mistake on the command line: printed as one line, exit 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _common(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS keeps a sub-parser from overwriting a --config given before the verb.
    parser.add_argument(
        "--config", default=argparse.SUPPRESS, help="TOML config file (or $SHUANGSUIJI_CONFIG)"
    )
    parser.add_argument("--database-url", default=argparse.SUPPRESS, help="override [database] url")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="shuangsuiji", description="双随机、一公开 WeCom bot")
    _common(parser)
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=Parser)
    verbs.required = True

    def verb(name: str, help: str) -> argparse.ArgumentParser:
        sub = verbs.add_parser(name, help=help, description=help)
        _common(sub)
        return sub

    serve = verb("serve", "run the bot: callback endpoint, workers, sender, scheduler")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument(
        "--role",
        choices=["all", "ingress", "worker"],
        default="all",
        help="all (default); or split: ingress acknowledges and records callbacks, worker "
        "handles events, sends the outbox and runs due actions",
    )
    verb("migrate", "bring the database schema up to date")
    console = verb("console", "chat with the bot in this terminal, through the real router")
    console.add_argument("--as", dest="userid", required=True, metavar="USERID")
    demo = verb("demo", "fresh SQLite, synthetic directory, a local WeCom stand-in: a tour")
    demo.add_argument("--dir", default="./data/demo", help="where the demo database goes")
    demo.add_argument("--keep-running", action="store_true", help="serve after the tour")

    role = verb("role", "grant, revoke or list role bindings")
    role_verbs = role.add_subparsers(dest="role_verb", metavar="ACTION", parser_class=Parser)
    role_verbs.required = True
    for action in ("grant", "revoke"):
        sub = role_verbs.add_parser(action, help=f"{action} a role")
        _common(sub)
        sub.add_argument("userid")
        sub.add_argument("role", help="admin, chief, publisher or enforcement")
        sub.add_argument("org", help="organisation code (GB/T 2260), e.g. 150100")
        sub.add_argument("--dept", default="", help="department code inside the organisation")
    listing = role_verbs.add_parser("list", help="list role bindings")
    _common(listing)
    listing.add_argument("--org", help="only this organisation")

    imp = verb("import", "import targets, inspectors or check items from .xlsx or .csv")
    imp.add_argument("kind", choices=["targets", "inspectors", "items"])
    imp.add_argument("file")
    imp.add_argument("--strict", action="store_true", help="commit nothing if any row is bad")
    imp.add_argument("--report", help="write the rejected rows to this .xlsx")
    tpl = verb("template", "write an empty spreadsheet with the headers and one example row")
    tpl.add_argument("kind", choices=["targets", "inspectors", "items"])
    tpl.add_argument("file", nargs="?")
    exp = verb("export", "write the current directory as .xlsx")
    exp.add_argument("kind", choices=["targets", "inspectors", "items"])
    exp.add_argument("file", nargs="?")

    aud = verb("audit", "the audit record")
    aud_verbs = aud.add_subparsers(dest="audit_verb", metavar="ACTION", parser_class=Parser)
    aud_verbs.required = True
    _common(aud_verbs.add_parser("verify", help="walk the hash chain; name the first bad entry"))
    show = aud_verbs.add_parser("show", help="print entries in order")
    _common(show)
    show.add_argument("--subject", default="", help="only entries whose subject starts so")
    show.add_argument("--task", help="a task's history")

    from bot.cli.draw_cli import add_parsers as add_draw_parsers  # plan, task, draw

    add_draw_parsers(verb)
    return parser


def load(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "database_url", None):
        overrides["database"] = {"url": args.database_url}
    return load_settings(getattr(args, "config", None), **overrides)


def _verbs() -> dict[str, Verb]:
    from bot.cli import commands

    return commands.VERBS


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verb == "serve" else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = load(args)
        handler = _verbs()[args.verb]
        return asyncio.run(_run(handler, args, settings))
    except (ConfigError, CliError) as exc:
        print(f"shuangsuiji: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


async def _run(handler: Verb, args: argparse.Namespace, settings: Settings) -> int:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    if task is not None:
        for sig in (signal.SIGTERM,):
            try:
                loop.add_signal_handler(sig, task.cancel)
            except (NotImplementedError, RuntimeError):
                pass
    try:
        return await handler(args, settings)
    except asyncio.CancelledError:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
