"""一公开 (Art. 37): one page per organisation and year, the year of the task 公示 publishes.

A task's checks may end after New Year: results of a 2026 task recorded in January 2027 are
published on the 2026 page, the address the 公示 reply gives and records; the page, its
downloads, its name search (whose bigrams are kept per year) and the publish export all show
them there, and the 2027 page does not."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from sqlalchemy import select

from bot.cli import main
from storage import public
from storage.models import Publication, PublicEntry
from tests.conftest import Harness
from tests.results_support import TASK
from tests.support.public import PREFIX, public_settings, serve
from tests.support.reminders import PUBLISHER, at, completed


async def test_art37_results_recorded_in_january_are_on_the_page_gongshi_names(
    h: Harness, tmp_path: Path
) -> None:
    visits = await completed(h, on=at(2027, 1, 5))
    h.runtime.worker.settings = public_settings(h)  # [public] enabled = true
    h.clock.set(at(2027, 1, 6, 10))
    (done,) = await h.say(PUBLISHER, f"公示 {TASK}")
    page = f"https://gk.example.gov.cn{PREFIX}/150102/2026"
    assert page in done
    async with h.db.transaction() as s:
        row = await s.scalar(select(Publication))
        lines = list(await s.scalars(select(PublicEntry).order_by(PublicEntry.id)))
    assert row is not None and row.url == page
    assert len(lines) == len(visits)
    assert {e.check_date.isoformat() for e in lines} == {"2027-01-05"}
    client = await serve(h)
    try:
        shown = await (await client.get(f"{PREFIX}/150102/2026.json")).json()
        next_year = await (await client.get(f"{PREFIX}/150102/2027.json")).json()
        name = lines[0].target_name
        searched = await (
            await client.get(f"{PREFIX}/150102/2026.json", params={"q": name[:3]})
        ).json()
    finally:
        await client.close()
    assert sorted(r["uscc"] for r in shown["results"]) == sorted(e.uscc for e in lines)
    assert {r["check_date"] for r in shown["results"]} == {"2027-01-05"}
    assert next_year["results"] == []
    assert lines[0].uscc in {r["uscc"] for r in searched["results"]}
    async with h.db.transaction() as s:
        by_name = await public.page(s, ["150102"], 2026, query=name[-2:])
    assert lines[0].id in {e.id for e in by_name.entries}
    out = tmp_path / "gk.json"
    base = ["publish", "export", "--org", "150102", "--database-url", h.db.url]
    assert await asyncio.to_thread(main, [*base, "--year", "2026", str(out)]) == 0
    exported = json.loads(out.read_text("utf-8"))["results"]
    assert sorted(r["uscc"] for r in exported) == sorted(e.uscc for e in lines)
    assert await asyncio.to_thread(main, [*base, "--year", "2027", str(out)]) == 0
    assert json.loads(out.read_text("utf-8"))["results"] == []
