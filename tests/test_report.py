"""The quarterly statistics table, the annual report draft and the annual counts (Art. 14, 17,
25, 37, 39, 41, 43), checked against figures computed here, independently, from the raw rows of
a generated record (``storage.synthetic_checks``), not by the report's own queries."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
from collections import Counter
from pathlib import Path

import docx
import openpyxl
import pytest
from PIL import Image
from sqlalchemy import func, select

from bot.cli import main
from inspection.deadlines import results_publication_due
from inspection.quotas import Tier
from inspection.report import COLUMNS, Figures, quarter_bounds
from inspection.workdays import WorkCalendar
from storage import report, report_files
from storage.db import Database
from storage.models import Organisation, PublicationEvent
from storage.synthetic_checks import Ledger, generate
from storage.tasks import rule_params
from tests.conftest import START, Harness
from tests.factories import add_inspectors, add_targets

TZ = dt.timezone(dt.timedelta(hours=8))
END_YEAR = dt.datetime(2027, 1, 1, tzinfo=TZ)
CITIES = {"150100": ["150102", "150103"], "150600": ["150602"]}


async def make_record(db: Database, inspections: int = 700) -> Ledger:
    async with db.transaction() as s:
        for n, (city, counties) in enumerate(CITIES.items()):
            for m, org in enumerate([city, *counties]):
                base = 1000 * (10 * n + m)
                await add_targets(s, 12, org=org, tier="special", start=base)
                await add_targets(s, 25, org=org, tier="key", start=base + 100)
                await add_targets(s, 60, org=org, tier="general", start=base + 300)
                await add_targets(
                    s, 3, org=org, tier="general", start=base + 900, status="deregistered"
                )
                await add_inspectors(s, 6, org=org, prefix=f"P{n}{m}")
        return await generate(s, seed=7, inspections=inspections, year=2026, now=START)


def expected(ledger: Ledger, orgs: set[str], start: dt.date, end: dt.date) -> Figures:
    since = dt.datetime.combine(start, dt.time(), TZ)
    until = dt.datetime.combine(end, dt.time(), TZ)
    f = Figures()
    for _, org, tier, status in ledger.targets:
        if org in orgs and status != "deregistered":
            f.targets[Tier(tier)] += 1
    checked: dict[str, set[int]] = {t: set() for t in ("special", "key", "general")}
    people: set[int] = set()
    for c in ledger.checks:
        if c.target_org not in orgs:
            continue
        if c.outside:  # Art. 6: never a random check
            continue
        counted = c.status in ("open", "done", "merged") and c.code is not None and c.at
        if not counted or not since <= c.at < until:  # type: ignore[operator]
            continue
        f.by_result[c.code] += 1  # type: ignore[index]
        checked[c.tier].add(c.target_id)
        f.cases_filed += c.code == "case_filed" or c.case_filing
        f.handovers += c.code == "transferred"
        people.update(c.members)
    for tier, ids in checked.items():
        f.checked[Tier(tier)] = len(ids)
    f.inspectors = len(people)
    return f


def expected_outside(ledger: Ledger, orgs: set[str]) -> Counter[str]:
    """Checks outside the draw in the year (the generator registers them all in 2026)."""
    return Counter(c.outside for c in ledger.checks if c.outside and c.target_org in orgs)


def task_side(ledger: Ledger, orgs: set[str], start: dt.date, end: dt.date) -> dict[str, int]:
    since = dt.datetime.combine(start, dt.time(), TZ)
    until = dt.datetime.combine(end, dt.time(), TZ)
    out = publication_side(ledger, orgs, start, end)
    for org, status, witnessed, at in ledger.draws:
        if org in orgs and since <= at < until:
            if status in ("abandoned", "superseded"):
                out["draws_cancelled"] += 1
            else:
                out["draws_witnessed" if witnessed else "draws_unwitnessed"] += 1
    return out


PUBLICATION_KEYS = ("published_on_time", "published_late", "publication_outstanding")
CAL = WorkCalendar.from_chinese_calendar().provisional()  # weekends alone where not loaded


def publication_side(ledger: Ledger, orgs: set[str], start: dt.date, end: dt.date) -> Counter[str]:
    """Art. 37, by result and the unit that must publish it (its lead's): published in the
    period by its own due day or after it (the first 公示 or a supplement), and recorded,
    due and still unpublished at the period's end."""
    since = dt.datetime.combine(start, dt.time(), TZ)
    until = dt.datetime.combine(end, dt.time(), TZ)
    out: Counter[str] = Counter()
    for r in ledger.results:
        if r.unit not in orgs or not r.publishable or r.clock is None:
            continue
        days = rule_params(r.check_start).publication_working_days
        clock, recorded = r.clock.astimezone(TZ).date(), r.at.astimezone(TZ).date()
        due = results_publication_due(clock, [recorded], CAL, days)
        published = r.published_at
        if published is not None and since <= published < until:
            on_time = published.astimezone(TZ).date() <= due
            out["published_on_time" if on_time else "published_late"] += 1
        unpublished = published is None or published >= until
        if r.at < until and r.clock < until and unpublished and due < end:
            out["publication_outstanding"] += 1
    return out


def check(figures: Figures, want: Figures, side: dict[str, int]) -> None:
    assert figures.targets == want.targets
    assert figures.checked == want.checked
    assert figures.by_result == want.by_result
    assert (figures.cases_filed, figures.handovers) == (want.cases_filed, want.handovers)
    assert figures.inspectors == want.inspectors
    for key in (
        "published_on_time",
        "published_late",
        "publication_outstanding",
        "draws_witnessed",
        "draws_unwitnessed",
        "draws_cancelled",
    ):
        assert getattr(figures, key) == side.get(key, 0), key


def subtree(code: str) -> set[str]:
    """The organisations the generated record uses under ``code`` (others have no rows)."""
    if code in CITIES:
        return {code, *CITIES[code]}
    return {code}


async def test_art25_art43_the_quarterly_table_matches_the_raw_rows(db: Database) -> None:
    ledger = await make_record(db)
    start, end = quarter_bounds(2026, 2)
    async with db.transaction() as s:
        city_sheets = await report.sheets(s, "150100", start, end, TZ)
        region_sheets = await report.sheets(s, "150000", start, end, TZ)
    (city,) = city_sheets
    codes = [r.code for r in city.rows]  # its own row, then each banner/county
    assert codes[0] == "150100" and {"150102", "150103"} <= set(codes[1:])
    for row in city.rows:
        orgs = {row.code}
        want = expected(ledger, orgs, start, end)
        check(row.figures, want, task_side(ledger, orgs, start, end))
    summary = region_sheets[0]
    cities = [r.code for r in summary.rows[1:]]
    assert summary.rows[0].code == "150000" and {"150100", "150600"} <= set(cities)
    assert [s.code for s in region_sheets[1:]] == cities  # a sheet per league/city
    for row in summary.rows[1:]:  # each league/city with its banners and counties (Art. 39, 41)
        orgs = subtree(row.code)
        want = expected(ledger, orgs, start, end)
        side = task_side(ledger, orgs, start, end)
        assert row.figures.by_result == want.by_result and row.figures.checked == want.checked
        assert row.figures.draws_witnessed == side.get("draws_witnessed", 0)
    total = summary.total
    everything = set().union(*(subtree(c) for c in CITIES))
    assert total.by_result == expected(ledger, everything, start, end).by_result
    assert total.random_checks == sum(r.figures.random_checks for r in summary.rows)
    # Art. 37 by result and checking unit (a county's inspectors publish the city's checks):
    # each of the three columns is exercised, supplements included.
    pubs = publication_side(ledger, everything, start, end)
    got = (total.published_on_time, total.published_late, total.publication_outstanding)
    assert got == tuple(pubs[k] for k in PUBLICATION_KEYS) and all(got), got
    # The year's table: the results published by supplements (公示 again) counted too.
    year = dt.date(2026, 1, 1), dt.date(2027, 1, 1)
    async with db.transaction() as s:
        (year_total,) = [(await report.sheets(s, "150000", *year, TZ))[0].total]
        supplements = await s.scalar(
            select(func.sum(PublicationEvent.on_time + PublicationEvent.late)).where(
                PublicationEvent.supplement.is_(True), PublicationEvent.published_at < END_YEAR
            )
        )
    pubs = publication_side(ledger, everything, *year)
    got = tuple(getattr(year_total, k) for k in PUBLICATION_KEYS)
    assert got == tuple(pubs[k] for k in PUBLICATION_KEYS) and all(got), got
    assert supplements


async def test_art6_checks_outside_the_draw_are_counted_apart(db: Database) -> None:
    ledger = await make_record(db, inspections=400)
    async with db.transaction() as s:
        sheets = await report.sheets(s, "150000", dt.date(2026, 1, 1), dt.date(2027, 1, 1), TZ)
    total = sheets[0].total
    everything = set().union(*(subtree(c) for c in CITIES))
    want = expected_outside(ledger, everything)
    assert {k: v for k, v in total.outside.items() if v} == dict(want) and sum(want.values()) > 0
    random_checks = sum(
        1 for c in ledger.checks if not c.outside and c.code and c.status != "cancelled"
    )
    assert total.random_checks == random_checks  # the outside checks' results are not among them


async def test_art43_the_files_open_with_their_sheets_headers_and_numbers(
    db: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger = await make_record(db, inspections=300)
    base = ["--database-url", db.url]
    table, chart = tmp_path / "q4.xlsx", tmp_path / "q4.png"
    args = ["report", "quarterly", "--org", "150000", "--year", "2026", "--quarter", "4"]
    assert (
        await asyncio.to_thread(main, [*args, "--out", str(table), "--chart", str(chart), *base])
        == 0
    )
    wb = openpyxl.load_workbook(table)
    async with db.transaction() as s:
        cities = await s.scalars(
            select(Organisation.name)
            .where(Organisation.parent_code == "150000")
            .order_by(Organisation.code)
        )
        region = await s.get(Organisation, "150000")
        assert region is not None
        assert wb.sheetnames == [region.name, *cities]  # a summary, then one per league/city
    ws = wb[wb.sheetnames[1]]  # 呼和浩特市: its own row, then its banners and counties
    headers = [c.value for c in ws[2]]
    assert headers[:2] == ["单位代码", "单位"] and headers[2:] == [c.header for c in COLUMNS]
    rows = {r[0]: r for r in ws.iter_rows(min_row=3, values_only=True) if r[0]}
    start, end = quarter_bounds(2026, 4)
    want = expected(ledger, {"150102"}, start, end)
    n_checks = headers.index("双随机抽查次数")
    assert rows["150102"][n_checks] == sum(want.by_result.values())
    coverage = headers.index("特殊抽查比例")
    cell = ws.cell(row=3, column=coverage + 1)
    assert cell.number_format == "0.0%"
    assert isinstance(rows["150102"][headers.index("特殊监管对象数（季初）")], int)
    with Image.open(chart) as png:
        assert png.format == "PNG" and png.width > 300
    docx_path = tmp_path / "annual.docx"
    assert (
        await asyncio.to_thread(
            main,
            [
                "report",
                "annual",
                "--org",
                "150100",
                "--year",
                "2026",
                "--out",
                str(docx_path),
                *base,
            ],
        )
        == 0
    )
    text = "\n".join(p.text for p in docx.Document(str(docx_path)).paragraphs)
    year_total = expected(ledger, subtree("150100"), dt.date(2026, 1, 1), dt.date(2027, 1, 1))
    assert f"全年共开展双随机抽查{year_total.random_checks}次" in text
    assert "四、主要做法和成效" in text and "请填写" in text
    counts = tmp_path / "counts.xlsx"
    assert (
        await asyncio.to_thread(
            main,
            ["report", "counts", "--org", "150100", "--year", "2026", "--out", str(counts), *base],
        )
        == 0
    )
    people = openpyxl.load_workbook(counts)["检查人员（第17条）"]
    stayed = sum(  # the generator's teams come from the target's league/city; swapped-out never
        len(c.members)
        for c in ledger.checks
        if c.target_org in subtree("150100") and c.code and c.status != "cancelled"
    )
    assert sum(r[3] for r in people.iter_rows(min_row=3, values_only=True)) == stayed
    assert (
        await asyncio.to_thread(
            main,
            [
                "report",
                "quarterly",
                "--org",
                "150100",
                "--year",
                "2026",
                "--quarter",
                "4",
                "--out",
                str(tmp_path / "x.csv"),
                *base,
            ],
        )
        == 2
    )
    assert "Traceback" not in capsys.readouterr().err


def test_the_chart_uses_a_cjk_font_when_one_is_installed() -> None:
    from matplotlib import font_manager

    available = {f.name for f in font_manager.fontManager.ttflist}
    if not available & set(report_files.CJK_FONTS):
        pytest.skip("no CJK font installed (.ci/run installs fonts-noto-cjk)")
    sheet = report.Sheet(
        "150100", "呼和浩特市", [report.Row("150100", "呼和浩特市（本级）", Figures())], Figures()
    )
    png = report_files.coverage_png("测试", sheet, rule_params(dt.date(2026, 1, 1)).ratios())
    assert Image.open(io.BytesIO(png)).format == "PNG"


async def test_art43_the_table_arrives_in_chat_as_files(h: Harness) -> None:
    """统计 2026Q4 through the callback: the reply carries the coverage per tier, and the
    .xlsx table and its .png chart arrive as files (media/upload, then a file message)."""
    await h.grant("citychief", "chief", "150100")
    async with h.db.transaction() as s:
        await add_targets(s, 40, org="150102", tier="general")
    (reply, *_) = await h.say("citychief", "统计 2026Q4")
    assert "2026年第4季度" in reply and "一般：抽查0/40" in reply
    files = [m for m in h.wecom.messages("citychief") if m.get("msgtype") == "file"]
    uploaded = {h.wecom.media[f["file"]["media_id"]].filename for f in files}
    assert uploaded == {"统计表-150100-2026Q4.xlsx", "统计表-150100-2026Q4.png"}
    table = next(m for m in h.wecom.media.values() if m.filename.endswith(".xlsx"))
    wb = openpyxl.load_workbook(io.BytesIO(table.content))
    assert wb.sheetnames[0].startswith("呼和浩特市")
    (wrong,) = await h.say("citychief", "统计 明年")
    assert "无法识别季度" in wrong
    await h.grant("countyadmin", "admin", "150102")
    (refused,) = await h.say("countyadmin", "统计")
    assert "盟市" in refused
