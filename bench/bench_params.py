"""Cost of reading the rule parameters from their table (storage/params.py, Art. 45).

Every ORM transaction loads the parameter table as it begins, so that ``rule_params(on)`` stays
a synchronous lookup. Measured in the same run against a baseline with the loader switched off:
short transactions (one indexed read, as a handler's smallest), and ``rule_params`` itself
against the hard-coded history it replaced.

    .venv/bin/python bench/bench_params.py [--transactions 2000] [--postgresql URL]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


async def transactions(url: str, n: int, *, load: bool) -> float:
    from sqlalchemy import event, text
    from sqlalchemy.orm import Session

    from storage import params
    from storage.db import Database

    if not load:
        event.remove(Session, "after_begin", params._load_on_begin)
    db = Database(url)
    try:
        for _ in range(50):  # warm the pool and the statement cache
            async with db.transaction() as s:
                await s.execute(text("SELECT code FROM organisation WHERE code = '150000'"))
        start = time.perf_counter()
        for _ in range(n):
            async with db.transaction() as s:
                await s.execute(text("SELECT code FROM organisation WHERE code = '150000'"))
        return (time.perf_counter() - start) / n * 1e6
    finally:
        await db.dispose()
        if not load:
            event.listen(Session, "after_begin", params._load_on_begin)


async def load_alone(url: str, n: int) -> float:
    """The loader's own work (read the rows, find the parsed history), n times in one transaction."""
    from storage import params
    from storage.db import Database

    db = Database(url)
    try:
        async with db.transaction() as s:
            conn = await s.connection()
            start = time.perf_counter()
            # The listener as a session's outermost transaction calls it (not a savepoint,
            # not a bookkeeping session that opts out).
            session, outer = SimpleNamespace(info={}), SimpleNamespace(nested=False)
            for _ in range(n):
                await conn.run_sync(lambda c: params._load_on_begin(session, outer, c))  # type: ignore[arg-type]
            return (time.perf_counter() - start) / n * 1e6
    finally:
        await db.dispose()


def lookups(n: int) -> tuple[float, float]:
    from inspection.params import DEFAULT_HISTORY, history_from_rows, seed_rows
    from storage import params

    on = dt.date(2026, 6, 1)
    params._in_force.set(history_from_rows((k, v, dt.date(2024, 7, 18)) for k, v in seed_rows()))
    start = time.perf_counter()
    for _ in range(n):
        params.rule_params(on)
    ours = (time.perf_counter() - start) / n * 1e9
    start = time.perf_counter()
    for _ in range(n):
        DEFAULT_HISTORY.at(on)
    base = (time.perf_counter() - start) / n * 1e9
    return ours, base


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=2000)
    parser.add_argument("--postgresql", help="a migrated PostgreSQL database URL to measure too")
    args = parser.parse_args()
    from inspection.params import seed_rows
    from storage import migrate
    from storage.db import Database

    with tempfile.TemporaryDirectory() as tmp:
        urls = [("SQLite", f"sqlite+aiosqlite:///{tmp}/bench.db")]
        if args.postgresql:
            urls.append(("PostgreSQL", args.postgresql))
        for name, url in urls:
            db = Database(url)
            await migrate.upgrade(db)
            await db.dispose()
            # Interleaved rounds, medians: SQLite's commit (fsync) dominates and varies.
            bases, ourss = [], []
            for _ in range(5):
                bases.append(await transactions(url, args.transactions // 5, load=False))
                ourss.append(await transactions(url, args.transactions // 5, load=True))
            base, ours = statistics.median(bases), statistics.median(ourss)
            alone = await load_alone(url, args.transactions)
            rows = len(seed_rows())  # what the migrations seed
            print(
                f"{name}: the load itself (read {rows} rows, reuse the parsed history) "
                f"{alone:.0f} µs"
            )
            print(
                f"{name}: one-read transaction {ours:.0f} µs with the parameters loaded, "
                f"{base:.0f} µs without (baseline): +{ours - base:.0f} µs "
                f"({(ours / base - 1) * 100:+.0f} %)"
            )
    ours_ns, base_ns = lookups(200_000)
    print(
        f"rule_params(on): {ours_ns:.0f} ns a call; the hard-coded history's lookup: "
        f"{base_ns:.0f} ns (baseline)"
    )


if __name__ == "__main__":
    asyncio.run(main())
