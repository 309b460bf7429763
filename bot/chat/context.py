"""The one typed object every handler gets, plus the injected clock and randomness."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from storage import audit
from storage.models import AuditEntry
from storage.outbox import Outbox
from storage.repos import Repositories


class Role(StrEnum):
    ADMIN = "admin"
    CHIEF = "chief"
    PUBLISHER = "publisher"
    ENFORCEMENT = "enforcement"
    INSPECTOR = "inspector"  # follows from an active inspector record, never granted


ROLE_LABELS = {
    Role.ADMIN: "管理员",
    Role.CHIEF: "部门负责人",
    Role.PUBLISHER: "信息公开员",
    Role.ENFORCEMENT: "执法联系人",
    Role.INSPECTOR: "检查人员",
}
GRANTABLE = (Role.ADMIN, Role.CHIEF, Role.PUBLISHER, Role.ENFORCEMENT)


class UserError(Exception):
    """A user's mistake: the message (Chinese) is the whole answer; the change is rolled back."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Clock(Protocol):
    def now(self) -> dt.datetime: ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


class FixedClock:
    """A clock tests set and advance."""

    def __init__(self, at: dt.datetime) -> None:
        self._now = at

    def now(self) -> dt.datetime:
        return self._now

    def set(self, at: dt.datetime) -> None:
        self._now = at

    def advance(self, **delta: float) -> None:
        self._now += dt.timedelta(**delta)


def wall_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class DrillClock:
    """Simulated time for drills: ``start + speed x (wall - anchor)``. The anchor (the wall time
    this start was first used) is kept in the database so every process agrees. ``wall`` is
    injected so tests advance real time without sleeping."""

    def __init__(
        self,
        start: dt.datetime,
        speed: float,
        anchor: dt.datetime,
        wall: Callable[[], dt.datetime] = wall_now,
    ) -> None:
        self.start, self.speed, self.anchor, self.wall = start, speed, anchor, wall

    def now(self) -> dt.datetime:
        return (self.start + (self.wall() - self.anchor) * self.speed).astimezone(dt.UTC)

    @property
    def wall_clock(self) -> Clock:
        """Real time, for what WeCom checks (callback timestamps)."""
        return _WallClock(self.wall)


class _WallClock:
    def __init__(self, wall: Callable[[], dt.datetime]) -> None:
        self._wall = wall

    def now(self) -> dt.datetime:
        return self._wall()


def wall_clock_of(clock: Clock) -> Clock:
    """The real-time clock behind ``clock``: a drill clock's wall part, else the clock itself
    (the system clock, or a test's FixedClock standing for both)."""
    return clock.wall_clock if isinstance(clock, DrillClock) else clock


class Entropy(Protocol):
    def token_bytes(self, n: int) -> bytes: ...


class SystemEntropy:
    def token_bytes(self, n: int) -> bytes:
        return secrets.token_bytes(n)


class CommandInfo(Protocol):
    """What 帮助 shows of a routed command (``bot.chat.router.Command``)."""

    @property
    def name(self) -> str: ...
    @property
    def aliases(self) -> tuple[str, ...]: ...
    @property
    def usage(self) -> str: ...
    @property
    def summary(self) -> str: ...


@dataclass(frozen=True)
class Binding:
    role: Role
    org_code: str
    dept_code: str = ""


@dataclass(frozen=True)
class Actor:
    """Who sent the message: role bindings, and the inspector record if there is one."""

    userid: str
    bindings: tuple[Binding, ...] = ()
    inspector_org: str | None = None
    name: str | None = None

    @property
    def roles(self) -> frozenset[Role]:
        roles = {b.role for b in self.bindings}
        if self.inspector_org is not None:
            roles.add(Role.INSPECTOR)
        return frozenset(roles)

    @property
    def known(self) -> bool:
        return bool(self.roles)

    def orgs_for(self, role: Role) -> list[str]:
        if role is Role.INSPECTOR:
            return [self.inspector_org] if self.inspector_org else []
        return [b.org_code for b in self.bindings if b.role is role]


@dataclass
class Context:
    session: AsyncSession
    outbox: Outbox
    clock: Clock
    settings: Settings
    actor: Actor
    repos: Repositories
    entropy: Entropy = field(default_factory=SystemEntropy)
    event_id: int | None = None
    # Where the user's texts come from: "text" (WeCom) or "console" (`shuangsuiji console`);
    # a result records it (Art. 38).
    channel: str = "text"
    # Set by the dispatcher, so 帮助 lists exactly what is routed.
    commands: Callable[[frozenset[Role]], Sequence[CommandInfo]] = lambda roles: []

    def now(self) -> dt.datetime:
        return self.clock.now()

    def reply(self, text: str) -> None:
        self.outbox.reply(self.actor.userid, text)

    async def audit(
        self, *, action: str, subject: str, payload: Mapping[str, Any] | None = None
    ) -> AuditEntry:
        """Append to the audit record, in this handler's transaction, as this user, now."""
        return await audit.append(
            self.session,
            at=self.now(),
            actor=self.actor.userid,
            action=action,
            subject=subject,
            payload=payload,
        )

    async def visible_orgs(self, roles: Iterable[Role]) -> set[str]:
        """The organisations under the actor's bindings in any of ``roles`` (Art. 41)."""
        orgs: set[str] = set()
        for role in roles:
            for root in self.actor.orgs_for(role):
                orgs.update(await self.repos.orgs.subtree(root))
        return orgs

    async def require_scope(self, role: Role, org_code: str) -> None:
        """Handlers check that the object acted on lies inside the role's subtree."""
        if not await self.repos.orgs.covers(self.actor.orgs_for(role), org_code):
            label = ROLE_LABELS[role]
            raise UserError(f"您的{label}权限不覆盖该单位（{org_code}）。")
