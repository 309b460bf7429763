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
from storage import audit, facts
from storage.draws.drawing import _inspectors
from storage.draws.record import DrawRefused, Member, exported, load_input, lock_scope
from storage.models import (
    Draw,
    DrawAmendment,
    Inspection,
    Inspector,
    RegisterEntry,
    Task,
    TeamMember,
)
from storage.register import exported as exported_record
from storage.register import in_effect
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
    requested_at: dt.datetime,
) -> Swap:
    """Replace ``leaving`` (a certificate number) on an inspection's team by the next inspector
    of the draw's recorded cycle who may serve (Art. 29), and append it as an amendment.

    Only people with a register record in effect before the swap was asked for
    (``requested_at``) are passed over: a confirmed leave overlapping the check window or a
    declared conflict with this target. Each is named in the amendment's ``excluded`` with
    that record as evidence (DRAW_ALGORITHM.md section 10), so the verifier checks it. Nobody
    else may be skipped: when the person the cycle offers cannot serve (inactive, no WeCom
    account) and has no record, the swap is refused ("replacement_unavailable").
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
    aux = leaving in current.team(inspection.target_key).auxiliary
    cycle, cursor = (
        (current.aux_cycle, current.aux_cursor) if aux else (current.cycle, current.cursor)
    )
    start, end = inspection.check_start, inspection.check_end
    cycle_people = await _people(session, cycle)
    register = await in_effect(
        session, [(i.id, i.userid) for i in cycle_people.values()], at=requested_at
    )
    reasons: dict[str, RegisterEntry] = {}
    for cert, person in cycle_people.items():
        record = register.leave(person.id, person.userid, start, end) or register.conflict(
            person.id, person.userid, inspection.target_key
        )
        if record is not None and cert != leaving:
            reasons[cert] = record
    shared = team_loads(other) if current.algorithm_version >= 2 else None
    new, _ = swap_member(current, inp, inspection.target_key, leaving, frozenset(reasons), shared)
    joining = cycle_people.get(new)
    if joining is None or not joining.active or not joining.userid:
        raise DrawRefused(
            "replacement_unavailable",
            certificate=new,
            name=joining.name if joining else new,
            number=inspection.number,
        )
    # Name only those the walk passed over on its way to the replacement.
    walk = [cycle[(cursor + j) % len(cycle)] for j in range(len(cycle))]
    passed = walk[: walk.index(new)]
    excluded = sorted(c for c in reasons if c in passed)
    input_userids = {i.key: i.userid for i in inp.inspectors}
    evidence = [exported_record(reasons[c], input_userids.get(c) or "") for c in excluded]
    amendment = DrawAmendment(
        draw_id=row.id,
        seq=len(earlier) + 1,
        kind="swap",
        part=part,
        target_key=inspection.target_key,
        leaving=leaving,
        replacement=new,
        excluded=excluded,
        reason=reason,
        approved_by=approved_by,
        actor=actor,
        at=now,
        requested_at=requested_at,
        check_start=start,
        check_end=end,
        evidence=evidence,
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
                row.commitment, [exported(a, row.algorithm_version) for a in [*earlier, amendment]]
            ),
        },
    )
    return Swap(
        amendment,
        inspection,
        Member(leaving, people[leaving][1], people[leaving][2], old.auxiliary),
        Member(new, people[new][1], people[new][2], old.auxiliary),
    )


async def _people(session: AsyncSession, certs: Sequence[str]) -> dict[str, Inspector]:
    out: dict[str, Inspector] = {}
    for part in chunks(list(certs)):
        rows = await session.execute(select(Inspector).where(Inspector.certificate_no.in_(part)))
        out.update((i.certificate_no, i) for i in rows.scalars())
    return out
