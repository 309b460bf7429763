"""The register of leave and declared conflicts (Art. 29; DRAW_ALGORITHM.md section 10).

A record has a stable id (``record_id``) and versions: entering it by chat makes version 1
pending until the inspector's chief confirms it; an import enters it confirmed (the importer
answers for the sheet). Amending or withdrawing adds a version; old versions stay. A version
is *in effect* from its ``effective_at`` until a later version of the record takes effect, and
only a confirmed version in effect counts: for the draw's pool (who is on leave, who declared
a conflict with which target) and as the evidence of a swap's exclusion, read as it stood
when the swap was asked for (a record entered after the request does not count).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from inspection.pool import on_leave
from storage.models import Inspector, RegisterEntry

LEAVE, CONFLICT = "leave", "conflict"
PENDING, CONFIRMED, REJECTED, WITHDRAWN = "pending", "confirmed", "rejected", "withdrawn"
CHUNK = 1000  # ids per IN (...): well under either database's bound-parameter limit
KIND_LABELS = {LEAVE: "请假", CONFLICT: "回避"}
STATE_LABELS = {
    PENDING: "待确认",
    CONFIRMED: "已确认",
    REJECTED: "已驳回",
    WITHDRAWN: "已撤销",
}


def exported(e: RegisterEntry, person: str) -> dict[str, Any]:
    """A record version as a swap's evidence carries it (DRAW_ALGORITHM.md section 10.1);
    ``person`` the userid of whom it is (as the draw's input names them)."""
    assert e.record_id is not None and e.effective_at is not None
    return {
        "id": str(e.record_id),
        "version": e.version,
        "person": person,
        "kind": e.kind,
        "state": e.state,
        "from": e.date_from.isoformat() if e.date_from else None,
        "until": e.date_until.isoformat() if e.date_until else None,
        "targets": sorted(e.targets or []),
        "effective_at": e.effective_at.astimezone(dt.UTC).isoformat(),
    }


async def create(
    session: AsyncSession,
    inspector: Inspector,
    *,
    kind: str,
    entered_by: str,
    now: dt.datetime,
    date_from: dt.date | None = None,
    date_until: dt.date | None = None,
    targets: Sequence[str] = (),
    company: str = "",
    reason: str = "",
    confirmed: bool = False,
    source: str = "chat",
    heads: Sequence[str] = (),
) -> RegisterEntry:
    """Version 1 of a new record: pending, or confirmed at once (an import)."""
    entry = RegisterEntry(
        version=1,
        inspector_id=inspector.id,
        certificate_no=inspector.certificate_no,
        userid=inspector.userid or "",
        kind=kind,
        date_from=date_from,
        date_until=date_until,
        targets=sorted(set(targets)),
        company=company,
        declared_on=now.date() if kind == CONFLICT else None,
        reason=reason,
        state=CONFIRMED if confirmed else PENDING,
        source=source,
        entered_by=entered_by,
        entered_at=now,
        confirmed_by=entered_by if confirmed else None,
        effective_at=now if confirmed else None,
        heads=list(heads),
        note="",
    )
    session.add(entry)
    await session.flush()
    entry.record_id = entry.id
    await session.flush()
    return entry


async def versions(session: AsyncSession, record_id: int) -> list[RegisterEntry]:
    rows = await session.execute(
        select(RegisterEntry)
        .where(RegisterEntry.record_id == record_id)
        .order_by(RegisterEntry.version)
        .execution_options(populate_existing=True)
    )
    return list(rows.scalars())


async def latest(session: AsyncSession, record_id: int) -> RegisterEntry | None:
    found = await versions(session, record_id)
    return found[-1] if found else None


async def decide(
    session: AsyncSession,
    entry: RegisterEntry,
    *,
    confirm: bool,
    by: str,
    now: dt.datetime,
    note: str = "",
) -> bool:
    """Confirm or reject a pending version 1, once: False when it was no longer pending."""
    values: dict[str, Any] = {"state": CONFIRMED if confirm else REJECTED, "confirmed_by": by}
    if confirm:
        values["effective_at"] = now
    else:
        values["note"] = note
    result = await session.execute(
        update(RegisterEntry)
        .where(RegisterEntry.id == entry.id, RegisterEntry.state == PENDING)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    await session.refresh(entry)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def new_version(
    session: AsyncSession, current: RegisterEntry, *, by: str, now: dt.datetime, **changes: Any
) -> RegisterEntry:
    """Amend (changed dates or targets) or withdraw (``state="withdrawn"``) a record: a new
    version in effect from ``now``; the old one stays."""
    fields = {
        c: getattr(current, c)
        for c in (
            "record_id",
            "inspector_id",
            "certificate_no",
            "userid",
            "kind",
            "date_from",
            "date_until",
            "targets",
            "company",
            "declared_on",
            "reason",
            "source",
        )
    }
    entry = RegisterEntry(
        **(fields | {"state": CONFIRMED} | changes),
        version=current.version + 1,
        entered_by=by,
        entered_at=now,
        confirmed_by=by,
        effective_at=now,
        heads=[],
        note="",
    )
    session.add(entry)
    await session.flush()
    return entry


@dataclass(frozen=True)
class InEffect:
    """The confirmed records of some people as they stood at one moment. A person is matched
    by inspector row or by userid (one person may hold two certificates, two rows)."""

    entries: tuple[RegisterEntry, ...]

    def _of(self, inspector_id: int, userid: str | None) -> Iterable[RegisterEntry]:
        return (
            e
            for e in self.entries
            if e.inspector_id == inspector_id or (userid and e.userid == userid)
        )

    def leave(
        self, inspector_id: int, userid: str | None, start: dt.date, end: dt.date
    ) -> RegisterEntry | None:
        """The first leave record of the person overlapping [start, end]."""
        for e in self._of(inspector_id, userid):
            if e.kind == LEAVE and on_leave(e.date_from, e.date_until, start, end):
                return e
        return None

    def conflict(
        self, inspector_id: int, userid: str | None, target_key: str
    ) -> RegisterEntry | None:
        for e in self._of(inspector_id, userid):
            if e.kind == CONFLICT and target_key in e.targets:
                return e
        return None

    def conflicts(self, inspector_id: int, userid: str | None) -> frozenset[str]:
        return frozenset(
            str(k) for e in self._of(inspector_id, userid) if e.kind == CONFLICT for k in e.targets
        )


async def in_effect(
    session: AsyncSession,
    people: Iterable[tuple[int, str | None]],
    at: dt.datetime | None = None,
) -> InEffect:
    """Per record of these people ((inspector id, userid) pairs), the version in effect
    strictly before ``at`` (now when None), kept when it is confirmed; in record order."""
    pairs = list(people)
    ids = sorted({i for i, _ in pairs})
    userids = sorted({u for _, u in pairs if u})
    found: dict[int, RegisterEntry] = {}
    for column, values in ((RegisterEntry.inspector_id, ids), (RegisterEntry.userid, userids)):
        for part in (values[i : i + CHUNK] for i in range(0, len(values), CHUNK)):
            rows = await session.execute(
                select(RegisterEntry).where(
                    column.in_(part), RegisterEntry.effective_at.is_not(None)
                )
            )
            found.update((e.id, e) for e in rows.scalars())
    best: dict[int, RegisterEntry] = {}
    for e in found.values():
        assert e.effective_at is not None and e.record_id is not None
        if at is not None and not e.effective_at < at:
            continue
        held = best.get(e.record_id)
        if held is None or e.version > held.version:
            best[e.record_id] = e
    return InEffect(tuple(e for _, e in sorted(best.items()) if e.state == CONFIRMED))


async def of_person(session: AsyncSession, inspector_id: int) -> list[RegisterEntry]:
    """Every record of a person, latest version each, newest record first."""
    rows = await session.execute(
        select(RegisterEntry).where(RegisterEntry.inspector_id == inspector_id)
    )
    best: dict[int, RegisterEntry] = {}
    for e in rows.scalars():
        assert e.record_id is not None
        if e.record_id not in best or e.version > best[e.record_id].version:
            best[e.record_id] = e
    return [best[k] for k in sorted(best, reverse=True)]


# --- import: the spreadsheet's leave and conflict columns ------------------------------------


async def reconcile_import(
    session: AsyncSession,
    certificates: Iterable[str],
    *,
    leave: bool,
    conflicts: bool,
    actor: str,
    now: dt.datetime,
) -> int:
    """After an inspectors' import: make the register agree with the imported leave columns
    (``leave``) and conflict column (``conflicts``) of these rows, once. The sheet holds one
    leave per person: the import's own leave record is created, amended to new dates (a new
    version) or withdrawn (cells emptied); records entered by chat are not touched. One
    conflict record per target: new ones created, ones no longer listed withdrawn.
    Re-importing the same sheet writes nothing. Returns the versions written."""
    if not (leave or conflicts):
        return 0
    certs = sorted(set(certificates))
    people: list[Inspector] = []
    for batch in (certs[i : i + CHUNK] for i in range(0, len(certs), CHUNK)):
        rows = await session.execute(select(Inspector).where(Inspector.certificate_no.in_(batch)))
        people.extend(rows.scalars())
    ids = [p.id for p in people]
    mine: dict[int, list[RegisterEntry]] = {}
    for part in (ids[i : i + CHUNK] for i in range(0, len(ids), CHUNK)):
        found = await session.execute(
            select(RegisterEntry).where(
                RegisterEntry.inspector_id.in_(part), RegisterEntry.source == "import"
            )
        )
        for e in found.scalars():
            mine.setdefault(e.inspector_id, []).append(e)
    written = 0
    for p in people:
        entries = _latest_each(mine.get(p.id, []))
        if leave:
            written += await _sync_leave(session, p, entries, actor=actor, now=now)
        if conflicts:
            written += await _sync_conflicts(session, p, entries, actor=actor, now=now)
    return written


def _latest_each(entries: Iterable[RegisterEntry]) -> list[RegisterEntry]:
    best: dict[int, RegisterEntry] = {}
    for e in entries:
        assert e.record_id is not None
        if e.record_id not in best or e.version > best[e.record_id].version:
            best[e.record_id] = e
    return [best[k] for k in sorted(best)]


async def _sync_leave(
    session: AsyncSession,
    p: Inspector,
    entries: list[RegisterEntry],
    *,
    actor: str,
    now: dt.datetime,
) -> int:
    live = [e for e in entries if e.kind == LEAVE and e.state == CONFIRMED]
    wanted = (p.leave_from, p.leave_until)
    if wanted == (None, None):
        for e in live:
            await new_version(session, e, by=actor, now=now, state=WITHDRAWN)
        return len(live)
    if not live:
        await create(
            session,
            p,
            kind=LEAVE,
            entered_by=actor,
            now=now,
            date_from=wanted[0],
            date_until=wanted[1],
            confirmed=True,
            source="import",
        )
        return 1
    if (live[0].date_from, live[0].date_until) == wanted:
        return 0
    await new_version(
        session, live[0], by=actor, now=now, date_from=wanted[0], date_until=wanted[1]
    )
    return 1


async def _sync_conflicts(
    session: AsyncSession,
    p: Inspector,
    entries: list[RegisterEntry],
    *,
    actor: str,
    now: dt.datetime,
) -> int:
    wanted = {str(k) for k in p.conflicts or ()}
    live = [e for e in entries if e.kind == CONFLICT and e.state == CONFIRMED]
    have = {k for e in live for k in e.targets}
    written = 0
    for key in sorted(wanted - have):
        await create(
            session,
            p,
            kind=CONFLICT,
            entered_by=actor,
            now=now,
            targets=[key],
            confirmed=True,
            source="import",
        )
        written += 1
    for e in live:
        if not set(e.targets) & wanted:
            await new_version(session, e, by=actor, now=now, state=WITHDRAWN)
            written += 1
    return written
