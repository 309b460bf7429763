"""What the audit record binds about each draw (DRAW_ALGORITHM.md section 16).

An export checks itself: commitment, fingerprint, result, the amendments' chain. What it cannot
check alone is that it is the whole story: that it was not relabelled (a drawn result shown as
abandoned), cut short (the last amendment dropped and the chain recomputed) or passed off as
version 1. The audit record is hash-chained and written in the same transaction as each step,
so it is the anchor: the commitment entry names the algorithm version, the fingerprints of the
pool and of the Art. 25(4) projects and the digest of the exclusions list (all sealed with the
commitment, before the witness value is known) and the witnesses fixed at sealing, the entry
that closed the draw its final state, and every amendment entry the chain head after it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditEntry, Task

ACTIONS = (
    "draw.commit",
    "draw.run",
    "draw.fail",
    "draw.redraw_approved",
    "draw.cancelled",
    "draw.amend",
)


@dataclass
class Bound:
    """A draw's facts as the audit record holds them."""

    version: int | None = None
    commitment: str | None = None
    fingerprint: str | None = None
    construction_fingerprint: str | None = None
    exclusions: str | None = None  # digest; None in entries written before it was sealed
    status: str = "committed"
    amendments: int = 0
    head: str | None = None
    # Witness values the seed takes, as fixed at sealing (0: none); None in entries written
    # before witnesses were fixed at sealing.
    witnesses: int | None = None
    public_source: str | None = None
    replaces: Any = None
    # The witness value(s) the draw ran on, as recorded when it ran or failed (the seed's input:
    # an export with other values and a result recomputed from the secret is not this draw).
    witness: Any = None
    ran: bool = False


def exclusions_digest(exclusions: Sequence[Any]) -> str:
    """SHA-256 of the exclusions list's canonical JSON (DRAW_ALGORITHM.md section 5)."""
    canonical = json.dumps(
        list(exclusions), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


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
            facts.fingerprint = payload.get("fingerprint")
            facts.construction_fingerprint = payload.get("construction_fingerprint")
            facts.exclusions = payload.get("exclusions_digest")
            if "witnesses" in payload:
                named = payload["witnesses"]
                facts.witnesses = len(named) if isinstance(named, list) else 0
                facts.public_source = payload.get("public_source")
            facts.replaces = payload.get("replaces")
        elif action in ("draw.run", "draw.fail"):
            facts.status = "drawn" if action == "draw.run" else "failed"
            if "witness" in payload:
                facts.ran, facts.witness = True, payload["witness"]
        elif action in ("draw.redraw_approved", "draw.cancelled"):
            facts.status = payload["closed_as"]
        else:
            facts.amendments += 1
            facts.head = payload.get("amendments_head")
    return facts


def _construction(doc: dict[str, Any]) -> Any:
    part = doc.get("construction")
    return part.get("fingerprint") if isinstance(part, dict) else None


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
        ("fingerprint", doc["fingerprint"], facts.fingerprint),
        ("construction", _construction(doc), facts.construction_fingerprint),
        ("status", _status(doc), facts.status),
        ("amendments", len(doc.get("amendments") or []), facts.amendments),
    )
    for name, exported, recorded in checks:
        if exported != recorded:
            return f"record: {name} exported {exported!r}, the audit record says {recorded!r}"
    if facts.public_source is not None and doc.get("result") is not None:
        witness = doc["witness"]
        named = witness.get("source") if isinstance(witness, dict) else None
        if named != facts.public_source:
            return f"record: public source exported {named!r}, sealed {facts.public_source!r}"
    elif facts.witnesses is not None and doc.get("result") is not None:
        witness = doc["witness"]
        given = 0 if witness is None else 1 if isinstance(witness, str) else len(witness)
        if given != facts.witnesses:
            return (
                f"record: {given} witness value(s) exported, "
                f"{facts.witnesses} witness(es) fixed at sealing"
            )
    if facts.ran and doc.get("witness") != facts.witness:
        return f"record: witness exported {doc.get('witness')!r}, the draw ran on {facts.witness!r}"
    if facts.version >= 2 and doc.get("replaces") != facts.replaces:
        return (
            f"record: replaces exported {doc.get('replaces')!r}, "
            f"the audit record says {facts.replaces!r}"
        )
    if facts.exclusions is not None:
        exclusions = doc.get("exclusions")
        digest = exclusions_digest(exclusions) if isinstance(exclusions, list) else None
        if digest != facts.exclusions:
            return "record: exclusions differ from the list sealed with the commitment"
    if facts.version >= 2 and facts.amendments and doc["amendments_head"] != facts.head:
        return (
            f"record: amendments_head exported {doc['amendments_head']!r}, "
            f"the audit record says {facts.head!r}"
        )
    return None
