"""一单两库 import, history and export (Art. 8-18), with real spreadsheets written by the tests.

Runs on SQLite, and on PostgreSQL too when SHUANGSUIJI_TEST_PG_URL is set (tests/conftest.py).
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from inspection.quotas import Tier
from inspection.uscc import make_uscc
from storage import report
from storage.db import Database
from storage.directory import (
    ImportReport,
    Kind,
    StrictImportError,
    export,
    find_targets,
    headers,
    import_rows,
    write_template,
)
from storage.models import AuditEntry, Department, DirectoryHistory, Inspector, Target
from storage.spreadsheet import formula_cells
from storage.synthetic import import_directory, write_directory
from storage.synthetic_checks import generate
from tests.factories import add_inspectors
from tests.support.directory import inspector, item, run_import, write
from tests.support.facts import assert_facts_kept

NOW = dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.UTC)
TODAY = dt.date(2026, 11, 30)

USCC_A = make_uscc("91150102MA0N00001")
USCC_B = make_uscc("91150203MA0N00002")
PERMIT_A = USCC_A + "001P"


def target(**overrides: Any) -> dict[str, Any]:
    """A valid target row, header -> cell."""
    row: dict[str, Any] = {
        "单位名称": "呼和浩特市示例化工有限公司",
        "统一社会信用代码": USCC_A,
        "排污许可证编号": PERMIT_A,
        "法定代表人": "张三",
        "主体类型": "有限责任公司",
        "登记机关": "新城区市场监督管理局",
        "成立日期": "2015-06-01",
        "所在旗县区": "150102",
        "监管类别": "重点",
        "行业": "化学原料和化学制品制造业",
        "污染物类别": "废气、废水",
        "规模": "中型",
        "生产周期": "全年",
        "监管类型": "排污许可重点管理",
        "绩效分级": "B",
        "正面清单": "否",
        "建设项目状态": "已投产",
        "审批级别": "自治区",
        "开工日期": "2016-03-01",
        "投产日期": "2017-09-01",
        "经营状态": "在营",
        "地址": "呼和浩特市新城区示例路1号",
    }
    row.update(overrides)
    return row


async def targets(db: Database) -> dict[str, Target]:
    async with db.transaction() as session:
        rows = await session.execute(select(Target))
        return {t.key: t for t in rows.scalars()}


async def history(db: Database) -> list[tuple[str, str, str, Any, Any]]:
    async with db.transaction() as session:
        rows = await session.execute(select(DirectoryHistory).order_by(DirectoryHistory.id))
        return [(h.kind, h.subject_key, h.field, h.before, h.after) for h in rows.scalars()]


def reasons(report: ImportReport) -> list[tuple[int, str, str]]:
    return [(r.row, r.column, r.reason) for r in report.rejections]


# --- formats --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("suffix", "encoding"),
    [(".xlsx", ""), (".csv", "utf-8"), (".csv", "utf-8-sig"), (".csv", "gb18030")],
)
async def test_art11_targets_import_from_xlsx_and_csv_in_each_encoding(
    db: Database, tmp_path: Path, suffix: str, encoding: str
) -> None:
    rows = [
        target(),
        target(
            单位名称="包头市某某稀土有限公司",
            统一社会信用代码=USCC_B,
            排污许可证编号="",
            所在旗县区="昆都仑区分局",
            监管类别="一般",
        ),
    ]
    report = await run_import(db, "targets", write(tmp_path / f"t{suffix}", rows, encoding))
    assert (report.added, report.rejected) == (2, 0), report.to_text()
    stored = await targets(db)
    a, b = stored[PERMIT_A], stored[USCC_B]
    assert (a.name, a.uscc, a.permit_no, a.org_code, a.tier) == (
        "呼和浩特市示例化工有限公司",
        USCC_A,
        PERMIT_A,
        "150102",
        "key",
    )
    assert a.pollutant_types == ["废气", "废水"]
    assert a.established_on == dt.date(2015, 6, 1)
    assert (a.performance_grade, a.on_positive_list, a.approval_level) == ("B", False, "region")
    assert a.operation_started_on == dt.date(2017, 9, 1)
    assert (b.org_code, b.tier, b.permit_no, b.status) == ("150203", "general", None, "operating")


async def test_art11_dates_as_excel_serials_and_date_cells_are_read(
    db: Database, tmp_path: Path
) -> None:
    rows = [
        target(成立日期=42156),
        target(成立日期=dt.datetime(2015, 6, 1), 统一社会信用代码=USCC_B, 排污许可证编号=""),
        target(成立日期="2015年6月1日", 排污许可证编号=USCC_A + "002P"),
        target(成立日期="2015/6/1", 排污许可证编号=USCC_A + "003P"),
    ]
    report = await run_import(db, "targets", write(tmp_path / "t.xlsx", rows))
    assert report.added == 4, report.to_text()
    assert {t.established_on for t in (await targets(db)).values()} == {dt.date(2015, 6, 1)}


# --- validation, each rule ------------------------------------------------------------------


async def test_art11_uscc_check_digit_is_verified(db: Database, tmp_path: Path) -> None:
    wrong = USCC_A[:17] + ("0" if USCC_A[17] != "0" else "1")
    rows = [target(), target(统一社会信用代码=wrong, 排污许可证编号="")]
    report = await run_import(db, "targets", write(tmp_path / "t.xlsx", rows))
    assert report.added == 1
    [(row, column, reason)] = reasons(report)
    assert (row, column) == (3, "统一社会信用代码")
    assert "校验位" in reason and wrong in reason


async def test_art11_uscc_with_n_and_y_prefixes_is_accepted(db: Database, tmp_path: Path) -> None:
    # N: 农业农村 (farmers' co-operatives); Y: 其他; python-stdnum refuses both.
    coop, other = make_uscc("N2150102MA0N00003"), make_uscc("Y1150102MA0N00004")
    rows = [
        target(统一社会信用代码=coop, 排污许可证编号="", 单位名称="新城区某某农民专业合作社"),
        target(统一社会信用代码=other, 排污许可证编号="", 单位名称="某某养殖场"),
    ]
    report = await run_import(db, "targets", write(tmp_path / "t.xlsx", rows))
    assert report.added == 2, report.to_text()
    assert set(await targets(db)) == {coop, other}


@pytest.mark.parametrize(
    ("header", "value"), [("单位名称", ""), ("监管类别", None), ("所在旗县区", "  ")]
)
async def test_art11_missing_required_field_is_rejected(
    db: Database, tmp_path: Path, header: str, value: Any
) -> None:
    report = await run_import(
        db, "targets", write(tmp_path / "t.xlsx", [target(**{header: value})])
    )
    assert reasons(report) == [(2, header, "必填项为空")]
    assert report.added == 0


async def test_art11_missing_required_column_rejects_the_file(db: Database, tmp_path: Path) -> None:
    row = target()
    del row["监管类别"]
    report = await run_import(db, "targets", write(tmp_path / "t.xlsx", [row]))
    assert reasons(report) == [(1, "监管类别", "缺少必填列")]
    assert await targets(db) == {}


@pytest.mark.parametrize(
    ("header", "value", "reason"),
    [
        ("成立日期", "2023-02-30", "不存在"),
        ("成立日期", "2026-12-01", "晚于今天"),
        ("开工日期", "2027-01-01", "晚于今天"),
        ("投产日期", "2016-01-01", "早于开工日期"),
        ("监管类别", "很重要", "不是有效的监管类别，应为 特殊/重点/一般"),
        ("经营状态", "倒闭", "不是有效的经营状态"),
        ("绩效分级", "E", "A/B/B-/C/D"),
        ("正面清单", "也许", "应填 是 或 否"),
        ("所在旗县区", "150199", "不是已知的机构"),
        ("排污许可证编号", "许可证", "格式不正确"),
    ],
)
async def test_art11_bad_cells_are_refused_with_a_chinese_reason(
    db: Database, tmp_path: Path, header: str, value: Any, reason: str
) -> None:
    report = await run_import(
        db, "targets", write(tmp_path / "t.xlsx", [target(**{header: value})])
    )
    [(row, column, said)] = reasons(report)
    assert (row, column) == (2, header)
    assert reason in said


async def test_art12_tiers_and_tags_are_given_in_chinese(db: Database, tmp_path: Path) -> None:
    rows = [
        target(
            监管类别="特殊", 经营状态="停产", 绩效分级="A级", 正面清单="是", 审批级别="生态环境部"
        ),
        target(
            排污许可证编号=USCC_A + "002P", 监管类别="一般监管对象", 经营状态="注销", 绩效分级=""
        ),
    ]
    report = await run_import(db, "targets", write(tmp_path / "t.xlsx", rows))
    assert report.added == 2, report.to_text()
    stored = await targets(db)
    first, second = stored[PERMIT_A], stored[USCC_A + "002P"]
    assert (first.tier, first.status, first.performance_grade) == ("special", "suspended", "A")
    assert (first.on_positive_list, first.approval_level) == (True, "ministry")
    assert (second.tier, second.status, second.performance_grade) == (
        "general",
        "deregistered",
        None,
    )


async def test_art11_full_width_characters_and_stray_whitespace_are_normalised(
    db: Database, tmp_path: Path
) -> None:
    wide = "".join(chr(ord(c) + 0xFEE0) if c.isalnum() else c for c in USCC_A)
    rows = [
        target(
            单位名称="  呼和浩特市　示例化工（集团）有限公司 ",
            统一社会信用代码=f" {wide[:6]} {wide[6:]} ",
            排污许可证编号="",
            法定代表人="张  三",
            所在旗县区="１５０１０２",
            监管类别=" 重点 ",
        )
    ]
    report = await run_import(db, "targets", write(tmp_path / "t.xlsx", rows))
    assert report.added == 1, report.to_text()
    stored = (await targets(db))[USCC_A]
    assert (stored.name, stored.legal_rep, stored.org_code, stored.tier) == (
        "呼和浩特市示例化工(集团)有限公司",
        "张三",
        "150102",
        "key",
    )


async def test_art11_same_key_twice_in_one_file_is_rejected(db: Database, tmp_path: Path) -> None:
    rows = [
        target(),
        target(单位名称="另一个名字"),
        target(排污许可证编号="", 统一社会信用代码=USCC_B),
    ]
    report = await run_import(db, "targets", write(tmp_path / "t.xlsx", rows))
    assert (report.added, report.rejected) == (2, 1)
    [(row, column, reason)] = reasons(report)
    assert (row, column) == (3, "排污许可证编号")
    assert "与第2行重复" in reason


async def test_art11_row_with_neither_permit_nor_uscc_is_rejected(
    db: Database, tmp_path: Path
) -> None:
    rows = [target(统一社会信用代码="", 排污许可证编号="")]
    report = await run_import(db, "targets", write(tmp_path / "t.xlsx", rows))
    [(row, column, reason)] = reasons(report)
    assert (row, column) == (2, "排污许可证编号")
    assert "至少填写一项" in reason


async def test_art11_key_is_the_permit_number_so_one_company_has_one_target_per_site(
    db: Database, tmp_path: Path
) -> None:
    rows = [target(), target(排污许可证编号=USCC_A + "002P", 地址="另一厂区")]
    report = await run_import(db, "targets", write(tmp_path / "t.xlsx", rows))
    assert report.added == 2
    assert set(await targets(db)) == {PERMIT_A, USCC_A + "002P"}


async def test_art11_a_target_known_by_its_uscc_keeps_its_record_when_it_gets_a_permit(
    db: Database, tmp_path: Path
) -> None:
    await run_import(db, "targets", write(tmp_path / "a.xlsx", [target(排污许可证编号="")]))
    first_id = (await targets(db))[USCC_A].id
    report = await run_import(db, "targets", write(tmp_path / "b.xlsx", [target()]))
    assert (report.added, report.updated) == (0, 1)
    assert (await targets(db))[PERMIT_A].id == first_id
    assert ("target", PERMIT_A, "key", USCC_A, PERMIT_A) in await history(db)


async def test_art11_a_row_without_permit_for_a_company_known_by_its_permits_is_rejected(
    db: Database, tmp_path: Path
) -> None:
    await run_import(db, "targets", write(tmp_path / "a.xlsx", [target()]))
    row = target(排污许可证编号="", 监管类别="特殊")
    report = await run_import(db, "targets", write(tmp_path / "b.xlsx", [row]))
    [(number, column, reason)] = reasons(report)
    assert (number, column) == (2, "排污许可证编号")
    assert "已按排污许可证编号登记" in reason
    assert set(await targets(db)) == {PERMIT_A}


# --- strict mode, re-import, history ---------------------------------------------------------


async def test_strict_mode_commits_nothing_when_a_row_is_bad(db: Database, tmp_path: Path) -> None:
    rows = [target(), target(排污许可证编号="", 统一社会信用代码="91150102MA0N0000X1")]
    path = write(tmp_path / "t.xlsx", rows)
    with pytest.raises(StrictImportError) as raised:
        await run_import(db, "targets", path, strict=True)
    report = raised.value.report
    assert not report.committed and report.rejected == 1
    assert "本次未导入任何数据" in report.summary_zh()
    assert await targets(db) == {}
    async with db.transaction() as session:
        audits = await session.execute(
            select(func.count()).where(AuditEntry.action == "directory.import")
        )
        assert audits.scalar_one() == 0


async def test_good_rows_go_in_and_every_bad_row_is_reported(db: Database, tmp_path: Path) -> None:
    rows = [
        target(),
        target(排污许可证编号="", 统一社会信用代码="123", 成立日期="2015-02-30"),
        target(排污许可证编号=USCC_A + "002P", 监管类别="???"),
    ]
    report = await run_import(db, "targets", write(tmp_path / "t.xlsx", rows))
    assert (report.added, report.rejected, len(report.rejections)) == (1, 2, 3)
    assert [(r, c) for r, c, _ in reasons(report)] == [
        (3, "统一社会信用代码"),
        (3, "成立日期"),
        (4, "监管类别"),
    ]
    assert "1 added" in report.to_text() and "row 3, 统一社会信用代码" in report.to_text()
    assert "新增 1 条" in report.summary_zh() and "第4行「监管类别」" in report.summary_zh()
    sheet = load_workbook(io.BytesIO(report.rejections_xlsx())).active
    assert sheet is not None
    assert [c.value for c in sheet[1]] == ["行号", "列", "原因", "单元格内容"]
    assert [sheet.cell(row=r, column=1).value for r in (2, 3, 4)] == [3, 3, 4]


async def test_art13_reimporting_the_same_file_changes_nothing(
    db: Database, tmp_path: Path
) -> None:
    rows = [target(**{"标识：夜间生产": "是"}), target(排污许可证编号="", 统一社会信用代码=USCC_B)]
    path = write(tmp_path / "t.xlsx", rows)
    await run_import(db, "targets", path)
    before = {k: (t.updated_at, t.tags) for k, t in (await targets(db)).items()}
    later = NOW + dt.timedelta(days=1)
    async with db.transaction() as session:
        report = await import_rows(session, "targets", path, actor="admin", now=later, strict=True)
    assert (report.added, report.updated, report.unchanged) == (0, 0, 2)
    assert {k: (t.updated_at, t.tags) for k, t in (await targets(db)).items()} == before
    assert await history(db) == []


async def test_art12_art13_changes_of_tier_status_and_tags_are_kept_in_history(
    db: Database, tmp_path: Path
) -> None:
    await run_import(db, "targets", write(tmp_path / "a.xlsx", [target(**{"标识：夜间生产": ""})]))
    changed = target(
        监管类别="特殊", 经营状态="停产", 污染物类别="废气", **{"标识：夜间生产": "是"}
    )
    later = NOW + dt.timedelta(days=30)
    async with db.transaction() as session:
        report = await import_rows(
            session,
            "targets",
            write(tmp_path / "b.xlsx", [changed]),
            actor="chief1",
            now=later,
            strict=True,
        )
    assert report.updated == 1
    assert sorted(await history(db)) == [
        ("target", PERMIT_A, "pollutant_types", ["废气", "废水"], ["废气"]),
        ("target", PERMIT_A, "status", "operating", "suspended"),
        ("target", PERMIT_A, "tags.夜间生产", None, "是"),
        ("target", PERMIT_A, "tier", "key", "special"),
    ]
    async with db.transaction() as session:
        rows = (await session.execute(select(DirectoryHistory))).scalars().all()
        assert {(h.actor, h.at) for h in rows} == {("chief1", later)}
    stored = (await targets(db))[PERMIT_A]
    assert (stored.tier, stored.status, stored.tags, stored.updated_at) == (
        "special",
        "suspended",
        {"夜间生产": "是"},
        later,
    )


async def test_a_column_missing_from_the_file_leaves_that_field_alone(
    db: Database, tmp_path: Path
) -> None:
    await run_import(db, "targets", write(tmp_path / "a.xlsx", [target()]))
    slim = {k: target()[k] for k in ("单位名称", "排污许可证编号", "所在旗县区", "监管类别")}
    report = await run_import(db, "targets", write(tmp_path / "b.xlsx", [slim]))
    assert (report.unchanged, report.updated) == (1, 0)
    assert (await targets(db))[PERMIT_A].industry == "化学原料和化学制品制造业"


async def test_each_import_is_summarised_in_the_audit_record(db: Database, tmp_path: Path) -> None:
    rows = [target(), target(排污许可证编号="", 统一社会信用代码="bad")]
    await run_import(db, "targets", write(tmp_path / "t.xlsx", rows), actor="admin7")
    async with db.transaction() as session:
        entry = (
            await session.execute(select(AuditEntry).where(AuditEntry.action == "directory.import"))
        ).scalar_one()
    assert (entry.actor, entry.subject) == ("admin7", "directory:targets")
    assert entry.payload["added"] == 1 and entry.payload["rejected"] == 1


# --- inspectors and check items ---------------------------------------------------------------


async def test_art16_art18_inspectors_are_imported_with_their_standing(
    db: Database, tmp_path: Path
) -> None:
    rows = [
        inspector(),
        inspector(
            姓名="王专家",
            **{"执法证号/工作证号": "GZ-0001"},
            证件类型="工作证",
            辅助人员="是",
            企业微信账号="wangzj",
            科室="监测站",
            请假开始="2026-12-01",
            请假结束="2026-12-10",
        ),
    ]
    report = await run_import(db, "inspectors", write(tmp_path / "i.xlsx", rows))
    assert report.added == 2, report.to_text()
    assert sorted(report.departments_created) == ["150100/执法科", "150100/监测站"]
    async with db.transaction() as session:
        people = {p.certificate_no: p for p in (await session.execute(select(Inspector))).scalars()}
        depts = (await session.execute(select(Department.code))).scalars().all()
    expert = people["GZ-0001"]
    assert (expert.auxiliary, expert.certificate_kind, expert.userid) == (True, "work", "wangzj")
    assert (expert.leave_from, expert.leave_until) == (dt.date(2026, 12, 1), dt.date(2026, 12, 10))
    assert people["15010020150001"].expertise == ["大气", "固废"]
    assert sorted(depts) == ["执法科", "监测站"]


async def test_art16_changes_of_an_inspectors_standing_are_kept_in_history(
    db: Database, tmp_path: Path
) -> None:
    await run_import(db, "targets", write(tmp_path / "t.xlsx", [target()]))
    await run_import(db, "inspectors", write(tmp_path / "a.xlsx", [inspector()]))
    changed = inspector(
        辅助人员="是",
        科室="大气环境科",
        请假开始="2026-12-01",
        请假结束="2026-12-05",
        回避对象="呼和浩特市示例化工有限公司",
        联系电话="13900000000",
    )
    report = await run_import(db, "inspectors", write(tmp_path / "b.xlsx", [changed]))
    assert report.updated == 1, report.to_text()
    assert sorted(h[2:] for h in await history(db)) == [
        ("auxiliary", False, True),
        ("conflicts", [], [PERMIT_A]),
        ("dept_code", "执法科", "大气环境科"),
        ("leave_from", None, "2026-12-01"),
        ("leave_until", None, "2026-12-05"),
    ]


async def test_art16_unknown_conflict_and_reused_wecom_account_are_refused(
    db: Database, tmp_path: Path
) -> None:
    rows = [
        inspector(),
        inspector(**{"执法证号/工作证号": "X-2"}, 回避对象="不存在的公司"),
        inspector(**{"执法证号/工作证号": "X-3"}, 企业微信账号="lisi"),
        inspector(**{"执法证号/工作证号": "X-4"}, 请假开始="2026-12-10", 请假结束="2026-12-01"),
    ]
    report = await run_import(db, "inspectors", write(tmp_path / "i.xlsx", rows))
    assert [(r, c) for r, c, _ in reasons(report)] == [
        (3, "回避对象"),
        (4, "企业微信账号"),
        (5, "请假结束"),
    ]


async def test_art8_check_items_are_imported_with_type_and_method_in_chinese(
    db: Database, tmp_path: Path
) -> None:
    rows = [
        item(),
        item(事项编号="HB-002", 检查类型="定向", 检查方式="非现场"),
        item(事项编号="HB-003", 检查方式="电话"),
    ]
    report = await run_import(db, "items", write(tmp_path / "c.csv", rows, "gb18030"))
    assert report.added == 2
    assert [(r, c) for r, c, _ in reasons(report)] == [(4, "检查方式")]
    again = await run_import(db, "items", write(tmp_path / "c.csv", rows, "gb18030"))
    assert (again.added, again.unchanged) == (0, 2)


# --- templates, exports, lookups ---------------------------------------------------------------


@pytest.mark.parametrize("kind", list(Kind))
@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
async def test_template_round_trips_through_the_import(
    db: Database, tmp_path: Path, kind: Kind, suffix: str
) -> None:
    path = tmp_path / f"template{suffix}"
    write_template(kind, path, marked=False)  # the example as data: a valid row
    report = await run_import(db, kind, path, strict=True)
    assert (report.added, report.rejected) == (1, 0), report.to_text()
    # As handed out, the example row is marked: the import skips it and says so.
    write_template(kind, path)
    report = await run_import(db, kind, path, strict=True)
    assert (report.added, report.updated, report.rejected) == (0, 0, 0), report.to_text()
    assert report.examples_skipped == [2]
    assert "example" in report.to_text() and "示例" in report.summary_zh()
    if suffix == ".xlsx":
        workbook = load_workbook(path)
        assert workbook.sheetnames[1] == "填写说明"
        assert [c.value for c in workbook.worksheets[0][1]] == headers(kind)


async def test_export_writes_the_directory_and_formula_looking_cells_stay_text(
    db: Database, tmp_path: Path
) -> None:
    rows = [
        target(
            单位名称='=HYPERLINK("http://example.invalid","点我")',
            地址="+86 呼和浩特",
            **{"标识：夜间生产": "@是"},
        ),
        target(排污许可证编号="", 统一社会信用代码=USCC_B, 单位名称="-乙公司"),
    ]
    # CSV in: an .xlsx written by openpyxl would hold real formulas, not text.
    report = await run_import(db, "targets", write(tmp_path / "t.csv", rows))
    assert report.added == 2, report.to_text()
    out = tmp_path / "export.xlsx"
    async with db.transaction() as session:
        assert await export(session, "targets", out) == 2
    assert formula_cells(out) == []
    sheet = load_workbook(out).active
    assert sheet is not None
    assert [c.value for c in sheet[1]][-1] == "标识：夜间生产"
    names = {sheet.cell(row=r, column=1).value for r in (2, 3)}
    assert names == {'=HYPERLINK("http://example.invalid","点我")', "-乙公司"}
    again = await run_import(db, "targets", out, strict=True)
    assert (again.unchanged, again.updated, again.added) == (2, 0, 0)


async def test_art14_targets_are_found_by_credit_code_or_by_name(
    db: Database, tmp_path: Path
) -> None:
    rows = [
        target(),
        target(排污许可证编号="", 统一社会信用代码=USCC_B, 单位名称="包头市某某稀土有限公司"),
    ]
    await run_import(db, "targets", write(tmp_path / "t.xlsx", rows))
    async with db.transaction() as session:
        assert [t.key for t in await find_targets(session, USCC_B.lower())] == [USCC_B]
        assert [t.key for t in await find_targets(session, "某某稀土")] == [USCC_B]
        assert [t.key for t in await find_targets(session, "示例化工有限公司")] == [PERMIT_A]
        assert await find_targets(session, "不存在") == []


async def test_demo_directory_is_generated_through_the_same_import(
    db: Database, tmp_path: Path
) -> None:
    paths = write_directory(tmp_path / "a", seed=7, targets=120, inspectors=40, items=20)
    again = write_directory(tmp_path / "b", seed=7, targets=120, inspectors=40, items=20, fmt="csv")
    async with db.transaction() as session:
        reports = await import_directory(session, paths, actor="demo", now=NOW)
    assert {k: (r.added, r.rejected) for k, r in reports.items()} == {
        Kind.targets: (120, 0),
        Kind.inspectors: (40, 0),
        Kind.items: (20, 0),
    }
    async with db.transaction() as session:
        csv_reports = await import_directory(session, again, actor="demo", now=NOW)
    # Same seed, other format: the same directory, so nothing changes.
    assert {k: (r.added, r.updated) for k, r in csv_reports.items()} == {k: (0, 0) for k in Kind}
    stored = await targets(db)
    tiers = [t.tier for t in stored.values()]
    assert tiers.count("general") > tiers.count("key") > tiers.count("special")


async def test_art43_a_target_moved_to_another_county_takes_its_checks_with_it(
    db: Database, tmp_path: Path
) -> None:
    """Checks count where the target is: the statistics table's facts follow a move."""
    await run_import(db, "targets", write(tmp_path / "a.xlsx", [target()]))
    async with db.transaction() as session:
        await add_inspectors(session, 4, org="150102", prefix="M")
        ledger = await generate(session, seed=3, inspections=30, year=2026, now=NOW)
    counted = sum(1 for c in ledger.checks if not c.outside and c.code and c.status != "cancelled")
    year = (dt.date(2026, 1, 1), dt.date(2027, 1, 1), dt.UTC)
    async with db.transaction() as session:
        before = await report.figures_by_org(session, *year)
    assert before["150102"].random_checks == counted > 0
    assert before["150103"].random_checks == 0
    await run_import(db, "targets", write(tmp_path / "b.xlsx", [target(所在旗县区="150103")]))
    async with db.transaction() as session:
        after = await report.figures_by_org(session, *year)
    assert after["150102"].random_checks == 0
    assert after["150103"].random_checks == counted
    assert after["150103"].checked[Tier.key] == 1
    await assert_facts_kept(db)
