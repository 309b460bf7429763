"""The public page's test set-up (一公开): settings with the page on, the page served over HTTP,
and a task whose results were reported, one made secret, and published."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.config import Settings
from bot.runtime.public import public_app
from inspection.results import ResultCode
from storage import public
from storage.models import Inspector, Publication, Task
from tests.conftest import Harness
from tests.factories import CITY, COUNTY
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
    """What must never reach the public: people, certificates, descriptions, record numbers."""
    async with h.db.transaction() as s:
        people = (
            await s.execute(select(Inspector.name, Inspector.userid, Inspector.certificate_no))
        ).all()
    return [DESCRIPTION, RECORD_NO, SECRET_REASON, ADMIN, CHIEF] + [
        str(v) for row in people for v in row if v
    ]
