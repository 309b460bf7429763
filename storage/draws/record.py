"""What every step of a draw shares: the refusal, the result's shapes, the per-organisation lock,
the packed documents of the record and the frozen-pool cache, and finding a task's draws."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from inspection.draw import (
    DrawError,
    DrawInput,
    DrawResult,
    input_from_json,
)
from storage.gcpause import paused_gc
from storage.models import (
    Draw,
    DrawAmendment,
    Task,
)
from storage.repos import Repositories

CLOSED = ("abandoned", "superseded")


class DrawRefused(Exception):
    """The draw cannot be made or changed as asked: nothing is recorded. ``reason`` is a stable
    code and ``facts`` what the wording needs; the chat's wording is in ``handlers.common``,
    the command line's in ``bot.cli._base``."""

    def __init__(self, reason: str, **facts: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.facts = facts


@dataclass(frozen=True)
class Member:
    certificate_no: str
    userid: str
    name: str
    auxiliary: bool = False


@dataclass(frozen=True)
class Assignment:
    """One inspection as it was recorded: what its card and messages need."""

    inspection_id: int
    number: int
    target_key: str
    target_name: str
    address: str
    tier: str
    method: str
    origin: str  # random / construction (Art. 25(4))
    members: tuple[Member, ...]
    card_task_id: str | None  # None when merged into another visit
    chatid: str | None = None
    merged_into: int | None = None  # number of the visit that carries this one's items
    host_userids: tuple[str, ...] = ()
    # Art. 19: the visit's other sites (key, name, address), on the lead's card; a sibling
    # site is ``merged_into`` its lead with ``same_visit`` (no card, no message of its own).
    sites: tuple[tuple[str, str, str], ...] = ()
    same_visit: bool = False

    @property
    def userids(self) -> list[str]:
        return list(dict.fromkeys(m.userid for m in self.members))


@dataclass
class Outcome:
    draw: Draw
    result: DrawResult | None = None
    construction: DrawResult | None = None
    error: DrawError | None = None
    assignments: list[Assignment] = field(default_factory=list)


def lock_key(code: str) -> int:
    """A signed 64-bit advisory-lock key for an organisation's draws."""
    digest = hashlib.sha256(b"shuangsuiji:draw:" + code.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def lock_scope(session: AsyncSession, task: Task) -> list[str]:
    """Serialise draws on overlapping pools: lock every league/city the scope touches."""
    repos = Repositories(session)
    tree = await repos.orgs.tree()
    cities: set[str] = set()
    for root in task.scope_orgs:
        chain = await repos.orgs.ancestors(root)
        cities.update(c for c in chain if tree[c].level == "city")
        for code in await repos.orgs.subtree(root):
            if tree[code].level == "city":
                cities.add(code)
    codes = sorted(cities or {task.org_code})
    if session.get_bind().dialect.name == "postgresql":
        for code in codes:  # always in the same order, so two draws cannot deadlock
            await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key(code)})
    return codes


def pack(doc: bytes) -> bytes:
    return zlib.compress(doc, 1)


def unpack(packed: bytes) -> dict[str, Any]:
    """The canonical input a record froze (``pack``'s document), as JSON."""
    frozen: dict[str, Any] = json.loads(zlib.decompress(packed))["input"]
    return frozen


def load_input(packed: bytes) -> DrawInput:
    with paused_gc():
        return input_from_json(unpack(packed))


FROZEN_KEEP = 2  # draws


FROZEN_TARGETS = 1_000_000  # targets kept at most, all entries together (~200 MB)


_frozen: OrderedDict[tuple[int, str, str | None], tuple[DrawInput, DrawInput | None]] = (
    OrderedDict()
)


def forget_frozen() -> None:
    """Empty this process's cache of frozen pools (as another instance, or a restart, has it)."""
    _frozen.clear()


def _remember_frozen(row: Draw, inp: DrawInput, extra: DrawInput | None) -> None:
    key = (row.id, row.fingerprint, row.construction_fingerprint)
    _frozen[key] = (_sealed(inp), _sealed(extra) if extra is not None else None)
    _frozen.move_to_end(key)
    size = sum(len(i.targets) + len(e.targets if e else ()) for i, e in _frozen.values())
    while _frozen and (len(_frozen) > FROZEN_KEEP or size > FROZEN_TARGETS):
        i, e = _frozen.popitem(last=False)[1]
        size -= len(i.targets) + len(e.targets if e else ())


def _sealed(inp: DrawInput) -> DrawInput:
    # Everything in a DrawInput is immutable but the counts mapping: keep a read-only copy.
    return replace(inp, counts=MappingProxyType(dict(inp.counts)))


def frozen_input(row: Draw) -> tuple[DrawInput, DrawInput | None]:
    """The pool and the Art. 25(4) projects ``row`` froze (see ``_frozen``)."""
    cached = _frozen.get((row.id, row.fingerprint, row.construction_fingerprint))
    if cached is not None:
        return cached
    extra = load_input(row.construction_doc) if row.construction_doc else None
    return load_input(row.input_doc), extra


async def draws_of(session: AsyncSession, task_id: int) -> list[Draw]:
    rows = await session.execute(select(Draw).where(Draw.task_id == task_id).order_by(Draw.attempt))
    return list(rows.scalars())


async def latest_draw(session: AsyncSession, task_id: int) -> Draw | None:
    draws = await draws_of(session, task_id)
    return draws[-1] if draws else None


def exported(a: DrawAmendment) -> dict[str, Any]:
    """An amendment as the export carries it and the version 2 chain hashes it (section 13)."""
    if a.kind == "merge":
        return {
            "seq": a.seq,
            "kind": a.kind,
            "part": a.part,
            "target_key": a.target_key,
            "into": a.into,
            "reason": a.reason,
            "approved_by": a.approved_by,
            "at": a.at.astimezone(dt.UTC).isoformat(),
        }
    return {
        "seq": a.seq,
        "kind": a.kind,
        "part": a.part,
        "target_key": a.target_key,
        "leaving": a.leaving,
        "replacement": a.replacement,
        "excluded": list(a.excluded),
        "reason": a.reason,
        "approved_by": a.approved_by,
        "at": a.at.astimezone(dt.UTC).isoformat(),
    }
