"""Draw benchmark: 10 % of a 100,000-target pool with 2,000 inspectors, teams included,
written to SQLite, against ``ORDER BY RANDOM() LIMIT n`` on the same table (issue 4).

    .venv/bin/python bench/bench_draw.py [--sizes 10000,100000,1000000] [--inspectors 2000]

For each pool size, in a fresh SQLite file: the targets (5 % special, 15 % key, 80 % general,
spread over 呼和浩特市's banners and counties) and the inspectors are inserted, then timed:

* ``ours``: the whole draw in one transaction, as `抽查 … 无见证` runs it: the pool read from
  the directory, frozen and fingerprinted, the commitment, the draw of 10 % per tier with teams
  of two, and every inspection and team member written;
* ``+cards``: the same plus one template card per team queued in the outbox (the chat path);
* ``witness``: the witness step alone on a committed draw (the frozen pool is read back);
* ``pure``: ``inspection.draw.draw`` alone on the in-memory input;
* ``random()``: ``SELECT key FROM target WHERE org_code IN (…) AND tier = ? ORDER BY RANDOM()
  LIMIT n`` per tier: a biased-free but unprovable selection, no teams, nothing written.

Target: ours < 1 s at 100,000, and linear in the pool. Figures are printed as a table.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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


async def one_size(n: int, people: int, tmp: Path) -> dict[str, float]:
    from sqlalchemy import text

    from bot.config import load_settings
    from bot.context import Actor, Binding, Context, FixedClock, Role
    from handlers.draws import notify_teams
    from inspection.draw import draw
    from inspection.taskspec import spec_from_fields
    from storage import draws, migrate
    from storage.db import Database
    from storage.outbox import Outbox
    from storage.repos import Repositories
    from storage.tasks import create_task, get_task

    db = Database(f"sqlite+aiosqlite:///{tmp / f'draw-{n}.db'}")
    await migrate.upgrade(db)
    started = time.perf_counter()
    await populate(db, n, people)
    figures = {"insert": time.perf_counter() - started}
    ratios = {"名称": "基准", "检查期": "2026-12-01~2026-12-31"}
    ratios |= {"特殊": "10%", "重点": "10%", "一般": "10%", "建设项目": "否"}
    codes = []
    async with db.transaction() as s:
        for _ in range(3):
            task = await create_task(
                s, spec_from_fields(ratios), org_code="150100", actor="bench", now=NOW
            )
            codes.append(task.code)
    settings = load_settings(None, database={"url": db.url})

    async def whole(code: str, cards: bool) -> float:
        t0 = time.perf_counter()
        async with db.transaction() as s:
            task = await get_task(s, code)
            assert task is not None
            row, plan = await draws.commit(
                s, task, actor="bench", now=NOW, secret=bytes(range(32)), witnessed=False
            )
            figures.setdefault("commit", time.perf_counter() - t0)
            outcome = await draws.run(s, task, row, witness=None, actor="bench", now=NOW, plan=plan)
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
        return time.perf_counter() - t0

    figures["ours"] = await whole(codes[0], cards=False)
    figures["drawn"] = 0
    async with db.transaction() as s:
        figures["drawn"] = await s.scalar(text("SELECT count(*) FROM inspection")) or 0
    # 100,000 cards at 1M would measure the ORM's flush of the outbox, not the draw.
    figures["+cards"] = await whole(codes[1], cards=True) if n <= 100_000 else float("nan")

    async with db.transaction() as s:
        pending = await get_task(s, codes[2])
        assert pending is not None
        _, plan = await draws.commit(s, pending, actor="bench", now=NOW, secret=bytes(32))
    t0 = time.perf_counter()
    async with db.transaction() as s:
        witnessed = await get_task(s, codes[2])
        assert witnessed is not None
        committed = await draws.latest_draw(s, witnessed.id)
        assert committed is not None
        await draws.run(s, witnessed, committed, witness="12345", actor="bench", now=NOW)
    figures["witness"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    draw(plan.input, bytes(32))
    figures["pure"] = time.perf_counter() - t0

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
    figures["random()"] = time.perf_counter() - t0
    await db.dispose()
    return figures


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--inspectors", type=int, default=2000)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            rows.append((n, await one_size(n, args.inspectors, Path(tmp))))
    print(f"pool of targets, {args.inspectors} inspectors, 10 % per tier, teams of 2, SQLite")
    head = f"{'pool':>9} {'drawn':>7} {'insert':>8} {'ours':>7} {'(commit':>8} {'run)':>6}"
    head += f" {'+cards':>7} {'witness':>8} {'pure':>7} {'random()':>9} {'ours/rnd':>9}"
    print(head + f" {'us/target':>10}")
    for n, f in rows:
        print(
            f"{n:>9,} {int(f['drawn']):>7,} {f['insert']:>7.2f}s {f['ours']:>6.3f}s "
            f"{f['commit']:>7.3f}s {f['ours'] - f['commit']:>5.3f}s "
            f"{f['+cards']:>6.3f}s {f['witness']:>7.3f}s {f['pure']:>6.3f}s "
            f"{f['random()']:>8.3f}s {f['ours'] / f['random()']:>8.1f}x "
            f"{f['ours'] / n * 1e6:>10.2f}"
        )


if __name__ == "__main__":
    asyncio.run(main())
