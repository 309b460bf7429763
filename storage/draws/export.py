"""The self-contained record of a draw, and its verification against the database."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from inspection import verify as verifying
from inspection.draw import amendments_head
from inspection.public_draw import public_document
from storage.db import insert_for
from storage.draws.amendments import amendments_of, current_parts, exported
from storage.draws.binding import check_binding
from storage.draws.drawing import witness_of
from storage.draws.record import DrawRefused, draws_of, unpack
from storage.models import (
    Draw,
    DrawAmendment,
    Inspection,
    InspectionResult,
    PublicDrawExport,
    Task,
    TeamMember,
)
from storage.tasks import task_record


async def pick_draw(session: AsyncSession, task: Task, attempt: int | None = None) -> Draw:
    draws = await draws_of(session, task.id)
    if not draws:
        raise DrawRefused("no_draw", task=task.code)
    if attempt is None:
        return draws[-1]
    for d in draws:
        if d.attempt == attempt:
            return d
    raise DrawRefused("no_attempt", task=task.code, attempt=attempt)


async def export(session: AsyncSession, task: Task, attempt: int | None = None) -> dict[str, Any]:
    """The self-contained record of one draw. Refused while the witness is awaited: it holds
    the secret."""
    row = await pick_draw(session, task, attempt)
    return _document(
        task, row, await amendments_of(session, row.id), await _replaces(session, task)
    )


async def public_export(session: AsyncSession, task: Task) -> dict[str, Any]:
    """The task's draw for 一公开 (DRAW_ALGORITHM.md section 18): people under per-draw
    pseudonyms, targets of secret checks (Art. 37) under commitments."""
    row = await public_draw_of(session, task)
    sealed = await _sealed(session, row)
    return public_document(_document(task, row, await amendments_of(session, row.id)), sealed)


async def served_public_export(session: AsyncSession, task: Task, now: dt.datetime) -> str:
    """The public export as the page serves it (JSON text), or DrawRefused as
    ``public_export``. Built once per draw and amendment chain head and kept in
    ``public_draw_export`` for every instance; a swap or re-roll moves the head and rebuilds it.
    Records when it was first served: from then its checks cannot be made secret."""
    row = await public_draw_of(session, task)
    amendments = await amendments_of(session, row.id)
    head = amendments_head(row.commitment, [exported(a) for a in amendments])
    cached = await session.get(PublicDrawExport, row.id, populate_existing=True)
    if cached is not None and cached.amendments_head == head:
        return cached.body
    # Building: the draw's row locked (PostgreSQL) against a secrecy mark of one of its checks
    # at the same moment (``storage.results.mark_secret`` takes the same lock).
    await session.execute(select(Draw.id).where(Draw.id == row.id).with_for_update())
    body = json.dumps(
        public_document(_document(task, row, amendments), await _sealed(session, row)),
        ensure_ascii=False,
        sort_keys=True,
    )
    ins = insert_for(session)(PublicDrawExport).values(
        draw_id=row.id, amendments_head=head, body=body, built_at=now, first_served_at=now
    )
    await session.execute(
        ins.on_conflict_do_update(
            index_elements=["draw_id"],
            set_={"amendments_head": head, "body": body, "built_at": now},
        )
    )
    return body


async def _sealed(session: AsyncSession, row: Draw) -> set[str]:
    """Targets of the draw's secret checks (Art. 37): under commitments in the export."""
    return set(
        await session.scalars(
            select(Inspection.target_key)
            .join(InspectionResult, InspectionResult.inspection_id == Inspection.id)
            .where(Inspection.draw_id == row.id, InspectionResult.secret.is_(True))
        )
    )


async def public_draw_of(session: AsyncSession, task: Task) -> Draw:
    """The draw a public export is of, or DrawRefused: only a drawn version 2 draw, and only
    once every inspection of it is done (until then a pseudonym could be matched to a visit)."""
    row = await pick_draw(session, task)
    if row.status != "drawn" or row.algorithm_version < 2:
        raise DrawRefused("public_not_drawn", task=task.code, status=row.status)
    statuses = list(
        await session.scalars(select(Inspection.status).where(Inspection.draw_id == row.id))
    )
    if not statuses or "open" in statuses:
        raise DrawRefused("public_inspections_open", task=task.code, open=statuses.count("open"))
    return row


def _document(
    task: Task,
    row: Draw,
    amendments: Sequence[DrawAmendment],
    replaces: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What ``export_document`` makes, as the record holds it (the frozen canonical input, the
    commitment and fingerprint as committed, the result as drawn: so the verifier checks the
    record, not values recomputed from it), plus exclusions, Art. 25(4) projects and
    amendments. A failed draw, or one cancelled before its witness values were all in, has no
    result: the verifier replays the failure or nothing."""
    if row.status == "committed":
        raise DrawRefused("awaiting_witness", task=task.code, attempt=row.attempt)
    construction = None
    if row.construction_doc is not None:
        construction = {
            "input": unpack(row.construction_doc),
            "fingerprint": row.construction_fingerprint,
            "result": row.construction_result,
        }
    doc: dict[str, Any] = {
        "algorithm_version": row.algorithm_version,
        "input": unpack(row.input_doc),
        "secret_hex": row.secret_hex,
        "witness": witness_of(row),
        "commitment": row.commitment,
        "fingerprint": row.fingerprint,
        "result": row.result,
        "task": task_record(task),
        "attempt": row.attempt,
        "status": row.status,
        "witnessed": witness_of(row) is not None,
        "committed_at": row.committed_at.isoformat(),
        "drawn_at": row.drawn_at.isoformat() if row.drawn_at else None,
        "redraw_reason": row.redraw_reason,
        "approved_by": row.approved_by,
        "summary": row.summary,
        "exclusions": row.exclusions,
        "construction": construction,
        "error": row.error,
        "amendments": [exported(a, row.algorithm_version) for a in amendments],
    }
    if row.algorithm_version >= 2:
        doc |= {
            "witnesses": row.witnesses,
            "public_source": row.public_source,
            "witness_deadline": row.witness_deadline.isoformat() if row.witness_deadline else None,
            "unwitnessed_reason": row.unwitnessed_reason,
            "cancellation": row.cancellation,
            "replaces": replaces,
        }
    if row.algorithm_version >= 2:
        doc["amendments_head"] = amendments_head(row.commitment, doc["amendments"])
    return doc


async def _replaces(session: AsyncSession, task: Task) -> dict[str, Any] | None:
    """The cancelled draw this task's draw replaces (as ``draw.commit`` named it)."""
    if not task.replaces:
        return None
    old = await session.scalar(select(Task).where(Task.code == task.replaces))
    last = (await draws_of(session, old.id))[-1:] if old is not None else []
    if not last:
        return None
    return {"task": task.replaces, "attempt": last[0].attempt, "commitment": last[0].commitment}


async def verify_task(session: AsyncSession, task: Task, attempt: int | None = None) -> str | None:
    """Replay the recorded draw, then check the inspections in the database against it."""
    row = await pick_draw(session, task, attempt)
    amendments = await amendments_of(session, row.id)
    doc = _document(task, row, amendments, await _replaces(session, task))
    problem = verifying.verify_export(doc) or await check_binding(session, task, doc)
    if problem is not None or row.status != "drawn":
        return problem
    # Per drawn target: the team of its visit on the visit's lead (Art. 19), none on its other
    # sites (merged into the lead) nor on a visit merged into another task's (amendment).
    expected: dict[str, list[str]] = {}
    for current in current_parts(row, amendments).values():
        for team in current.teams:
            for site in team.site_keys:
                expected[site] = []
            if team.merged_into is None:
                expected[team.target_key] = [*team.members, *team.auxiliary]
    rows = await session.execute(
        select(Inspection.number, Inspection.target_key, TeamMember.certificate_no)
        .outerjoin(
            TeamMember,
            (TeamMember.inspection_id == Inspection.id) & TeamMember.active.is_(True),
        )
        .where(Inspection.draw_id == row.id)
        .order_by(Inspection.number, TeamMember.position)
    )
    teams: dict[str, tuple[int, list[str]]] = {}
    for number, key, cert in rows.all():
        certs = teams.setdefault(key, (number, []))[1]
        if cert is not None:
            certs.append(cert)
    for key in sorted(set(expected) | set(teams)):
        if key not in teams:
            return f"database: no inspection of drawn target {key}"
        number, certs = teams[key]
        if key not in expected:
            return f"database: inspection {number} of {key} is not in the draw"
        if sorted(certs) != sorted(expected[key]):
            return (
                f"database: inspection {number} ({key}) has team {certs}, "
                f"the record says {expected[key]}"
            )
    return None
