"""Chaos at ingress: the database refused, renamed and black-holed under a steady stream of
callbacks, and `serve` SIGKILLed at random points while it handles events.

Part 1 (PostgreSQL, through a TCP proxy on loopback that can refuse or black-hole; the database
renamed under the server): one bot instance (role all) in this process. Per fault: the
acknowledgement latency before the fault (the baseline, same run), the slowest 503 during it
(target: within 1 s, WeCom waits 5 s), the time to the first 200 after recovery (no restart),
and whether every event acknowledged with 200 was handled once. WeCom's retries are played: a
message answered otherwise is sent again until it is acknowledged.

Part 2 (SQLite): `shuangsuiji serve` as a child process, killed with SIGKILL at a random moment
while it works off a backlog, restarted, several times; then: events handled, the effects
(outbox rows) per event, and replies WeCom received per user.

    SHUANGSUIJI_TEST_PG_URL=postgresql://postgres@127.0.0.1:5432/test \\
        .venv/bin/python bench/chaos_ingress.py [--rate 50] [--kills 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import socket
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.runtime.app import Runtime  # noqa: E402
from bot.tools.demo import standin_settings  # noqa: E402
from bot.wecom.standin import WeComStandIn  # noqa: E402
from storage import migrate  # noqa: E402
from storage.db import Database  # noqa: E402
from tests.support.blackhole import FaultyProxy  # noqa: E402

PATH = "/wecom/callback"
WECOM_TIMEOUT = 5.0  # WeCom waits this long for an acknowledgement


@dataclass
class Stream:
    """Callbacks as WeCom sends them: one new message every 1/rate s; each is re-sent until
    answered 200 (WeCom retries); latencies and statuses kept by phase."""

    wecom: WeComStandIn
    url: str
    rate: float
    prefix: str
    offset: int  # message ids (WeCom's dedup key) of this stream start here
    phase: str = "before"
    acked: set[int] = field(default_factory=set)
    pending: dict[int, str] = field(default_factory=dict)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    statuses: dict[str, Counter[int]] = field(default_factory=dict)
    first_200_after: float | None = None
    _n: int = 0

    def user(self, n: int) -> str:
        return f"{self.prefix}{n}"

    async def post(self, http: aiohttp.ClientSession, n: int) -> None:
        now = int(time.time())
        xml = self.wecom.text_message_xml(self.user(n), "帮助", self.offset + n, now)
        params, body = self.wecom.seal_callback(xml, now)
        phase, t0 = self.phase, time.perf_counter()
        try:
            async with http.post(
                self.url,
                params=params,
                data=body.encode(),
                timeout=aiohttp.ClientTimeout(total=WECOM_TIMEOUT),
            ) as r:
                await r.read()
                status = r.status
        except (TimeoutError, aiohttp.ClientError):
            status = 0  # no answer in time: WeCom retries
        self.latencies.setdefault(phase, []).append(time.perf_counter() - t0)
        self.statuses.setdefault(phase, Counter())[status] += 1
        if status == 200:
            self.acked.add(n)
            self.pending.pop(n, None)
            if self.phase == "after" and self.first_200_after is None:
                self.first_200_after = time.perf_counter()
        else:
            self.pending[n] = self.user(n)

    async def run(self, stop: asyncio.Event) -> None:
        tasks: set[asyncio.Task[None]] = set()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            while not stop.is_set():
                retry = next(iter(self.pending), None)
                if retry is not None and len(tasks) < 200:
                    self.pending.pop(retry)
                    tasks.add(asyncio.create_task(self.post(http, retry)))
                self._n += 1
                tasks.add(asyncio.create_task(self.post(http, self._n)))
                tasks = {t for t in tasks if not t.done()}
                await asyncio.sleep(1 / self.rate)
            while self.pending:  # the retries of what is still unacknowledged
                await asyncio.gather(*(self.post(http, n) for n in list(self.pending)))
            await asyncio.gather(*tasks)

    @property
    def sent(self) -> int:
        return self._n


def _ms(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def _admin_exec(admin: str, sql: str) -> None:
    import asyncpg
    from sqlalchemy.engine import make_url

    u = make_url(admin)
    conn = await asyncpg.connect(
        host=u.host, port=u.port or 5432, user=u.username, password=u.password, database=u.database
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _rename(admin: str, old: str, new: str) -> None:
    """Rename a database the server is connected to: its sessions are ended first."""
    for _ in range(50):
        await _admin_exec(
            admin,
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{old}'",
        )
        try:
            await _admin_exec(admin, f'ALTER DATABASE "{old}" RENAME TO "{new}"')
            return
        except Exception:  # reconnected between the two statements: again
            await asyncio.sleep(0.05)
    raise RuntimeError(f"cannot rename {old}")


async def _handled(wecom: WeComStandIn, stream: Stream, deadline: float) -> tuple[int, int, int]:
    """Wait until every acknowledged message got its reply; (handled, missing, duplicated)."""
    end = time.perf_counter() + deadline
    while time.perf_counter() < end:
        got = [len(wecom.texts_to(stream.user(n))) for n in stream.acked]
        if all(got):
            break
        await asyncio.sleep(0.1)
    got = [len(wecom.texts_to(stream.user(n))) for n in stream.acked]
    return sum(1 for g in got if g), sum(1 for g in got if not g), sum(1 for g in got if g > 1)


async def faults(admin_url: str, rate: float, seconds: float) -> None:
    from sqlalchemy.engine import make_url

    base = make_url(admin_url.replace("postgresql://", "postgresql+asyncpg://", 1))
    name = f"chaos_ingress_{uuid.uuid4().hex[:8]}"
    await _admin_exec(admin_url, f'CREATE DATABASE "{name}"')
    direct = base.set(database=name)
    db = Database(direct.render_as_string(hide_password=False))
    await migrate.upgrade(db)
    await db.dispose()
    proxy = FaultyProxy(base.host or "127.0.0.1", base.port or 5432)
    pport = await proxy.start()
    wecom = WeComStandIn()
    api = await wecom.start()
    url = direct.set(host="127.0.0.1", port=pport).render_as_string(hide_password=False)
    runtime = Runtime(standin_settings(url, wecom, api), wecom_backoff=0.05)
    port = await runtime.start()
    print(
        f"part 1: PostgreSQL through a faulty proxy, {rate:.0f} new callbacks/s, {seconds:g} s "
        "before, during and after each fault"
    )
    print(
        f"{'fault':12} {'base p50':>9} {'base p99':>9} {'fault max':>10} {'503s':>5} "
        f"{'other':>6} {'to 200':>7} {'acked':>6} {'handled':>8} {'lost':>5} {'dup':>4}"
    )
    try:
        for i, fault in enumerate(("refused", "renamed", "black_hole")):
            url = f"http://127.0.0.1:{port}{PATH}"
            stream = Stream(wecom, url, rate, f"{fault}-", 10_000_000 * (i + 1))
            stop = asyncio.Event()
            running = asyncio.create_task(stream.run(stop))
            await asyncio.sleep(seconds)
            stream.phase = "fault"
            if fault == "refused":
                proxy.refuse()
            elif fault == "black_hole":
                proxy.black_hole()
            else:
                await _rename(admin_url, name, name + "_moved")
            await asyncio.sleep(seconds)
            if fault == "renamed":
                await _rename(admin_url, name + "_moved", name)
            else:
                proxy.restore()
            stream.phase, restored = "after", time.perf_counter()
            await asyncio.sleep(seconds)
            stop.set()
            await running
            handled, lost, dup = await _handled(wecom, stream, 60)
            during = stream.statuses.get("fault", Counter())
            to_200 = (stream.first_200_after or float("nan")) - restored
            print(
                f"{fault:12} {_ms(stream.latencies['before'], 50):8.1f}m "
                f"{_ms(stream.latencies['before'], 99):8.1f}m "
                f"{_ms(stream.latencies.get('fault', []), 100):9.0f}m {during[503]:5d} "
                f"{sum(during.values()) - during[503] - during[200]:6d} {to_200:6.2f}s "
                f"{len(stream.acked):6d} {handled:8d} {lost:5d} {dup:4d}"
            )
    finally:
        await runtime.stop()
        await wecom.stop()
        await proxy.stop()
        await _admin_exec(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _start_serve(env: dict[str, str], port: int) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    if b"serving" not in line:
        raise RuntimeError(f"serve did not start: {line!r}")
    return proc


async def kills(rate: float, n_kills: int, seed: int) -> None:
    rnd = random.Random(seed)
    wecom = WeComStandIn()
    api = await wecom.start()
    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "chaos.db"
        env = {**wecom.serve_env(api), "SHUANGSUIJI_DATABASE__URL": f"sqlite:///{db_path}"}
        port = _free_port()
        stream = Stream(wecom, f"http://127.0.0.1:{port}{PATH}", rate, "kill-", 90_000_000)
        stop = asyncio.Event()
        proc = await _start_serve(env, port)
        running = asyncio.create_task(stream.run(stop))
        restarts: list[float] = []
        try:
            for _ in range(n_kills):
                await asyncio.sleep(rnd.uniform(0.3, 2.0))
                proc.send_signal(signal.SIGKILL)
                await proc.wait()
                t0 = time.perf_counter()
                proc = await _start_serve(env, port)
                restarts.append(time.perf_counter() - t0)
            await asyncio.sleep(1.0)
            stop.set()
            await running
            handled, lost, dup = await _handled(wecom, stream, 60)
        finally:
            proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 10)
            await wecom.stop()
        with contextlib.closing(sqlite3.connect(db_path)) as conn:
            done = conn.execute("SELECT count(*) FROM inbound_event WHERE status='done'").fetchone()
            events = conn.execute("SELECT count(*) FROM inbound_event").fetchone()
            per_event = Counter(
                n
                for (n,) in conn.execute(
                    "SELECT count(*) FROM outbox_message WHERE cause_event_id IS NOT NULL "
                    "GROUP BY cause_event_id"
                )
            )
            attempts = conn.execute("SELECT max(attempts) FROM inbound_event").fetchone()
    print(
        f"part 2: SQLite, `serve` SIGKILLed {n_kills} times at random moments (seed {seed}), "
        f"{rate:.0f} new callbacks/s"
    )
    print(
        f"  callbacks sent {stream.sent}, acknowledged {len(stream.acked)}, events recorded "
        f"{events[0]}, handled {done[0]} (max attempts {attempts[0]})"
    )
    print(
        f"  effects per event (outbox rows): {dict(sorted(per_event.items()))}; "
        f"replies received: {handled} users answered, {lost} missing, {dup} more than once"
    )
    print(
        f"  restart to serving: mean {statistics.fmean(restarts):.2f} s, max {max(restarts):.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    pg = os.environ.get("SHUANGSUIJI_TEST_PG_URL")
    if pg:
        asyncio.run(faults(pg, args.rate, args.seconds))
    else:
        print("part 1 skipped: set SHUANGSUIJI_TEST_PG_URL to a PostgreSQL server")
    asyncio.run(kills(args.rate, args.kills, args.seed))


if __name__ == "__main__":
    main()
