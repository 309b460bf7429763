"""Inspection results (Art. 35, 37, 38), their corrections and secrecy marks, and task completion.

The database decides who submitted first: a submission is a conditional upsert on the one
``inspection_result`` row of its inspection, which succeeds only when there is no row yet, or the
row is a hold (a member writing the description of a problem) that is this member's own or has
run out. Two teammates at once, or the same click twice, therefore give one result. Every
result and correction is also kept, in order, in ``result_entry``: the original stays.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, and_, cast, delete, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from inspection.deadlines import results_publication_due
from inspection.results import PHRASES, ResultCode
from inspection.workdays import CalendarNotCovered, WorkCalendar
from storage import due as due_store
from storage import facts
from storage.db import insert_for
from storage.draws import Assignment, Member
from storage.models import (
    DirectoryHistory,
    Draw,
    DueAction,
    Inspection,
    InspectionResult,
    Inspector,
    PublicDrawExport,
    RecordNumber,
    ResultEntry,
    RoleBinding,
    Target,
    Task,
    TeamMember,
)
from storage.tasks import rule_params

HELD, RECORDED = "held", "recorded"
LIVE = ("open", "done", "merged")  # an inspection that counts (not cancelled by a re-draw)
CHANNEL_LABELS = {"card": "卡片", "text": "文字消息", "console": "控制台", "demo": "演示"}


def phrases_for(on: dt.date) -> dict[str, str]:
    """Code -> exact phrase: the seven of Art. 38 in order, then the region's additions."""
    out = {code.value: phrase for code, phrase in PHRASES.items()}
    out.update(rule_params(on).extra_result_phrases)
    return out


# --- the team ------------------------------------------------------------------------------


async def active_member(
    session: AsyncSession, inspection_id: int, userid: str
) -> TeamMember | None:
    rows = await session.execute(
        select(TeamMember)
        .where(
            TeamMember.inspection_id == inspection_id,
            TeamMember.userid == userid,
            TeamMember.active.is_(True),
        )
        .order_by(TeamMember.position)
        .limit(1)
    )
    return rows.scalar_one_or_none()


async def was_member(session: AsyncSession, inspection_id: int, userid: str) -> bool:
    row = await session.execute(
        select(TeamMember.id)
        .where(TeamMember.inspection_id == inspection_id, TeamMember.userid == userid)
        .limit(1)
    )
    return row.first() is not None


async def team(session: AsyncSession, inspection_id: int) -> list[tuple[TeamMember, str]]:
    """Active members in team order, with their names."""
    rows = await session.execute(
        select(TeamMember, Inspector.name)
        .join(Inspector, Inspector.id == TeamMember.inspector_id)
        .where(TeamMember.inspection_id == inspection_id, TeamMember.active.is_(True))
        .order_by(TeamMember.position)
    )
    return [(m, name) for m, name in rows.all()]


async def card_holders(session: AsyncSession, inspection_id: int) -> dict[str, list[str]]:
    """Each task card of the inspection (its task id) and who got it, swapped out or not."""
    rows = await session.execute(
        select(TeamMember.card_task_id, TeamMember.userid)
        .where(TeamMember.inspection_id == inspection_id, TeamMember.card_task_id.is_not(None))
        .order_by(TeamMember.position, TeamMember.id)
    )
    out: dict[str, list[str]] = {}
    for task_id, userid in rows.all():
        if task_id and userid and userid not in out.setdefault(task_id, []):
            out[task_id].append(userid)
    return out


async def team_userids(session: AsyncSession, inspection_id: int) -> list[str]:
    return list(dict.fromkeys(m.userid for m, _ in await team(session, inspection_id)))


async def inspection_by_number(session: AsyncSession, number: int) -> Inspection | None:
    rows = await session.execute(select(Inspection).where(Inspection.number == number))
    return rows.scalar_one_or_none()


async def assignment_of(session: AsyncSession, inspection: Inspection) -> Assignment:
    """One inspection as its card shows it (the draw's ``Assignment``)."""
    target = await session.get(Target, inspection.target_id)
    members = tuple(
        Member(m.certificate_no, m.userid, name, m.auxiliary)
        for m, name in await team(session, inspection.id)
    )
    return Assignment(
        inspection.id,
        inspection.number,
        inspection.target_key,
        target.name if target else inspection.target_key,
        target.address if target else "",
        inspection.tier,
        inspection.method,
        inspection.origin,
        members,
        inspection.card_task_id,
        inspection.chatid,
        sites=await _other_sites(session, inspection),
    )


async def _other_sites(
    session: AsyncSession, inspection: Inspection
) -> tuple[tuple[str, str, str], ...]:
    """Art. 19: the other sites of the same market entity that this visit covers (the draw
    merged them into it, in the same task)."""
    rows = await session.execute(
        select(Inspection.target_key, Target.name, Target.address)
        .join(Target, Target.id == Inspection.target_id)
        .where(
            Inspection.merged_into_id == inspection.id,
            Inspection.task_id == inspection.task_id,
        )
        .order_by(Inspection.number)
    )
    return tuple((k, n, a) for k, n, a in rows.all())


async def names_of(session: AsyncSession, userids: Sequence[str]) -> dict[str, str]:
    if not userids:
        return {}
    rows = await session.execute(
        select(Inspector.userid, Inspector.name).where(Inspector.userid.in_(list(userids)))
    )
    names = {u: n for u, n in rows.all() if u}
    others = [u for u in userids if u not in names]
    if others:  # chiefs and admins outside the inspector directory: the name given at 授权
        named = await session.execute(
            select(RoleBinding.userid, RoleBinding.name).where(
                RoleBinding.userid.in_(others), RoleBinding.name != ""
            )
        )
        names.update({u: n for u, n in named.all()})
    return names


# --- submissions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Submission:
    code: str
    phrase: str
    userid: str
    name: str
    channel: str
    description: str = ""
    department: str = ""


async def claim(
    session: AsyncSession,
    inspection: Inspection,
    s: Submission,
    *,
    now: dt.datetime,
    hold_until: dt.datetime | None = None,
) -> tuple[bool, InspectionResult]:
    """Record ``s`` (or, with ``hold_until``, hold the inspection for its submitter) unless
    someone else's result or live hold is there. Returns (won, the row as it now stands)."""
    values = _result_values(inspection.id, inspection.task_id, s, now, hold_until)
    ins = insert_for(session)(InspectionResult).values(**values)
    changed = [
        k for k in values if k not in ("inspection_id", "task_id", "secret", "secret_reason")
    ]
    stmt = ins.on_conflict_do_update(
        index_elements=["inspection_id"],
        set_={k: ins.excluded[k] for k in changed},
        where=and_(
            InspectionResult.state == HELD,
            or_(InspectionResult.userid == s.userid, InspectionResult.held_until <= now),
        ),
    ).returning(InspectionResult.inspection_id)
    won = (await session.execute(stmt)).first() is not None
    row = await session.get(InspectionResult, inspection.id, populate_existing=True)
    assert row is not None
    if won and hold_until is None:
        await _recorded(session, inspection, s, now)
    return won, row


def _result_values(
    inspection_id: int,
    task_id: int,
    s: Submission,
    now: dt.datetime,
    hold_until: dt.datetime | None = None,
) -> dict[str, object]:
    """The ``inspection_result`` row of a submission: recorded, or held until ``hold_until``."""
    state = HELD if hold_until is not None else RECORDED
    return {
        "inspection_id": inspection_id,
        "task_id": task_id,
        "state": state,
        "code": s.code,
        "phrase": s.phrase,
        "description": s.description,
        "department": s.department,
        "userid": s.userid,
        "name": s.name,
        "channel": s.channel,
        "at": now,
        "held_until": hold_until,
        "case_filing": s.code == ResultCode.case_filed.value and state == RECORDED,
        "secret": False,
        "secret_reason": "",
    }


def _entry(
    inspection_id: int, seq: int, kind: str, s: Submission, now: dt.datetime, reason: str = ""
) -> ResultEntry:
    """One line of an inspection's result history: a submission, merge or correction."""
    return ResultEntry(
        inspection_id=inspection_id,
        seq=seq,
        kind=kind,
        code=s.code,
        phrase=s.phrase,
        description=s.description,
        department=s.department,
        reason=reason,
        userid=s.userid,
        name=s.name,
        channel=s.channel,
        at=now,
    )


async def _recorded(
    session: AsyncSession, inspection: Inspection, s: Submission, now: dt.datetime
) -> None:
    session.add(_entry(inspection.id, 1, "result", s, now))
    inspection.result_code, inspection.completed_at, inspection.status = s.code, now, "done"
    shared = [inspection.id]
    # Art. 19, 21, 23: visits of other tasks merged into this one share its result.
    for merged in await merged_into(session, inspection.id):
        merged.result_code, merged.completed_at = s.code, now
        await session.execute(
            insert_for(session)(InspectionResult)
            .values(**_result_values(merged.id, merged.task_id, s, now))
            .on_conflict_do_nothing(index_elements=["inspection_id"])
        )
        session.add(_entry(merged.id, 1, "merged", s, now, f"与编号 {inspection.number} 合并检查"))
        shared.append(merged.id)
    await facts.refresh(session, shared)  # the statistics table's rows, same transaction


async def merged_into(session: AsyncSession, inspection_id: int) -> list[Inspection]:
    rows = await session.execute(
        select(Inspection).where(
            Inspection.merged_into_id == inspection_id, Inspection.status == "merged"
        )
    )
    return list(rows.scalars())


async def release_hold(session: AsyncSession, inspection_id: int, now: dt.datetime) -> str | None:
    """Drop a hold that has run out; returns the holder, or None when there was none to drop."""
    row = await session.get(InspectionResult, inspection_id, populate_existing=True)
    if row is None or row.state != HELD or row.held_until is None or row.held_until > now:
        return None
    holder = row.userid
    await session.execute(
        delete(InspectionResult).where(
            InspectionResult.inspection_id == inspection_id,
            InspectionResult.state == HELD,
            InspectionResult.held_until <= now,
        )
    )
    session.expunge(row)
    return holder


async def drop_hold(session: AsyncSession, inspection_id: int, userid: str) -> None:
    """The holder lets their own hold go (nothing recorded)."""
    row = await session.get(InspectionResult, inspection_id)
    await session.execute(
        delete(InspectionResult).where(
            InspectionResult.inspection_id == inspection_id,
            InspectionResult.state == HELD,
            InspectionResult.userid == userid,
        )
    )
    if row is not None:
        session.expunge(row)


async def current(session: AsyncSession, inspection_id: int) -> InspectionResult | None:
    return await session.get(InspectionResult, inspection_id, populate_existing=True)


async def entries(session: AsyncSession, inspection_id: int) -> list[ResultEntry]:
    rows = await session.execute(
        select(ResultEntry)
        .where(ResultEntry.inspection_id == inspection_id)
        .order_by(ResultEntry.seq)
    )
    return list(rows.scalars())


# --- what a result changes in the directory (Art. 13, 38) -----------------------------------


async def _visit_sites(session: AsyncSession, inspection: Inspection) -> list[Target]:
    """The targets of a visit (Art. 19): its own, and those of the inspections merged into it
    that share its credit code (every site of one market entity)."""
    lead = await session.get(Target, inspection.target_id)
    if lead is None:
        return []
    sites = [lead]
    if lead.uscc:
        for merged in await merged_into(session, inspection.id):
            other = await session.get(Target, merged.target_id)
            if other is not None and other.uscc == lead.uscc and other not in sites:
                sites.append(other)
    return sites


def _status_change(
    target: Target, after: str, by: str, now: dt.datetime, evidence: str
) -> DirectoryHistory:
    return DirectoryHistory(
        kind="target",
        subject_key=target.key,
        field="status",
        before=target.status,
        after=after,
        actor=by,
        at=now,
        evidence=evidence,
    )


async def deregister_target(
    session: AsyncSession, inspection: Inspection, *, by: str, now: dt.datetime
) -> list[str]:
    """A result 检查对象已注销 marks every site of the visit deregistered (Art. 13, 19, 38),
    with the inspection as the evidence in the directory history; they leave later pools.
    Returns the keys it marked (none if all already were)."""
    marked: list[str] = []
    for target in await _visit_sites(session, inspection):
        if target.status == "deregistered":
            continue
        evidence = f"inspection:{inspection.number}"
        session.add(_status_change(target, "deregistered", by, now, evidence))
        target.status, target.updated_at = "deregistered", now
        marked.append(target.key)
    await session.flush()
    return marked


async def reinstate_target(
    session: AsyncSession,
    inspection: Inspection,
    *,
    by: str,
    now: dt.datetime,
    evidence: str,
) -> list[tuple[str, str]]:
    """A correction away from 检查对象已注销 gives back each site the status it had before
    that result (from its directory history), with the correction as evidence; a status
    changed since by anything else stays. Returns (key, status restored)."""
    h = DirectoryHistory
    restored: list[tuple[str, str]] = []
    for target in await _visit_sites(session, inspection):
        last = await session.scalar(
            select(h)
            .where(h.kind == "target", h.subject_key == target.key, h.field == "status")
            .order_by(h.id.desc())
            .limit(1)
        )
        if (
            last is None
            or last.evidence != f"inspection:{inspection.number}"
            or last.after != "deregistered"
            or target.status != "deregistered"
            or not isinstance(last.before, str)
        ):
            continue
        session.add(_status_change(target, last.before, by, now, evidence))
        target.status, target.updated_at = last.before, now
        restored.append((target.key, last.before))
    await session.flush()
    return restored


# --- corrections and secrecy (Art. 37) -----------------------------------------------------


class NotAllowed(Exception):
    """The change cannot be made as asked: ``reason`` is a stable code ("no_result",
    "published", "unchanged", "already_secret", "export_served"); the chat's wording is in ``handlers.results``."""

    def __init__(self, reason: str, **facts: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.facts = facts


async def correct(
    session: AsyncSession,
    inspection: Inspection,
    s: Submission,
    *,
    reason: str,
    now: dt.datetime,
) -> tuple[ResultEntry, ResultEntry]:
    """A chief's correction; the earlier entries stay. After publication the public line is
    rewritten by the caller (``storage.public.republish``) and says it was corrected. Returns
    (the entry it replaces, the new entry)."""
    row = await current(session, inspection.id)
    if row is None or row.state != RECORDED:
        raise NotAllowed("no_result", number=inspection.number)
    if row.code == s.code and row.description == s.description:
        raise NotAllowed("unchanged", number=inspection.number, phrase=row.phrase)
    corrected = {
        "code": s.code,
        "phrase": s.phrase,
        "description": s.description,
        "department": s.department,
        "case_filing": row.case_filing or s.code == ResultCode.case_filed.value,
    }
    changed = await session.execute(
        update(InspectionResult)
        .where(InspectionResult.inspection_id == inspection.id, InspectionResult.state == RECORDED)
        .values(**corrected)
        .execution_options(synchronize_session=False)
    )
    if not changed.rowcount:  # type: ignore[attr-defined]
        raise NotAllowed("no_result", number=inspection.number)
    before = (await entries(session, inspection.id))[-1]
    entry = _entry(inspection.id, before.seq + 1, "correction", s, now, reason)
    session.add(entry)
    inspection.result_code = s.code
    shared = [inspection.id]
    # Merged visits share the result (see _recorded), so they take the correction whole.
    for merged in await merged_into(session, inspection.id):
        merged.result_code = s.code
        await session.execute(
            update(InspectionResult)
            .where(InspectionResult.inspection_id == merged.id)
            .values(**corrected)
        )
        shared.append(merged.id)
    await facts.refresh(session, shared)  # the statistics table's rows, same transaction
    await session.refresh(row)
    return before, entry


def _amendable(
    row: InspectionResult | None, inspection: Inspection, userid: str
) -> InspectionResult:
    """The submitter may amend their own result's description or record number until a chief
    confirms it or it is published (refusals as ``NotAllowed``)."""
    if row is None or row.state != RECORDED:
        raise NotAllowed("no_result", number=inspection.number)
    if row.userid != userid:
        raise NotAllowed("not_yours", number=inspection.number, name=row.name or row.userid)
    if row.published_at is not None:
        raise NotAllowed("published", number=inspection.number)
    if row.confirmed_at is not None:
        raise NotAllowed(
            "confirmed", number=inspection.number, by=row.confirmed_by, at=row.confirmed_at
        )
    return row


async def amend_description(
    session: AsyncSession,
    inspection: Inspection,
    s: Submission,
    *,
    now: dt.datetime,
) -> tuple[ResultEntry, ResultEntry]:
    """The submitter's own amendment of their description (phrase unchanged); the earlier
    entries stay. Returns (the entry it replaces, the new entry)."""
    row = _amendable(await current(session, inspection.id), inspection, s.userid)
    if row.description == s.description and row.department == s.department:
        raise NotAllowed("unchanged_text", number=inspection.number)
    changed = await session.execute(
        update(InspectionResult)
        .where(
            InspectionResult.inspection_id == inspection.id,
            InspectionResult.state == RECORDED,
            InspectionResult.userid == s.userid,
            InspectionResult.confirmed_at.is_(None),
            InspectionResult.published_at.is_(None),
        )
        .values(description=s.description, department=s.department)
        .execution_options(synchronize_session=False)
    )
    if not changed.rowcount:  # type: ignore[attr-defined]
        raise NotAllowed("no_result", number=inspection.number)
    before = (await entries(session, inspection.id))[-1]
    amended = Submission(
        row.code, row.phrase, s.userid, s.name, s.channel, s.description, s.department
    )
    entry = _entry(inspection.id, before.seq + 1, "amendment", amended, now, "提交人修改说明")
    session.add(entry)
    for merged in await merged_into(session, inspection.id):
        await session.execute(
            update(InspectionResult)
            .where(InspectionResult.inspection_id == merged.id)
            .values(description=s.description, department=s.department)
        )
    await session.flush()
    await session.refresh(row)
    return before, entry


async def amend_record_no(
    session: AsyncSession,
    inspection: Inspection,
    record_no: str,
    *,
    by: str,
    now: dt.datetime,
) -> RecordNumber:
    """The submitter replaces the record number they attached last; the old one is kept,
    marked superseded. Returns the replaced row."""
    row = await current(session, inspection.id)
    if row is not None:
        _amendable(row, inspection, by)
    rows = await session.execute(
        select(RecordNumber)
        .where(
            RecordNumber.inspection_id == inspection.id,
            RecordNumber.userid == by,
            RecordNumber.superseded_at.is_(None),
        )
        .order_by(RecordNumber.id.desc())
        .limit(1)
    )
    old = rows.scalar_one_or_none()
    if old is None:
        raise NotAllowed("no_record_no", number=inspection.number)
    if old.record_no == record_no:
        raise NotAllowed("unchanged_text", number=inspection.number)
    if not await attach_record_no(session, inspection, record_no, by=by, now=now):
        raise NotAllowed("record_no_taken", number=inspection.number, record_no=record_no)
    old.superseded_at = now
    await session.flush()
    return old


async def confirm_result(
    session: AsyncSession, inspection: Inspection, *, by: str, now: dt.datetime
) -> InspectionResult:
    """A chief's explicit confirmation: the submitter can no longer amend it."""
    row = await current(session, inspection.id)
    if row is None or row.state != RECORDED:
        raise NotAllowed("no_result", number=inspection.number)
    changed = await session.execute(
        update(InspectionResult)
        .where(
            InspectionResult.inspection_id == inspection.id,
            InspectionResult.state == RECORDED,
            InspectionResult.confirmed_at.is_(None),
        )
        .values(confirmed_by=by, confirmed_at=now)
        .execution_options(synchronize_session=False)
    )
    await session.refresh(row)
    if not changed.rowcount:  # type: ignore[attr-defined]
        raise NotAllowed(
            "confirmed", number=inspection.number, by=row.confirmed_by, at=row.confirmed_at
        )
    return row


async def mark_secret(
    session: AsyncSession, inspection: Inspection, *, reason: str, by: str, now: dt.datetime
) -> None:
    """Art. 37: secrets, national or public safety: the result is never published."""
    row = await current(session, inspection.id)
    if row is None or row.state != RECORDED:
        raise NotAllowed("no_result", number=inspection.number)
    if inspection.draw_id is not None:
        # The public export of the draw names its targets: once served, it is too late (the
        # lock: against the export being built at this moment, ``served_public_export``).
        await session.execute(
            select(Draw.id).where(Draw.id == inspection.draw_id).with_for_update()
        )
        served = await session.scalar(
            select(PublicDrawExport.first_served_at).where(
                PublicDrawExport.draw_id == inspection.draw_id
            )
        )
        if served is not None:
            raise NotAllowed("export_served", number=inspection.number, served=served)
    changed = await session.execute(
        update(InspectionResult)
        .where(InspectionResult.inspection_id == inspection.id, InspectionResult.secret.is_(False))
        .values(secret=True, secret_reason=reason, secret_by=by, secret_at=now)
        .execution_options(synchronize_session=False)
    )
    if not changed.rowcount:  # type: ignore[attr-defined]
        raise NotAllowed("already_secret", number=inspection.number)
    await session.refresh(row)


async def publishable(session: AsyncSession, task_id: int) -> list[InspectionResult]:
    """What the publication work may publish for a task: recorded results that are not
    secret (Art. 37)."""
    rows = await session.execute(
        select(InspectionResult)
        .where(
            InspectionResult.task_id == task_id,
            InspectionResult.state == RECORDED,
            InspectionResult.secret.is_(False),
        )
        .order_by(InspectionResult.inspection_id)
    )
    return list(rows.scalars())


# --- record numbers (Art. 35) --------------------------------------------------------------


async def attach_record_no(
    session: AsyncSession, inspection: Inspection, record_no: str, *, by: str, now: dt.datetime
) -> bool:
    """False when that number was already attached."""
    stmt = (
        insert_for(session)(RecordNumber)
        .values(inspection_id=inspection.id, record_no=record_no, userid=by, at=now)
        .on_conflict_do_nothing(index_elements=["inspection_id", "record_no"])
        .returning(RecordNumber.id)
    )
    return (await session.execute(stmt)).first() is not None


async def record_numbers(session: AsyncSession, inspection_id: int) -> list[RecordNumber]:
    """Every number attached, superseded ones included (in order)."""
    rows = await session.execute(
        select(RecordNumber)
        .where(RecordNumber.inspection_id == inspection_id)
        .order_by(RecordNumber.id)
    )
    return list(rows.scalars())


# --- task completion (Art. 37) -------------------------------------------------------------


@functools.cache
def work_calendar(
    holidays: tuple[dt.date, ...] = (), makeup_workdays: tuple[dt.date, ...] = ()
) -> WorkCalendar:
    """The State Council schedule as packaged, plus the days configured in [calendar] (a year
    the package does not know yet, e.g. 2027, once the schedule is published)."""
    return WorkCalendar.from_chinese_calendar(holidays, makeup_workdays)


@dataclass(frozen=True)
class Completion:
    task: Task
    completed_on: dt.date
    publication_due: dt.date | None
    calendar_missing: int | None  # the year whose holiday schedule is not loaded
    missing: tuple[int, ...] = ()  # inspection numbers still without a result
    # Every publishable result was recorded after the clock start: due from its recording.
    recorded_later: bool = False


PERIOD_END_DUE = "task.period_end"


def period_end(task: Task, tz: dt.tzinfo) -> dt.datetime:
    """The last instant of the task's check period, local time: its completion date when a
    result is still missing then (Art. 37)."""
    return dt.datetime.combine(task.check_end, dt.time.max, tz)


async def schedule_period_end(session: AsyncSession, task: Task, tz: dt.tzinfo) -> None:
    """At the end of the check period the task completes, results missing or not (Art. 37);
    scheduled when the task is drawn (a re-draw moves nothing: the same period)."""
    due_at = period_end(task, tz)
    await due_store.schedule(
        session, PERIOD_END_DUE, f"task:{task.id}", due_at, {"task_id": task.id}
    )


async def backfill_period_ends(session: AsyncSession, tz: dt.tzinfo) -> list[str]:
    """Every drawn task still open gets its period-end completion (Art. 37): tasks drawn before
    that action existed, or brought in by a migration, never had it scheduled. Idempotent and
    safe across instances (one action per task, the database's unique key decides). Returns
    the codes of the tasks scheduled now."""
    scheduled = select(DueAction.id).where(
        DueAction.kind == PERIOD_END_DUE,
        DueAction.ref == literal("task:", String) + cast(Task.id, String),
    )
    drawn = select(Inspection.id).where(
        Inspection.task_id == Task.id,
        Inspection.draw_id.is_not(None),
        Inspection.status.in_(LIVE),
    )
    rows = await session.execute(
        select(Task)
        .where(Task.completed_at.is_(None), drawn.exists(), ~scheduled.exists())
        .order_by(Task.id)
    )
    made = []
    for task in rows.scalars():
        inserted = await session.execute(
            insert_for(session)(DueAction)
            .values(
                kind=PERIOD_END_DUE,
                ref=f"task:{task.id}",
                due_at=period_end(task, tz),
                data={"task_id": task.id},
                status="pending",
            )
            .on_conflict_do_nothing(index_elements=["kind", "ref"])
            .returning(DueAction.id)
        )
        if inserted.first() is not None:
            made.append(task.code)
    return made


async def missing_results(session: AsyncSession, task_id: int) -> list[int]:
    """Numbers of the task's live inspections that have no result yet."""
    rows = await session.execute(
        select(Inspection.number)
        .where(
            Inspection.task_id == task_id,
            Inspection.status.in_(LIVE),
            Inspection.result_code.is_(None),
        )
        .order_by(Inspection.number)
    )
    return list(rows.scalars())


async def complete_at_period_end(
    session: AsyncSession, task: Task, tz: dt.tzinfo, calendar: WorkCalendar | None = None
) -> Completion | None:
    """Art. 37: the publication clock starts at the last result or at the end of the check
    period, whichever comes first. None when the task completed already or was never drawn."""
    if task.completed_at is not None:
        return None
    live = await session.scalar(
        select(func.count()).where(Inspection.task_id == task.id, Inspection.status.in_(LIVE))
    )
    if not live:
        return None
    task.completed_at, task.status = period_end(task, tz), "complete"
    due, missing_year = publication_due(task, task.check_end, calendar)
    missing = tuple(await missing_results(session, task.id))
    return Completion(task, task.check_end, due, missing_year, missing)


def late_result_due(
    task: Task, recorded_at: dt.datetime, tz: dt.tzinfo, calendar: WorkCalendar | None = None
) -> tuple[dt.date | None, int | None] | None:
    """A result recorded after its task's Art. 37 clock started is published within the
    working days in force at the task's check start (``publication_due``) of its recording; None for a
    result that was in at completion."""
    if task.completed_at is None or recorded_at <= task.completed_at:
        return None
    clock = task.completed_at.astimezone(tz).date()
    return publication_due(task, clock, calendar, [recorded_at.astimezone(tz).date()])


def publication_due(
    task: Task,
    completed_on: dt.date,
    calendar: WorkCalendar | None = None,
    recorded_on: Sequence[dt.date] = (),
) -> tuple[dt.date, int | None]:
    """Art. 37 (``inspection.deadlines.results_publication_due``): the due day of results
    recorded on ``recorded_on`` of a task whose clock started on ``completed_on`` (the
    earliest one's; with none given, the task clock's), and the year whose holiday schedule
    is missing when the date is provisional."""
    return due_of(task.check_start, completed_on, calendar, recorded_on)


def due_of(
    check_start: dt.date,
    completed_on: dt.date,
    calendar: WorkCalendar | None = None,
    recorded_on: Sequence[dt.date] = (),
) -> tuple[dt.date, int | None]:
    """``publication_due`` for a task known by its check start (the rules in force for it)."""
    days = rule_params(check_start).publication_working_days
    cal = calendar or work_calendar()
    try:
        return results_publication_due(completed_on, recorded_on, cal, days), None
    except CalendarNotCovered as exc:  # weekends alone: provisional until the year is added
        due = results_publication_due(completed_on, recorded_on, cal.provisional(), days)
        return due, exc.year


def result_due(
    task: Task, recorded_at: dt.datetime, tz: dt.tzinfo, calendar: WorkCalendar | None = None
) -> dt.date | None:
    """One result's Art. 37 due day (``inspection.deadlines.results_publication_due``): with
    its task when recorded by the clock's start, else n working days after its recording;
    provisional (weekends alone) where the calendar lacks a year. None before the clock
    starts: nothing is due yet."""
    if task.completed_at is None:
        return None
    clock = task.completed_at.astimezone(tz).date()
    return due_of(task.check_start, clock, calendar, [recorded_at.astimezone(tz).date()])[0]


async def complete_if_done(
    session: AsyncSession,
    task_ids: Sequence[int],
    now: dt.datetime,
    tz: dt.tzinfo,
    calendar: WorkCalendar | None = None,
) -> list[Completion]:
    """Tasks whose every inspection now has a result get their completion date, which starts
    the 20-working-day publication clock of Art. 37: now, or the end of the check period when
    that came first (the clock starts at whichever is earlier; a task not drawn here, such as
    an inter-agency joint check dated on the lead authority's check day, has no period-end
    action to complete it), its results then count as recorded after completion."""
    done: list[Completion] = []
    for task_id in dict.fromkeys(task_ids):
        task = await session.get(Task, task_id)
        if task is None or task.completed_at is not None:
            continue
        total, missing = (
            await session.execute(
                select(
                    func.count(),
                    func.count().filter(Inspection.result_code.is_(None)),
                ).where(Inspection.task_id == task_id, Inspection.status.in_(LIVE))
            )
        ).one()
        if not total or missing:
            continue
        task.completed_at, task.status = min(now, period_end(task, tz)), "complete"
        on = task.completed_at.astimezone(tz).date()
        # Completed after its period (a joint check dated on the lead's check day): results
        # recorded after the clock start are due from their recording (Art. 37).
        recorded = await recorded_days(session, task, tz)
        due, missing_year = publication_due(task, on, calendar, recorded)
        later = bool(recorded) and min(recorded) > on
        done.append(Completion(task, on, due, missing_year, recorded_later=later))
    return done


async def recorded_days(session: AsyncSession, task: Task, tz: dt.tzinfo) -> list[dt.date]:
    """The local days on which the task's publishable results were recorded."""
    rows = await session.scalars(
        select(InspectionResult.at).where(
            InspectionResult.task_id == task.id,
            InspectionResult.state == "recorded",
            InspectionResult.secret.is_(False),
        )
    )
    return [at.astimezone(tz).date() for at in rows]


@dataclass(frozen=True)
class Outstanding:
    """A live inspection without a result: who is to report it."""

    number: int
    target: str
    check_end: dt.date
    held_by: str  # the name of a member writing its description, else ""
    team: tuple[tuple[str, str], ...]  # (userid, name) of the active members, in team order


async def task_tally(session: AsyncSession, task_id: int) -> tuple[int, int]:
    """(live inspections, of which with a result)."""
    total, done = (
        await session.execute(
            select(func.count(), func.count(Inspection.result_code)).where(
                Inspection.task_id == task_id, Inspection.status.in_(LIVE)
            )
        )
    ).one()
    return int(total), int(done)


async def outstanding(session: AsyncSession, task_ids: Sequence[int]) -> list[Outstanding]:
    """The tasks' live inspections still without a result, with their teams, by number."""
    if not task_ids:
        return []
    rows = await session.execute(
        select(
            Inspection.id,
            Inspection.number,
            Target.name,
            Inspection.check_end,
            InspectionResult.state,
            InspectionResult.name,
            TeamMember.userid,
            Inspector.name,
        )
        .join(Target, Target.id == Inspection.target_id)
        .outerjoin(InspectionResult, InspectionResult.inspection_id == Inspection.id)
        .outerjoin(
            TeamMember,
            and_(TeamMember.inspection_id == Inspection.id, TeamMember.active.is_(True)),
        )
        .outerjoin(Inspector, Inspector.id == TeamMember.inspector_id)
        .where(
            Inspection.task_id.in_(list(task_ids)),
            Inspection.status.in_(LIVE),
            Inspection.result_code.is_(None),
        )
        .order_by(Inspection.number, TeamMember.position)
    )
    found: dict[int, tuple[int, str, dt.date, str, list[tuple[str, str]]]] = {}
    for _id, number, target, end, state, holder, userid, name in rows.all():
        item = found.setdefault(_id, (number, target, end, holder if state == HELD else "", []))
        if userid and (userid, name or userid) not in item[4]:
            item[4].append((userid, name or userid))
    return [Outstanding(n, t, e, h, tuple(team)) for n, t, e, h, team in found.values()]


@dataclass(frozen=True)
class Owed:
    """An inspection a member still owes something on: a result, or the description of the
    problem phrase they hold (``held_phrase``, until ``held_until``)."""

    number: int
    target: str
    check_end: dt.date
    held_phrase: str = ""
    held_until: dt.datetime | None = None


async def owed_by(session: AsyncSession, userid: str, now: dt.datetime) -> list[Owed]:
    """The member's open inspections without a result (their own live hold named)."""
    rows = await session.execute(
        select(
            Inspection.number,
            Target.name,
            Inspection.check_end,
            InspectionResult.state,
            InspectionResult.userid,
            InspectionResult.phrase,
            InspectionResult.held_until,
        )
        .join(TeamMember, TeamMember.inspection_id == Inspection.id)
        .join(Target, Target.id == Inspection.target_id)
        .outerjoin(InspectionResult, InspectionResult.inspection_id == Inspection.id)
        .where(
            TeamMember.userid == userid,
            TeamMember.active.is_(True),
            Inspection.status == "open",
            Inspection.result_code.is_(None),
        )
        .order_by(Inspection.check_end, Inspection.number)
    )
    out: dict[int, Owed] = {}
    for number, target, end, state, holder, phrase, until in rows.all():
        mine = state == HELD and holder == userid and until is not None and until > now
        out.setdefault(
            number,
            Owed(number, target, end, phrase if mine else "", until if mine else None),
        )
    return list(out.values())


@dataclass(frozen=True)
class Amended:
    """A result its submitter amended, awaiting a chief's confirmation."""

    number: int
    task_code: str
    name: str
    description: str


async def amended_unconfirmed(session: AsyncSession, org_codes: Sequence[str]) -> list[Amended]:
    amended = (
        select(ResultEntry.id)
        .where(ResultEntry.inspection_id == Inspection.id, ResultEntry.kind == "amendment")
        .exists()
    )
    rows = await session.execute(
        select(Inspection.number, Task.code, InspectionResult.name, InspectionResult.description)
        .join(InspectionResult, InspectionResult.inspection_id == Inspection.id)
        .join(Task, Task.id == Inspection.task_id)
        .where(
            Task.org_code.in_(list(org_codes)),
            InspectionResult.state == RECORDED,
            InspectionResult.confirmed_at.is_(None),
            InspectionResult.published_at.is_(None),
            amended,
        )
        .order_by(Inspection.number)
    )
    return [Amended(n, c, name, d) for n, c, name, d in rows.all()]


# --- figures: random checks and checks outside the draw kept apart (Art. 6, 14) --------------


ORIGIN_LABELS = {
    "random": "双随机抽查",
    "construction": "建设项目全覆盖检查（第25条第4项）",
    "targeted": "定向检查（双随机以外）",
    "joint": "部门联合抽查（牵头部门抽取，计入随机抽查）",
}


async def counts(
    session: AsyncSession, org_codes: Sequence[str], year: int
) -> dict[str, tuple[int, int]]:
    """Inspections (one per visit) per origin: (count, with a result)."""
    rows = await session.execute(
        select(Inspection.origin, func.count(), func.count(Inspection.result_code))
        .join(Task, Task.id == Inspection.task_id)
        .where(
            Task.year == year,
            Task.org_code.in_(list(org_codes)),
            Inspection.status.in_(["open", "done"]),
        )
        .group_by(Inspection.origin)
    )
    return {origin: (int(n), int(r)) for origin, n, r in rows.all()}
