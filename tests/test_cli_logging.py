"""`serve` logs by `[log] level` and `format`; Alembic's and APScheduler's start-up lines are
debug detail."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from tests.test_cli import _serve_env


def _serve_log(tmp_path: Path, **log: str) -> list[str]:
    env = _serve_env(tmp_path)
    env.update({f"SHUANGSUIJI_LOG__{key.upper()}": value for key, value in log.items()})
    log_file = tmp_path / "stderr.log"
    with log_file.open("w", encoding="utf-8") as stderr:  # a file: a full pipe would block it
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve"],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env,
        )
        try:
            assert proc.stdout is not None
            assert "serving (all)" in proc.stdout.readline()
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.communicate(timeout=30)
            finally:
                if proc.poll() is None:
                    proc.kill()
    err = log_file.read_text(encoding="utf-8")
    assert proc.returncode == 0, err
    return err.splitlines()


def test_serve_logs_json_lines_without_alembic_chatter(tmp_path: Path) -> None:
    lines = _serve_log(tmp_path, format="json")
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(e) for e in entries)
    assert not [e for e in entries if e["logger"].startswith(("alembic", "apscheduler"))]


def test_serve_at_debug_shows_alembic_as_debug(tmp_path: Path) -> None:
    lines = _serve_log(tmp_path, level="debug")
    alembic = [line for line in lines if " alembic." in line]
    assert alembic and all(" DEBUG alembic." in line for line in alembic)


def test_serve_at_warning_logs_nothing_on_a_quiet_start(tmp_path: Path) -> None:
    assert _serve_log(tmp_path, level="warning") == []
