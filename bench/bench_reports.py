"""Reports and public search at scale (issue "一公开"): the quarterly statistics table for the whole
region from a record of 1,000,000 inspections, and a search of the public page at that size.

    .venv/bin/python bench/bench_reports.py [--inspections 1000000] [--targets 200000]
    .venv/bin/python bench/bench_reports.py --postgresql postgresql://postgres@127.0.0.1:5432/test

The record is generated once (``storage.synthetic_checks``: tasks, draws, inspections, teams,
results, checks outside the draw, publications, spread over the region's league/cities and the
year's quarters), and every published, non-secret result gets its public line and bigrams, as
publication writes them. Then, each repeated and shown as median (best–worst):

* ``table``: ``storage.report.sheets`` for the region (150000), one quarter: a summary sheet and
  one sheet per league/city, every figure of the table;
* ``count(*)``: the baseline, ``SELECT count(*) FROM inspection_result`` in the same run;
* ``search``: public-page searches (two-character name fragments, longer fragments, full credit
  codes) on the region's page for the year, p50/p99 over the queries;
* ``LIKE``: the same name searches as a ``LIKE '%…%'`` scan, the baseline the index replaces.

Targets: table < 3 s, search p99 < 100 ms, on SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NOW = dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.UTC)
TZ = dt.timezone(dt.timedelta(hours=8))
WORDS = [
    "鑫源",
    "恒达",
    "宏伟",
    "金泰",
    "华安",
    "蒙西",
    "草原",
    "天骄",
    "北疆",
    "瑞丰",
    "鸿运",
    "永盛",
    "昌盛",
    "兴旺",
    "利民",
    "德胜",
    "腾飞",
    "明珠",
    "东方",
    "新元",
]
TRADES = [
    "化工",
    "煤业",
    "电力",
    "建材",
    "冶金",
    "制药",
    "乳业",
    "肉业",
    "稀土",
    "焦化",
    "水泥",
    "热力",
    "环保",
    "矿业",
    "纺织",
]


async def populate(db: Any, targets: int, inspections: int) -> None:
    from sqlalchemy import insert, select

    from inspection.uscc import make_uscc
    from storage.models import Inspector, Organisation, Target
    from storage.synthetic_checks import generate

    rng = random.Random(targets)
    async with db.transaction() as s:
        counties = [
            c
            for c in await s.scalars(
                select(Organisation.code).where(Organisation.level == "county")
            )
        ]
        batch: list[dict[str, Any]] = []
        for i in range(targets):
            r = rng.random()
            county = counties[i % len(counties)]
            key = make_uscc(f"91{county}MA{i:07d}")
            name = f"内蒙古{rng.choice(WORDS)}{rng.choice(TRADES)}{i}有限公司"
            batch.append(
                {
                    "key": key,
                    "name": name,
                    "uscc": key,
                    "org_code": county,
                    "tier": "special" if r < 0.05 else "key" if r < 0.2 else "general",
                    "updated_at": NOW,
                }
            )
            if len(batch) == 20_000:
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
                    "org_code": counties[i % len(counties)],
                    "userid": f"u{i}",
                    "updated_at": NOW,
                }
                for i in range(5000)
            ],
        )
    async with db.transaction() as s:
        await generate(s, seed=1, inspections=inspections, year=2026, per_task=200, now=NOW)
    await publish_all(db)


async def publish_all(db: Any) -> int:
    """Every published-ready result gets its public line and bigrams (as publication does)."""
    from sqlalchemy import select

    from storage.models import Inspection, InspectionResult, Publication, Target, Task
    from storage.public import bigrams

    async with db.transaction() as s:
        pubs = {
            t: p for t, p in (await s.execute(select(Publication.task_id, Publication.id))).all()
        }
        rows = await s.execute(
            select(
                Inspection.id,
                Inspection.task_id,
                Target.org_code,
                Target.name,
                Target.uscc,
                Task.code,
                Task.name,
                InspectionResult.at,
                InspectionResult.phrase,
            )
            .join(InspectionResult, InspectionResult.inspection_id == Inspection.id)
            .join(Target, Target.id == Inspection.target_id)
            .join(Task, Task.id == Inspection.task_id)
            .where(InspectionResult.secret.is_(False), Inspection.task_id.in_(list(pubs)))
        )
        entries, grams, n = [], [], 0
        for iid, tid, org, name, uscc, tcode, tname, at, phrase in rows.all():
            n += 1
            day = at.astimezone(TZ).date()
            entries.append(
                {
                    "id": n,
                    "inspection_id": iid,
                    "publication_id": pubs[tid],
                    "org_code": org,
                    "unit_name": org,
                    "year": day.year,
                    "task_code": tcode,
                    "task_name": tname,
                    "target_name": name,
                    "uscc": uscc or "",
                    "check_date": day,
                    "phrase": phrase,
                    "penalty": "",
                    "published_at": NOW,
                }
            )
            grams += [{"bigram": g, "year": day.year, "entry_id": n} for g in bigrams(name)]
            if len(entries) >= 20_000:
                await flush(s, entries, grams)
                entries, grams = [], []
        await flush(s, entries, grams)
    return n


async def flush(s: Any, entries: list[dict[str, Any]], grams: list[dict[str, Any]]) -> None:
    from storage.bulk import binder, insert_rows

    bind = binder(s)
    for table, rows in (("public_entry", entries), ("public_bigram", grams)):
        if rows:
            columns = list(rows[0])
            await insert_rows(s, table, columns, [tuple(bind(r[c]) for c in columns) for r in rows])


def timed(samples: list[float]) -> str:
    return f"{statistics.median(samples):.3f} s ({min(samples):.3f}–{max(samples):.3f})"


async def measure(db: Any, repeat: int) -> None:
    from sqlalchemy import func, select

    from inspection.report import quarter_bounds
    from storage import public, report
    from storage.models import Inspection, InspectionResult, Organisation, PublicEntry

    async with db.transaction() as s:
        inspections = await s.scalar(select(func.count()).select_from(Inspection))
        lines = await s.scalar(select(func.count()).select_from(PublicEntry))
        names = list(await s.scalars(select(PublicEntry.target_name).limit(50_000)))
        codes = list(await s.scalars(select(PublicEntry.uscc).limit(5_000)))
        assert await s.get(Organisation, "150000") is not None
    print(f"record: {inspections:,} inspections, {lines:,} public lines")
    start, end = quarter_bounds(2026, 2)
    table, baseline = [], []
    for _ in range(repeat):
        async with db.transaction() as s:
            t = time.perf_counter()
            await s.scalar(select(func.count()).select_from(InspectionResult))
            baseline.append(time.perf_counter() - t)
            t = time.perf_counter()
            sheets = await report.sheets(s, "150000", start, end, TZ)
            table.append(time.perf_counter() - t)
    print(f"table (region, 2026 Q2, {len(sheets)} sheets): {timed(table)}   [target < 3 s]")
    print(f"count(*) of results, baseline:          {timed(baseline)}")
    rng = random.Random(3)
    queries = []
    for _ in range(300):
        name = rng.choice(names)
        kind = rng.random()
        if kind < 0.5:
            i = rng.randrange(3, len(name) - 6)
            queries.append(name[i : i + 2])
        elif kind < 0.8:
            i = rng.randrange(3, len(name) - 6)
            queries.append(name[i : i + 4])
        else:
            queries.append(rng.choice(codes))
    found, spent = 0, []
    async with db.transaction() as s:
        for q in queries:
            t = time.perf_counter()
            page = await public.page(s, None, 2026, query=q, limit=50)  # the region's page
            spent.append(time.perf_counter() - t)
            found += page.total
    spent.sort()
    p50, p99 = spent[len(spent) // 2], spent[int(len(spent) * 0.99) - 1]
    print(
        f"search ({len(queries)} queries, region page): p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms   [target p99 < 100 ms]"
    )
    like = []
    async with db.transaction() as s:
        for q in [q for q in queries if not public.is_uscc(q)][:20]:
            t = time.perf_counter()
            await s.scalar(
                select(func.count())
                .select_from(PublicEntry)
                .where(PublicEntry.target_name.contains(q), PublicEntry.year == 2026)
            )
            like.append(time.perf_counter() - t)
    like.sort()
    print(
        f"LIKE scan, baseline ({len(like)} name queries): p50 {like[len(like) // 2] * 1000:.1f} ms, max {like[-1] * 1000:.1f} ms"
    )


async def main() -> None:
    from storage import migrate
    from storage.db import Database

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--inspections", type=int, default=1_000_000)
    parser.add_argument("--targets", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--postgresql", help="run on this PostgreSQL server (a scratch database)")
    parser.add_argument(
        "--keep", help="SQLite: keep the generated database at this path and reuse it"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.postgresql:
            import asyncpg

            name = f"bench_reports_{os.getpid()}"
            admin = await asyncpg.connect(
                args.postgresql.replace("postgresql+asyncpg", "postgresql")
            )
            await admin.execute(f'CREATE DATABASE "{name}"')
            url = args.postgresql.rsplit("/", 1)[0] + f"/{name}"
        else:
            url = f"sqlite+aiosqlite:///{args.keep or f'{tmp}/bench.db'}"
        reuse = bool(args.keep and Path(args.keep).exists())
        db = Database(url)
        try:
            await migrate.upgrade(db)
            if not reuse:
                t = time.perf_counter()
                await populate(db, args.targets, args.inspections)
                print(f"generated in {time.perf_counter() - t:.0f} s ({url.split(':')[0]})")
            await measure(db, args.repeat)
        finally:
            await db.dispose()
            if args.postgresql:
                await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
                await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
