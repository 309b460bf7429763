"""Many rows in one statement, for the bulk steps of a draw (inspections, team members, the
teams' cards): 10,000 of each at 100,000 targets.

On SQLite the values are bound as SQLAlchemy would bind them for our column types and go
through the driver's executemany, about three times faster than a Core insert (whose
per-row parameter processing dominates); elsewhere it is a Core insert (executemany).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Base


def same(value: Any) -> Any:
    return value


def sqlite_value(value: Any) -> Any:
    """What SQLAlchemy would bind on SQLite for our column types (UtcDateTime: naive UTC;
    JSON: ``json.dumps`` with its defaults, the engine's serializer)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, dt.datetime):
        naive = value.astimezone(dt.UTC).replace(tzinfo=None)
        return naive.isoformat(sep=" ", timespec="microseconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list | dict):
        return json.dumps(value)
    return value


def binder(session: AsyncSession) -> Any:
    """``sqlite_value`` on SQLite, else the identity: apply it to each value of the rows."""
    return sqlite_value if session.get_bind().dialect.name == "sqlite" else same


async def sqlite_rows(
    session: AsyncSession, sql: str, params: Sequence[Any]
) -> list[tuple[Any, ...]]:
    """Run a SELECT on SQLite's driver in this session's transaction: plain tuples, without
    SQLAlchemy's result rows (a draw reads 10,000 of them)."""
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    rows = await driver.execute_fetchall(sql, params)
    return list(rows)


async def insert_rows(
    session: AsyncSession, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    """Insert ``rows`` (values already passed through ``binder``) into ``table``."""
    if not rows:
        return
    conn = await session.connection()
    if conn.dialect.name == "sqlite":
        marks = ", ".join("?" * len(columns))
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
        await conn.exec_driver_sql(sql, rows)
        return
    await session.execute(
        insert(Base.metadata.tables[table]),
        [dict(zip(columns, r, strict=True)) for r in rows],
    )
