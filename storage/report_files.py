"""The reports as files a person opens: the quarterly statistics table (.xlsx), its chart of
coverage against the minimums (.png), the annual self-inspection report draft (.docx), and the
annual counts per target and per inspector (.xlsx) (Art. 14, 17, 25, 43).

Numbers are numbers and percentages are formatted as such; headers are Chinese; the columns
come from ``inspection.report.COLUMNS`` alone.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Mapping, Sequence
from fractions import Fraction

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from inspection.quotas import Tier
from inspection.report import COLUMNS, TIER_NAMES, TIERS, Figures
from storage import spreadsheet
from storage.report import Sheet

CJK_FONTS = ["Noto Sans CJK SC", "Noto Sans CJK JP", "WenQuanYi Zen Hei", "SimHei"]
SHEET_NAME_CHARS = 31  # Excel's limit


def _values(f: Figures, minimums: Mapping[Tier, Fraction]) -> list[object]:
    return [c.value(f, minimums) for c in COLUMNS]


def table_xlsx(title: str, sheets: Sequence[Sheet], minimums: Mapping[Tier, Fraction]) -> bytes:
    """One worksheet per sheet: title, headers, one row per unit, a total row."""
    wb = Workbook()
    first = wb.active
    assert first is not None
    wb.remove(first)
    for sheet in sheets:
        ws = wb.create_sheet(sheet.name[:SHEET_NAME_CHARS])
        ws.append([f"{title}（{sheet.name}）"])
        ws["A1"].font = Font(bold=True, size=13)
        ws.append(["单位代码", "单位", *(c.header for c in COLUMNS)])
        for row in sheet.rows:
            ws.append([row.code, row.name, *_values(row.figures, minimums)])
        ws.append(["", "合计", *_values(sheet.total, minimums)])
        for cell in ws[ws.max_row]:
            cell.font = Font(bold=True)
        for i, column in enumerate(COLUMNS, start=3):
            letter = get_column_letter(i)
            ws.column_dimensions[letter].width = max(10, min(len(column.header) * 2 + 2, 26))
            ws[f"{letter}2"].alignment = Alignment(wrap_text=True, vertical="top")
            if column.kind == "percent":
                for (cell,) in ws.iter_rows(min_row=3, min_col=i, max_col=i):
                    cell.number_format = "0.0%"
        ws.column_dimensions["A"].width = 10
        ws.column_dimensions["B"].width = 26
        ws.freeze_panes = "C3"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def coverage_png(title: str, sheet: Sheet, minimums: Mapping[Tier, Fraction]) -> bytes:
    """Coverage per tier of each unit (bars) against the minimum in force (a line per tier)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import font_manager
    from matplotlib import pyplot as plt

    available = {f.name for f in font_manager.fontManager.ttflist}
    family = [name for name in CJK_FONTS if name in available] or ["sans-serif"]
    with plt.rc_context({"font.family": family, "axes.unicode_minus": False}):
        fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(sheet.rows) + 2), 4.2), dpi=110)
        width = 0.8 / len(TIERS)
        colours = {Tier.special: "#c62828", Tier.key: "#ef6c00", Tier.general: "#1565c0"}
        units = [*sheet.rows]
        for i, tier in enumerate(TIERS):
            xs = [j + (i - 1) * width for j in range(len(units))]
            ys = [
                float(c) * 100 if (c := r.figures.coverage(tier)) is not None else 0 for r in units
            ]
            ax.bar(xs, ys, width, label=f"{TIER_NAMES[tier]}", color=colours[tier])
            ax.axhline(
                float(minimums[tier]) * 100,
                color=colours[tier],
                linestyle="--",
                linewidth=1,
                label=f"{TIER_NAMES[tier]}最低{float(minimums[tier]):.0%}",
            )
        ax.set_xticks(range(len(units)))
        ax.set_xticklabels(
            [r.name.replace("（本级）", "本级") for r in units], rotation=30, ha="right"
        )
        ax.set_ylabel("抽查比例（%）")
        ax.set_title(title)
        ax.legend(ncol=2, fontsize=8)
        fig.tight_layout()
        out = io.BytesIO()
        fig.savefig(out, format="png")
        plt.close(fig)
    return out.getvalue()


def counts_xlsx(
    title: str,
    targets: Sequence[tuple[str, str, str, int, int]],
    inspectors: Sequence[tuple[str, str, str, int]],
) -> bytes:
    """Annual counts: per target (Art. 14: name, credit code, unit, random checks, checks
    outside the draw) and per inspector (Art. 17: name, certificate, unit, inspections stayed
    on)."""
    writer = spreadsheet.XlsxWriter()  # names are text, never formulas
    widths = (36, 22, 24, 14, 16)
    writer.add_sheet(
        "检查对象（第14条）",
        ["检查对象", "统一社会信用代码", "所在单位", "双随机抽查次数", "双随机以外检查次数"],
        widths,
        title=title,
    )
    for row in targets:
        writer.append(list(row))
    writer.add_sheet(
        "检查人员（第17条）", ["姓名", "执法证号", "单位", "参加检查次数"], widths, title=title
    )
    for person in inspectors:
        writer.append(list(person))
    out = io.BytesIO()
    writer.save(out)
    return out.getvalue()


def annual_docx(
    org_name: str,
    year: int,
    sheet: Sheet,
    minimums: Mapping[Tier, Fraction],
    made_on: dt.date,
) -> bytes:
    """A draft of the annual self-inspection report (due to the region by November 5, Art.
    43): the year's figures and tables filled in; what a bureau writes by hand left as headings
    with prompts."""
    from docx import Document

    doc = Document()
    doc.add_heading(f"{org_name}{year}年度“双随机、一公开”监管工作自查报告（草稿）", 0)
    doc.add_paragraph(
        f"本草稿由系统于{made_on.isoformat()}根据{year}年记录生成，数字截至生成之日。"
    )
    total = sheet.total
    doc.add_heading("一、基本情况", 1)
    doc.add_paragraph(
        f"全年共开展双随机抽查{total.random_checks}次，发现问题{total.problems}个，"
        f"立案调查{total.cases_filed}件，移交移送{total.handovers}件；"
        f"参加检查人员{total.inspectors}人次；见证抽取{total.draws_witnessed}次，"
        f"未见证抽取{total.draws_unwitnessed}次，取消抽取{total.draws_cancelled}次。"
        f"抽查结果按时公开{total.published_on_time}条，逾期公开{total.published_late}条，"
        f"到期尚未公开{total.publication_outstanding}条。"
    )
    doc.add_heading("二、抽查比例完成情况（第25条）", 1)
    table = doc.add_table(rows=1, cols=5)
    table.style = "Table Grid"
    for cell, text in zip(
        table.rows[0].cells, ("类别", "监管对象数", "抽查数", "抽查比例", "最低比例"), strict=True
    ):
        cell.text = text
    for tier in TIERS:
        coverage = total.coverage(tier)
        cells = table.add_row().cells
        cells[0].text = f"{TIER_NAMES[tier]}监管对象"
        cells[1].text = str(total.targets[tier])
        cells[2].text = str(total.checked[tier])
        cells[3].text = "—" if coverage is None else f"{float(coverage):.1%}"
        cells[4].text = f"{float(minimums[tier]):.0%}"
    doc.add_heading("三、各单位情况", 1)
    units = doc.add_table(rows=1, cols=5)
    units.style = "Table Grid"
    for cell, text in zip(
        units.rows[0].cells, ("单位", "抽查次数", "发现问题", "立案调查", "按时公开"), strict=True
    ):
        cell.text = text
    for row in sheet.rows:
        cells = units.add_row().cells
        f = row.figures
        for cell, value in zip(
            cells,
            (row.name, f.random_checks, f.problems, f.cases_filed, f.published_on_time),
            strict=True,
        ):
            cell.text = str(value)
    for heading, prompt in (
        ("四、主要做法和成效", "（请填写：制度建设、一单两库维护、部门联合抽查、信息化应用等。）"),
        ("五、存在的问题", "（请填写：抽查比例未达标的类别及原因、公开时限、人员力量等。）"),
        ("六、下一步工作打算", "（请填写：改进措施和下一年度计划。）"),
    ):
        doc.add_heading(heading, 1)
        doc.add_paragraph(prompt)
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()
