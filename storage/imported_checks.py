"""Checks made before the bot was adopted, imported from a spreadsheet (Art. 14, 25, 38).

Each row is one check: the target (credit code or permit number), the checking unit, the date,
the kind (random, inter-agency joint, or one of Art. 6's checks outside the draw) and the result
(one of the seven phrases, or a phrase the region added, as in force on the check date). It
becomes a finished inspection (status "done") with its result (recorded on its check date, so
it counts in its quarter), marked by ``ImportedCheck``, so that once a year and the quotas are
right from the first year. Imported checks are never drawn.

Publication (Art. 37: every result of the year is published, who checks publishes): a random
or joint check of the import's year whose result was not published elsewhere (the optional
column 公开情况 is empty) is published here like any other: it goes into a task of its own for
this import and unit, ``I<year>-<org>-<n>``, complete at the import (the clock runs from its
recording here, as for a result recorded late), which the unit publishes with 公示 and is
reminded of. Checks of earlier years (their publication was due before the bot), checks
outside the draw (Art. 6: not random-check results) and results already published elsewhere
(the address or 已公开, kept as typed) stay in the year's import task ``I<year>-<org>``, which
never completes, so nothing asks for them.

Bad rows are reported like the directory's (``storage.directory.ImportReport``), the good ones
imported; re-importing the same file changes nothing. The template's example row (its credit
code marked 【示例】, as the directory templates mark theirs) is skipped, and the summary says so.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from inspection.origins import JOINT_WORDS, OUTSIDE_KIND_WORDS, OUTSIDE_KINDS
from inspection.params import NoParamsInEffect
from inspection.results import PHRASES, ResultCode, parse_result
from inspection.uscc import EXAMPLE_USCC
from storage import audit, facts
from storage.directory.report import ImportReport, StrictImportError
from storage.directory.template import EXAMPLE_MARK
from storage.directory.values import clean_text, parse_date
from storage.models import CheckOutsideDraw, ImportedCheck, Inspection, InspectionResult, Task
from storage.params import rule_params
from storage.repos import Repositories
from storage.results import phrases_for
from storage.spreadsheet import Cell, SheetSpec, normalise_header, open_table, write_xlsx

KIND = "inspections"
RANDOM_WORDS = ("随机抽查", "双随机", "双随机抽查", "随机")
# field -> (header, hint); the first header is the template's.
COLUMNS = {
    "target": (
        "检查对象信用代码或许可证编号",
        "统一社会信用代码或排污许可证编号，须已在检查对象名录中",
    ),
    "org_code": ("检查单位代码", "如 150100"),
    "checked_on": ("检查日期", "如 2024-05-20"),
    "kind": (
        "检查类型",
        "随机抽查、部门联合抽查，或投诉举报、上级转办、部门移送、突发事件、核安全、数据线索",
    ),
    "result": ("检查结果", "第38条七种表述之一，如 未发现问题"),
    "note": ("备注", "可空"),
    "published": (
        "公开情况",
        "已在门户网站或指定平台公开的写网址或「已公开」；空：本年的随机抽查由本系统公开",
    ),
}
ALIASES = {
    "统一社会信用代码": "target",
    "信用代码": "target",
    "许可证编号": "target",
    "检查对象": "target",
    "检查单位": "org_code",
    "单位代码": "org_code",
    "检查时间": "checked_on",
    "类型": "kind",
    "结果": "result",
    "公开": "published",
    "已公开": "published",
    "公开网址": "published",
}
HEADER_MAP = {normalise_header(h): f for f, (h, _) in COLUMNS.items()} | {
    normalise_header(a): f for a, f in ALIASES.items()
}
REQUIRED = ("target", "org_code", "checked_on", "kind", "result")


@dataclass(frozen=True)
class CheckRow:
    target: str
    org_code: str
    checked_on: dt.date
    kind: str  # random / joint / an Art. 6 kind
    result: str
    note: str
    published: str  # where it was published before the import, as typed; "" if not


def published_here(row: CheckRow, today: dt.date) -> bool:
    """Art. 37: a random check of this year not published elsewhere is published here."""
    return (
        row.kind in ("random", "joint") and row.checked_on.year == today.year and not row.published
    )


def origin_of(kind: str) -> str:
    return kind if kind in ("random", "joint") else "targeted"


def parse_kind(text: str) -> str:
    word = clean_text(text)
    if word in RANDOM_WORDS:
        return "random"
    if word in (*JOINT_WORDS, "部门联合抽查", "联合抽查"):
        return "joint"
    kind = OUTSIDE_KIND_WORDS.get(word) or next(
        (k for k, label in OUTSIDE_KINDS.items() if label == word), None
    )
    if kind is None:
        raise ValueError(f"检查类型「{text}」不认识（随机抽查、部门联合抽查或第6条所列类型）")
    return kind


def parse_row(cells: dict[str, Cell], today: dt.date) -> CheckRow:
    """One row, or ValueError(column field, Chinese reason)."""
    for f in REQUIRED:
        if not clean_text(cells.get(f)):
            raise _RowError(f, "不能为空")
    try:
        checked_on = parse_date(cells.get("checked_on"), today=today)
    except ValueError as exc:
        raise _RowError("checked_on", str(exc)) from None
    assert checked_on is not None
    try:
        kind = parse_kind(str(cells.get("kind")))
    except ValueError as exc:
        raise _RowError("kind", str(exc)) from None
    try:
        extra = rule_params(checked_on).extra_result_phrases
    except NoParamsInEffect:
        extra = {}  # before any configured rules: the seven phrases only
    try:
        result = str(parse_result(str(cells.get("result")), extra))
    except ValueError as exc:
        raise _RowError("result", str(exc).splitlines()[0]) from None
    return CheckRow(
        target=clean_text(cells.get("target")),
        org_code=clean_text(cells.get("org_code")),
        checked_on=checked_on,
        kind=kind,
        result=result,
        note=str(cells.get("note") or "").strip(),  # as typed
        published=str(cells.get("published") or "").strip(),  # as typed
    )


MAX_SOURCE_FILE = 200  # ImportedCheck.source_file: the file name, kept whole


class _RowError(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field


async def import_checks(
    session: AsyncSession,
    path: Path,
    *,
    actor: str,
    now: dt.datetime,
    today: dt.date,
    tz: dt.tzinfo,
    strict: bool = False,
) -> ImportReport:
    """Art. 14, 25, 37: earlier checks into the record, row by row; bad rows reported."""
    report = ImportReport(KIND, path.name, strict=strict)
    repos = Repositories(session)
    tasks: dict[tuple[str, int, bool], Task] = {}
    recorded: list[int] = []
    with open_table(path, HEADER_MAP) as table:
        report.unknown_headers = table.unknown_headers
        missing = [COLUMNS[f][0] for f in REQUIRED if f not in table.present]
        if missing:
            report.reject(table.header_row, "、".join(missing), "缺少必填列")
        rows: Iterator[tuple[int, dict[str, Cell]]] = iter(()) if missing else table.rows
        for number, cells in rows:
            header = table.headers
            if clean_text(cells.get("target")).startswith(EXAMPLE_MARK):
                report.examples_skipped.append(number)  # the template's example row
                continue
            try:
                row = parse_row(cells, today)
            except _RowError as exc:
                report.reject(number, header.get(exc.field, exc.field), str(exc))
                continue
            target = await repos.targets.by_code(row.target)
            if target is None:
                report.reject(number, header["target"], "检查对象名录中没有该对象", row.target)
                continue
            if await repos.orgs.get(row.org_code) is None:
                report.reject(number, header["org_code"], "单位代码不存在", row.org_code)
                continue
            if await _already(session, target.key, row):
                report.unchanged += 1
                continue
            here = published_here(row, today)
            task = tasks.get((row.org_code, row.checked_on.year, here))
            if task is None:
                task = await _import_task(
                    session, repos, row.org_code, row.checked_on.year, actor, now, publish=here
                )
                tasks[(row.org_code, row.checked_on.year, here)] = task
            inspection_id = await _record(
                session, repos, task, target.id, target.key, target.tier, row, now, tz, actor
            )
            session.add(
                ImportedCheck(
                    inspection_id=inspection_id,
                    kind=row.kind,
                    note=row.note,
                    published_elsewhere=row.published,
                    source_file=path.name,  # at most MAX_SOURCE_FILE (the CLI says)
                    source_row=number,
                    imported_by=actor,
                    imported_at=now,
                )
            )
            report.added += 1
            recorded.append(inspection_id)
    if strict and report.rejections:
        raise StrictImportError(report)
    await facts.refresh(session, recorded)  # they count in the statistics table (Art. 43)
    to_publish = {t.code: t.org_code for (_, _, here), t in tasks.items() if here}
    for code, org in to_publish.items():
        report.notes.append(
            f"Results of this year to publish (Art. 37): task {code}, by unit {org} (公示 {code})."
        )
    await audit.append(
        session,
        at=now,
        actor=actor,
        action="inspections.import",
        subject=f"file:{path.name}",
        payload={
            "added": report.added,
            "unchanged": report.unchanged,
            "rejected": report.rejected,
            "to_publish": sorted(to_publish),
        },
    )
    return report


async def _already(session: AsyncSession, key: str, row: CheckRow) -> bool:
    found = await session.execute(
        select(ImportedCheck.inspection_id)
        .join(Inspection, Inspection.id == ImportedCheck.inspection_id)
        .join(Task, Task.id == Inspection.task_id)
        .where(
            Inspection.target_key == key,
            Inspection.check_start == row.checked_on,
            ImportedCheck.kind == row.kind,
            Task.org_code == row.org_code,
        )
        .limit(1)
    )
    return found.first() is not None


async def _import_task(
    session: AsyncSession,
    repos: Repositories,
    org: str,
    year: int,
    actor: str,
    now: dt.datetime,
    *,
    publish: bool,
) -> Task:
    """The year's import task ``I<year>-<org>`` (never completes), or with ``publish`` a new
    task ``I<year>-<org>-<n>`` of this import's results to publish, complete now (Art. 37)."""
    code = f"I{year}-{org}"
    if publish:
        n = await repos.sequences.next(f"import:{year}:{org}")
        code = f"{code}-{n:02d}"
    else:
        found = (await session.execute(select(Task).where(Task.code == code))).scalar_one_or_none()
        if found is not None:
            return found
    task = Task(
        code=code,
        year=year,
        name=f"{year}年启用前的检查（导入" + ("，待公开）" if publish else "）"),
        org_code=org,
        scope_orgs=[org],
        quotas={},
        item_codes=[],
        focus="",
        check_start=dt.date(year, 1, 1),
        check_end=dt.date(year, 12, 31),
        team_size=0,
        status="imported",
        created_by=actor,
        created_at=now,
        completed_at=now if publish else None,
    )
    session.add(task)
    await session.flush()
    return task


async def _record(
    session: AsyncSession,
    repos: Repositories,
    task: Task,
    target_id: int,
    target_key: str,
    tier: str,
    row: CheckRow,
    now: dt.datetime,
    tz: dt.tzinfo,
    actor: str,
) -> int:
    number = await repos.sequences.next("inspection")
    inspection = Inspection(
        number=number,
        task_id=task.id,
        target_id=target_id,
        target_key=target_key,
        tier=tier,
        method="onsite",
        origin=origin_of(row.kind),
        item_codes=[],
        joined_tasks=[],
        check_start=row.checked_on,
        check_end=row.checked_on,
        status="done",
        result_code=row.result,
        completed_at=now,
        created_at=now,
    )
    session.add(inspection)
    await session.flush()
    # Its result, recorded on the check date (noon, local): it counts in that quarter and is
    # published with its task like any other.
    session.add(
        InspectionResult(
            inspection_id=inspection.id,
            task_id=task.id,
            state="recorded",
            code=row.result,
            phrase=_phrase(row.result, row.checked_on),  # at most 100 (check_extra)
            userid=actor,
            name="导入",
            channel="import",
            at=dt.datetime.combine(row.checked_on, dt.time(12), tz),
            case_filing=row.result == ResultCode.case_filed.value,
        )
    )
    if inspection.origin == "targeted":
        session.add(
            CheckOutsideDraw(
                inspection_id=inspection.id,
                kind=row.kind,
                reason=row.note or "启用前的检查（导入）",
                registered_by="import",
                registered_at=now,
            )
        )
    return inspection.id


def _phrase(code: str, on: dt.date) -> str:
    try:
        return phrases_for(on).get(code, code)
    except NoParamsInEffect:  # before any configured rules: the seven phrases only
        return {c.value: p for c, p in PHRASES.items()}.get(code, code)


def write_template(path: Path) -> None:
    """The blank list: headers with their hints in brackets, one example row, whose credit code
    (that of the targets template's example) starts with EXAMPLE_MARK so the import skips it."""
    headers = [f"{h}（{hint}）" for h, hint in COLUMNS.values()]
    target = EXAMPLE_MARK + EXAMPLE_USCC
    example = [target, "150100", "2024-05-20", "随机抽查", "未发现问题", "", ""]
    write_xlsx(path, [SheetSpec("检查记录", headers, [example], tuple(30 for _ in headers))])
