"""一公开 of a draw (Art. 2, 27-29, 37; DRAW_ALGORITHM.md section 18): the public export verifies
the same draw in both verifiers while naming no person and no target of a secret check, and the
public page serves it only once the draw's inspections are done."""

from __future__ import annotations

import asyncio
import copy
import json
import re
from collections.abc import Callable
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.cli import main as cli_main
from inspection import reference_verifier
from inspection.public_draw import public_document
from inspection.results import ResultCode
from inspection.verify import verify_bytes, verify_export
from storage import draws
from storage.models import Inspection, InspectionResult, PublicDrawExport, Task
from tests.conftest import Harness
from tests.factories import CITY, COUNTY
from tests.results_support import CHIEF, TASK, Visit, click
from tests.support.draw_exports import base
from tests.support.public import PREFIX, internal_strings, publish_sample, serve

Doc = dict[str, Any]


def both(doc: Doc) -> tuple[str | None, str | None]:
    raw = json.dumps(doc, ensure_ascii=False).encode()
    return verify_bytes(raw), reference_verifier.verify_bytes(raw)


def sample() -> tuple[Doc, Doc, str]:
    """A full export with swaps and construction projects, and its public export with the
    first drawn target sealed as a secret check."""
    full = base("drawn")
    sealed = full["result"]["selected"][0]["key"]
    return full, json.loads(json.dumps(public_document(full, {sealed}))), sealed


def test_art37_a_public_export_with_swaps_verifies_in_both_verifiers() -> None:
    full, public, sealed = sample()
    assert len(public["amendments"]) == 2 and public["construction"] is not None
    assert both(public) == (None, None)
    assert verify_export(full) is None  # the full export is unchanged and verifies as before
    text = json.dumps(public, ensure_ascii=False)
    assert sealed not in text
    for i in full["input"]["inspectors"]:
        assert i["key"] not in text and i["userid"] not in text
    opened = [t for t in public["input"]["targets"] if t["opening"] is not None]
    assert len(opened) == len(full["input"]["targets"]) - 1


def change_pseudonym(doc: Doc) -> None:
    team = doc["result"]["teams"][0]
    team["members"][0] = doc["result"]["cycle"][-1]


def open_wrongly(doc: Doc) -> None:
    t = next(t for t in doc["input"]["targets"] if t["opening"] is not None)
    t["opening"]["key"] += "X"


def swap_openings(doc: Doc) -> None:
    a, b = [t for t in doc["input"]["targets"] if t["opening"] is not None][:2]
    a["opening"], b["opening"] = b["opening"], a["opening"]


def change_score(doc: Doc) -> None:
    t = next(t for t in doc["input"]["targets"] if t["opening"] is not None)
    t["score_hex"] = "0" * 64


def seal_and_lower_score(doc: Doc) -> None:
    """A sealed target whose score is claimed lower moves the selection: the teams differ."""
    t = next(t for t in doc["input"]["targets"] if t["opening"] is None)
    t["score_hex"] = "f" * 64


def rename_person(doc: Doc) -> None:
    doc["input"]["inspectors"][0]["person"] = doc["input"]["inspectors"][1]["person"]


def drop_a_person_from_the_cycle(doc: Doc) -> None:
    doc["result"]["cycle"].pop()


def change_replacement(doc: Doc) -> None:
    a = doc["amendments"][0]
    a["replacement"] = next(k for k in doc["result"]["cycle"] if k != a["replacement"])


def leave_out_a_project(doc: Doc) -> None:
    """Art. 25(4): every project is checked; one dropped with its team is still caught."""
    part = doc["construction"]
    gone = part["result"]["selected"].pop()
    part["result"]["teams"] = [t for t in part["result"]["teams"] if t["target_key"] != gone["key"]]
    part["input"]["counts"][gone["tier"]] -= 1


def add_a_name(doc: Doc) -> None:
    doc["input"]["inspectors"][0]["name"] = "张三"


@pytest.mark.parametrize(
    "tamper",
    [
        change_pseudonym,
        open_wrongly,
        swap_openings,
        change_score,
        seal_and_lower_score,
        rename_person,
        drop_a_person_from_the_cycle,
        change_replacement,
        leave_out_a_project,
        add_a_name,
    ],
)
def test_art27_a_tampered_public_export_is_rejected_by_both_verifiers(
    tamper: Callable[[Doc], None],
) -> None:
    _, public, _ = sample()
    forged = copy.deepcopy(public)
    tamper(forged)
    library, reference = both(forged)
    assert library is not None and reference is not None, (library, reference)


async def finish(h: Harness, visit: Visit) -> None:
    await click(h, visit.members[0], visit, ResultCode.no_problem.value)


async def test_art37_public_export_names_no_person_and_no_secret_target(
    h: Harness, db_url: str, tmp_path: Path
) -> None:
    visits = await publish_sample(h)
    async with h.db.transaction() as s:
        task = await s.scalar(select(Task).where(Task.code == TASK))
        assert task is not None
        with pytest.raises(draws.DrawRefused) as refused:
            await draws.public_export(s, task)
        assert refused.value.reason == "public_inspections_open"
    await finish(h, visits[4])
    async with h.db.transaction() as s:
        task = await s.scalar(select(Task).where(Task.code == TASK))
        assert task is not None
        doc = await draws.public_export(s, task)
        secret_key = await s.scalar(
            select(Inspection.target_key).where(Inspection.number == visits[3].number)
        )
        open_keys = set(
            await s.scalars(
                select(Inspection.target_key).where(Inspection.number != visits[3].number)
            )
        )
    assert both(doc) == (None, None)
    text = json.dumps(doc, ensure_ascii=False)
    assert secret_key and secret_key not in text
    assert all(k in text for k in open_keys)  # the other targets are opened
    for internal in await internal_strings(h):
        assert internal not in text, internal
    # The command line writes the same document.
    out = tmp_path / "public.json"
    code = await asyncio.to_thread(
        cli_main, ["draw", "export", "--public", TASK, str(out), "--database-url", db_url]
    )
    assert code == 0
    assert json.loads(out.read_text(encoding="utf-8")) == json.loads(json.dumps(doc))
    assert reference_verifier.main([str(out)]) == 0


async def test_art37_the_page_serves_the_public_record_only_after_the_inspections(
    h: Harness,
) -> None:
    visits = await publish_sample(h)
    client = await serve(h)
    url = f"{PREFIX}/{CITY}/2026/draws/{TASK}.json"
    try:
        early = await client.get(url)
        page_before = await (await client.get(f"{PREFIX}/{CITY}/2026/draws")).text()
        await finish(h, visits[4])
        served = await client.get(url)
        doc = json.loads(await served.text())
        page_after = await (await client.get(f"{PREFIX}/{CITY}/2026/draws")).text()
        other = await client.get(f"{PREFIX}/{CITY}/2026/draws/T0000-000000-000.json")
    finally:
        await client.close()
    assert early.status == 404 and other.status == 404
    assert "公开记录（可复核）" not in page_before
    assert served.status == 200 and both(doc) == (None, None)
    assert "公开记录（可复核）" in page_after and f"draws/{TASK}.json" in page_after
    for internal in await internal_strings(h):
        assert internal not in await served.text(), internal


async def test_art37_cli_refuses_a_public_export_before_the_inspections_in_one_line(
    h: Harness, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await publish_sample(h)
    out = tmp_path / "public.json"
    code = await asyncio.to_thread(
        cli_main, ["draw", "export", "--public", TASK, str(out), "--database-url", db_url]
    )
    assert code == 2 and not out.exists()
    err = capsys.readouterr().err
    assert "not done" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


async def test_art37_a_check_made_secret_after_its_draw_export_was_served_is_refused(
    h: Harness,
) -> None:
    visits = await publish_sample(h)  # visits[3] made secret before anything was served
    await finish(h, visits[4])
    client = await serve(h)
    url = f"{PREFIX}/{CITY}/2026/draws/{TASK}.json"
    try:
        served = await client.get(url)
        first = await served.text()
        (refusal,) = await h.say(CHIEF, f"保密 {visits[0].number} 涉及国家秘密")
        again = await (await client.get(url)).text()
    finally:
        await client.close()
    assert served.status == 200
    assert str(visits[0].number) in refusal and "第37条" in refusal
    assert h.clock.now().astimezone(h.settings.tz).strftime("%Y-%m-%d") in refusal
    async with h.db.transaction() as s:
        secret = await s.scalar(
            select(InspectionResult.secret)
            .join(Inspection, Inspection.id == InspectionResult.inspection_id)
            .where(Inspection.number == visits[0].number)
        )
    assert secret is False
    assert again == first  # the record the public has is the one still served


async def test_art37_the_public_export_is_built_once_per_draw_and_chain_head_for_every_instance(
    h: Harness,
) -> None:
    visits = await publish_sample(h)
    await finish(h, visits[4])
    url = f"{PREFIX}/{CITY}/2026/draws/{TASK}.json"
    one, two = await serve(h), await serve(h)  # two instances on one database
    try:
        first = await (await one.get(url)).text()
        async with h.db.transaction() as s:
            (kept,) = (await s.scalars(select(PublicDrawExport))).all()
            built = kept.built_at
            # Served from what is kept: a marker in its place is what the next request gets.
            kept.body = '{"kept": true}'
        h.clock.advance(minutes=5)
        from_other = await (await two.get(url)).text()
        async with h.db.transaction() as s:
            kept = await s.scalar(select(PublicDrawExport))
            assert kept is not None
            kept.amendments_head = "0" * 64  # another chain head: the kept one is stale
        rebuilt = await (await two.get(url)).text()
    finally:
        await one.close()
        await two.close()
    assert from_other == '{"kept": true}'
    assert rebuilt == first and both(json.loads(rebuilt)) == (None, None)
    async with h.db.transaction() as s:
        (row,) = (await s.scalars(select(PublicDrawExport))).all()
    assert row.built_at > built and row.first_served_at == built  # first served stays
    assert row.amendments_head != "0" * 64


def hrefs(html: str, part: str) -> set[str]:
    return {unescape(link) for link in re.findall(r'href="([^"]+)"', html) if part in link}


async def test_art37_every_draw_link_answers_from_the_region_city_and_county_pages(
    h: Harness,
) -> None:
    """The checking county's page (where 公示 points), the drawing city's and the region's all
    show the task; each of their task links opens its draw record, whose public record, the
    published algorithm and the stdlib verifier are linked and served as shipped."""
    visits = await publish_sample(h)
    await finish(h, visits[4])
    client = await serve(h)
    try:
        links: set[str] = set()
        for org in ("150000", CITY, COUNTY):
            page = await (await client.get(f"{PREFIX}/{org}/2026")).text()
            found = hrefs(page, "/draws/")
            assert found, org
            links |= found
        opened = {link: await client.get(link) for link in links}
        pages = {link: await r.text() for link, r in opened.items()}
        # The record's own URL on the county's page answers too (any org of the task's chain).
        county_json = await client.get(f"{PREFIX}/{COUNTY}/2026/draws/{TASK}.json")
        county_record = await county_json.text()
        (draw_page,) = set(pages.values())
        (record,) = hrefs(draw_page, ".json")
        served_record = await (await client.get(record)).text()
        files = {}
        for name in ("DRAW_ALGORITHM.md", "reference_verifier.py"):
            (link,) = hrefs(draw_page, f"/verify/{name}")
            got = await client.get(link)
            files[name] = (got.status, got.headers, await got.read())
        unknown = await client.get(f"{PREFIX}/verify/draw.py")
    finally:
        await client.close()
    assert links == {f"{PREFIX}/{CITY}/2026/draws/{TASK}"}  # the drawing city, the task's year
    assert {r.status for r in opened.values()} == {200}
    assert TASK in draw_page and "承诺值" in draw_page
    assert "python3 reference_verifier.py" in draw_page
    assert county_json.status == 200 and county_record == served_record
    assert both(json.loads(served_record)) == (None, None)
    shipped = Path(reference_verifier.__file__).parent
    for name, (status, headers, body) in files.items():
        assert status == 200 and body == (shipped / name).read_bytes(), name
        assert headers["Content-Type"].startswith(("text/markdown", "text/plain"))
        assert "charset=utf-8" in headers["Content-Type"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert unknown.status == 404
