"""Shared set-up for the results and swaps tests: a drawn task (helper-4's draw chat set-up) and
card clicks as WeCom sends them."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from storage.models import AuditEntry, Inspection, TeamMember
from tests.conftest import Harness
from tests.factories import add_targets
from tests.support.draw_chat import ADMIN, CHIEF, TASK, setup

__all__ = [
    "ADMIN",
    "CHIEF",
    "TASK",
    "Visit",
    "audit_actions",
    "click",
    "confirm",
    "describe",
    "drawn",
    "task_card_updates",
    "visits",
]


@dataclass(frozen=True)
class Visit:
    inspection_id: int
    number: int
    card_task_id: str
    members: list[str]


async def visits(h: Harness) -> list[Visit]:
    async with h.db.transaction() as s:
        rows = (
            await s.execute(
                select(Inspection.id, Inspection.number, Inspection.card_task_id, TeamMember.userid)
                .join(TeamMember, TeamMember.inspection_id == Inspection.id)
                .where(TeamMember.active.is_(True), Inspection.status == "open")
                .order_by(Inspection.number, TeamMember.position)
            )
        ).all()
        out: dict[int, Visit] = {}
        for inspection_id, number, task_id, userid in rows:
            v = out.setdefault(number, Visit(inspection_id, number, task_id or "", []))
            v.members.append(userid)
    return list(out.values())


async def drawn(h: Harness, *, more_general: int = 0, in_period: bool = True) -> list[Visit]:
    """The draw chat's task (5 inspections; 10 % of ``more_general`` targets more), drawn
    without a witness; with ``in_period``, the clock is then at the first day of its check
    period."""
    await setup(h)
    if more_general:
        async with h.db.transaction() as s:
            await add_targets(s, more_general, tier="general", start=300)
    await h.say(ADMIN, f"抽查 {TASK} 无见证 见证人均出差")
    if in_period:  # drawn on 2026-11-30; the check period begins the next day (Art. 22)
        h.clock.advance(days=1)
    return await visits(h)


async def special_visit(h: Harness, drawn_visits: list[Visit]) -> Visit:
    """The visit of the special target (Art. 25: the only tier checked more often)."""
    async with h.db.transaction() as s:
        tiers = dict((await s.execute(select(Inspection.id, Inspection.tier))).all())
    (found,) = [v for v in drawn_visits if tiers[v.inspection_id] == "special"]
    return found


async def click(
    h: Harness,
    user: str,
    visit: Visit,
    option: str | None,
    *,
    response_code: str | None = None,
    settle: bool = True,
    **fields: Any,
) -> str:
    """A tap on a result and 提交, as WeCom posts it; returns the click's ResponseCode."""
    code = response_code or secrets.token_hex(12)
    status, _ = await h.post_card_event(
        user,
        event_key=f"result:{visit.number}",
        task_id=visit.card_task_id,
        card_type="vote_interaction",
        response_code=code,
        selected=[("result", [option])] if option else [],
        **fields,
    )
    assert status == 200
    if settle:
        await h.settle()
    return code


async def audit_actions(h: Harness, prefix: str = "") -> list[str]:
    async with h.db.transaction() as s:
        rows = await s.execute(select(AuditEntry.action).order_by(AuditEntry.id))
        return [a for a in rows.scalars() if a.startswith(prefix)]


def confirmation_card(h: Harness, user: str) -> dict[str, Any]:
    """The newest 确认 / 修改 card shown back to ``user`` for a description."""
    found = [
        b["template_card"]
        for b in h.wecom.messages(user)
        if b.get("msgtype") == "template_card"
        and str(b["template_card"].get("task_id", "")).startswith("desc-")
    ]
    assert found, f"no confirmation card to {user}"
    return found[-1]


async def confirm(
    h: Harness, user: str, verb: str = "confirm", card: dict[str, Any] | None = None
) -> list[str]:
    """A tap on 确认 (or 修改: ``verb="edit"``) of the newest confirmation card (or ``card``);
    returns the texts the user then received."""
    card = card or confirmation_card(h, user)
    (key,) = [b["key"] for b in card["button_list"] if b["key"].endswith(f":{verb}")]
    before = len(h.wecom.texts_to(user))
    status, _ = await h.post_card_event(
        user,
        event_key=key,
        task_id=card["task_id"],
        card_type="button_interaction",
        response_code=secrets.token_hex(12),
    )
    assert status == 200
    await h.settle()
    return h.wecom.texts_to(user)[before:]


async def describe(h: Harness, user: str, text: str) -> list[str]:
    """The description owed, sent and confirmed on its card; what the user received."""
    shown = await h.say(user, text)
    return shown + await confirm(h, user)


def task_card_updates(h: Harness) -> list[dict[str, Any]]:
    """Updates of task cards (not of the 确认 / 修改 cards' buttons)."""
    return [u for u in h.wecom.card_updates if "template_card" in u]
