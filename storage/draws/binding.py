"""What the audit record binds about each draw (DRAW_ALGORITHM.md section 16).

An export checks itself: commitment, fingerprint, result, the amendments' chain. What it cannot
check alone is that it is the whole story: that it was not relabelled (a drawn result shown as
abandoned), cut short (the last amendment dropped and the chain recomputed) or passed off as
version 1. The audit record is hash-chained and written in the same transaction as each step,
so it is the anchor: the commitment entry names the algorithm version, the entry that closed
the draw its final state, and every amendment entry the chain head after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditEntry, Task

ACTIONS = ("draw.commit", "draw.run", "draw.fail", "draw.redraw_approved", "draw.amend")


@dataclass
class Bound:
    """A draw's facts as the audit record holds them."""

    version: int | None = None
    commitment: str | None = None
    status: str = "committed"
    amendments: int = 0
    head: str | None = None


async def bound(session: AsyncSession, task: Task, attempt: int) -> Bound:
    rows = await session.execute(
        select(AuditEntry.action, AuditEntry.payload)
        .where(AuditEntry.subject == f"task:{task.code}", AuditEntry.action.in_(ACTIONS))
        .order_by(AuditEntry.id)
    )
    facts = Bound()
    for action, payload in rows.all():
        if payload.get("attempt") != attempt:
            continue
        if action == "draw.commit":
            # Entries written before version 2 carry no version: they were version 1.
            facts.version = payload.get("algorithm_version", 1)
            facts.commitment = payload.get("commitment")
        elif action == "draw.run":
            facts.status = "drawn"
        elif action == "draw.fail":
            facts.status = "failed"
        elif action == "draw.redraw_approved":
            facts.status = payload["closed_as"]
        else:
            facts.amendments += 1
            facts.head = payload.get("amendments_head")
    return facts


def _status(doc: dict[str, Any]) -> Any:
    if "status" in doc:
        return doc["status"]
    return (
        "drawn" if doc.get("result") is not None else "failed" if doc.get("error") else "abandoned"
    )


async def check_binding(session: AsyncSession, task: Task, doc: dict[str, Any]) -> str | None:
    """None when an export (already verified on its own) is the draw the record holds."""
    attempt = doc.get("attempt")
    if type(attempt) is not int:
        return "record: the export names no attempt of the task"
    facts = await bound(session, task, attempt)
    if facts.version is None:
        return f"record: no draw {attempt} of {task.code} was committed"
    checks = (
        ("algorithm_version", doc["algorithm_version"], facts.version),
        ("commitment", doc["commitment"], facts.commitment),
        ("status", _status(doc), facts.status),
        ("amendments", len(doc.get("amendments") or []), facts.amendments),
    )
    for name, exported, recorded in checks:
        if exported != recorded:
            return f"record: {name} exported {exported!r}, the audit record says {recorded!r}"
    if facts.version >= 2 and facts.amendments and doc["amendments_head"] != facts.head:
        return (
            f"record: amendments_head exported {doc['amendments_head']!r}, "
            f"the audit record says {facts.head!r}"
        )
    return None
