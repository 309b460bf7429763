"""一公开 (Art. 37): the public page over HTTP, against the real database.

Results are reported through the callback as inspectors do, one is made secret by its chief,
and the unit publishes; the page then shows exactly the published, non-secret lines and
nothing internal.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import select

from bot.cli import main
from bot.runtime.public import RateLimiter
from inspection.results import PHRASES, ResultCode
from storage import public, report_files, spreadsheet
from storage.models import (
    Inspection,
    InspectionResult,
    Publication,
    PublicEntry,
    Target,
    Task,
)
from tests.conftest import Harness
from tests.factories import CITY, COUNTY
from tests.results_support import ADMIN, CHIEF, TASK, Visit, click, drawn
from tests.support.public import (
    PREFIX,
    internal_strings,
    public_settings,
    publish_sample,
    serve,
)
from tests.support.reminders import PUBLISHER, at, completed


@pytest.fixture
async def published(h: Harness) -> list[Visit]:
    return await publish_sample(h)


async def test_art37_the_page_shows_published_results_and_nothing_internal(
    h: Harness, published: list[Visit]
) -> None:
    async with h.db.transaction() as s:
        names = list(await s.scalars(select(PublicEntry.target_name).order_by(PublicEntry.id)))
    query = names[0][1:5]  # four characters: the bigram search, PostgreSQL's tokens path
    client = await serve(h)
    try:
        page = await client.get(f"{PREFIX}/{CITY}/2026")
        html = await page.text()
        region_text = await (await client.get(f"{PREFIX}/150000/2026.json")).text()
        downloads = [
            await (await client.get(f"{PREFIX}/{CITY}/2026.{fmt}")).text()
            for fmt in ("csv", "json")
        ]
        searched = [
            await (await client.get(f"{PREFIX}/{CITY}/2026{suffix}", params={"q": query})).text()
            for suffix in ("", ".csv", ".json")
        ]
        draws = await (await client.get(f"{PREFIX}/{CITY}/2026/draws")).text()
    finally:
        await client.close()
    assert page.status == 200
    region = json.loads(region_text)
    city_lines = json.loads(downloads[1])["results"]
    assert len(region["results"]) == len(city_lines) == 3  # the region's page: every unit
    found = json.loads(searched[2])["results"]
    assert found and all(query in r["target_name"] for r in found)
    async with h.db.transaction() as s:
        shown = (
            await s.execute(
                select(Target.name, Target.uscc, InspectionResult.phrase, InspectionResult.secret)
                .join(Inspection, Inspection.target_id == Target.id)
                .join(InspectionResult, InspectionResult.inspection_id == Inspection.id)
            )
        ).all()
        open_target = await s.scalar(
            select(Target.uscc)
            .join(Inspection, Inspection.target_id == Target.id)
            .where(Inspection.number == published[4].number)
        )
    for _name, uscc, _phrase, secret in shown:  # codes are unique; names may be prefixes
        assert (uscc in html) is not secret, uscc
    assert open_target and open_target not in html  # no result yet: not public (its code)
    assert PHRASES[ResultCode.ordered_to_rectify] in html and PHRASES[ResultCode.refused] in html
    assert "另有 1 项检查依法不予公开" in html
    for text in (html, region_text, *downloads, *searched, draws):
        for secret_text in await internal_strings(h):
            assert secret_text not in text, secret_text
    assert TASK in draws and "承诺值" in draws


async def test_art37_downloads_are_exactly_the_published_lines(
    h: Harness, published: list[Visit]
) -> None:
    client = await serve(h)
    try:
        got = await client.get(f"{PREFIX}/{CITY}/2026.csv")
        raw = await got.read()
        doc = json.loads(await (await client.get(f"{PREFIX}/{CITY}/2026.json")).text())
    finally:
        await client.close()
    # The secret check the page counts as withheld: in the JSON, and the CSV's header.
    assert doc["withheld"] == 1 and got.headers["X-Withheld"] == "1"
    assert raw.startswith("\ufeff".encode())  # opens in Excel as UTF-8
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    async with h.db.transaction() as s:
        expected = {
            (name, phrase)
            for name, phrase in (
                await s.execute(
                    select(Target.name, InspectionResult.phrase)
                    .join(Inspection, Inspection.target_id == Target.id)
                    .join(InspectionResult, InspectionResult.inspection_id == Inspection.id)
                    .where(
                        InspectionResult.secret.is_(False),
                        InspectionResult.published_at.is_not(None),
                    )
                )
            ).all()
        }
    assert {(r["检查对象"], r["检查结果"]) for r in rows} == expected
    assert {(r["target_name"], r["phrase"]) for r in doc["results"]} == expected
    assert doc["org"] == CITY and doc["year"] == 2026


async def test_art37_search_by_credit_code_and_by_two_characters_of_a_name(
    h: Harness, published: list[Visit]
) -> None:
    async with h.db.transaction() as s:
        entries = list(await s.scalars(select(PublicEntry).order_by(PublicEntry.id)))
    one = entries[0]
    client = await serve(h)
    try:
        by_code = await (
            await client.get(f"{PREFIX}/{CITY}/2026.json", params={"q": one.uscc})
        ).json()
        two_chars = one.target_name[-4:-2]
        by_name = await (
            await client.get(f"{PREFIX}/{CITY}/2026.json", params={"q": two_chars})
        ).json()
        full_width = await (
            await client.get(f"{PREFIX}/{CITY}/2026.json", params={"q": one.uscc.lower()})
        ).json()
        nothing = await (
            await client.get(f"{PREFIX}/{CITY}/2026.json", params={"q": "不存在的名字"})
        ).json()
        prefix = await (
            await client.get(f"{PREFIX}/{CITY}/2026.json", params={"q": one.uscc[:10]})
        ).json()
    finally:
        await client.close()
    assert [r["uscc"] for r in by_code["results"]] == [one.uscc]
    assert [r["uscc"] for r in full_width["results"]] == [one.uscc]
    assert sorted(r["target_name"] for r in by_name["results"]) == sorted(
        e.target_name for e in entries if two_chars in e.target_name
    )
    assert nothing["results"] == []
    assert one.uscc in {r["uscc"] for r in prefix["results"]}  # the beginning of a code


async def test_art37_a_corrected_line_says_so_and_a_secret_one_leaves(
    h: Harness, published: list[Visit]
) -> None:
    first = published[0]
    h.clock.advance(days=3)
    async with h.db.transaction() as s:
        result = await s.get(InspectionResult, first.inspection_id)
        inspection = await s.get(Inspection, first.inspection_id)
        assert result is not None and inspection is not None
        result.phrase = PHRASES[ResultCode.ordered_to_rectify]
        assert await public.republish(s, inspection, h.clock.now(), h.settings.tz)
        line = await s.scalar(
            select(PublicEntry).where(PublicEntry.inspection_id == first.inspection_id)
        )
        assert line is not None and line.corrected_at == h.clock.now()
        assert line.phrase == PHRASES[ResultCode.ordered_to_rectify]
        result.secret = True
        assert await public.republish(s, inspection, h.clock.now(), h.settings.tz)
        gone = await s.scalar(
            select(PublicEntry).where(PublicEntry.inspection_id == first.inspection_id)
        )
        publication = await s.scalar(select(Publication))
    assert gone is None and publication is not None and publication.withheld == 2


async def test_the_public_page_escapes_and_sends_security_headers(h: Harness) -> None:
    visits = await drawn(h)
    h.clock.set(h.clock.now().replace(month=12, day=7))
    async with h.db.transaction() as s:
        target = await s.scalar(
            select(Target)
            .join(Inspection, Inspection.target_id == Target.id)
            .where(Inspection.number == visits[0].number)
        )
        assert target is not None
        target.name = "<script>alert(1)</script>化工厂"
    await click(h, visits[0].members[0], visits[0], ResultCode.no_problem.value)
    async with h.db.transaction() as s:
        task = await s.scalar(select(Task).where(Task.code == TASK))
        assert task is not None
        row = Publication(
            task_id=task.id, org_code=COUNTY, published_at=h.clock.now(), published_by=ADMIN
        )
        s.add(row)
        await s.flush()
        await public.publish_lines(s, row, h.clock.now(), h.settings.tz)
    client = await serve(h, frame_ancestors=["'self'", "https://portal.example"])
    try:
        page = await client.get(f"{PREFIX}/{CITY}/2026", params={"q": "化工"})
        html = await page.text()
        echoed = await (await client.get(f"{PREFIX}/{CITY}/2026", params={"q": "<b>化工"})).text()
        bad_year = await client.get(f"{PREFIX}/{CITY}/19x0")
        bad_page = await client.get(f"{PREFIX}/{CITY}/2026", params={"page": "0"})
        no_org = await client.get("/999999/2026")
    finally:
        await client.close()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<b>化工" not in echoed and "&lt;b&gt;化工" in echoed
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'self' https://portal.example" in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert bad_year.status == 404 and bad_page.status == 400 and no_org.status == 404


async def test_requests_are_limited_per_client_behind_trusted_proxies_only(h: Harness) -> None:
    client = await serve(h, requests_per_minute=3, trusted_proxies=["127.0.0.1"])
    try:
        mine = [
            (await client.get(f"{PREFIX}/", headers={"X-Forwarded-For": "203.0.113.7"})).status
            for _ in range(4)
        ]
        other = await client.get(f"{PREFIX}/", headers={"X-Forwarded-For": "203.0.113.8"})
        forged = await client.get(
            f"{PREFIX}/", headers={"X-Forwarded-For": "198.51.100.1, 203.0.113.7"}
        )  # a client can prepend anything; the proxy appends the real address
    finally:
        await client.close()
    assert mine == [200, 200, 200, 429]
    assert other.status == 200 and forged.status == 429
    assert int(forged.headers["Retry-After"]) >= 1


def test_the_rate_limit_window_slides() -> None:
    now = [0.0]
    limiter = RateLimiter(2, now=lambda: now[0])
    assert [limiter.retry_after("a") for _ in range(3)] == [0, 0, 60]
    now[0] = 60.5
    assert limiter.retry_after("a") == 0


async def test_art37_publish_export_writes_the_published_lines_for_the_portal(
    h: Harness, published: list[Visit], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with h.db.transaction() as s:
        expected = sorted((e.uscc, e.phrase) for e in await s.scalars(select(PublicEntry)))
    base = ["publish", "export", "--org", "150000", "--year", "2026", "--database-url", h.db.url]
    for suffix in ("xlsx", "csv", "json"):
        out = tmp_path / f"gk.{suffix}"
        assert await asyncio.to_thread(main, [*base, str(out)]) == 0
    assert f"{len(expected)} published results" in capsys.readouterr().out
    sheet = openpyxl.load_workbook(tmp_path / "gk.xlsx").active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[2][:2] == ("target_name", "uscc")  # stable column names under the headers
    assert sorted((r[1], r[6]) for r in rows[3:]) == expected
    lines = list(csv.DictReader(io.StringIO((tmp_path / "gk.csv").read_text("utf-8-sig"))))
    assert sorted((r["统一社会信用代码"], r["检查结果"]) for r in lines) == expected
    doc = json.loads((tmp_path / "gk.json").read_text("utf-8"))
    assert sorted((r["uscc"], r["phrase"]) for r in doc["results"]) == expected
    assert await asyncio.to_thread(main, [*base, str(tmp_path / "gk.pdf")]) == 2
    assert await asyncio.to_thread(main, [*base, str(tmp_path / "no" / "gk.csv")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("error:") == 2


async def test_art37_gongshi_without_an_address_publishes_on_the_bots_page(h: Harness) -> None:
    """公示 <任务> with the page on: the unit's results get their public lines and the page's
    address is recorded as where they were published; the reply gives it."""
    visits = await completed(h)
    h.runtime.worker.settings = public_settings(h)  # [public] enabled = true
    h.clock.set(at(2026, 12, 22, 10))
    (done,) = await h.say(PUBLISHER, f"公示 {TASK}")
    page = f"https://gk.example.gov.cn{PREFIX}/150102/2026"
    assert page in done and "按期" in done
    async with h.db.transaction() as s:
        row = await s.scalar(select(Publication))
        lines = list(await s.scalars(select(PublicEntry)))
    assert row is not None and row.url == page and row.results == len(visits) == len(lines)
    assert {e.org_code for e in lines} == {"150102"}  # who checks, publishes
    client = await serve(h)
    try:
        shown = await (await client.get(f"{PREFIX}/150102/2026.json")).json()
    finally:
        await client.close()
    assert len(shown["results"]) == len(visits)
    # After publication (Art. 37, 38): a correction rewrites the line and says when, a penalty
    # decision linked later appears beside the result, a result made secret leaves the page.
    first, second, third = visits[0], visits[1], visits[2]
    h.clock.set(at(2026, 12, 23, 11))
    replies = await h.say(CHIEF, f"更正 {first.number} 2 复核发现超标")
    assert any("公开页面更正" in r for r in replies)
    decision = "呼环罚〔2026〕12号"
    replies = await h.say(second.members[0], f"处罚决定 {second.number} {decision} 2026-12-20")
    assert any("处罚决定" in r for r in replies)
    await h.say(CHIEF, f"保密 {third.number} 涉及国家秘密的甲项工程")
    async with h.db.transaction() as s:
        lines = {e.inspection_id: e for e in await s.scalars(select(PublicEntry))}
    assert lines[first.inspection_id].phrase == PHRASES[ResultCode.ordered_to_rectify]
    assert lines[first.inspection_id].corrected_at == h.clock.now()
    assert decision in lines[second.inspection_id].penalty
    assert lines[second.inspection_id].corrected_at is None  # a penalty is not a correction
    assert third.inspection_id not in lines


FORMULAS = ('=HYPERLINK("http://x","y")', "+1", "@SUM(1)")


async def test_art37_names_that_look_like_formulas_stay_text_in_downloads_and_exports(
    h: Harness, published: list[Visit], tmp_path: Path
) -> None:
    """A target named like a formula is shown as typed: in the xlsx a string cell, never a
    formula; in a CSV behind a ``'`` (so a spreadsheet does not evaluate it); in JSON as is."""
    async with h.db.transaction() as s:
        for visit, name in zip(published[:3], FORMULAS, strict=True):
            inspection = await s.get(Inspection, visit.inspection_id)
            assert inspection is not None
            target = await s.get(Target, inspection.target_id)
            assert target is not None
            target.name = name
        row = await s.scalar(select(Publication))
        assert row is not None
        await public.publish_lines(s, row, h.clock.now(), h.settings.tz)  # as 公示 again does
    client = await serve(h)
    try:
        page_csv = (await (await client.get(f"{PREFIX}/{CITY}/2026.csv")).read()).decode(
            "utf-8-sig"
        )
        page_json = await (await client.get(f"{PREFIX}/{CITY}/2026.json")).json()
    finally:
        await client.close()
    base = ["publish", "export", "--org", CITY, "--year", "2026", "--database-url", h.db.url]
    for suffix in ("xlsx", "csv"):
        assert await asyncio.to_thread(main, [*base, str(tmp_path / f"gk.{suffix}")]) == 0
    export_csv = (tmp_path / "gk.csv").read_text("utf-8-sig")
    for text in (page_csv, export_csv):
        names = {r["检查对象"] for r in csv.DictReader(io.StringIO(text))}
        assert names == {"'" + n for n in FORMULAS}
    assert {r["target_name"] for r in page_json["results"]} == set(FORMULAS)
    assert spreadsheet.formula_cells(tmp_path / "gk.xlsx") == []
    sheet = openpyxl.load_workbook(tmp_path / "gk.xlsx").active
    assert sheet is not None
    cells = [row[0] for row in sheet.iter_rows(min_row=4)]
    assert {c.value for c in cells} == set(FORMULAS) and {c.data_type for c in cells} == {"s"}


def test_art14_annual_counts_keep_formula_like_names_as_text(tmp_path: Path) -> None:
    """The annual counts per target (a report file of names typed by people) write them as
    text too: the same writer as every other spreadsheet of ours."""
    names = ['=HYPERLINK("http://x","y")', "-2", "@SUM(1)", "\t+1", "普通企业"]
    data = report_files.counts_xlsx(
        "计数", [(n, "", "新城区", 1, 0) for n in names], [("-3", "", "新城区", 1)]
    )
    (tmp_path / "counts.xlsx").write_bytes(data)
    assert spreadsheet.formula_cells(tmp_path / "counts.xlsx") == []
    book = openpyxl.load_workbook(tmp_path / "counts.xlsx")
    shown = [r[0] for r in book["检查对象（第14条）"].iter_rows(min_row=3, values_only=True)]
    assert shown == names
    assert [r[0] for r in book["检查人员（第17条）"].iter_rows(min_row=3, values_only=True)] == [
        "-3"
    ]
    assert [spreadsheet.csv_cell(n) for n in names] == ["'" + n for n in names[:4]] + ["普通企业"]


async def test_art37_publish_export_includes_results_published_on_the_portal(
    h: Harness, tmp_path: Path
) -> None:
    """公示 <任务> <网址>: the results were published on the portal, not on the bot's page;
    the export (which feeds the portal or the designated platform) still has every one, says
    where it was published, and withholds the secret check (only counted)."""
    visits = await completed(h)
    (marked,) = await h.say(CHIEF, f"保密 {visits[0].number} 涉密工程")
    assert "保密" in marked
    portal = "https://www.example.gov.cn/gk/2026/12"
    h.clock.set(at(2026, 12, 22, 10))
    (done,) = await h.say(PUBLISHER, f"公示 {TASK} {portal}")
    assert portal in done
    decision = "呼环罚〔2026〕31号"  # Art. 38: published beside its result, portal or not
    await h.say(visits[1].members[0], f"处罚决定 {visits[1].number} {decision} 2026-12-20")
    async with h.db.transaction() as s:
        assert await s.scalar(select(PublicEntry)) is None  # nothing on the bot's page
        rows = (
            await s.execute(
                select(Target.uscc, Target.name, InspectionResult.phrase, InspectionResult.secret)
                .join(Inspection, Inspection.target_id == Target.id)
                .join(InspectionResult, InspectionResult.inspection_id == Inspection.id)
            )
        ).all()
    expected = sorted((uscc, phrase) for uscc, _, phrase, secret in rows if not secret)
    (secret_uscc,) = [uscc for uscc, _, _, secret in rows if secret]
    assert len(expected) == len(visits) - 1
    base = ["publish", "export", "--org", "150000", "--year", "2026", "--database-url", h.db.url]
    for suffix in ("xlsx", "csv", "json"):
        assert await asyncio.to_thread(main, [*base, str(tmp_path / f"gk.{suffix}")]) == 0
    doc = json.loads((tmp_path / "gk.json").read_text("utf-8"))
    assert sorted((r["uscc"], r["phrase"]) for r in doc["results"]) == expected
    assert {(r["published_on"], r["published_url"]) for r in doc["results"]} == {
        (public.ON_PORTAL, portal)
    }
    assert doc["withheld"] == 1
    assert [r["penalty"] for r in doc["results"] if r["penalty"]] == [f"{decision}（2026-12-20）"]
    lines = list(csv.DictReader(io.StringIO((tmp_path / "gk.csv").read_text("utf-8-sig"))))
    assert sorted((r["统一社会信用代码"], r["检查结果"]) for r in lines) == expected
    assert {r["公示网址"] for r in lines} == {portal}
    sheet = openpyxl.load_workbook(tmp_path / "gk.xlsx").active
    assert sheet is not None
    table = list(sheet.iter_rows(values_only=True))
    assert "另有 1 项检查依法不予公开" in str(table[0][0])
    assert sorted((r[1], r[6]) for r in table[3:]) == expected
    for path in (tmp_path / "gk.csv", tmp_path / "gk.json"):
        raw = path.read_bytes()
        assert secret_uscc.encode() not in raw and "涉密工程".encode() not in raw
    # A task filter keeps to the task; another year has nothing.
    assert await asyncio.to_thread(main, [*base, "--task", TASK, str(tmp_path / "t.json")]) == 0
    assert len(json.loads((tmp_path / "t.json").read_text("utf-8"))["results"]) == len(expected)
    base[5] = "2025"
    assert await asyncio.to_thread(main, [*base, str(tmp_path / "y.json")]) == 0
    assert json.loads((tmp_path / "y.json").read_text("utf-8"))["results"] == []
