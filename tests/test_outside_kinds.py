"""Art. 6: the checks outside the draw are exactly the article's list, wherever a kind is named:
the chat command 登记检查, its help, the import of earlier checks and the statistics table's
columns. Every other planned check (routine, enforcement, special campaign) is drawn."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import select

from bot.cli import main
from storage.db import Database
from storage.models import CheckOutsideDraw, Inspection, Target
from tests.conftest import Harness
from tests.factories import CITY, add_targets, uscc
from tests.results_support import ADMIN
from tests.support.draw_chat import setup

# Art. 6, in its order and words: the checks aimed at a specific target.
ART6 = [
    ("complaint", "投诉举报"),
    ("higher_authority", "上级部门转办交办"),
    ("department_referral", "其他部门移送案件"),
    ("emergency", "突发环境事件"),
    ("nuclear_safety", "核安全检查"),
    ("data_lead", "数据分析或监测发现问题线索"),
]
# What the chat's usage offers for each, in the same order.
TYPED = ["投诉", "转办", "移送", "突发事件", "核安全", "数据线索"]
# Planned checks Art. 6 says are drawn: never registered outside the draw.
PLANNED = ["日常监督管理检查", "监督执法检查", "专项检查", "日常检查"]


async def test_art6_the_chat_registers_exactly_art6s_kinds_and_its_help_lists_them(
    h: Harness,
) -> None:
    await setup(h)
    members = "成员=cu1501020,cu1501021"
    (usage,) = await h.say(ADMIN, "帮助 登记检查")
    assert usage.index("投诉") < usage.index("转办") < usage.index("数据线索"), usage
    assert all(word in usage for word in TYPED)
    for word in PLANNED:
        (refused,) = await h.say(ADMIN, f"登记检查 {uscc(200)} {word} 例行 {members}")
        assert "不认识" in refused and all(w in refused for w in TYPED), refused
    for n, (word, (_, label)) in enumerate(zip(TYPED, ART6, strict=True)):
        (done,) = await h.say(ADMIN, f"登记检查 {uscc(200 + n)} {word} 原因{n} {members}")
        assert label in done and "双随机以外" in done, done
    async with h.db.transaction() as s:
        kinds = (
            await s.execute(
                select(CheckOutsideDraw.kind)
                .join(Inspection, Inspection.id == CheckOutsideDraw.inspection_id)
                .order_by(Inspection.number)
            )
        ).scalars()
        assert list(kinds) == [kind for kind, _ in ART6]
    (figures,) = await h.say(ADMIN, "检查统计 2026")
    assert "双随机以外的检查合计6项" in figures, figures
    # The statistics table has one column per kind, Art. 6's words, in its order.
    (reply, *_) = await h.say(ADMIN, "统计 2026Q4")
    table = next(m for m in h.wecom.media.values() if m.filename.endswith(".xlsx"))
    sheet = openpyxl.load_workbook(io.BytesIO(table.content)).worksheets[0]
    headers = [
        str(cell.value)
        for row in sheet.iter_rows()
        for cell in row
        if str(cell.value or "").startswith("双随机以外：")
    ]
    assert headers == [f"双随机以外：{label}" for _, label in ART6], reply


async def test_art6_the_import_takes_exactly_art6s_kinds_outside_the_draw(
    db: Database, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with db.transaction() as s:
        keys = await add_targets(s, len(ART6) + len(PLANNED), tier="general")
    rows = [f"{keys[n]},{CITY},2026-05-20,{label},未发现问题," for n, (_, label) in enumerate(ART6)]
    rows += [
        f"{keys[len(ART6) + n]},{CITY},2026-05-20,{word},未发现问题,"
        for n, word in enumerate(PLANNED)
    ]
    path = tmp_path / "earlier.csv"
    header = "检查对象信用代码或许可证编号,检查单位代码,检查日期,检查类型,检查结果,备注\n"
    path.write_text(header + "\n".join(rows) + "\n", encoding="utf-8")
    code = await asyncio.to_thread(
        main, ["import", "inspections", str(path), "--database-url", db_url]
    )
    out = capsys.readouterr().out
    assert code == 0 and f"{len(ART6)} added" in out and f"{len(PLANNED)} rejected" in out, out
    async with db.transaction() as s:
        found = dict(
            (
                await s.execute(
                    select(Target.key, CheckOutsideDraw.kind)
                    .join(Inspection, Inspection.id == CheckOutsideDraw.inspection_id)
                    .join(Target, Target.id == Inspection.target_id)
                )
            ).all()
        )
    assert found == {keys[n]: kind for n, (kind, _) in enumerate(ART6)}
