"""Reports and public search at scale (issue "一公开"): the quarterly statistics table for the whole
region from a record of 1,000,000 inspections, and a search of the public page at that size.

    .venv/bin/python bench/bench_reports.py [--inspections 1000000] [--targets 200000]
    .venv/bin/python bench/bench_reports.py --postgresql postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/bench_reports.py --postgresql postgresql://…/bench --keep-postgresql

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

Targets: table < 3 s, search p99 < 100 ms, on SQLite and on PostgreSQL (with
``--keep-postgresql`` the database named in the URL is generated once and reused; after a bulk
load it is vacuumed, as autovacuum would in time).
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
from collections import defaultdict
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
    """Every published-ready result gets its public line and bigrams (as publication does: on
    its task's year's page, with its folded search name)."""
    from sqlalchemy import select, text

    from storage.db import is_postgresql
    from storage.models import Inspection, InspectionResult, Publication, Target, Task
    from storage.public import bigrams, searchable, tokens

    async with db.transaction() as s:
        pg = is_postgresql(s)
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
                Task.year,
                InspectionResult.at,
                InspectionResult.phrase,
            )
            .join(InspectionResult, InspectionResult.inspection_id == Inspection.id)
            .join(Target, Target.id == Inspection.target_id)
            .join(Task, Task.id == Inspection.task_id)
            .where(InspectionResult.secret.is_(False), Inspection.task_id.in_(list(pubs)))
        )
        entries, grams, n = [], [], 0
        for iid, tid, org, name, uscc, tcode, tname, year, at, phrase in rows.all():
            n += 1
            day = at.astimezone(TZ).date()
            entries.append(
                {
                    "id": n,
                    "inspection_id": iid,
                    "publication_id": pubs[tid],
                    "org_code": org,
                    "unit_name": org,
                    "year": year,
                    "task_code": tcode,
                    "task_name": tname,
                    "target_name": name,
                    "search_name": searchable(name),
                    "uscc": uscc or "",
                    "check_date": day,
                    "phrase": phrase,
                    "penalty": "",
                    "published_at": NOW,
                    **({"grams": tokens(year, org, name)} if pg else {}),
                }
            )
            grams += [
                {"bigram": g, "year": year, "entry_id": n, "org_code": org} for g in bigrams(name)
            ]
            if len(entries) >= 20_000:
                await flush(s, entries, grams)
                entries, grams = [], []
        await flush(s, entries, grams)
        await s.execute(
            text(
                "INSERT INTO public_bigram_count (bigram, year, n) "
                "SELECT bigram, year, count(*) FROM public_bigram GROUP BY bigram, year"
            )
        )
    return n


async def flush(s: Any, entries: list[dict[str, Any]], grams: list[dict[str, Any]]) -> None:
    from storage.bulk import binder, insert_rows

    bind = binder(s)
    for table, rows in (("public_entry", entries), ("public_bigram", grams)):
        if rows:
            columns = list(rows[0])
            await insert_rows(
                s,
                table,
                columns,
                # grams: a text[] the driver takes as a list (bind would make it JSON text)
                [tuple(r[c] if c == "grams" else bind(r[c]) for c in columns) for r in rows],
            )


def timed(samples: list[float]) -> str:
    return f"{statistics.median(samples):.3f} s ({min(samples):.3f}–{max(samples):.3f})"


def pct(samples: list[float], q: float) -> float:
    """The q-quantile (nearest rank) in milliseconds."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))] * 1000


async def clocked(work: Any) -> tuple[Any, float, float]:
    """(result, wall seconds, CPU seconds of the whole process: the driver's thread too)."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = await work
    return out, time.perf_counter() - wall, time.process_time() - cpu


async def measure_table(db: Any, repeat: int) -> None:
    from sqlalchemy import func, select

    from bench.old_report import old_figures_by_org, old_publication_columns
    from inspection.report import Figures, quarter_bounds
    from storage import report
    from storage.models import CheckFact, Inspection, InspectionResult, Organisation

    async with db.transaction() as s:
        inspections = await s.scalar(select(func.count()).select_from(Inspection))
        facts = await s.scalar(select(func.count()).select_from(CheckFact))
        assert await s.get(Organisation, "150000") is not None
    print(f"record: {inspections:,} inspections, {facts:,} random checks with a result (facts)")
    start, end = quarter_bounds(2026, 2)
    rows: dict[str, list[float]] = {
        k: []
        for k in ("table", "new", "old", "count", "cpu_t", "pub", "pub_old", "cpu_p", "cpu_po")
    }
    cpu_old: list[float] = []
    since, until = report._utc(start, TZ), report._utc(end, TZ)
    for _ in range(repeat):
        async with db.transaction() as s:
            _, wall, _ = await clocked(s.scalar(select(func.count()).select_from(InspectionResult)))
            rows["count"].append(wall)
            sheets, wall, cpu = await clocked(report.sheets(s, "150000", start, end, TZ))
            rows["table"].append(wall)
            rows["cpu_t"].append(cpu)
            new, wall, _ = await clocked(report.figures_by_org(s, start, end, TZ))
            rows["new"].append(wall)
            old, wall, cpu = await clocked(old_figures_by_org(s, start, end, TZ))
            rows["old"].append(wall)
            cpu_old.append(cpu)
            pubs: dict[str, Figures] = defaultdict(Figures)
            _, wall, cpu = await clocked(report.publications(s, pubs, end, since, until, TZ))
            rows["pub"].append(wall)
            rows["cpu_p"].append(cpu)
            _, wall, cpu = await clocked(old_publication_columns(s, pubs, since, until))
            rows["pub_old"].append(wall)
            rows["cpu_po"].append(cpu)
        differ = [k for k in {*new, *old} if new.get(k, Figures()) != old.get(k, Figures())]
        assert not differ, f"the facts and the raw rows give different figures: {differ}"
    print(
        f"table (region, 2026 Q2, {len(sheets)} sheets): {timed(rows['table'])} wall, "
        f"{statistics.median(rows['cpu_t']):.3f} s CPU   [target < 3 s]"
    )
    print(f"  figures from the facts:                {timed(rows['new'])}")
    print(
        f"  baseline, figures from the raw rows:   {timed(rows['old'])} wall, "
        f"{statistics.median(cpu_old):.3f} s CPU (same figures: checked)"
    )
    print(f"  count(*) of results, for scale:        {timed(rows['count'])}")
    print(
        f"  publication columns, by result (0011): {timed(rows['pub'])} wall, "
        f"{statistics.median(rows['cpu_p']):.3f} s CPU"
    )
    print(
        f"  baseline, by task (before 0011):       {timed(rows['pub_old'])} wall, "
        f"{statistics.median(rows['cpu_po']):.3f} s CPU"
    )


def query_mix(names: list[str], codes: list[str], n: int) -> list[tuple[str, str]]:
    """(shape, query): what people type into the page's search box."""
    rng = random.Random(3)
    out: list[tuple[str, str]] = []
    for _ in range(n):
        name = rng.choice(names)
        kind = rng.random()
        core = name[3:].split("有限公司")[0]  # after 内蒙古: the distinctive part
        if kind < 0.35:
            i = rng.randrange(0, len(core) - 1)
            out.append(("2 chars", core[i : i + 2]))
        elif kind < 0.55:
            i = rng.randrange(0, max(1, len(core) - 3))
            out.append(("4 chars", core[i : i + 4]))
        elif kind < 0.65:
            out.append(("full name", name))
        elif kind < 0.85:
            out.append(("credit code", rng.choice(codes)))
        elif kind < 0.93:
            out.append(("miss", rng.choice(["龙虎", "青海湖", "上海浦东", "珠江"])))
        else:
            out.append(("miss", "91150000MA" + f"{rng.randrange(10**8):08d}"))
    return out


async def server_cpu(db: Any) -> float | None:
    """PostgreSQL on this machine: CPU seconds of the database's server processes so far (the
    client's CPU is not where a query's work is done); None on SQLite or when not readable."""
    from sqlalchemy import text

    if db.is_sqlite:
        return None
    async with db.transaction() as s:
        pids = list(
            await s.scalars(
                text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
            )
        )
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


async def measure_search(db: Any, queries: int) -> None:
    from sqlalchemy import func, select

    from storage import public
    from storage.models import PublicEntry
    from storage.repos import Repositories

    async with db.transaction() as s:
        lines = await s.scalar(select(func.count()).select_from(PublicEntry))
        names = list(await s.scalars(select(PublicEntry.target_name).limit(50_000)))
        codes = list(await s.scalars(select(PublicEntry.uscc).limit(5_000)))
        city = await Repositories(s).orgs.subtree("150200")
    load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"public page: {lines:,} lines (load average {load})")
    mix = query_mix(names, codes, queries)
    spent: dict[str, list[float]] = {}
    every: list[float] = []
    worst: list[tuple[float, str, str, str]] = []
    server = await server_cpu(db)
    cpu = time.process_time()
    for n, (shape, q) in enumerate(mix):
        units = None if n % 2 == 0 else city  # the region's page and a league/city's page
        async with db.transaction() as s:
            t = time.perf_counter()
            await public.page(s, units, 2026, query=q, limit=20)
            took = time.perf_counter() - t
        spent.setdefault(shape, []).append(took)
        every.append(took)
        worst.append((took, shape, q, "region" if units is None else "150200"))
    cpu = time.process_time() - cpu
    after = await server_cpu(db)
    if server is not None and after is not None:
        print(
            f"  server CPU: {(after - server) / len(mix) * 1000:.1f} ms a query "
            f"(PostgreSQL's processes; load average {os.getloadavg()[0]:.1f})"
        )
    print(
        f"search ({len(every)} queries, region and city pages): p50 {pct(every, 0.5):.1f} ms, "
        f"p99 {pct(every, 0.99):.1f} ms, max {max(every) * 1000:.1f} ms; "
        f"{cpu / len(every) * 1000:.1f} ms CPU each   [target p99 < 100 ms]"
    )
    for shape, samples in spent.items():
        print(
            f"  {shape:<12} {len(samples):>4}: p50 {pct(samples, 0.5):6.1f} ms, "
            f"p99 {pct(samples, 0.99):6.1f} ms, max {max(samples) * 1000:6.1f} ms"
        )
    for took, shape, q, page in sorted(worst, reverse=True)[:5]:
        print(f"  slowest: {took * 1000:7.1f} ms  {shape:<12} {page:<7} {q}")
    like = []
    async with db.transaction() as s:
        for _, q in [m for m in mix if m[0] in ("2 chars", "4 chars")][:20]:
            t = time.perf_counter()
            await s.scalar(
                select(func.count())
                .select_from(PublicEntry)
                .where(PublicEntry.target_name.contains(q), PublicEntry.year == 2026)
            )
            like.append(time.perf_counter() - t)
    print(f"  baseline, LIKE scan ({len(like)} name queries): p50 {pct(like, 0.5):.1f} ms")


async def vacuum(url: str) -> None:
    """PostgreSQL after a bulk load: what autovacuum would do in time (statistics for the
    planner, the visibility map for index-only scans), done now so the figures do not depend
    on when it runs."""
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        for table in ("public_entry", "public_bigram", "public_bigram_count"):
            await conn.execute(f"VACUUM (ANALYZE) {table}")
    finally:
        await conn.close()


async def has_record(db: Any, table: str) -> bool:
    from sqlalchemy import text

    async with db.transaction() as s:
        return await s.scalar(text(f"SELECT 1 FROM {table} LIMIT 1")) is not None


async def main() -> None:
    from storage import migrate
    from storage.db import Database

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--inspections", type=int, default=1_000_000)
    parser.add_argument("--targets", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--only", choices=["table", "search"])
    parser.add_argument("--postgresql", help="run on this PostgreSQL server (a scratch database)")
    parser.add_argument(
        "--keep", help="SQLite: keep the generated database at this path and reuse it"
    )
    parser.add_argument(
        "--keep-postgresql",
        action="store_true",
        help="PostgreSQL: use the database named in --postgresql as it is (create it first): "
        "generate the record into it when it has none, reuse it otherwise, never drop it",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        kept_pg = bool(args.postgresql and args.keep_postgresql)
        if kept_pg:
            url = args.postgresql
            if url.startswith("postgresql://"):  # the driver the project uses
                url = "postgresql+asyncpg://" + url.removeprefix("postgresql://")
        elif args.postgresql:
            import asyncpg

            name = f"bench_reports_{os.getpid()}"
            admin = await asyncpg.connect(
                args.postgresql.replace("postgresql+asyncpg", "postgresql")
            )
            await admin.execute(f'CREATE DATABASE "{name}"')
            url = args.postgresql.rsplit("/", 1)[0] + f"/{name}"
            if url.startswith("postgresql://"):  # the driver the project uses
                url = "postgresql+asyncpg://" + url.removeprefix("postgresql://")
        else:
            url = f"sqlite+aiosqlite:///{args.keep or f'{tmp}/bench.db'}"
        reuse = bool(args.keep and not args.postgresql and Path(args.keep).exists())
        db = None
        try:
            db = Database(url)
            t = time.perf_counter()
            await migrate.upgrade(db)
            if kept_pg:
                reuse = await has_record(db, "inspection")
                if reuse and not await has_record(db, "public_entry"):
                    print(f"published {await publish_all(db):,} lines into the kept record")
                    await vacuum(url)
            if reuse:
                print(f"migrations on the kept record: {time.perf_counter() - t:.1f} s")
            if not reuse:
                t = time.perf_counter()
                await populate(db, args.targets, args.inspections)
                if args.postgresql:
                    await vacuum(url)
                print(f"generated in {time.perf_counter() - t:.0f} s ({url.split(':')[0]})")
            if args.only != "search":
                await measure_table(db, args.repeat)
            if args.only != "table":
                await measure_search(db, args.queries)
        finally:
            if db is not None:
                await db.dispose()
            if args.postgresql and not kept_pg:
                await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
                await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
