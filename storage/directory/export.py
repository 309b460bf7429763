"""A list as .xlsx in the import's own format: an export re-imports unchanged."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.directory.choices import EXPORT_LABELS
from storage.directory.columns import SPECS, TAG_FIELD, Kind, Spec, headers
from storage.directory.lookups import TABLES
from storage.models import Department, Organisation
from storage.spreadsheet import Cell, XlsxWriter


def _export_cell(spec: Spec, name: str, row: Mapping[Any, Any], context: dict[str, Any]) -> Cell:
    """A stored value as the import reads it back: Chinese labels, 是/否, lists with 、."""
    value = row[name]
    if value is None:
        return None
    if name in EXPORT_LABELS:
        return EXPORT_LABELS[name].get(value, value)
    if name == "org_code" and spec.kind is Kind.targets:
        return str(context["orgs"].get(value, value))
    if name == "dept_code":
        return str(context["departments"].get((row["org_code"], value), value))
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, list):
        return "、".join(str(v) for v in value)
    if isinstance(value, dt.date | int | float | str):
        return value
    return str(value)


async def _tag_names(session: AsyncSession, spec: Spec) -> list[str]:
    names: set[str] = set()
    if spec.tags:
        stream = await session.stream(
            select(TABLES[spec.kind].tags).execution_options(yield_per=5000)
        )
        async for partition in stream.partitions():
            for (tags,) in partition:
                names.update(tags or {})
    return sorted(names)


async def _export_context(session: AsyncSession, spec: Spec) -> dict[str, Any]:
    orgs = await session.execute(select(Organisation.code, Organisation.name))
    departments: dict[tuple[str, str], str] = {}
    if spec.kind is Kind.inspectors:
        rows = await session.execute(select(Department.org_code, Department.code, Department.name))
        departments = {(org, code): name for org, code, name in rows}
    return {"orgs": {code: name for code, name in orgs}, "departments": departments}


EXPORT_ORDER = {
    Kind.targets: ("org_code", "key"),
    Kind.inspectors: ("org_code", "certificate_no"),
    Kind.items: ("org_code", "code"),
}


async def export(session: AsyncSession, kind: Kind | str, path: Path | str) -> int:
    """The current list as .xlsx in the import's format (it re-imports unchanged).

    Rows are streamed into a write-only workbook, so 100,000 targets fit in little memory.
    """
    spec = SPECS[Kind(kind)]
    table = TABLES[spec.kind]
    fields = [c.field for c in spec.columns]
    context = await _export_context(session, spec)
    tag_names = await _tag_names(session, spec)
    columns = [getattr(table, f) for f in fields]
    if spec.tags:
        columns.append(table.tags)
    writer = XlsxWriter()
    tag_headers = [spec.header_of(TAG_FIELD + t) for t in tag_names]
    writer.add_sheet(spec.label, [*headers(spec.kind), *tag_headers])
    order = [getattr(table, f) for f in EXPORT_ORDER[spec.kind]]
    stmt = select(*columns).order_by(*order).execution_options(yield_per=2000)
    count = 0
    async for partition in (await session.stream(stmt)).partitions():
        for row in partition:
            mapping = row._mapping
            cells = [_export_cell(spec, f, mapping, context) for f in fields]
            if spec.tags:
                tags = mapping["tags"] or {}
                cells.extend(tags.get(t) for t in tag_names)
            writer.append(cells)
            count += 1
    writer.save(Path(path))
    return count
