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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from sqlalchemy import String, bindparam, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from inspection.draw import (
    ALGORITHM_VERSION,
    PUBLIC_VALUE,
    DrawError,
    SelectedTarget,
    TeamAssignment,
    Witness,
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


WITNESS_DAYS = 3  # default time from sealing to the witness deadline


@gc_paused
async def commit(
    session: AsyncSession,
    task: Task,
    *,
    actor: str,
    now: dt.datetime,
    secret: bytes,
    witnesses: Sequence[str] | None,
    deadline: dt.datetime | None = None,
    unwitnessed_reason: str | None = None,
    public_source: str | None = None,
) -> tuple[Draw, PoolPlan]:
    """Freeze the pool and parameters, record their fingerprint and the secret's commitment,
    and fix who witnesses (``witnesses``, in the order their values enter the seed) and by
    when; or the public random source whose value will be typed and confirmed
    (``public_source``, with ``witnesses=None``); ``None`` for both is a draw without
    witness, which needs its reason. A task is drawn once: a draw that cannot be used is
    cancelled (``approve_cancel``), never re-drawn."""
    if len(secret) != 32:
        raise ValueError("the draw secret must be 256 bits")
    await lock_scope(session, task)
    earlier = await draws_of(session, task.id)
    if earlier:
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
    if public_source is not None:
        if witnesses is not None or not public_source.strip():
            raise DrawRefused("witnesses_invalid", task=task.code)
    elif witnesses is None:
        if not (unwitnessed_reason or "").strip():
            raise DrawRefused("unwitnessed_needs_reason", task=task.code)
    else:
        if not witnesses or len(set(witnesses)) != len(witnesses):
            raise DrawRefused("witnesses_invalid", task=task.code)
        if actor in witnesses:
            raise DrawRefused("witness_is_sealer", task=task.code)
    deadline = deadline or now + dt.timedelta(days=WITNESS_DAYS)
    awaits = witnesses is not None or public_source is not None
    if awaits and deadline <= now:
        raise DrawRefused("witness_deadline_past", task=task.code, deadline=deadline)
    replaced = await _replaced_draw(session, task)
    plan = await preview(session, task)
    if not plan.drawable:
        raise DrawRefused("pool_insufficient", task=task.code, problems=list(plan.problems))
    fp, doc = fingerprinted(plan.input)
    c_fp, c_doc = fingerprinted(plan.construction) if plan.construction else (None, None)
    row = Draw(
        task_id=task.id,
        attempt=1,
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
        witnessed=awaits,
        witnesses=list(witnesses) if witnesses is not None else None,
        witness_values=[None] * len(witnesses) if witnesses is not None else None,
        witness_deadline=deadline if awaits else None,
        unwitnessed_reason=unwitnessed_reason if not awaits else None,
        public_source={"source": public_source, "value": None, "typed": None}
        if public_source is not None
        else None,
        committed_by=actor,
        committed_at=now,
    )
    session.add(row)
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
            "witnessed": row.witnessed,
            # Fixed before any value exists: who, in which order, by when (section 16).
            "witnesses": row.witnesses,
            "public_source": public_source,
            "witness_deadline": deadline.isoformat() if row.witnessed else None,
            "unwitnessed_reason": row.unwitnessed_reason,
            "replaces": replaced,
            **row.summary,
            "excluded": {
                "targets": plan.excluded("target"),
                "inspectors": plan.excluded("inspector"),
            },
        },
    )
    return row, plan


async def _replaced_draw(session: AsyncSession, task: Task) -> dict[str, Any] | None:
    """The cancelled (or failed) draw this task's draw replaces, as its draw names it
    (section 16)."""
    if not task.replaces:
        return None
    old = await session.scalar(select(Task).where(Task.code == task.replaces))
    last = await latest_draw(session, old.id) if old is not None else None
    if last is None or last.status not in ("cancelled", "failed"):
        raise DrawRefused("replaces_not_cancelled", task=task.code, replaces=task.replaces)
    return {"task": task.replaces, "attempt": last.attempt, "commitment": last.commitment}


def witness_of(row: Draw) -> Witness:
    """The witness as the seed takes it (DRAW_ALGORITHM.md section 2): ``None``, one value, or
    the values of several witnesses in the order fixed at sealing."""
    if row.public_source is not None:
        value = row.public_source.get("value")
        if row.drawn_at is None or value is None:
            return None
        return {"source": row.public_source["source"], "value": value}
    if row.witnesses is not None and len(row.witnesses) >= 2:
        values = row.witness_values or []
        drawn = row.drawn_at is not None and all(isinstance(v, str) for v in values)
        return list(values) if drawn else None
    return row.witness


async def give_witness(
    session: AsyncSession,
    task: Task,
    row: Draw,
    *,
    actor: str,
    value: str,
    now: dt.datetime,
) -> Witness | None:
    """Record one witness's value (as typed). Only the people fixed at sealing, each once,
    before the deadline. Returns the complete witness once every value is in (then the draw
    runs), else None."""
    await lock_scope(session, task)
    await session.refresh(row)
    if row.status != "committed":
        raise DrawRefused("draw_closed", task=task.code, attempt=row.attempt, status=row.status)
    if row.public_source is not None:
        raise DrawRefused("public_source_draw", task=task.code)
    if row.witnesses is None:
        raise DrawRefused("unwitnessed_draw", task=task.code)
    if actor not in row.witnesses:
        raise DrawRefused("not_a_witness", task=task.code, witnesses=list(row.witnesses))
    if row.witness_deadline is not None and now > row.witness_deadline:
        raise DrawRefused("witness_deadline_passed", task=task.code, deadline=row.witness_deadline)
    position = row.witnesses.index(actor)
    values = list(row.witness_values or [None] * len(row.witnesses))
    if values[position] is not None:
        raise DrawRefused("witness_given", task=task.code)
    values[position] = value
    row.witness_values = values
    missing = [w for w, v in zip(row.witnesses, values, strict=True) if v is None]
    await audit.append(
        session,
        at=now,
        actor=actor,
        action="draw.witness",
        subject=f"task:{task.code}",
        payload={
            "attempt": row.attempt,
            "position": position + 1,
            "of": len(values),
            "value": value,
            "missing": missing,
        },
    )
    if missing:
        return None
    return values[0] if len(values) == 1 else list(values)


@gc_paused
async def run(
    session: AsyncSession,
    task: Task,
    row: Draw,
    *,
    witness: Witness,
    actor: str,
    now: dt.datetime,
    group_chats: bool = False,
    plan: PoolPlan | None = None,
) -> Outcome:
    """Draw with seed = derive_seed(secret, witness); record the inspections or the failure.

    ``witness`` is what ``give_witness`` returned when the last value came in (or ``None``
    for a draw sealed without witness). ``plan`` is the pool frozen by ``commit`` in this
    same transaction (saves decoding it)."""
    if row.status != "committed":
        raise DrawRefused("draw_closed", task=task.code, attempt=row.attempt, status=row.status)
    if not _is_sealed_witness(row, witness):
        raise ValueError("the draw runs on the witness values fixed at sealing, all of them")
    await lock_scope(session, task)
    inp, extra = (plan.input, plan.construction) if plan is not None else frozen_input(row)
    seed = derive_seed(bytes.fromhex(row.secret_hex), witness, row.algorithm_version)
    # several: witness_values; a public source: public_source
    row.witness = witness if isinstance(witness, str) else None
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


async def type_source_value(
    session: AsyncSession, task: Task, row: Draw, *, actor: str, value: str, now: dt.datetime
) -> None:
    """The public source's value, as published, typed by one person with the role (section 2:
    digits, optionally a point and digits, as the source prints them). Not used until a
    second person confirms it (``confirm_source_value``)."""
    await lock_scope(session, task)
    await session.refresh(row)
    source = _awaiting_source(task, row, now)
    if not PUBLIC_VALUE.fullmatch(value):
        raise DrawRefused("source_value_format", task=task.code, value=value)
    if source.get("typed") is not None:
        raise DrawRefused("source_value_typed", task=task.code, by=source["typed"]["by"])
    row.public_source = source | {"typed": {"value": value, "by": actor, "at": now.isoformat()}}
    await audit.append(
        session,
        at=now,
        actor=actor,
        action="draw.source_typed",
        subject=f"task:{task.code}",
        payload={"attempt": row.attempt, "source": source["source"], "value": value},
    )


async def confirm_source_value(
    session: AsyncSession, task: Task, row: Draw, *, actor: str, value: str, now: dt.datetime
) -> Witness | None:
    """A second person types the value again. The same value: it is used (returned, and the
    draw runs on it). Another value: neither is used, the typed one is withdrawn (both stay in
    the audit record) and the value is typed anew."""
    await lock_scope(session, task)
    await session.refresh(row)
    source = _awaiting_source(task, row, now)
    typed = source.get("typed")
    if typed is None:
        raise DrawRefused("source_value_not_typed", task=task.code)
    if typed["by"] == actor:
        raise DrawRefused("source_self_confirmed", task=task.code)
    agreed = typed["value"] == value
    await audit.append(
        session,
        at=now,
        actor=actor,
        action="draw.source_confirmed" if agreed else "draw.source_disputed",
        subject=f"task:{task.code}",
        payload={"attempt": row.attempt, "typed": typed, "value": value},
    )
    if not agreed:
        row.public_source = source | {"typed": None}
        return None
    row.public_source = source | {
        "value": value,
        "confirmed_by": actor,
        "confirmed_at": now.isoformat(),
    }
    return {"source": source["source"], "value": value}


def _awaiting_source(task: Task, row: Draw, now: dt.datetime) -> dict[str, Any]:
    if row.status != "committed":
        raise DrawRefused("draw_closed", task=task.code, attempt=row.attempt, status=row.status)
    if row.public_source is None:
        raise DrawRefused("no_public_source", task=task.code)
    if row.witness_deadline is not None and now > row.witness_deadline:
        raise DrawRefused("witness_deadline_passed", task=task.code, deadline=row.witness_deadline)
    return dict(row.public_source)


def _is_sealed_witness(row: Draw, witness: Witness) -> bool:
    """Whether ``witness`` is every value of the witnesses fixed at sealing, in their order
    (or none for a draw sealed without witness)."""
    if row.public_source is not None:
        value = row.public_source.get("value")
        expected = {"source": row.public_source["source"], "value": value}
        return value is not None and isinstance(witness, Mapping) and dict(witness) == expected
    if row.witnesses is None:
        return witness is None
    values = row.witness_values or []
    if not values or any(v is None for v in values):
        return False
    complete = values[0] if len(values) == 1 else list(values)
    if isinstance(witness, (str, Mapping)):
        return witness == complete
    return list(witness or ()) == complete


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


async def request_cancel(
    session: AsyncSession, task: Task, *, actor: str, reason: str, now: dt.datetime
) -> Draw:
    """Ask for the task's draw to be cancelled (it cannot be used: wrong scope, wrong
    parameters, a witness who never answered). Nothing changes until the level above approves
    (``approve_cancel``)."""
    await lock_scope(session, task)
    row = await latest_draw(session, task.id)
    if row is None:
        raise DrawRefused("cancel_not_drawn", task=task.code)
    _may_cancel(task, row)
    if row.cancellation is not None:
        raise DrawRefused("cancel_pending", task=task.code, by=row.cancellation["requested_by"])
    if await _has_results(session, row):
        raise DrawRefused("cancel_has_results", task=task.code)
    row.cancellation = {"requested_by": actor, "reason": reason, "requested_at": now.isoformat()}
    await audit.append(
        session,
        at=now,
        actor=actor,
        action="draw.cancel_requested",
        subject=f"task:{task.code}",
        payload={"attempt": row.attempt, "status": row.status, "reason": reason},
    )
    return row


def _may_cancel(task: Task, row: Draw) -> None:
    if row.status not in ("committed", "drawn"):
        raise DrawRefused("cancel_closed", task=task.code, status=row.status)
    if task.status == "complete":
        raise DrawRefused("cancel_task_complete", task=task.code)


async def _has_results(session: AsyncSession, row: Draw) -> bool:
    found = await session.scalar(
        select(Inspection.id).where(
            Inspection.draw_id == row.id, Inspection.result_code.is_not(None)
        )
    )
    return found is not None


async def pending_cancel(session: AsyncSession, task: Task) -> Draw:
    row = await latest_draw(session, task.id)
    if row is None or row.cancellation is None or row.status == "cancelled":
        raise DrawRefused("cancel_not_requested", task=task.code)
    return row


async def approve_cancel(
    session: AsyncSession, task: Task, *, approver: str, approval: str, now: dt.datetime
) -> tuple[Draw, list[Cancelled]]:
    """Cancel the draw as requested: ``approval`` says whose approval this is ("level_above",
    or "region_two_person" for a region draw: its chief and a second admin). The draw and its
    record stay; its open inspections are cancelled and the task is closed. A new task may
    replace it (``Task.replaces``), and its draw names this one."""
    await lock_scope(session, task)
    row = await pending_cancel(session, task)
    _may_cancel(task, row)
    request = dict(row.cancellation or {})
    if request.get("requested_by") == approver:
        raise DrawRefused("cancel_self_approval", task=task.code)
    if await _has_results(session, row):
        raise DrawRefused("cancel_has_results", task=task.code)
    cancelled: list[Cancelled] = []
    visits = list(
        (
            await session.execute(
                select(Inspection).where(Inspection.draw_id == row.id).order_by(Inspection.number)
            )
        ).scalars()
    )
    teams = await _active_userids(session, [v.id for v in visits if v.status == "open"])
    for v in visits:
        if v.status == "open":
            cancelled.append(
                Cancelled(v.number, v.target_key, tuple(teams.get(v.id, ())), v.chatid)
            )
        v.status = "cancelled"
    was = row.status
    row.status = "cancelled"
    row.closed_at = now
    row.cancellation = request | {
        "approved_by": approver,
        "approved_at": now.isoformat(),
        "approval": approval,
        "was": was,
    }
    task.status = "cancelled"
    await audit.append(
        session,
        at=now,
        actor=approver,
        action="draw.cancelled",
        subject=f"task:{task.code}",
        payload={
            "attempt": row.attempt,
            "closed_as": "cancelled",
            "was": was,
            "reason": request.get("reason"),
            "requested_by": request.get("requested_by"),
            "approval": approval,
            "cancelled": [c.number for c in cancelled],
        },
    )
    return row, cancelled


async def reject_cancel(
    session: AsyncSession, task: Task, *, actor: str, reason: str, now: dt.datetime
) -> Draw:
    """The level above refuses the cancellation: the draw stands; the request stays in the
    audit record."""
    await lock_scope(session, task)
    row = await pending_cancel(session, task)
    request = row.cancellation or {}
    row.cancellation = None
    await audit.append(
        session,
        at=now,
        actor=actor,
        action="draw.cancel_rejected",
        subject=f"task:{task.code}",
        payload={"attempt": row.attempt, "request": request, "reason": reason},
    )
    return row
