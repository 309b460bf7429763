"""Reminders sent once per occasion, the facts they are computed from, and deadlines as last
announced (Art. 37, 40, 43).

A reminder is claimed by inserting its key (kind, subject, occasion) under a unique
constraint, in the transaction that queues its message: on PostgreSQL a second instance's
insert waits for the first and then finds the key taken; on SQLite writers are serialised. So
a reminder is sent once, whatever the instances and restarts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from inspection.reminders import Reminder
from storage.db import insert_for
from storage.models import (
    Deadline,
    DigestChat,
    Inspection,
    OutboxMessage,
    Target,
    Task,
    TeamMember,
)
from storage.models import Reminder as ReminderRow
from storage.outbox import APPCHAT_CREATE

CHUNK = 500  # keys per statement: far below both databases' parameter limits


async def claim(
    session: AsyncSession, reminders: Sequence[Reminder], now: dt.datetime
) -> list[Reminder]:
    """The reminders this transaction now owns: those whose key nobody had claimed."""
    fresh = await _unclaimed(session, reminders)
    won: list[Reminder] = []
    for i in range(0, len(fresh), CHUNK):
        part = fresh[i : i + CHUNK]
        rows = await session.execute(
            insert_for(session)(ReminderRow)
            .values(
                [
                    {
                        "kind": r.kind,
                        "subject": r.subject,
                        "occasion": r.occasion,
                        "recipients": list(r.recipients),
                        "sent_at": now,
                    }
                    for r in part
                ]
            )
            .on_conflict_do_nothing(index_elements=["kind", "subject", "occasion"])
            .returning(ReminderRow.kind, ReminderRow.subject, ReminderRow.occasion)
        )
        keys = {tuple(k) for k in rows.all()}
        won += [r for r in part if (r.kind, r.subject, r.occasion) in keys]
    return won


async def _unclaimed(session: AsyncSession, reminders: Sequence[Reminder]) -> list[Reminder]:
    """Drop what was sent before with one read, so a tick with nothing new writes nothing."""
    unique = list({(r.kind, r.subject, r.occasion): r for r in reminders}.values())
    taken: set[tuple[str, str, str]] = set()
    for i in range(0, len(unique), CHUNK):
        keys = [(r.kind, r.subject, r.occasion) for r in unique[i : i + CHUNK]]
        rows = await session.execute(
            select(ReminderRow.kind, ReminderRow.subject, ReminderRow.occasion).where(
                tuple_(ReminderRow.kind, ReminderRow.subject, ReminderRow.occasion).in_(keys)
            )
        )
        taken |= {(k, s, o) for k, s, o in rows.all()}
    return [r for r in unique if (r.kind, r.subject, r.occasion) not in taken]


async def sent(session: AsyncSession, kind: str, subject: str) -> list[ReminderRow]:
    rows = await session.execute(
        select(ReminderRow)
        .where(ReminderRow.kind == kind, ReminderRow.subject == subject)
        .order_by(ReminderRow.id)
    )
    return list(rows.scalars())


# --- facts ------------------------------------------------------------------------------------


async def completed_tasks(session: AsyncSession) -> list[Task]:
    """Tasks whose every inspection has a result: the Art. 37 clock runs."""
    rows = await session.execute(
        select(Task).where(Task.completed_at.is_not(None)).order_by(Task.id)
    )
    return list(rows.scalars())


@dataclass(frozen=True)
class OpenInspection:
    number: int
    task_id: int
    target_name: str
    check_end: dt.date
    members: tuple[str, ...]


async def open_inspections_ending_by(session: AsyncSession, day: dt.date) -> list[OpenInspection]:
    """Open inspections (no result yet) whose check period ends by ``day``, with their
    active team members (Art. 40)."""
    conn = await session.connection()  # plain rows: tens of thousands, no ORM needed
    rows = await conn.execute(
        select(
            Inspection.number,
            Inspection.task_id,
            Target.name,
            Inspection.check_end,
            TeamMember.userid,
        )
        .join(Target, Target.id == Inspection.target_id)
        .outerjoin(
            TeamMember,
            (TeamMember.inspection_id == Inspection.id) & TeamMember.active.is_(True),
        )
        .where(
            Inspection.status == "open",
            Inspection.result_code.is_(None),
            Inspection.check_end <= day,
        )
        .order_by(Inspection.number, TeamMember.position)
    )
    out: dict[int, tuple[int, str, dt.date, list[str]]] = {}
    for number, task_id, name, end, userid in rows.all():
        entry = out.setdefault(number, (task_id, name, end, []))
        if userid:
            entry[3].append(userid)
    return [
        OpenInspection(n, t, name, end, tuple(dict.fromkeys(m)))
        for n, (t, name, end, m) in out.items()
    ]


async def tasks_by_id(session: AsyncSession, ids: Sequence[int]) -> dict[int, Task]:
    if not ids:
        return {}
    rows = await session.execute(select(Task).where(Task.id.in_(list(ids))))
    return {t.id: t for t in rows.scalars()}


@dataclass(frozen=True)
class KeyProject:
    key: str
    name: str
    org_code: str
    operation_started_on: dt.date


async def unchecked_key_projects(
    session: AsyncSession, approvals: Sequence[str], began_from: dt.date, began_to: dt.date
) -> list[KeyProject]:
    """Art. 25(4): construction projects approved at ``approvals`` levels that went into
    operation between the two dates and have no inspection (drawn or done) since their
    construction began."""
    checked = (
        select(Inspection.id)
        .where(
            Inspection.target_id == Target.id,
            Inspection.status.in_(("open", "done", "merged")),
            Inspection.check_end >= Target.construction_started_on,
        )
        .exists()
    )
    rows = await session.execute(
        select(Target.key, Target.name, Target.org_code, Target.operation_started_on)
        .where(
            Target.approval_level.in_(list(approvals)),
            Target.construction_started_on.is_not(None),
            Target.operation_started_on.between(began_from, began_to),
            Target.status != "deregistered",
            ~checked,
        )
        .order_by(Target.key)
    )
    return [KeyProject(k, n, o, op) for k, n, o, op in rows.all() if op is not None]


# --- deadlines as last announced ------------------------------------------------------------


async def deadlines(session: AsyncSession, kind: str) -> dict[str, Deadline]:
    rows = await session.execute(select(Deadline).where(Deadline.kind == kind))
    return {d.subject: d for d in rows.scalars()}


async def note_deadline(
    session: AsyncSession,
    kind: str,
    subject: str,
    due: dt.date,
    provisional: bool,
    now: dt.datetime,
) -> None:
    """Remember a deadline as computed now (first time only; ``Deadline`` rows already
    known are updated by the caller)."""
    await session.execute(
        insert_for(session)(Deadline)
        .values(kind=kind, subject=subject, due=due, provisional=provisional, computed_at=now)
        .on_conflict_do_nothing(index_elements=["kind", "subject"])
    )


# --- organisations' digest chats ----------------------------------------------------------------


async def digest_chats(session: AsyncSession) -> dict[str, str]:
    """Organisation code -> the group chat its reminders go to, once WeCom has created it: until
    then (or when WeCom refused it, which the admins are told) they go to each person."""
    rows = await session.execute(
        select(DigestChat.org_code, DigestChat.chatid).join(
            OutboxMessage,
            (OutboxMessage.ref == DigestChat.chatid)
            & (OutboxMessage.api == APPCHAT_CREATE)
            & (OutboxMessage.status == "sent"),
        )
    )
    return {org: chatid for org, chatid in rows.all()}


async def digest_chat(session: AsyncSession, org_code: str) -> DigestChat | None:
    return await session.get(DigestChat, org_code, with_for_update=True)


async def open_digest_chat(
    session: AsyncSession, org_code: str, chatid: str, by: str, now: dt.datetime
) -> None:
    session.add(DigestChat(org_code=org_code, chatid=chatid, opened_by=by, opened_at=now))


async def close_digest_chat(session: AsyncSession, org_code: str) -> bool:
    result = await session.execute(delete(DigestChat).where(DigestChat.org_code == org_code))
    return bool(getattr(result, "rowcount", 0))
