"""Import benchmark: 100,000 generated targets into a fresh SQLite database.

    .venv/bin/python bench/bench_import.py [--rows N] [--keep DIR] [--skip openpyxl,export]

Measures, each phase in its own process so that peak memory belongs to that phase alone:
reading the .xlsx with openpyxl (read-only) and with python-calamine; the full import
(time, peak RSS); a re-import of the same file (must change nothing); lookups by USCC and by
name at that size; the export. Targets from issue 3: import < 20 s and < 500 MB, lookups
< 50 ms. Generating the file and the openpyxl read take a minute or more each; ``--keep DIR``
reuses a file generated before, ``--skip`` leaves phases out. The machine has 2 cores shared
with other work: run it on an idle machine, and compare CPU seconds as well as wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NOW = dt.datetime(2025, 3, 1, 2, 0, tzinfo=dt.UTC)


def peak_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generate(path: Path, rows: int) -> dict[str, Any]:
    from storage.directory.columns import Kind
    from storage.synthetic import target_rows, write_rows

    start = time.perf_counter()
    write_rows(Kind.targets, path, target_rows(random.Random(1), rows))
    return {"seconds": time.perf_counter() - start, "mb": path.stat().st_size / 1e6}


def read(path: Path, engine: str) -> dict[str, Any]:
    from storage.spreadsheet import Engine, iter_raw_rows

    start = time.perf_counter()
    count = sum(1 for _ in iter_raw_rows(path, engine=cast(Engine, engine)))
    return {"seconds": time.perf_counter() - start, "rows": count}


async def _import(path: Path, db_path: Path, migrate_first: bool) -> dict[str, Any]:
    from storage import migrate
    from storage.db import Database
    from storage.directory.importer import import_rows

    db = Database(f"sqlite+aiosqlite:///{db_path}")
    if migrate_first:
        await migrate.upgrade(db)
    start, cpu = time.perf_counter(), time.process_time()
    async with db.transaction() as session:
        report = await import_rows(session, "targets", path, actor="bench", now=NOW, strict=False)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    await db.dispose()
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "added": report.added,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "rejected": report.rejected,
        "first_rejections": [r.reason for r in report.rejections[:3]],
    }


async def _lookup(db_path: Path) -> dict[str, Any]:
    from sqlalchemy import func, select

    from storage.db import Database
    from storage.directory.lookups import find_targets
    from storage.models import Target

    db = Database(f"sqlite+aiosqlite:///{db_path}")
    out: dict[str, Any] = {}
    async with db.transaction() as session:
        total = (await session.execute(select(func.count()).select_from(Target))).scalar_one()
        sample = (
            await session.execute(select(Target.uscc, Target.name).offset(total // 2).limit(1))
        ).one()
        queries = {
            "uscc": sample.uscc,
            "exact_name": sample.name,
            "name_part": sample.name[3:9],
            "no_match": "不存在的单位名称",
        }
        for label, query in queries.items():
            await find_targets(session, query)  # warm the page cache
            times = []
            for _ in range(5):
                start = time.perf_counter()
                found = await find_targets(session, query)
                times.append(time.perf_counter() - start)
            out[label] = {"query": query, "ms": 1000 * min(times), "found": len(found)}
    await db.dispose()
    return out


async def _export(db_path: Path, out: Path) -> dict[str, Any]:
    from storage.db import Database
    from storage.directory.export import export

    db = Database(f"sqlite+aiosqlite:///{db_path}")
    start = time.perf_counter()
    async with db.transaction() as session:
        rows = await export(session, "targets", out)
    seconds = time.perf_counter() - start
    await db.dispose()
    return {"seconds": seconds, "rows": rows, "mb": out.stat().st_size / 1e6}


def phase(args: argparse.Namespace) -> None:
    """Run one phase in this process and print its figures as JSON."""
    if args.tracemalloc:
        tracemalloc.start()
    path, db_path = Path(args.file), Path(args.db)
    result: dict[str, Any]
    if args.phase == "generate":
        result = generate(path, args.rows)
    elif args.phase in ("openpyxl", "calamine"):
        result = read(path, args.phase)
    elif args.phase == "import":
        result = asyncio.run(_import(path, db_path, migrate_first=True))
    elif args.phase == "reimport":
        result = asyncio.run(_import(path, db_path, migrate_first=False))
    elif args.phase == "export":
        result = asyncio.run(_export(db_path, path.with_name("export.xlsx")))
    else:
        result = asyncio.run(_lookup(db_path))
    result["peak_rss_mb"] = peak_rss_mb()
    if args.tracemalloc:
        result["tracemalloc_peak_mb"] = tracemalloc.get_traced_memory()[1] / 1e6
    print(json.dumps(result, ensure_ascii=False))


PHASES = ("generate", "openpyxl", "calamine", "import", "reimport", "lookup", "export")


def run(name: str, args: argparse.Namespace, file: Path, db: Path) -> dict[str, Any]:
    command = [sys.executable, __file__, "--phase", name, "--rows", str(args.rows)]
    command += ["--file", str(file), "--db", str(db)]
    if args.tracemalloc and name in ("import", "reimport"):
        command.append("--tracemalloc")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"phase {name} failed:\n{done.stderr}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--keep", help="directory to keep the file and database in")
    parser.add_argument("--tracemalloc", action="store_true", help="also trace Python memory")
    parser.add_argument(
        "--skip",
        default="",
        help="comma-separated phases to skip, e.g. openpyxl,export (the slow ones)",
    )
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        phase(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        file, db = work / f"targets-{args.rows}.xlsx", work / "bench.db"
        for stale in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
            stale.unlink(missing_ok=True)
        figures: dict[str, dict[str, Any]] = {}
        skip = set(filter(None, args.skip.split(",")))
        for name in PHASES:
            if name in skip:
                continue
            if name == "generate" and args.keep and file.exists():
                figures[name] = {"seconds": 0.0, "mb": file.stat().st_size / 1e6, "reused": True}
            else:
                figures[name] = run(name, args, file, db)
            print(f"{name:9s} {json.dumps(figures[name], ensure_ascii=False)}", flush=True)
        report(args.rows, figures)


def report(rows: int, f: dict[str, dict[str, Any]]) -> None:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\n{rows} target rows, {f['generate']['mb']:.1f} MB .xlsx; load average {load}")
    if "openpyxl" in f:
        print(f"read, openpyxl read-only : {f['openpyxl']['seconds']:6.2f} s")
    if "calamine" in f:
        cal = f["calamine"]["seconds"]
        ratio = ""
        if "openpyxl" in f:
            ratio = f"   (openpyxl / calamine = {f['openpyxl']['seconds'] / cal:.1f}x)"
        print(f"read, python-calamine    : {cal:6.2f} s{ratio}")
    if "import" in f:
        imp = f["import"]
        met = imp["seconds"] < 20 and imp["peak_rss_mb"] < 500
        print(
            f"import (fresh SQLite)    : {imp['seconds']:6.2f} s (CPU {imp['cpu_seconds']:.1f} s)"
            f"   peak RSS {imp['peak_rss_mb']:.0f} MB   added {imp['added']},"
            f" rejected {imp['rejected']}   [< 20 s, < 500 MB: {'met' if met else 'MISSED'}]"
        )
    if "reimport" in f:
        again = f["reimport"]
        changed = again["added"] + again["updated"]
        print(
            f"re-import (same file)    : {again['seconds']:6.2f} s (CPU {again['cpu_seconds']:.1f}"
            f" s)   peak RSS {again['peak_rss_mb']:.0f} MB   unchanged {again['unchanged']},"
            f" changed {changed}   [{'nothing changed' if changed == 0 else 'CHANGED'}]"
        )
    if "export" in f:
        exp = f["export"]
        print(
            f"export (write-only xlsx) : {exp['seconds']:6.2f} s"
            f"   peak RSS {exp['peak_rss_mb']:.0f} MB   {exp['rows']} rows"
        )
    for label, figures in f.get("lookup", {}).items():
        if isinstance(figures, dict):
            met = "met" if figures["ms"] < 50 else "MISSED"
            print(
                f"lookup {label:17s} : {figures['ms']:6.1f} ms  ({figures['found']} found)"
                f"   [{met} < 50 ms]"
            )


if __name__ == "__main__":
    main()
