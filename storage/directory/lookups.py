"""Reading the directory: the table of each list, the indexes an import checks rows against,
and `查询 <名称或信用代码>`."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from inspection.uscc import normalise_uscc
from storage.directory.columns import Kind
from storage.directory.rows import OrgIndex, TargetIndex
from storage.directory.values import clean_text
from storage.models import CheckItem, Inspector, Organisation, Target

# The ORM class each list is stored in.
TABLES: dict[Kind, Any] = {Kind.targets: Target, Kind.inspectors: Inspector, Kind.items: CheckItem}


async def load_orgs(session: AsyncSession) -> OrgIndex:
    rows = await session.execute(
        select(Organisation.code, Organisation.name, Organisation.parent_code)
    )
    return OrgIndex.build((code, name, parent) for code, name, parent in rows)


async def load_target_index(session: AsyncSession) -> TargetIndex:
    by_key: set[str] = set()
    by_other: dict[str, list[str]] = {}
    rows = await session.stream(
        select(Target.key, Target.uscc, Target.name).execution_options(yield_per=5000)
    )
    async for partition in rows.partitions():
        for key, uscc, name in partition:
            by_key.add(key)
            for other in (uscc, name):
                if other:
                    by_other.setdefault(other, []).append(key)
    return TargetIndex(by_key, by_other)


async def find_targets(
    session: AsyncSession, query: str, *, limit: int = 10, orgs: Collection[str] | None = None
) -> list[Target]:
    """`查询 <名称或信用代码>`: exact key or USCC first, else exact name, else name contains;
    only targets of ``orgs`` when given (the asker's subtree)."""
    text = clean_text(query)
    if not text:
        return []
    code = normalise_uscc(text)
    base = select(Target).limit(limit)
    if orgs is not None:
        base = base.where(Target.org_code.in_(list(orgs)))
    stmt = base.where(or_(Target.key == code, Target.uscc == code))
    found = list((await session.execute(stmt)).scalars())
    if found:
        return found
    stmt = base.where(Target.name == text).order_by(Target.key)
    found = list((await session.execute(stmt)).scalars())
    if found:
        return found
    stmt = base.where(Target.name.contains(text, autoescape=True)).order_by(Target.name, Target.key)
    return list((await session.execute(stmt)).scalars())
