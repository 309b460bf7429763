"""Draw benchmark: 10 % of a 100,000-target pool with 2,000 inspectors, teams included,
written to SQLite, against ``ORDER BY RANDOM() LIMIT n`` on the same table (issue 4).

    .venv/bin/python bench/bench_draw.py [--sizes 10000,100000] [--inspectors 2000] [--repeat 5]
    .venv/bin/python bench/bench_draw.py --sizes 1000000 --repeat 3   # linearity at 1M: a few
                                                                      # minutes, most of it
                                                                      # inserting the targets
    .venv/bin/python bench/bench_draw.py --postgresql postgresql://postgres@127.0.0.1:5432/test

For each pool size the directory is generated once (5 % special, 15 % key, 80 % general,
spread over 呼和浩特市's banners and counties, and the inspectors), and every measurement runs
on a fresh copy of it (a file copy; on PostgreSQL ``CREATE DATABASE … TEMPLATE``), opened as
``shuangsuiji serve`` opens it. Each is run ``--repeat`` times; the median is shown (for
``ours`` also the best and the worst):

* ``ours``: the whole draw as chat runs it, 抽查 then 见证 in two transactions: the pool read
  from the directory, frozen and fingerprinted, the commitment (``commit``); then the draw of
  10 % per tier with teams of two, every inspection and team member written (``witness``);
* ``cpu``: the process's CPU time during ``ours`` (both threads: ours and the database
  driver's), less sensitive than wall clock to what else the machine runs;
* ``+cards``: the same plus one template card per team queued in the outbox (what the teams
  receive; their group chats, when enabled, are not included);
* ``cold``: the witness step alone in a process that did not freeze the pool (another
  instance, or after a restart): the frozen pool is decoded from the record;
* ``pure``: ``inspection.draw.draw`` alone on the in-memory input (collector paused, as in
  chat);
* ``random()``: ``SELECT key FROM target WHERE org_code IN (…) AND tier = ? ORDER BY RANDOM()
  LIMIT n`` per tier: a biased-free but unprovable selection, no teams, nothing written.

The phases of ``ours`` (from its median run) are timed too: ``read`` (target and inspector
facts from the directory), ``pool`` (exclusions and counts), ``freeze`` (canonical JSON,
fingerprint and compression of the frozen pool), ``draw``, ``write`` (inspections and team
members) and ``other`` (locks, the draw record, audit entries, transaction commits).

Target: ours < 1 s at 100,000 on SQLite, and linear in the pool (the µs/target column).
Timings are wall clock on a shared machine: the load average is printed with the tables.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import inspect
import os
import random
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from inspection.pool import PoolPlan

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NOW = dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.UTC)
COUNTIES = ["150102", "150103", "150104", "150105", "150121", "150122", "150123", "150124"]


async def populate(db: Any, n: int, people: int) -> None:
    from sqlalchemy import insert

    from inspection.uscc import make_uscc
    from storage.models import Inspector, Target

    rng = random.Random(n)
    batch: list[dict[str, Any]] = []
    async with db.transaction() as s:
        for i in range(n):
            r = rng.random()
            tier = "special" if r < 0.05 else "key" if r < 0.20 else "general"
            county = COUNTIES[i % len(COUNTIES)]
            key = make_uscc(f"91{county}MA{i:07d}")
            batch.append(
                {
                    "key": key,
                    "name": f"企业{i}",
                    "uscc": key,
                    "address": f"测试路{i}号",
                    "org_code": county,
                    "tier": tier,
                    "on_positive_list": rng.random() < 0.05,
                    "updated_at": NOW,
                }
            )
            if len(batch) == 20000:
                await s.execute(insert(Target), batch)
                batch = []
        if batch:
            await s.execute(insert(Target), batch)
        await s.execute(
            insert(Inspector),
            [
                {
                    "certificate_no": f"15{i:08d}",
                    "name": f"检查员{i}",
                    "org_code": COUNTIES[i % len(COUNTIES)],
                    "userid": f"u{i}",
                    "updated_at": NOW,
                }
                for i in range(people)
            ],
        )


# Phases of the draw, by the functions of storage.draws.drawing that do them.
PHASES: dict[str, tuple[str, ...]] = {
    "read": ("target_facts", "inspector_facts"),
    "entities": ("entities_in_scope",),
    "pool": ("build_pool",),
    "freeze": ("fingerprinted", "pack"),
    "draw": ("draw_parts",),
    "write": ("_record",),
}


@contextlib.contextmanager
def phase_timer(spent: dict[str, float]) -> Iterator[None]:
    """Time the phases: wrap the functions ``storage.draws.drawing`` calls, for the duration."""
    from storage.draws import drawing as module

    saved: dict[str, Any] = {}

    def timed(phase: str, fn: Any) -> Any:
        if inspect.iscoroutinefunction(fn):

            async def wrapped_async(*args: Any, **kwargs: Any) -> Any:
                t0 = time.perf_counter()
                try:
                    return await fn(*args, **kwargs)
                finally:
                    spent[phase] = spent.get(phase, 0.0) + time.perf_counter() - t0

            return wrapped_async

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[phase] = spent.get(phase, 0.0) + time.perf_counter() - t0

        return wrapped

    for phase, names in PHASES.items():
        for name in names:
            saved[name] = getattr(module, name)
            setattr(module, name, timed(phase, saved[name]))
    try:
        yield
    finally:
        for name, fn in saved.items():
            setattr(module, name, fn)


async def one_size(
    n: int, people: int, repeat: int, tmp: Path, pg: str | None = None
) -> dict[str, Any]:
    import shutil
    import statistics

    from sqlalchemy import text

    from bot.chat.context import Actor, Binding, Context, FixedClock, Role
    from bot.config import load_settings
    from handlers.draws import notify_teams
    from inspection.draw import draw
    from inspection.taskspec import spec_from_fields
    from storage import draws, migrate
    from storage.db import Database
    from storage.gcpause import paused_gc
    from storage.outbox import Outbox
    from storage.repos import Repositories
    from storage.tasks import create_task, get_task

    base = tmp / f"draw-{n}.db"
    if pg is not None:
        await pg_admin(
            pg, "DROP DATABASE IF EXISTS drawbench_base", "CREATE DATABASE drawbench_base"
        )
    db = Database(pg_url(pg, "drawbench_base") if pg else f"sqlite+aiosqlite:///{base}")
    await migrate.upgrade(db)
    started = time.perf_counter()
    await populate(db, n, people)
    figures: dict[str, Any] = {"insert": time.perf_counter() - started}
    if pg is not None:  # statistics, as autovacuum would have gathered them by the draw
        async with db.engine.connect() as conn:
            await conn.execute(text("ANALYZE"))
    ratios = {"名称": "基准", "检查期": "2026-12-01~2026-12-31"}
    ratios |= {"特殊": "10%", "重点": "10%", "一般": "10%", "建设项目": "否"}
    async with db.transaction() as s:
        code = (
            await create_task(
                s, spec_from_fields(ratios), org_code="150100", actor="bench", now=NOW
            )
        ).code
    await db.dispose()
    runs = 0

    @contextlib.asynccontextmanager
    async def fresh() -> AsyncIterator[Database]:
        """A copy of the populated file, opened as `shuangsuiji serve` opens it: WAL
        checkpoints in a thread of their own, every second. Every run starts from the same
        directory, with nothing drawn yet."""
        nonlocal runs
        runs += 1
        if pg is not None:  # PostgreSQL: a copy by CREATE DATABASE … TEMPLATE
            await pg_admin(
                pg,
                "DROP DATABASE IF EXISTS drawbench_run",
                "CREATE DATABASE drawbench_run TEMPLATE drawbench_base",
            )
            db = Database(pg_url(pg, "drawbench_run"))
            try:
                yield db
            finally:
                await db.dispose()
                await pg_admin(pg, "DROP DATABASE drawbench_run")
            return
        path = tmp / f"run-{n}-{runs}.db"
        shutil.copyfile(base, path)
        db = Database(f"sqlite+aiosqlite:///{path}", own_checkpoints=True)
        stop = asyncio.Event()
        checkpoints = asyncio.create_task(db.checkpoint_every(1.0, stop))
        try:
            yield db
        finally:
            stop.set()
            await checkpoints
            await db.dispose()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)

    settings = load_settings(None, database={"url": "sqlite:///unused.db"})

    async def commit(db: Database) -> PoolPlan:
        """抽查 <任务>: freeze the pool and commit to the secret, in its own transaction."""
        async with db.transaction() as s:
            task = await get_task(s, code)
            assert task is not None
            _, plan = await draws.commit(s, task, actor="bench", now=NOW, secret=bytes(range(32)))
        return plan

    async def witness(db: Database, cards: bool) -> None:
        """见证 <任务> <值>: the draw, its record, and (with cards) the teams' cards."""
        async with db.transaction() as s:
            task = await get_task(s, code)
            assert task is not None
            row = await draws.latest_draw(s, task.id)
            assert row is not None
            outcome = await draws.run(s, task, row, witness="12345", actor="bench", now=NOW)
            assert outcome.error is None, outcome.error
            if cards:
                ctx = Context(
                    session=s,
                    outbox=Outbox(s, NOW),
                    clock=FixedClock(NOW),
                    settings=settings,
                    actor=Actor("bench", (Binding(Role.ADMIN, "150100"),)),
                    repos=Repositories(s),
                )
                await notify_teams(ctx, task, outcome.assignments)

    whole: list[tuple[float, float, float, dict[str, float]]] = []
    for _ in range(repeat):
        async with fresh() as db:
            spent: dict[str, float] = {}
            with phase_timer(spent):
                c0, t0 = time.process_time(), time.perf_counter()
                plan = await commit(db)
                t1 = time.perf_counter()
                await witness(db, cards=False)
                t2, c2 = time.perf_counter(), time.process_time()
            spent["cpu"] = c2 - c0
            whole.append((t2 - t0, t1 - t0, t2 - t1, spent))
            async with db.transaction() as s:
                figures["drawn"] = await s.scalar(text("SELECT count(*) FROM inspection")) or 0
    # The run with the median whole draw gives the phases.
    whole.sort(key=lambda w: w[0])
    ours, figures["commit"], figures["witness"], spent = whole[len(whole) // 2]
    figures |= {"ours": ours, "best": whole[0][0], "worst": whole[-1][0]}
    figures["cpu"] = statistics.median(w[3]["cpu"] for w in whole)
    figures |= {phase: spent.get(phase, 0.0) for phase in PHASES}
    figures["other"] = ours - sum(spent.get(phase, 0.0) for phase in PHASES)

    async with fresh() as db:
        t0 = time.perf_counter()
        await commit(db)
        await witness(db, cards=True)
        figures["+cards"] = time.perf_counter() - t0

    async with fresh() as db:
        await commit(db)
        draws.forget_frozen()  # as if another instance (or a restart) ran the witness step
        t0 = time.perf_counter()
        await witness(db, cards=False)
        figures["cold"] = time.perf_counter() - t0

    pure = []
    for _ in range(repeat):
        with paused_gc():  # as the draw runs in chat (storage.draws.run)
            t0 = time.perf_counter()
            draw(plan.input, bytes(32))
            pure.append(time.perf_counter() - t0)
    figures["pure"] = statistics.median(pure)

    async with fresh() as db:
        baseline = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            async with db.engine.connect() as conn:
                for tier in ("special", "key", "general"):
                    size = await conn.scalar(
                        text("SELECT count(*) FROM target WHERE tier = :t"), {"t": tier}
                    )
                    orgs = ",".join(f"'{c}'" for c in COUNTIES)
                    await conn.execute(
                        text(
                            f"SELECT key FROM target WHERE org_code IN ({orgs}) AND tier = :t "
                            "ORDER BY RANDOM() LIMIT :n"
                        ),
                        {"t": tier, "n": -(-(size or 0) // 10)},
                    )
            baseline.append(time.perf_counter() - t0)
        figures["random()"] = statistics.median(baseline)
    return figures


def pg_url(url: str, database: str) -> str:
    from sqlalchemy.engine import make_url

    return (
        make_url(url)
        .set(drivername="postgresql+asyncpg", database=database)
        .render_as_string(hide_password=False)
    )


async def pg_admin(url: str, *statements: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(pg_url(url, "postgres").replace("+asyncpg", ""))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="pool sizes (1000000 works)")
    parser.add_argument("--inspectors", type=int, default=2000)
    parser.add_argument(
        "--repeat", type=int, default=5, help="runs per measurement (the median is shown)"
    )
    parser.add_argument(
        "--postgresql",
        metavar="URL",
        help="draw on PostgreSQL instead (e.g. postgresql://postgres@127.0.0.1:5432/test; "
        "creates and drops the databases drawbench_base and drawbench_run)",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            rows.append(
                (n, await one_size(n, args.inspectors, args.repeat, Path(tmp), args.postgresql))
            )
        if args.postgresql:
            await pg_admin(args.postgresql, "DROP DATABASE IF EXISTS drawbench_base")
    print(
        f"pool of targets, {args.inspectors} inspectors, 10 % per tier, teams of 2, "
        f"{'PostgreSQL' if args.postgresql else 'SQLite'}; "
        f"load average {load:.2f} before, {os.getloadavg()[0]:.2f} after ({os.cpu_count()} CPUs); "
        f"medians of {args.repeat} runs, each on a fresh copy of the directory"
    )
    head = f"{'pool':>9} {'drawn':>7} {'insert':>8} {'ours':>7} {'(best':>7} {'worst)':>7}"
    head += f" {'cpu':>7} {'(commit':>8} {'witness)':>9}"
    head += f" {'+cards':>7} {'cold':>7} {'pure':>7} {'random()':>9} {'ours/rnd':>9}"
    print(head + f" {'us/target':>10}")
    for n, f in rows:
        print(
            f"{n:>9,} {int(f['drawn']):>7,} {f['insert']:>7.2f}s {f['ours']:>6.3f}s "
            f"{f['best']:>6.3f}s {f['worst']:>6.3f}s {f['cpu']:>6.3f}s "
            f"{f['commit']:>7.3f}s {f['witness']:>8.3f}s "
            f"{f['+cards']:>6.3f}s {f['cold']:>6.3f}s {f['pure']:>6.3f}s "
            f"{f['random()']:>8.3f}s {f['ours'] / f['random()']:>8.1f}x "
            f"{f['ours'] / n * 1e6:>10.2f}"
        )
    print("phases of ours:")
    print(f"{'pool':>9} " + " ".join(f"{p:>7}" for p in (*PHASES, "other")))
    for n, f in rows:
        print(f"{n:>9,} " + " ".join(f"{f[p]:>6.3f}s" for p in (*PHASES, "other")))
    if len(rows) > 1:
        base_n, base = rows[0]
        per = base["ours"] / base_n
        print(
            "linearity (us/target relative to the smallest pool): "
            + ", ".join(f"{n:,}: {f['ours'] / n / per:.2f}" for n, f in rows)
        )


if __name__ == "__main__":
    asyncio.run(main())
