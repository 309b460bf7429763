"""Many rows in one statement, for the bulk steps of a draw (inspections, team members, the
teams' cards): 10,000 of each at 100,000 targets.

The values are bound as SQLAlchemy would bind them for our column types (``binder``) and go
straight to the driver: on SQLite its executemany, about three times faster than a Core
insert (whose per-row parameter processing dominates); on PostgreSQL asyncpg's COPY, in the
session's transaction (a Core insert of a draw's 30,000 rows took 1.4 s, COPY a tenth of it).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
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


def postgresql_value(value: Any) -> Any:
    """What COPY takes for our column types: JSON as its text, the rest as it is (aware
    datetimes for UtcDateTime)."""
    if isinstance(value, list | dict):
        return json.dumps(value)
    return value


def binder(session: AsyncSession) -> Any:
    """Apply it to each value of the rows: ``sqlite_value`` on SQLite, ``postgresql_value``
    for asyncpg's COPY, else the identity (a Core insert binds the values itself)."""
    dialect = session.get_bind().dialect
    if dialect.name == "sqlite":
        return sqlite_value
    return postgresql_value if dialect.driver == "asyncpg" else same


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
    session: AsyncSession,
    table: str,
    columns: Sequence[str],
    rows: list[tuple[Any, ...]],
    constants: Mapping[str, Any] | None = None,
) -> None:
    """Insert ``rows`` (values already passed through ``binder``) into ``table``; every row
    also gets ``constants`` (column: value, bound the same way). On SQLite the constants are
    written into the statement as literals that SQLite itself quotes, so that executemany
    binds only what varies (a third of a draw's inspection insert was binding constants)."""
    if not rows:
        return
    constants = dict(constants or {})
    conn = await session.connection()
    names = [*columns, *constants]
    if conn.dialect.name == "sqlite":
        literals: list[str] = []
        if constants:
            quoted = ", ".join("quote(?)" for _ in constants)
            found = await conn.exec_driver_sql(f"SELECT {quoted}", tuple(constants.values()))
            literals = [str(v) for v in found.one()]
        values = ", ".join(["?"] * len(columns) + literals)
        sql = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({values})"
        await conn.exec_driver_sql(sql, rows)
        return
    tail = tuple(constants.values())
    if conn.dialect.driver == "asyncpg":
        # A statement through SQLAlchemy first: it begins the transaction on the driver's
        # connection if nothing has yet, so that COPY runs inside it, not on its own.
        await conn.exec_driver_sql("SELECT 1")
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        records = [r + tail for r in rows] if tail else rows
        await driver.copy_records_to_table(table, records=records, columns=names)
        return
    await session.execute(
        insert(Base.metadata.tables[table]),
        [dict(zip(names, r + tail, strict=True)) for r in rows],
    )
