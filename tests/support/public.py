"""The public page's test set-up (一公开): settings with the page on, the page served over HTTP,
and a task whose results were reported, one made secret, and published."""

from __future__ import annotations

import datetime as dt
import random

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select, update

from bot.config import Settings
from bot.runtime.public import public_app
from inspection.results import ResultCode
from storage import public
from storage.db import Database
from storage.models import Inspector, Publication, PublicEntry, Target, Task
from storage.synthetic_checks import generate
from tests.conftest import START, Harness
from tests.factories import CITY, COUNTY, add_inspectors, add_targets
from tests.results_support import ADMIN, CHIEF, TASK, Visit, click, describe, drawn

PREFIX = "/public"
DESCRIPTION = "污水处理设施未运行，已当场责令整改"
RECORD_NO = "XCJL-2026-0815"
SECRET_REASON = "涉及国家秘密的甲项工程"


def public_settings(h: Harness, **public_overrides: object) -> Settings:
    section = h.settings.public.model_copy(
        update={"enabled": True, "base_url": "https://gk.example.gov.cn", **public_overrides}
    )
    return h.settings.model_copy(update={"public": section})


async def serve(h: Harness, **public_overrides: object) -> TestClient:
    """The page under its prefix, as `serve` mounts it (links and forms carry the prefix)."""
    app = web.Application()
    app.add_subapp(PREFIX + "/", public_app(public_settings(h, **public_overrides), h.db, h.clock))
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


async def publish_sample(h: Harness) -> list[Visit]:
    """Five inspections: four reported (one with a problem and its record number), one of
    those made secret, one still open; the city publishes the task on the bot's page."""
    visits = await drawn(h)
    async with h.db.transaction() as s:  # phone numbers: internal, never public
        for inspector in await s.scalars(select(Inspector)):
            inspector.phone = f"1390471{inspector.id:04d}"
    h.clock.set(h.clock.now().replace(month=12, day=7))
    await click(h, visits[0].members[0], visits[0], ResultCode.no_problem.value)
    await click(h, visits[1].members[0], visits[1], ResultCode.ordered_to_rectify.value)
    await describe(h, visits[1].members[0], DESCRIPTION)
    await h.say(visits[1].members[0], f"记录 {visits[1].number} {RECORD_NO}")
    await click(h, visits[2].members[0], visits[2], ResultCode.refused.value)
    await click(h, visits[3].members[0], visits[3], ResultCode.no_problem.value)
    (marked,) = await h.say(CHIEF, f"保密 {visits[3].number} {SECRET_REASON}")
    assert "保密" in marked
    async with h.db.transaction() as s:
        task = await s.scalar(select(Task).where(Task.code == TASK))
        assert task is not None
        row = Publication(
            task_id=task.id,
            org_code=COUNTY,  # the checking unit: its inspectors' (Art. 37)
            published_at=h.clock.now(),
            published_by=ADMIN,
            url=public_settings(h).public.url(f"/{CITY}/2026"),
        )
        s.add(row)
        await s.flush()
        done = await public.publish_lines(s, row, h.clock.now(), h.settings.tz)
    assert (done.lines, done.withheld) == (3, 1)
    return visits


async def internal_strings(h: Harness) -> list[str]:
    """What must never reach the public: people (names, userids, certificates, phone numbers),
    descriptions, record numbers. Each is in the database, so a scan for them can fail."""
    async with h.db.transaction() as s:
        people = (
            await s.execute(
                select(Inspector.name, Inspector.userid, Inspector.certificate_no, Inspector.phone)
            )
        ).all()
    assert people and all(all(row) for row in people)  # every field set, phones included
    return [DESCRIPTION, RECORD_NO, SECRET_REASON, ADMIN, CHIEF] + [
        str(v) for row in people for v in row
    ]


# --- a generated record of many published lines with names that share their bigrams ----------

UNITS = {"150100": ["150102", "150103"], "150600": ["150602"]}
CST = dt.timezone(dt.timedelta(hours=8))
# Few characters, so that bigrams repeat and fragments match many lines; with full-width letters
# and brackets, accented Latin and a space, as names are written (a search folds them).
ALPHABET = "鑫源化工煤业Ab1（)Äｃ "


def names(n: int) -> list[str]:
    rng = random.Random(5)
    return ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(2, 9))) for _ in range(n)]


async def publish_names(db: Database) -> list[tuple[int, str, str]]:
    """A generated record (``storage.synthetic_checks``) over targets named from ``ALPHABET``,
    every publication published as 公示 does (``public.publish_lines``): the lines (id, unit,
    name)."""
    async with db.transaction() as s:
        for n, (city, counties) in enumerate(UNITS.items()):
            for m, org in enumerate([city, *counties]):
                await add_targets(s, 40, org=org, start=1000 * (10 * n + m))
                await add_inspectors(s, 4, org=org, prefix=f"P{n}{m}")
        ids = list(await s.scalars(select(Target.id).order_by(Target.id)))
        for target_id, name in zip(ids, names(len(ids)), strict=True):
            await s.execute(update(Target).where(Target.id == target_id).values(name=name))
        await generate(s, seed=3, inspections=1500, year=2026, per_task=40, now=START)
        for publication in list(await s.scalars(select(Publication).order_by(Publication.id))):
            await public.publish_lines(s, publication, START, CST)
        rows = await s.execute(
            select(PublicEntry.id, PublicEntry.org_code, PublicEntry.target_name).where(
                PublicEntry.year == 2026
            )
        )
        found = [(i, o, t) for i, o, t in rows.all()]
    assert len(found) > 100
    return found
