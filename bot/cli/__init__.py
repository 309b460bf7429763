"""The `shuangsuiji` command line. Exit 0 on success, 2 on a user's mistake (one clear line, no
traceback), 1 on a fault of ours. `--config` works before or after the verb.

Each verb group is a module with `register(verbs)`, which adds its sub-parsers and binds the
coroutine that runs them; what they share is in ``bot.cli._base``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from bot.cli import (
    _logging,
    audit,
    backup,
    check,
    directory,
    draws,
    params,
    publish,
    report,
    roles,
    serve,
    tools,
)
from bot.cli._base import CliError, Parser, Verb, add_common, load
from bot.config import ConfigError, Settings
from inspection.params import NoParamsInEffect


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="shuangsuiji", description="双随机、一公开 WeCom bot")
    add_common(parser)
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=Parser)
    verbs.required = True
    for group in (
        serve,
        check,
        backup,
        tools,
        roles,
        directory,
        audit,
        draws,
        params,
        publish,
        report,
    ):
        group.register(verbs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format=_logging.TEXT_FORMAT)
    try:
        settings = load(args)
        if args.verb == "serve":
            _logging.configure(settings.log)
        code = asyncio.run(_run(args.run, args, settings))
        sys.stdout.flush()  # here, so that a reader gone away is seen by the handler below
        return code
    except (ConfigError, CliError) as exc:
        print(f"shuangsuiji: error: {exc}", file=sys.stderr)
        return 2
    except NoParamsInEffect as exc:  # Art. 45: a date before any configured rules
        print(f"shuangsuiji: error: {exc.english}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except OSError as exc:
        if exc.filename is None:
            raise
        # A path the user gave (an output folder that does not exist, a file not writable).
        print(f"shuangsuiji: error: {exc.strerror or exc}: {exc.filename}", file=sys.stderr)
        return 2


def _quiet_broken_pipe() -> int:
    """The reader went away (`shuangsuiji audit show | head`): stop quietly, as Unix tools do."""
    import os

    # Python would otherwise complain again when it flushes stdout at exit.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 141  # 128 + SIGPIPE, what a shell reports for a tool the pipe stopped


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
