"""Directory rows for draw tests, inserted directly (not through the spreadsheet import)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncSession

from inspection.taskspec import spec_from_fields
from inspection.uscc import make_uscc
from storage.models import CheckItem, Inspector, Organisation, Target, Task
from storage.tasks import create_task

NOW = dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.UTC)
CITY = "150100"  # 呼和浩特市
COUNTY = "150102"  # 新城区
COUNTY2 = "150103"  # 回民区


def uscc(n: int, org: str = COUNTY) -> str:
    return make_uscc(f"91{org}MA{n:07d}")


async def add_targets(
    session: AsyncSession,
    n: int,
    *,
    org: str = COUNTY,
    tier: str = "general",
    start: int = 0,
    **fields: Any,
) -> list[str]:
    """``n`` targets; keys are their USCC (valid check characters)."""
    rows = []
    for i in range(start, start + n):
        key = uscc(i, org)
        rows.append(
            {
                "key": key,
                "name": fields.get("name", f"测试企业{org}-{i}"),
                "uscc": key,
                "address": f"{org}测试路{i}号",
                "org_code": org,
                "tier": tier,
                "updated_at": NOW,
                **{k: v for k, v in fields.items() if k != "name"},
            }
        )
    if rows:
        await session.execute(insert(Target), rows)
    return [r["key"] for r in rows]


async def add_inspectors(
    session: AsyncSession,
    n: int,
    *,
    org: str = COUNTY,
    prefix: str = "C",
    start: int = 0,
    **fields: Any,
) -> list[str]:
    """``n`` inspectors with userids ``<prefix lower>u<i>``; returns their certificate numbers."""
    rows = []
    for i in range(start, start + n):
        rows.append(
            {
                "certificate_no": f"{prefix}{org}{i:04d}",
                "name": f"检查员{prefix}{i}",
                "org_code": org,
                "userid": f"{prefix.lower()}u{org}{i}",
                "updated_at": NOW,
                **fields,
            }
        )
    if rows:
        await session.execute(insert(Inspector), rows)
    return [r["certificate_no"] for r in rows]


async def add_item(session: AsyncSession, code: str, name: str, org: str = CITY) -> None:
    session.add(
        CheckItem(org_code=org, code=code, name=name, check_type="undirected", method="onsite")
    )
    await session.flush()


async def enable_group_chats(session: AsyncSession, org: str = CITY) -> None:
    await session.execute(
        update(Organisation).where(Organisation.code == org).values(group_chats=True)
    )


class FixedEntropy:
    """Deterministic 'randomness' for tests: 0x00.., then 0x01.., ..."""

    def __init__(self) -> None:
        self.calls = 0

    def token_bytes(self, n: int) -> bytes:
        value = bytes([self.calls % 256]) * n
        self.calls += 1
        return value


async def make_task(session: AsyncSession, org: str = CITY, **fields: str) -> Task:
    """A task from chat-syntax fields (defaults: the whole city, December, 10 % general)."""
    values = {"名称": "测试任务", "检查期": "2026-12-01~2026-12-31", "一般": "10%", **fields}
    return await create_task(session, spec_from_fields(values), org_code=org, actor="test", now=NOW)
