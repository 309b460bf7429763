"""The rule parameters table (Art. 24, 25, 45): read once per transaction, changed by the region.

Every ORM transaction loads the table (a dozen rows or so) as it begins, into a context variable, so
that ``rule_params(on)`` stays a cheap synchronous call for its many callers and always sees
the values committed when the transaction began, on every instance. The runtime's own
bookkeeping transactions that never read the rules (claims, heartbeats, the sender's) opt out
(``Database.transaction(rules=False)``, which marks the session with ``SKIP_RULES``).
"""

from __future__ import annotations

import datetime as dt
from contextvars import ContextVar
from typing import Any

from sqlalchemy import Connection, select, text
from sqlalchemy.event import listens_for
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from inspection.params import (
    DEFAULT_HISTORY,
    BadParam,
    ParamHistory,
    RuleParams,
    history_from_rows,
    parse_value,
)
from storage import audit
from storage.db import SKIP_RULES
from storage.models import RoleBinding, RuleParam

REGION = "150000"  # only the region department sets rule parameters (Art. 5, 45)

_in_force: ContextVar[ParamHistory | None] = ContextVar("rule_params", default=None)
_LOAD = text("SELECT key, value, effective_from FROM rule_param")


# The last rows read and the history made of them: rows unchanged, nothing is parsed again.
_parsed: dict[tuple[tuple[object, ...], ...], ParamHistory] = {}


@listens_for(Session, "after_begin")
def _load_on_begin(_session: Session, tx: SessionTransaction, conn: Connection) -> None:
    if tx.nested:  # a savepoint sees its transaction's snapshot, loaded when that began
        return
    if _session.info.get(SKIP_RULES):
        return
    rows = tuple(tuple(r) for r in conn.execute(_LOAD).all())
    history = _parsed.get(rows)
    if history is None:
        history = _history(rows)
        _parsed.clear()
        _parsed[rows] = history
    _in_force.set(history)


def _history(rows: Any) -> ParamHistory:
    return history_from_rows(
        (key, value, since if isinstance(since, dt.date) else dt.date.fromisoformat(since))
        for key, value, since in rows
    )


def in_force() -> ParamHistory:
    """The parameter history loaded by the current transaction; outside any (a computation
    with no database) the rules of 2024-07-18, which are also what the migration seeds."""
    history = _in_force.get()
    return DEFAULT_HISTORY if history is None else history


def snapshot() -> ParamHistory | None:
    """What is in force now, to ``restore`` should a savepoint that changes it roll back."""
    return _in_force.get()


def restore(history: ParamHistory | None) -> None:
    _in_force.set(history)


def rule_params(on: dt.date) -> RuleParams:
    """The rule parameters in force on a date (Art. 45: later rules prevail); raises
    ``inspection.params.NoParamsInEffect`` before the first configured date."""
    return in_force().at(on)


class ParamRefused(Exception):
    """A parameter change refused; ``reason`` is a code, ``facts`` what the wording needs."""

    def __init__(self, reason: str, **facts: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.facts = facts


async def entries(session: AsyncSession) -> list[RuleParam]:
    rows = await session.execute(
        select(RuleParam).order_by(RuleParam.effective_from, RuleParam.key)
    )
    return list(rows.scalars())


async def set_param(
    session: AsyncSession,
    *,
    key: str,
    value: str,
    effective_from: dt.date,
    reason: str,
    by: str,
    now: dt.datetime,
    today: dt.date,
    force: bool = False,
) -> RuleParam:
    """Art. 45: the region changes a parameter from a date, with a reason; audited.

    A date before today would change figures already computed (draws, deadlines, counts):
    refused unless ``force``. The seven result phrases of Art. 38 never change.
    """
    if not reason.strip():
        raise ParamRefused("no_reason")
    holds = await session.execute(
        select(RoleBinding.id).where(
            RoleBinding.userid == by, RoleBinding.role == "admin", RoleBinding.org_code == REGION
        )
    )
    if holds.first() is None:
        raise ParamRefused("not_region_admin", by=by)
    try:
        stored = parse_value(key, value)
    except BadParam as exc:
        raise ParamRefused("bad_value", chinese=str(exc), english=exc.english) from None
    if effective_from < today and not force:
        raise ParamRefused("in_the_past", date=effective_from.isoformat())
    clash = await session.execute(
        select(RuleParam.id).where(RuleParam.key == key, RuleParam.effective_from == effective_from)
    )
    if clash.first() is not None:
        raise ParamRefused("already_set", key=key, date=effective_from.isoformat())
    row = RuleParam(
        key=key,
        value=stored,
        effective_from=effective_from,
        reason=reason,
        set_by=by,
        set_at=now,
    )
    session.add(row)
    await session.flush()
    # The new history must still be a coherent set of rules before this transaction commits.
    history = _history((r.key, r.value, r.effective_from) for r in await entries(session))
    _in_force.set(history)
    await audit.append(
        session,
        at=now,
        actor=by,
        action="params.set",
        subject=f"param:{key}",
        payload={
            "key": key,
            "value": stored,
            "from": effective_from.isoformat(),
            "reason": reason,
            "forced": force and effective_from < today,
        },
    )
    return row
