"""The audit record: append-only, hash-chained, written in the transaction of the change itself.

hash(entry) = SHA-256(prev_hash || canonical JSON of {id, at, actor, action, subject, payload}).
The head row (audit_head, id 1) is locked while appending, so concurrent appends serialise on
PostgreSQL; on SQLite every write transaction already holds the database's write lock.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditEntry, AuditHead

GENESIS = "0" * 64


def _canonical(value: Any) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    ).encode("utf-8")


def entry_hash(
    prev_hash: str,
    entry_id: int,
    at: dt.datetime,
    actor: str,
    action: str,
    subject: str,
    payload: Mapping[str, Any],
) -> str:
    body = {
        "id": entry_id,
        "at": at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        "actor": actor,
        "action": action,
        "subject": subject,
        "payload": payload,
    }
    return hashlib.sha256(prev_hash.encode("ascii") + _canonical(body)).hexdigest()


def _jsonable(payload: Mapping[str, Any]) -> dict[str, Any]:
    # Round-trip so what we hash is exactly what the JSON column will give back.
    result: dict[str, Any] = json.loads(_canonical(dict(payload)))
    return result


async def append(
    session: AsyncSession,
    *,
    at: dt.datetime,
    actor: str,
    action: str,
    subject: str,
    payload: Mapping[str, Any] | None = None,
) -> AuditEntry:
    head = (
        await session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update())
    ).scalar_one_or_none()
    if head is None:
        head = AuditHead(id=1, last_id=0, last_hash=GENESIS)
        session.add(head)
    data = _jsonable(payload or {})
    at = at.astimezone(dt.UTC)
    entry_id = head.last_id + 1
    digest = entry_hash(head.last_hash, entry_id, at, actor, action, subject, data)
    entry = AuditEntry(
        id=entry_id,
        at=at,
        actor=actor,
        action=action,
        subject=subject,
        payload=data,
        prev_hash=head.last_hash,
        hash=digest,
    )
    session.add(entry)
    head.last_id = entry_id
    head.last_hash = digest
    await session.flush()
    return entry


@dataclass(frozen=True)
class VerifyReport:
    entries: int
    first_bad_id: int | None
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.first_bad_id is None


async def _entries(session: AsyncSession, batch: int = 2000) -> AsyncIterator[AuditEntry]:
    last = 0
    while True:
        rows = (
            (
                await session.execute(
                    select(AuditEntry)
                    .where(AuditEntry.id > last)
                    .order_by(AuditEntry.id)
                    .limit(batch)
                )
            )
            .scalars()
            .all()
        )
        if not rows:
            return
        for row in rows:
            yield row
        last = rows[-1].id
        session.expunge_all()


async def verify(session: AsyncSession) -> VerifyReport:
    """Walk the chain; name the first entry altered or removed."""
    expected_id, prev, count = 1, GENESIS, 0
    async for e in _entries(session):
        if e.id != expected_id:
            return VerifyReport(count, expected_id, f"entry {expected_id} is missing")
        if e.prev_hash != prev:
            return VerifyReport(count, e.id, f"entry {e.id} does not link to entry {e.id - 1}")
        if entry_hash(prev, e.id, e.at, e.actor, e.action, e.subject, e.payload) != e.hash:
            return VerifyReport(count, e.id, f"entry {e.id} was altered")
        prev, expected_id, count = e.hash, expected_id + 1, count + 1
    head = (await session.execute(select(AuditHead).where(AuditHead.id == 1))).scalar_one_or_none()
    if head is not None and (head.last_id != count or head.last_hash != prev):
        return VerifyReport(count, count + 1, f"entries after {count} were removed")
    return VerifyReport(count, None, None)


async def history(session: AsyncSession, subject_prefix: str) -> list[AuditEntry]:
    rows = await session.execute(
        select(AuditEntry)
        .where(AuditEntry.subject.startswith(subject_prefix, autoescape=True))
        .order_by(AuditEntry.id)
    )
    return list(rows.scalars())
