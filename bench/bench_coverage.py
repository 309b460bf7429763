"""Quarterly coverage (Art. 25) at scale: ``storage.quotas.coverage`` per league/city, which dates
a random check by ``storage.facts.check_time`` (an inter-agency joint check by its own date,
Art. 7: an outer join on ``joint_check`` and a coalesce), against the baseline in the same run:
the same coverage with the checks dated by their result's recording alone (the query as it was
before joint checks carried their date). Both give the same figures on this record (it has no
joint checks): checked.

    .venv/bin/python bench/bench_coverage.py [--inspections 200000] [--targets 100000]
    .venv/bin/python bench/bench_coverage.py --keep /tmp/bench.db   # reuse a generated record

The record is ``bench_reports``' (``storage.synthetic_checks``). Shown: median (best–worst) wall
time over every league/city of one quarter, and the CPU time of the process, with the load.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def recorded_only(quarter: Any) -> Any:
    """The baseline: random checks dated by their result's recording alone."""
    from sqlalchemy import select

    from storage.models import Inspection, InspectionResult
    from storage.quotas import RANDOM_ORIGINS
    from storage.results import LIVE, RECORDED

    return (
        select(Inspection.target_key)
        .join(InspectionResult, InspectionResult.inspection_id == Inspection.id)
        .where(
            Inspection.origin.in_(RANDOM_ORIGINS),
            Inspection.status.in_(LIVE),
            InspectionResult.state == RECORDED,
            InspectionResult.at >= quarter.start,
            InspectionResult.at < quarter.end,
        )
        .distinct()
    )


async def measure(db: Any, repeat: int, quarter_no: int) -> None:
    from zoneinfo import ZoneInfo

    from sqlalchemy import select

    from storage import quotas
    from storage.models import Organisation
    from storage.repos import Repositories

    tz = ZoneInfo("Asia/Shanghai")
    quarter = quotas.Quarter.of(2026, quarter_no, tz)
    async with db.transaction() as s:
        cities = list(
            await s.scalars(select(Organisation.code).where(Organisation.level == "city"))
        )
        trees = {c: await Repositories(s).orgs.subtree(c) for c in cities}
    spent: dict[str, list[float]] = {"new": [], "old": []}
    cpu: dict[str, float] = {"new": 0.0, "old": 0.0}
    original = quotas.random_checks
    new: dict[str, Any] = {}
    for _ in range(repeat):
        for name, query in (("new", original), ("old", recorded_only)):
            quotas.random_checks = query  # type: ignore[assignment]
            try:
                for city in cities:
                    async with db.transaction() as s:
                        wall, clock = time.perf_counter(), time.process_time()
                        found = await quotas.coverage(s, trees[city], quarter)
                        spent[name].append(time.perf_counter() - wall)
                        cpu[name] += time.process_time() - clock
                        if name == "new":
                            new[city] = found
                        else:
                            assert found == new[city], f"{city}: the two datings differ"
            finally:
                quotas.random_checks = original
    n = len(spent["new"])
    for name, label in (
        ("new", "coverage, checks by check_time"),
        ("old", "baseline, by recording"),
    ):
        s = spent[name]
        print(
            f"{label:32} {statistics.median(s):.3f} s ({min(s):.3f}–{max(s):.3f}) wall per city, "
            f"{cpu[name] / n:.3f} s CPU per city"
        )
    print(f"{quarter.label}, {len(cities)} league/cities x {repeat}; load {os.getloadavg()}")


async def main() -> None:
    from bench.bench_reports import populate
    from storage import migrate
    from storage.db import Database

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--inspections", type=int, default=200_000)
    parser.add_argument("--targets", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quarter", type=int, default=2, choices=[1, 2, 3, 4])
    parser.add_argument("--keep", help="keep the generated SQLite database here and reuse it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or f"{tmp}/bench.db"
        reuse = Path(path).exists()
        db = Database(f"sqlite+aiosqlite:///{path}")
        try:
            await migrate.upgrade(db)
            if not reuse:
                t = time.perf_counter()
                await populate(db, args.targets, args.inspections)
                print(f"generated in {time.perf_counter() - t:.0f} s")
            await measure(db, args.repeat, args.quarter)
        finally:
            await db.dispose()


if __name__ == "__main__":
    asyncio.run(main())
