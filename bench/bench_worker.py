"""CPU cost of the event worker and the outbox sender per simple event, in one process.

Records --events distinct 帮助 messages from --users users straight into the inbound table (as
the callback endpoint would), then times, on the same SQLite file:
- floor: per event, a transaction that only loads the event under its lease and marks it done
  (what no handler can avoid): the baseline of the same run;
- worker: ``EventWorker.run_once`` working off the same number of events (parse, actor, dispatch,
  reply queued, done mark);
- sender: ``OutboxSender.run_once`` delivering the replies to the WeCom stand-in (in this
  process: its side of each HTTP call counts too).

Each line shows wall and CPU (process user + system) ms per event. ``--profile`` prints the
top of a cProfile of the worker and sender phases.

``--baseline DIR`` first runs this same bench against another checkout's code (e.g. the main
branch's, to compare a change with the code before it on an equally loaded machine), in a
process of its own importing the bot from DIR (``--code DIR``), and prints its lines marked
``base``; ``--rounds N`` alternates the two N times.

``--history N`` first fills the outbox and its delivery ledger with N messages sent two hours
before (as on a server that has run for a while: neither table is pruned).

``--postgres ADMIN_URL`` runs on PostgreSQL instead: a scratch database is created through
ADMIN_URL (e.g. postgresql://postgres@127.0.0.1:5432/postgres) for each run and dropped after.

    .venv/bin/python bench/bench_worker.py [--events 2000] [--users 1000] [--profile]
        [--baseline DIR] [--rounds 1] [--history 0] [--postgres ADMIN_URL]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import datetime as dt
import io
import os
import pstats
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
from sqlalchemy.engine import make_url

# The code measured: this checkout's, or another's (--code DIR: the baseline of --baseline).
_CODE = sys.argv[sys.argv.index("--code") + 1] if "--code" in sys.argv[:-1] else None
sys.path.insert(0, str(Path(_CODE or Path(__file__).resolve().parent.parent).resolve()))

from bot.chat.context import SystemClock  # noqa: E402
from bot.runtime.app import dispatcher  # noqa: E402
from bot.runtime.sender import OutboxSender  # noqa: E402
from bot.runtime.worker import EventWorker  # noqa: E402
from bot.tools.demo import standin_settings  # noqa: E402
from bot.wecom.api import WeComClient  # noqa: E402
from bot.wecom.standin import WeComStandIn  # noqa: E402
from storage import inbound, migrate  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.inbound import NewEvent  # noqa: E402


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


async def _record(db: Database, wecom: WeComStandIn, n: int, users: int, offset: int) -> None:
    from bot.chat.inbound import envelope

    now = SystemClock().now()
    events = []
    for i in range(n):
        xml = wecom.text_message_xml(f"u{i % users}", "帮助", offset + i, int(time.time()))
        env = envelope(xml)
        events.append(NewEvent(env.dedup_key, env.user, env.kind, xml, now))
    await db.run_write(lambda conn: inbound.record_many(conn, events))


async def _history(db: Database, n: int, users: int) -> None:
    """``n`` messages sent two hours ago, each with its slot in the delivery ledger: what a
    server that has run for a while has (neither table is ever pruned)."""
    from sqlalchemy import insert

    from storage.models import OutboxDelivery, OutboxMessage

    then = SystemClock().now() - dt.timedelta(hours=2)
    messages = [
        {
            "id": 10_000_000 + i,
            "created_at": then,
            "priority": 0,
            "api": "message/send",
            "recipients": [f"u{i % users}"],
            "body": {"msgtype": "text", "text": {"content": "history"}},
            "status": "sent",
            "attempts": 1,
            "not_before": then,
            "sent_at": then,
            "invalid_users": [],
        }
        for i in range(n)
    ]
    slots = [
        {"message_id": 10_000_000 + i, "attempt": 1, "recipient": f"u{i % users}", "sent_at": then}
        for i in range(n)
    ]
    async with db.transaction(rules=False) as session:
        for at in range(0, n, 5000):
            await session.execute(insert(OutboxMessage), messages[at : at + 5000])
            await session.execute(insert(OutboxDelivery), slots[at : at + 5000])


args_sort = "cumulative"


async def _timed(
    label: str, n: int, work: Callable[[], Awaitable[int]], profile: bool
) -> tuple[float, float]:
    prof = cProfile.Profile() if profile else None
    wall0, cpu0 = time.perf_counter(), _cpu()
    if prof:
        prof.enable()
    done = await work()
    if prof:
        prof.disable()
    wall, cpu = time.perf_counter() - wall0, _cpu() - cpu0
    if done != n:
        raise SystemExit(f"{label}: {done} of {n} done")
    print(f"{label:8} {n:6d} {wall / n * 1000:9.3f} {cpu / n * 1000:9.3f}", flush=True)
    if prof:
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats(args_sort).print_stats(40)
        print(out.getvalue())
    return wall, cpu


@contextlib.asynccontextmanager
async def _database(args: argparse.Namespace) -> AsyncIterator[tuple[str, str]]:
    """A fresh database for one run: (url, what it is)."""
    if not args.postgres:
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite+aiosqlite:///{tmp}/w.db", "SQLite (WAL)"
        return
    import asyncpg

    admin = make_url(args.postgres)
    name = f"bench_worker_{os.getpid()}_{time.monotonic_ns()}"
    dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        try:
            url = admin.set(drivername="postgresql+asyncpg", database=name)
            yield url.render_as_string(hide_password=False), "PostgreSQL"
        finally:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def main(args: argparse.Namespace) -> None:
    wecom = WeComStandIn()
    api_base = await wecom.start()
    async with _database(args) as (url, kind):
        settings = standin_settings(url, wecom, api_base)
        db = Database(url, own_checkpoints=False)
        await migrate.upgrade(db)
        clock = SystemClock()
        owner = "floor"
        lease = dt.timedelta(seconds=60)
        n = args.events
        print(
            f"events {n} from {args.users} users; {kind}; {args.history} sent before; "
            f"load {os.getloadavg()[0]:.2f}"
        )
        print(f"{'phase':8} {'events':>6} {'wall ms':>9} {'cpu ms':>9}")

        # The floor: claim, then per event one transaction loading it and marking it done.
        await _record(db, wecom, n, args.users, 1)

        async def floor() -> int:
            done = 0
            while True:
                async with db.transaction() as session:
                    ids = await inbound.claim(session, owner, clock.now(), lease)
                if not ids:
                    return done
                for event_id in ids:
                    async with db.transaction() as session:
                        event = await inbound.load_owned(session, event_id, owner)
                        assert event is not None
                        event.status, event.processed_at = "done", clock.now()
                    done += 1

        await _timed("floor", n, floor, False)

        await _record(db, wecom, n, args.users, 1_000_000)
        if args.history:
            await _history(db, args.history, args.users)
        worker = EventWorker(db, dispatcher(), settings, clock)
        await _timed("worker", n, worker.run_once, args.profile)

        async with aiohttp.ClientSession() as http:
            w = settings.wecom
            client = WeComClient(
                http,
                corp_id=w.corp_id,
                secret=w.secret.get_secret_value(),
                agent_id=w.agent_id,
                api_base=w.api_base,
            )
            sender = OutboxSender(db, client, settings, clock)
            await _timed("sender", n, sender.run_once, args.profile)
        if len(wecom.deliveries) != n:
            raise SystemExit(f"the stand-in received {len(wecom.deliveries)} of {n}")
        await db.dispose()
    await wecom.stop()


def baseline(args: argparse.Namespace) -> None:
    """This bench against another checkout's code, in a process of its own; its lines marked."""
    root = Path(args.baseline).resolve()
    if not (root / "bot" / "runtime" / "worker.py").is_file():
        print(f"no bot/runtime/worker.py under {root}", file=sys.stderr)
        raise SystemExit(2)
    command = [sys.executable, __file__, "--code", str(root)]
    command += ["--events", str(args.events), "--users", str(args.users)]
    if args.postgres:
        command += ["--postgres", args.postgres]
    if args.history:
        command += ["--history", str(args.history)]
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        print(f"the baseline failed: {out.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        raise SystemExit(1)
    for line in out.stdout.splitlines():
        print(f"base {line}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--baseline", metavar="DIR", help="another checkout to compare with")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--postgres", metavar="ADMIN_URL", help="run on PostgreSQL")
    parser.add_argument(
        "--history", type=int, default=0, help="messages already sent (2 h ago) before the run"
    )
    parser.add_argument("--code", metavar="DIR", help=argparse.SUPPRESS)  # read at import
    parsed = parser.parse_args()
    for _ in range(parsed.rounds):
        if parsed.baseline:
            baseline(parsed)
        asyncio.run(main(parsed))
