"""How the command line logs: `serve` by `[log] level` and `format` ("text" lines, or one JSON
object a line for a log collector), every other verb warnings only. Always to standard error."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys

from bot.config import LogSettings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message (and the
    traceback, when there is one)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


# Libraries that say at INFO what they do at every start: Alembic ("Context impl SQLiteImpl.",
# "setup plugin ..."), APScheduler ("Added job ...").
STARTUP_CHATTER = ("alembic", "apscheduler")


class StartupChatterToDebug(logging.Filter):
    """Their INFO lines are debug detail for an operator: shown only when the level is DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not record.name.startswith(STARTUP_CHATTER):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger().isEnabledFor(logging.DEBUG)


def configure(log: LogSettings | None) -> None:
    """``log`` is the `[log]` section for `serve`; None for the other verbs (warnings only)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if log is not None and log.format == "json"
        else logging.Formatter(TEXT_FORMAT)
    )
    handler.addFilter(StartupChatterToDebug())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(log.level if log is not None else logging.WARNING)
