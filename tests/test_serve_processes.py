"""The all-in-one `serve` (role all) acknowledges in its own process and handles in a worker
child it supervises: the child is restarted when it dies, and what was acknowledged while it
was dead is handled once it is back (one reply, one effect). A killed `serve` takes its child
with it, so the next `serve` on the same SQLite file starts."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.wecom.standin import WeComStandIn
from storage.inbox import inbox_path
from tests.support.waiting import wait_until, within

SERVING = re.compile(r"serving \(all\): (\S+) on 127\.0\.0\.1:(\d+)")
STARTED = re.compile(r"worker process (\d+) started")


def _env(tmp_path: Path, wecom: WeComStandIn, api: str) -> dict[str, str]:
    return {
        **wecom.serve_env(api),
        "SHUANGSUIJI_DATABASE__URL": f"sqlite:///{tmp_path}/serve.db",
        "SHUANGSUIJI_SERVER__HOST": "127.0.0.1",
        "SHUANGSUIJI_SERVER__PORT": "0",
    }


class Serve:
    """`shuangsuiji serve` in a child process, read line by line."""

    def __init__(self, proc: asyncio.subprocess.Process, url: str, worker: int) -> None:
        self.proc = proc
        self.url = url
        self.worker = worker

    @classmethod
    async def start(cls, env: dict[str, str], *args: str, stderr: Path) -> Serve:
        with stderr.open("a", encoding="utf-8") as err:  # a file: a full pipe would block it
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                "serve",
                *args,
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
            )
        line = await cls._line(proc, "the serving line", deadline=60)
        found = SERVING.search(line)
        assert found, (line, _text(stderr))
        path, port = found.groups()
        line = await cls._line(proc, "the worker child to start", deadline=60)
        worker = STARTED.search(line)
        assert worker, (line, _text(stderr))
        return cls(proc, f"http://127.0.0.1:{port}{path}", int(worker.group(1)))

    @staticmethod
    async def _line(proc: asyncio.subprocess.Process, what: str, deadline: float = 10) -> str:
        assert proc.stdout is not None
        line = await within(proc.stdout.readline(), what, deadline)
        assert isinstance(line, bytes)
        return line.decode()

    async def line(self, what: str) -> str:
        return await self._line(self.proc, what)

    async def stop(self) -> int:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await within(self.proc.wait(), "serve to stop", 30)
            finally:
                if self.proc.returncode is None:
                    self.proc.kill()
                    await self.proc.wait()
        assert self.proc.returncode is not None
        return self.proc.returncode


@pytest.fixture
async def wecom() -> AsyncIterator[tuple[WeComStandIn, str]]:
    standin = WeComStandIn()
    api = await standin.start()
    yield standin, api
    await standin.stop()


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _rows(db: Path, sql: str, *params: object) -> list[tuple[object, ...]]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return list(conn.execute(sql, params))


def _gone(pid: int) -> bool:
    """Whether `pid` has ended (a zombie not yet reaped by whoever adopted it counts)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


async def _say(wecom: WeComStandIn, url: str, user: str, msg_id: int) -> int:
    xml = wecom.text_message_xml(user, "帮助", msg_id, int(time.time()))
    status, _ = await wecom.post_callback(url, xml)
    return status


async def test_a_killed_worker_child_is_restarted_and_handles_what_was_acknowledged_meanwhile(
    tmp_path: Path, wecom: tuple[WeComStandIn, str]
) -> None:
    standin, api = wecom
    db = tmp_path / "serve.db"
    # A restart delay long enough that the callback below surely meets a dead worker.
    serve = await Serve.start(
        _env(tmp_path, standin, api), "--restart-delay", "3", stderr=tmp_path / "err.log"
    )
    try:
        assert await _say(standin, serve.url, "before", 1) == 200
        await wait_until(lambda: bool(standin.texts_to("before")), "the child to handle and reply")

        os.kill(serve.worker, signal.SIGKILL)
        ended = await serve.line("the supervisor to see its child end")
        assert f"worker process {serve.worker} ended (killed by SIGKILL)" in ended

        # Acknowledged while no worker runs: recorded in the ingress's inbox, not yet handled.
        assert await _say(standin, serve.url, "during", 2) == 200
        assert _rows(inbox_path(db), "SELECT userid FROM inbox_event") == [("during",)]
        assert _rows(db, "SELECT id FROM inbound_event WHERE userid = 'during'") == []
        assert standin.texts_to("during") == []

        started = await serve.line("the supervisor to restart its child")
        restarted = STARTED.search(started)
        assert restarted and int(restarted.group(1)) != serve.worker
        assert _gone(serve.worker)
        await wait_until(lambda: bool(standin.texts_to("during")), "the new child to handle it")
        assert await _say(standin, serve.url, "during", 2) == 200  # WeCom resends: a no-op
        await wait_until(
            lambda: (
                _rows(db, "SELECT count(*) FROM inbound_event WHERE status != 'done'") == [(0,)]
                and _rows(inbox_path(db), "SELECT count(*) FROM inbox_event") == [(0,)]
            ),
            "every event moved and done",
        )
        new_worker = int(restarted.group(1))
    finally:
        code = await serve.stop()
    assert code == 0, _text(tmp_path / "err.log")
    assert len(standin.texts_to("during")) == 1 and len(standin.texts_to("before")) == 1
    assert _rows(
        db,
        "SELECT e.status, e.attempts, count(o.id) FROM inbound_event e "
        "JOIN outbox_message o ON o.cause_event_id = e.id WHERE e.userid = 'during' "
        "GROUP BY e.id",
    ) == [("done", 1, 1)]
    assert _gone(new_worker)  # stopped with its supervisor


async def test_a_killed_serve_takes_its_worker_child_with_it_and_the_next_serve_starts(
    tmp_path: Path, wecom: tuple[WeComStandIn, str]
) -> None:
    standin, api = wecom
    env = _env(tmp_path, standin, api)
    first = await Serve.start(env, stderr=tmp_path / "err.log")
    first.proc.kill()
    await first.proc.wait()
    await wait_until(lambda: _gone(first.worker), "the orphaned worker child to die")
    second = await Serve.start(env, stderr=tmp_path / "err.log")
    try:
        assert await _say(standin, second.url, "after", 3) == 200
        await wait_until(lambda: bool(standin.texts_to("after")), "the new serve to reply")
    finally:
        assert await second.stop() == 0
