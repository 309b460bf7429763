"""The draw itself, from commitment to inspections (Art. 27-29), and its record.

Two steps. ``commit`` freezes the pool and the parameters (their fingerprint) and commits to a
256-bit secret by its SHA-256, before anyone can know the witness value; ``run`` derives the seed
from the secret and the witness value and draws. Once committed, whatever follows (inspections,
a failure to form teams, an abandoned witness step) stays in the record and counts as that
task's draw; a re-draw needs a chief's approval and keeps the earlier draws. Later changes to the
result (swaps, Art. 29) are appended as amendments, so the record still replays.

Draws are serialised per organisation: on PostgreSQL by an advisory lock on every league/city
the task's scope touches, on SQLite by the write lock every transaction takes (BEGIN IMMEDIATE).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from sqlalchemy import String, bindparam, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from inspection.draw import (
    ALGORITHM_VERSION,
    DrawError,
    SelectedTarget,
    TeamAssignment,
    amendments_head,
    commitment,
    derive_seed,
    draw_parts,
    fingerprinted,
    result_to_json,
)
from inspection.pool import PoolPlan, build_pool
from inspection.quotas import Tier
from storage import audit
from storage.bulk import binder, sqlite_rows
from storage.bulk import insert_rows as _insert
from storage.draws.binding import exclusions_digest
from storage.draws.record import (
    Assignment,
    DrawRefused,
    Member,
    Outcome,
    _remember_frozen,
    draws_of,
    exported,
    frozen_input,
    latest_draw,
    lock_scope,
    pack,
)
from storage.gcpause import gc_paused
from storage.models import (
    Draw,
    DrawAmendment,
    Inspection,
    Inspector,
    Target,
    Task,
    TeamMember,
)
from storage.repos import Repositories
from storage.tasks import (
    chunks,
    entities_in_scope,
    inspector_facts,
    rules_for,
    target_facts,
)


@gc_paused
async def preview(session: AsyncSession, task: Task) -> PoolPlan:
    """The pool as it stands now: what 抽查预览 shows and what 抽查 freezes: with the market
    entities of more than one target (Art. 19) and the evidence of each exclusion."""
    evidence: dict[str, dict[str, Any]] = {}
    targets, batches = await target_facts(session, task, evidence=evidence)
    return build_pool(
        targets,
        await inspector_facts(session, task),
        rules_for(task),
        batches,
        await entities_in_scope(session, task),
        evidence,
    )


@gc_paused
async def commit(
    session: AsyncSession,
    task: Task,
    *,
    actor: str,
    now: dt.datetime,
    secret: bytes,
    witnessed: bool = True,
) -> tuple[Draw, PoolPlan]:
    """Freeze the pool and parameters, record their fingerprint and the secret's commitment."""
    if len(secret) != 32:
        raise ValueError("the draw secret must be 256 bits")
    await lock_scope(session, task)
    earlier = await draws_of(session, task.id)
    if earlier and task.redraw_approval is None:
        last = earlier[-1]
        raise DrawRefused(
            "already_drawn",
            task=task.code,
            at=last.committed_at,
            attempt=last.attempt,
            status=last.status,
        )
    if task.status == "complete":
        raise DrawRefused("task_complete", task=task.code)
    if task.status == "cancelled":  # 取消任务 before the draw
        raise DrawRefused("task_cancelled", task=task.code)
    if task.status in ("targeted", "joint", "imported"):  # 登记检查, import inspections
        raise DrawRefused("outside_draw", task=task.code)
    if task.status in ("proposed", "refused"):  # a branch's task awaits its city (Art. 5)
        raise DrawRefused("not_approved", task=task.code, status=task.status)
    plan = await preview(session, task)
    if not plan.drawable:
        raise DrawRefused("pool_insufficient", task=task.code, problems=list(plan.problems))
    fp, doc = fingerprinted(plan.input)
    c_fp, c_doc = fingerprinted(plan.construction) if plan.construction else (None, None)
    approval = task.redraw_approval or {}
    row = Draw(
        task_id=task.id,
        attempt=len(earlier) + 1,
        org_code=task.org_code,
        status="committed",
        algorithm_version=ALGORITHM_VERSION,
        fingerprint=fp,
        input_doc=pack(doc),
        construction_fingerprint=c_fp,
        construction_doc=pack(c_doc) if c_doc else None,
        exclusions=[e.to_json() for e in plan.exclusions],
        summary=plan.summary(),
        secret_hex=secret.hex(),
        commitment=commitment(secret),
        witnessed=witnessed,
        redraw_reason=approval.get("reason"),
        approved_by=approval.get("by"),
        committed_by=actor,
        committed_at=now,
    )
    session.add(row)
    task.redraw_approval = None
    task.status = "committed"
    await session.flush()
    _remember_frozen(row, plan.input, plan.construction)
    await audit.append(
        session,
        at=now,
        actor=actor,
        action="draw.commit",
        subject=f"task:{task.code}",
        payload={
            "attempt": row.attempt,
            "algorithm_version": row.algorithm_version,
            "commitment": row.commitment,
            "fingerprint": fp,
            "construction_fingerprint": c_fp,
            "exclusions_digest": exclusions_digest(row.exclusions),
            "witnessed": witnessed,
            "redraw_reason": row.redraw_reason,
            "approved_by": row.approved_by,
            **row.summary,
            "excluded": {
                "targets": plan.excluded("target"),
                "inspectors": plan.excluded("inspector"),
            },
        },
    )
    return row, plan


@gc_paused
async def run(
    session: AsyncSession,
    task: Task,
    row: Draw,
    *,
    witness: str | None,
    actor: str,
    now: dt.datetime,
    group_chats: bool = False,
    plan: PoolPlan | None = None,
) -> Outcome:
    """Draw with seed = derive_seed(secret, witness); record the inspections or the failure.

    ``plan`` is the pool frozen by ``commit`` in this same transaction (saves decoding it)."""
    if row.status != "committed":
        raise DrawRefused("draw_closed", task=task.code, attempt=row.attempt, status=row.status)
    await lock_scope(session, task)
    inp, extra = (plan.input, plan.construction) if plan is not None else frozen_input(row)
    seed = derive_seed(bytes.fromhex(row.secret_hex), witness, row.algorithm_version)
    row.witness = witness
    row.witnessed = witness is not None
    row.drawn_at = now
    outcome = Outcome(row)
    try:
        outcome.result, outcome.construction = draw_parts(inp, extra, seed, row.algorithm_version)
    except DrawError as exc:
        outcome.error = exc
        row.status = "failed"
        row.error = error_record(exc)
        task.status = "failed"
        await audit.append(
            session,
            at=now,
            actor=actor,
            action="draw.fail",
            subject=f"task:{task.code}",
            payload={"attempt": row.attempt, "witness": witness, "error": row.error},
        )
        return outcome
    row.status = "drawn"
    row.result = result_to_json(outcome.result)
    if outcome.construction is not None:
        row.construction_result = result_to_json(outcome.construction)
    task.status = "drawn"
    outcome.assignments, merges = await _record(session, task, row, outcome, now, group_chats)
    await audit.append(
        session,
        at=now,
        actor=actor,
        action="draw.run",
        subject=f"task:{task.code}",
        payload={
            "attempt": row.attempt,
            "witness": witness,
            "witnessed": row.witnessed,
            "fingerprint": row.fingerprint,
            "inspections": [a.number for a in outcome.assignments],
            "drawn": len(outcome.result.selected),
            "construction": len(outcome.construction.selected) if outcome.construction else 0,
        },
    )
    await _record_merges(session, task, row, merges, actor, now)
    return outcome


def error_record(exc: DrawError) -> dict[str, Any]:
    return {
        "reason": exc.reason,
        "message": str(exc),
        "tier": exc.tier.value if exc.tier is not None else None,
        "pool_size": exc.pool_size,
        "count": exc.count,
        "target_key": exc.target_key,
        "role": exc.role,
        "needed": exc.needed,
        "found": exc.found,
        "blocked": exc.blocked,
    }


INSPECTION_COLUMNS = (  # what differs between a draw's inspections (see _record)
    "number",
    "target_id",
    "target_key",
    "tier",
    "method",
    "origin",
    "status",
    "merged_into_id",
    "card_task_id",
    "chatid",
)


MEMBER_COLUMNS = (  # what differs between a draw's team members
    "inspection_id",
    "inspector_id",
    "certificate_no",
    "userid",
    "auxiliary",
    "position",
    "card_task_id",
)


@dataclass(frozen=True)
class _Merge:
    """A drawn visit that another task's open visit takes on (a merge amendment)."""

    part: str
    lead: str
    host: _Host


async def _record(
    session: AsyncSession,
    task: Task,
    row: Draw,
    outcome: Outcome,
    now: dt.datetime,
    group_chats: bool,
) -> tuple[list[Assignment], list[_Merge]]:
    """One inspection per drawn target, one visit per market entity (Art. 19): the visit's
    first site (its lead) carries the team and the card, its other sites are merged into it;
    a visit that another task's open visit to the same entity takes on (``_open_visits``) is
    merged into that one, and the merge is returned to be recorded as an amendment."""
    assert outcome.result is not None
    parts = [("random", outcome.result)]
    if outcome.construction is not None:
        parts.append(("construction", outcome.construction))
    picks: list[tuple[str, SelectedTarget, TeamAssignment]] = []
    for origin, res in parts:
        visit = {site: t for t in res.teams for site in t.site_keys}
        picks += [(origin, sel, visit[sel.key]) for sel in res.selected]
    if not picks:
        return [], []
    keys = [sel.key for _, sel, _ in picks]
    targets = await _targets(session, keys)
    certs = sorted({k for _, _, t in picks for k in (*t.members, *t.auxiliary)})
    people = await _inspectors(session, certs)
    by_key, by_entity = await _open_visits(session, task, keys)
    hosts: dict[tuple[str, str], _Host] = {}  # (part, lead) -> the other task's visit
    for origin, res in parts:
        for t in res.teams:
            found = [by_key[k] for k in t.site_keys if k in by_key]
            found += [by_entity[u] for k in t.site_keys if (u := targets[k][3]) in by_entity]
            if found:
                hosts[origin, t.target_key] = min(found, key=attrgetter("id"))
    host_teams = await _active_userids(session, sorted({h.id for h in hosts.values()}))
    first = await Repositories(session).sequences.reserve("inspection", len(picks))
    value = binder(session)
    created = value(now)
    same_for_all = {  # every inspection of this draw
        "task_id": task.id,
        "draw_id": row.id,
        "item_codes": value(list(task.item_codes)),
        "joined_tasks": value([]),
        "check_start": value(task.check_start),
        "check_end": value(task.check_end),
        "created_at": created,
    }
    rows: list[tuple[Any, ...]] = []
    planned: list[tuple[int, str, str, str, str, tuple[Member, ...], _Host | None]] = []
    merged: dict[int, dict[str, Any]] = {}
    leads: dict[tuple[str, str], int] = {}  # (part, lead key) -> the lead's number
    siblings: dict[int, list[int]] = {}  # a lead's number -> its other sites' numbers
    # One Member per certificate and role, shared by every team it sits on (they are frozen).
    cast: dict[tuple[str, bool], Member] = {}

    def member(cert: str, auxiliary: bool) -> Member:
        m = cast.get((cert, auxiliary))
        if m is None:
            _, userid, name = people[cert]
            m = cast[cert, auxiliary] = Member(cert, userid, name, auxiliary)
        return m

    tier_value = {t: t.value for t in Tier}  # plain strings (the enum's .value is a property)
    for n, (origin, sel, team) in enumerate(picks):
        number = first + n
        target_id, name, address, _ = targets[sel.key]
        host = hosts.get((origin, team.target_key))
        is_lead = sel.key == team.target_key
        if is_lead:
            leads[origin, sel.key] = number
        members: tuple[Member, ...] = ()
        if is_lead and host is None:
            members = (
                *(member(c, False) for c in team.members),
                *(member(c, True) for c in team.auxiliary),
            )
        elif host is None:
            siblings.setdefault(leads[origin, team.target_key], []).append(number)
        chatid = (
            f"insp{number}"
            if group_chats and members and len({m.userid for m in members}) >= 2
            else None
        )
        card = f"insp-{number}-1" if members else None
        rows.append(
            (
                number,
                target_id,
                sel.key,
                tier_value[sel.tier],
                sel.method,
                origin,
                "open" if members else "merged",
                host.id if host is not None else None,
                card,
                chatid,
            )
        )
        planned.append((number, origin, name, address, sel.method, members, host))
        if host is not None and host.id not in merged:
            merged[host.id] = {
                "host_id": host.id,
                "items": list(dict.fromkeys([*host.item_codes, *task.item_codes])),
                "joined": [*host.joined_tasks, task.code],
            }
    await _insert(session, "inspection", INSPECTION_COLUMNS, rows, same_for_all)
    await _merge_into_hosts(session, list(merged.values()))
    # The ids come back by the numbers reserved above.
    id_rows = await session.execute(
        select(Inspection.number, Inspection.id).where(
            Inspection.number.between(first, first + len(rows) - 1)
        )
    )
    ids = dict(id_rows.all())
    await _merge_into_leads(
        session, {ids[lead]: [ids[s] for s in sites] for lead, sites in siblings.items()}
    )
    sites_of: dict[int, tuple[tuple[str, str, str], ...]] = {
        lead: tuple((r[2], *targets[r[2]][1:3]) for r in rows if r[0] in numbers)
        for lead, numbers in ((k, set(v)) for k, v in siblings.items())
    }
    lead_of = {s: lead for lead, numbers in siblings.items() for s in numbers}
    yes, no = value(True), value(False)
    joined = {"active": yes, "joined_at": created}
    member_rows: list[tuple[Any, ...]] = []
    assignments: list[Assignment] = []
    for r, (number, origin, name, address, method, members, host) in zip(
        rows, planned, strict=True
    ):
        inspection_id, card = ids[number], r[8]
        for position, m in enumerate(members):
            member_rows.append(
                (
                    inspection_id,
                    people[m.certificate_no][0],
                    m.certificate_no,
                    m.userid,
                    yes if m.auxiliary else no,
                    position,
                    card,
                )
            )
        into = host.number if host is not None else lead_of.get(number)
        assignments.append(
            Assignment(
                inspection_id=inspection_id,
                number=number,
                target_key=r[2],
                target_name=name,
                address=address,
                tier=r[3],
                method=method,
                origin=origin,
                members=members,
                card_task_id=card,
                chatid=r[9],
                merged_into=into,
                host_userids=tuple(host_teams.get(host.id, ())) if host is not None else (),
                sites=sites_of.get(number, ()),
                same_visit=host is None and into is not None,
            )
        )
    await _insert(session, "team_member", MEMBER_COLUMNS, member_rows, joined)
    merges = [_Merge(part, lead, host) for (part, lead), host in hosts.items()]
    return assignments, merges


async def _merge_into_leads(session: AsyncSession, siblings: dict[int, list[int]]) -> None:
    """Art. 19: a visit's other sites point at its lead (one executemany)."""
    pairs = [{"lead": lead, "site": s} for lead, sites in siblings.items() for s in sites]
    if not pairs:
        return
    table = Inspection.metadata.tables["inspection"]
    await session.execute(
        update(table)
        .where(table.c.id == bindparam("site"))
        .values(merged_into_id=bindparam("lead")),
        pairs,
    )


MERGE_REASON = "同一市场主体在检查期内已有其他任务的检查，一次检查完成（第19、21、23条）"


async def _record_merges(
    session: AsyncSession,
    task: Task,
    row: Draw,
    merges: Sequence[_Merge],
    actor: str,
    now: dt.datetime,
) -> None:
    """Each visit taken on by another task's visit, as a merge amendment (DRAW_ALGORITHM.md
    section 13) with its audit entry and the chain head after it, so the record replays."""
    if not merges:
        return
    exported_list: list[dict[str, Any]] = []
    for seq, m in enumerate(merges, start=1):
        amendment = DrawAmendment(
            draw_id=row.id,
            seq=seq,
            kind="merge",
            part=m.part,
            target_key=m.lead,
            leaving="",
            replacement="",
            excluded=[],
            into=f"{m.host.task_code}:{m.host.number}",
            reason=MERGE_REASON,
            approved_by=actor,
            actor=actor,
            at=now,
        )
        session.add(amendment)
        exported_list.append(exported(amendment))
        await audit.append(
            session,
            at=now,
            actor=actor,
            action="draw.amend",
            subject=f"task:{task.code}",
            payload={
                "attempt": row.attempt,
                "seq": seq,
                "kind": "merge",
                "target": m.lead,
                "into": amendment.into,
                "amendments_head": amendments_head(row.commitment, exported_list),
            },
        )
    await session.flush()


async def _targets(
    session: AsyncSession, keys: Sequence[str]
) -> dict[str, tuple[int, str, str, str]]:
    """Per key: id, name, address and credit code ("" when none)."""
    if session.get_bind().dialect.name == "sqlite":
        # All keys in one statement, as one JSON array parameter (10,000 at 100,000 targets).
        rows = await sqlite_rows(
            session,
            "SELECT key, id, name, address, uscc FROM target "
            "WHERE key IN (SELECT value FROM json_each(?))",
            (json.dumps(keys),),
        )
        return {k: (i, n, a, u or "") for k, i, n, a, u in rows}
    # One array parameter: one statement and one round trip for all of them.
    query = text(
        "SELECT key, id, name, address, uscc FROM target WHERE key = ANY(:keys)"
    ).bindparams(bindparam("keys", type_=ARRAY(String)))
    found = await session.execute(query, {"keys": list(set(keys))})
    return {k: (i, n, a, u or "") for k, i, n, a, u in found.all()}


async def _inspectors(
    session: AsyncSession, certs: Sequence[str]
) -> dict[str, tuple[int, str, str]]:
    out: dict[str, tuple[int, str, str]] = {}
    for part in chunks(certs):
        rows = await session.execute(
            select(Inspector.certificate_no, Inspector.id, Inspector.userid, Inspector.name).where(
                Inspector.certificate_no.in_(part)
            )
        )
        out.update({c: (i, u or "", n) for c, i, u, n in rows.all()})
    return out


async def _open_visits(
    session: AsyncSession, task: Task, keys: Sequence[str]
) -> tuple[dict[str, _Host], dict[str, _Host]]:
    """Art. 19, 21, 23: an open visit of another task to the same market entity in an
    overlapping check window carries this task's items too, instead of a second visit. The
    first such visit per target key, and per credit code (of any of the entity's targets)."""
    wanted = set(keys)
    candidates = await session.execute(
        select(Inspection.target_key, Inspection.id, Target.uscc)
        .outerjoin(Target, Target.key == Inspection.target_key)
        .where(
            Inspection.status == "open",
            Inspection.task_id != task.id,
            Inspection.check_start <= task.check_end,
            Inspection.check_end >= task.check_start,
        )
        .order_by(Inspection.id)
    )
    first: dict[str, int] = {}
    first_entity: dict[str, int] = {}
    for key, inspection_id, uscc in candidates.all():
        if key in wanted:
            first.setdefault(key, inspection_id)
        if uscc:
            first_entity.setdefault(uscc, inspection_id)
    if not first and not first_entity:
        return {}, {}
    # Only what the merge needs, without ORM objects: a draw may land on thousands of them.
    ids = sorted({*first.values(), *first_entity.values()})
    by_id: dict[int, _Host] = {}
    for at in range(0, len(ids), 500):
        part = ids[at : at + 500]
        rows = await session.execute(
            select(
                Inspection.id,
                Inspection.number,
                Inspection.item_codes,
                Inspection.joined_tasks,
                Task.code,
            )
            .join(Task, Task.id == Inspection.task_id)
            .where(Inspection.id.in_(part))
        )
        by_id.update({r[0]: _Host(*r) for r in rows.all()})
    return (
        {key: by_id[i] for key, i in first.items()},
        {uscc: by_id[i] for uscc, i in first_entity.items()},
    )


@dataclass(frozen=True)
class _Host:
    """An open visit of another task that carries this task's items too (``_open_visits``)."""

    id: int
    number: int
    item_codes: list[Any]
    joined_tasks: list[Any]
    task_code: str


async def _merge_into_hosts(session: AsyncSession, merged: list[dict[str, Any]]) -> None:
    """The hosts' new items and joined tasks, in one executemany (Core: not ORM objects)."""
    if not merged:
        return
    table = Inspection.metadata.tables["inspection"]
    await session.execute(
        update(table)
        .where(table.c.id == bindparam("host_id"))
        .values(item_codes=bindparam("items"), joined_tasks=bindparam("joined")),
        merged,
    )
    # Nothing in this transaction has loaded them; should anything have, it must not go stale.
    ids = {m["host_id"] for m in merged}
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Inspection) and obj.id in ids:
            session.expire(obj, ["item_codes", "joined_tasks"])


async def _active_userids(
    session: AsyncSession, inspection_ids: Sequence[int]
) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    if not inspection_ids:
        return out
    rows = await session.execute(
        select(TeamMember.inspection_id, TeamMember.userid)
        .where(TeamMember.inspection_id.in_(list(inspection_ids)), TeamMember.active.is_(True))
        .order_by(TeamMember.inspection_id, TeamMember.position)
    )
    for inspection_id, userid in rows.all():
        out.setdefault(inspection_id, []).append(userid)
    return out


@dataclass(frozen=True)
class Cancelled:
    number: int
    target_key: str
    userids: tuple[str, ...]
    chatid: str | None


async def approve_redraw(
    session: AsyncSession, task: Task, *, chief: str, reason: str, now: dt.datetime
) -> tuple[Draw, list[Cancelled]]:
    """A chief allows one more draw; the current one is closed (kept) and its visits cancelled."""
    await lock_scope(session, task)
    last = await latest_draw(session, task.id)
    if last is None:
        raise DrawRefused("redraw_not_drawn", task=task.code)
    if task.redraw_approval is not None:
        raise DrawRefused("redraw_already_approved", task=task.code)
    if task.status == "complete":
        raise DrawRefused("redraw_task_complete", task=task.code)
    cancelled: list[Cancelled] = []
    if last.status == "drawn":
        visits = list(
            (
                await session.execute(
                    select(Inspection)
                    .where(Inspection.draw_id == last.id)
                    .order_by(Inspection.number)
                )
            ).scalars()
        )
        if any(v.result_code for v in visits):
            raise DrawRefused("redraw_has_results", task=task.code)
        teams = await _active_userids(session, [v.id for v in visits if v.status == "open"])
        for v in visits:
            if v.status == "open":
                cancelled.append(
                    Cancelled(v.number, v.target_key, tuple(teams.get(v.id, ())), v.chatid)
                )
            v.status = "cancelled"
        last.status = "superseded"
    elif last.status == "committed":
        last.status = "abandoned"  # the witness step never came: recorded, and it counts
    last.closed_at = now
    task.redraw_approval = {"by": chief, "reason": reason, "at": now.isoformat()}
    task.status = "planned"
    await audit.append(
        session,
        at=now,
        actor=chief,
        action="draw.redraw_approved",
        subject=f"task:{task.code}",
        payload={
            "attempt": last.attempt,
            "closed_as": last.status,
            "reason": reason,
            "cancelled": [c.number for c in cancelled],
        },
    )
    return last, cancelled
