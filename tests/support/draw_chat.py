"""The draw-chat set-up shared by the draw, results and articles tests: users with their roles,
a directory and a task created in chat, and the cards the stand-in delivered."""

from __future__ import annotations

from typing import Any

from tests.conftest import Harness
from tests.factories import CITY, COUNTY, FixedEntropy, add_inspectors, add_item, add_targets

ADMIN, CHIEF, ABOVE, OUTSIDER = "admin1", "chief1", "radmin", "countyadmin"
TASK = "T2026-150100-001"
NEW_TASK = (
    "新建任务 四季度双随机 范围=150100 特殊=25% 重点=25% 一般=10% "
    "检查期=2026-12-01~2026-12-31 事项=DQ01"
)


async def setup(h: Harness, *, people: int = 6, **task: str) -> None:
    h.runtime.worker.entropy = FixedEntropy()
    await h.grant(ADMIN, "admin", CITY)
    await h.grant(CHIEF, "chief", CITY)
    await h.grant(ABOVE, "admin", "150000")
    await h.grant(OUTSIDER, "admin", COUNTY)
    async with h.db.transaction() as s:
        await add_targets(s, 4, tier="special")
        await add_targets(s, 8, tier="key", start=100)
        await add_targets(s, 20, tier="general", start=200)
        await add_inspectors(s, people)
        await add_item(s, "DQ01", "大气污染防治")
    extra = " ".join(f"{k}={v}" for k, v in task.items())
    (reply,) = await h.say(ADMIN, f"{NEW_TASK} {extra}".strip())
    assert TASK in reply, reply


def cards(h: Harness) -> list[dict[str, Any]]:
    return [b["template_card"] for b in h.wecom.messages() if b.get("msgtype") == "template_card"]


def card_bodies(h: Harness) -> list[dict[str, Any]]:
    return [b for b in h.wecom.messages() if b.get("msgtype") == "template_card"]
