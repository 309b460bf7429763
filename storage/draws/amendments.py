"""Amendments to a drawn result (Art. 29): a swap replaces a member by the next of the recorded
cycle who may serve, appended so that the record still replays."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from inspection.draw import (
    DrawInput,
    DrawResult,
    amendments_head,
    merge_visit,
    result_from_json,
    swap_member,
    team_loads,
)
from inspection.pool import on_leave
from storage import audit, facts
from storage.draws.drawing import _inspectors
from storage.draws.record import DrawRefused, Member, exported, load_input, lock_scope
from storage.models import (
    Draw,
    DrawAmendment,
    Inspection,
    Inspector,
    Task,
    TeamMember,
)
from storage.tasks import chunks


async def amendments_of(session: AsyncSession, draw_id: int) -> list[DrawAmendment]:
    rows = await session.execute(
        select(DrawAmendment).where(DrawAmendment.draw_id == draw_id).order_by(DrawAmendment.seq)
    )
    return list(rows.scalars())


def _part(row: Draw, part: str) -> tuple[DrawInput, DrawResult] | None:
    """The input and the recorded result of one part ("random" or "construction"), if any."""
    packed = row.input_doc if part == "random" else row.construction_doc
    recorded = row.result if part == "random" else row.construction_result
    if packed is None or recorded is None:
        return None
    return load_input(packed), result_from_json(recorded)


def replay(
    inp: DrawInput,
    result: DrawResult,
    amendments: Sequence[DrawAmendment],
    other: Sequence[tuple[DrawInput, DrawResult]] = (),
) -> DrawResult:
    """One part's result with its amendments applied in order. ``other``: the draw's other
    part as it stands (version 2 shares loads between them, sections 10 and 12)."""
    shared = team_loads(other) if result.algorithm_version >= 2 and other else None
    for a in amendments:
        if a.kind == "merge":
            result = merge_visit(result, a.target_key, a.into or "")
            continue
        new, result = swap_member(
            result, inp, a.target_key, a.leaving, frozenset(a.excluded), shared
        )
        if new != a.replacement:
            raise DrawRefused("amendment_mismatch", seq=a.seq, recorded=a.replacement, replayed=new)
    return result


def current_parts(row: Draw, amendments: Sequence[DrawAmendment]) -> dict[str, DrawResult]:
    """Both parts of a drawn draw as they stand, amendments replayed in order (a swap in one
    part counts the other's loads as the amendments before it left them)."""
    found = {name: _part(row, name) for name in ("random", "construction")}
    state = {name: p for name, p in found.items() if p is not None}
    for a in amendments:
        inp, result = state[a.part]
        other = [p for name, p in state.items() if name != a.part]
        state[a.part] = (inp, replay(inp, result, [a], other))
    return {name: result for name, (_, result) in state.items()}


@dataclass(frozen=True)
class Swap:
    amendment: DrawAmendment
    inspection: Inspection
    leaving: Member
    joining: Member


async def amend_swap(
    session: AsyncSession,
    inspection: Inspection,
    *,
    leaving: str,
    reason: str,
    approved_by: str,
    actor: str,
    now: dt.datetime,
    excluded: frozenset[str] = frozenset(),
) -> Swap:
    """Replace ``leaving`` (a certificate number) on an inspection's team by the next inspector
    of the draw's recorded cycle who may serve (Art. 29), and append it as an amendment.

    People who can no longer serve (inactive, on leave during the check window, no WeCom
    account) are skipped and named in the amendment's ``excluded``, so the swap replays.
    Raises ``DrawError`` (reason "no_replacement" or "not_on_team") when it cannot be done.
    """
    row = await session.get(Draw, inspection.draw_id) if inspection.draw_id else None
    if row is None or row.status != "drawn":
        raise DrawRefused("no_live_draw", number=inspection.number)
    task = await session.get(Task, inspection.task_id)
    assert task is not None
    await lock_scope(session, task)
    part = "construction" if inspection.origin == "construction" else "random"
    found = _part(row, part)
    if found is None:
        raise DrawRefused("no_part", part=part)
    inp, _ = found
    earlier = await amendments_of(session, row.id)
    parts = current_parts(row, earlier)
    current = parts[part]
    other = [
        (p[0], parts[name])
        for name in ("random", "construction")
        if name != part and (p := _part(row, name)) is not None
    ]
    cycle = (
        current.aux_cycle
        if leaving in current.team(inspection.target_key).auxiliary
        else current.cycle
    )
    excluded = excluded | await _unavailable(
        session, cycle, inspection.check_start, inspection.check_end
    )
    excluded -= {leaving}
    shared = team_loads(other) if current.algorithm_version >= 2 else None
    new, _ = swap_member(current, inp, inspection.target_key, leaving, excluded, shared)
    amendment = DrawAmendment(
        draw_id=row.id,
        seq=len(earlier) + 1,
        kind="swap",
        part=part,
        target_key=inspection.target_key,
        leaving=leaving,
        replacement=new,
        excluded=sorted(excluded),
        reason=reason,
        approved_by=approved_by,
        actor=actor,
        at=now,
    )
    session.add(amendment)
    await session.flush()
    old = (
        await session.execute(
            select(TeamMember).where(
                TeamMember.inspection_id == inspection.id,
                TeamMember.certificate_no == leaving,
                TeamMember.active.is_(True),
            )
        )
    ).scalar_one()
    old.active, old.left_at = False, now
    people = await _inspectors(session, [leaving, new])
    joined = TeamMember(
        inspection_id=inspection.id,
        inspector_id=people[new][0],
        certificate_no=new,
        userid=people[new][1],
        auxiliary=old.auxiliary,
        position=old.position,
        active=True,
        joined_at=now,
        amendment_id=amendment.id,
    )
    session.add(joined)
    await facts.refresh(session, [inspection.id])  # who took part (Art. 17, 29), same transaction
    await audit.append(
        session,
        at=now,
        actor=actor,
        action="draw.amend",
        subject=f"task:{task.code}",
        payload={
            "attempt": row.attempt,
            "seq": amendment.seq,
            "kind": "swap",
            "inspection": inspection.number,
            "target": inspection.target_key,
            "leaving": leaving,
            "replacement": new,
            "excluded": amendment.excluded,
            "reason": reason,
            "approved_by": approved_by,
            # Version 2 binds the list: the export's chain head must be the last one recorded.
            "amendments_head": amendments_head(
                row.commitment, [exported(a) for a in [*earlier, amendment]]
            ),
        },
    )
    return Swap(
        amendment,
        inspection,
        Member(leaving, people[leaving][1], people[leaving][2], old.auxiliary),
        Member(new, people[new][1], people[new][2], old.auxiliary),
    )


async def _unavailable(
    session: AsyncSession, certs: Sequence[str], start: dt.date, end: dt.date
) -> frozenset[str]:
    """Who can no longer serve in [start, end]: inactive, no WeCom account or on leave (as
    the pool leaves them out, ``inspection.pool``)."""
    out: set[str] = set()
    for part in chunks(list(certs)):
        rows = await session.execute(
            select(
                Inspector.certificate_no,
                Inspector.active,
                Inspector.userid,
                Inspector.leave_from,
                Inspector.leave_until,
            ).where(Inspector.certificate_no.in_(part))
        )
        for cert, active, userid, leave_from, leave_until in rows.all():
            if not active or not userid or on_leave(leave_from, leave_until, start, end):
                out.add(cert)
    return frozenset(out)
