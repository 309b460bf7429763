"""Queries the handlers use, grouped by subject. Each repository works in the caller's session."""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BindParameter,
    Table,
    bindparam,
    delete,
    literal,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import insert_for
from storage.directory.values import clean_text
from storage.models import (
    Conversation,
    Department,
    Inspector,
    Organisation,
    RoleBinding,
    Sequence,
    Target,
)


@dataclass(frozen=True)
class OrgNode:
    code: str
    name: str
    level: str
    parent_code: str | None


class OrgRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._tree: dict[str, OrgNode] | None = None

    async def tree(self) -> dict[str, OrgNode]:
        if self._tree is None:
            rows = await self.session.execute(select(Organisation))
            self._tree = {
                o.code: OrgNode(o.code, o.name, o.level, o.parent_code) for o in rows.scalars()
            }
        return self._tree

    async def get(self, code: str) -> OrgNode | None:
        return (await self.tree()).get(code)

    async def ancestors(self, code: str) -> list[str]:
        """The code itself and every organisation above it, nearest first."""
        tree = await self.tree()
        chain: list[str] = []
        node = tree.get(code)
        while node is not None and node.code not in chain:
            chain.append(node.code)
            node = tree.get(node.parent_code) if node.parent_code else None
        return chain

    async def covers(self, roots: Iterable[str], code: str) -> bool:
        above = set(await self.ancestors(code))
        return any(root in above for root in roots)

    async def subtree(self, code: str) -> list[str]:
        tree = await self.tree()
        children: dict[str, list[str]] = {}
        for node in tree.values():
            if node.parent_code:
                children.setdefault(node.parent_code, []).append(node.code)
        out, stack = [], [code]
        while stack:
            current = stack.pop()
            if current in tree and current not in out:
                out.append(current)
                stack.extend(children.get(current, []))
        return out

    async def name(self, code: str) -> str:
        node = await self.get(code)
        return node.name if node else code

    async def department(self, org: str, given: str) -> tuple[str | None, list[str]]:
        """A department of the organisation named by its code or name (read as the directory
        import reads it): its code, or None; and the codes of the organisation's departments."""

        rows = (
            await self.session.execute(
                select(Department.code, Department.name).where(Department.org_code == org)
            )
        ).all()
        wanted = clean_text(given)
        found = next((str(c) for c, n in rows if wanted in (clean_text(c), clean_text(n))), None)
        return found, sorted(str(c) for c, _ in rows)


def _identity() -> Any:
    """RoleRepo.identity's query, built once (it runs for every event the worker handles)."""
    roles: Table = RoleBinding.__table__  # type: ignore[assignment]
    people: Table = Inspector.__table__  # type: ignore[assignment]
    userid: BindParameter[str] = bindparam("userid")
    bindings = select(
        literal(0).label("kind"), roles.c.id, roles.c.role, roles.c.org_code, roles.c.dept_code
    ).where(roles.c.userid == userid)
    inspectors = select(
        literal(1), people.c.id, literal(""), people.c.org_code, people.c.name
    ).where(people.c.userid == userid, people.c.active.is_(True))
    return union_all(bindings, inspectors).order_by("kind", "id")


_IDENTITY = _identity()


class RoleRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def bindings_for(self, userid: str) -> list[RoleBinding]:
        rows = await self.session.execute(
            select(RoleBinding).where(RoleBinding.userid == userid).order_by(RoleBinding.id)
        )
        return list(rows.scalars())

    async def identity(
        self, userid: str
    ) -> tuple[list[tuple[str, str, str]], tuple[str, str] | None]:
        """In one query: the user's bindings (role, org, dept) in grant order, and their active
        inspector record's (org, name), the first if several (what ``bindings_for`` and
        ``InspectorRepo.active_by_userid`` give, for the worker's every event)."""
        rows = (await self.session.execute(_IDENTITY, {"userid": userid})).all()
        found = [(r[2], r[3], r[4]) for r in rows if r[0] == 0]
        inspector = next(((r[3], r[4]) for r in rows if r[0] == 1), None)
        return found, inspector

    async def all(self, org_codes: Iterable[str] | None = None) -> list[RoleBinding]:
        stmt = select(RoleBinding).order_by(
            RoleBinding.org_code, RoleBinding.role, RoleBinding.userid
        )
        if org_codes is not None:
            stmt = stmt.where(RoleBinding.org_code.in_(list(org_codes)))
        return list((await self.session.execute(stmt)).scalars())

    async def grant(
        self,
        userid: str,
        role: str,
        org_code: str,
        dept_code: str,
        by: str,
        at: dt.datetime,
        name: str = "",
    ) -> bool:
        """Returns False when the binding already existed (a name given is recorded on it)."""
        if name:
            await self.session.execute(
                update(RoleBinding).where(RoleBinding.userid == userid).values(name=name)
            )
        existing = await self.session.execute(
            select(RoleBinding.id).where(
                RoleBinding.userid == userid,
                RoleBinding.role == role,
                RoleBinding.org_code == org_code,
                RoleBinding.dept_code == dept_code,
            )
        )
        if existing.first() is not None:
            return False
        self.session.add(
            RoleBinding(
                userid=userid,
                role=role,
                org_code=org_code,
                dept_code=dept_code,
                granted_by=by,
                granted_at=at,
                name=name,
            )
        )
        await self.session.flush()
        return True

    async def revoke(self, userid: str, role: str, org_code: str, dept_code: str) -> bool:
        result = await self.session.execute(
            delete(RoleBinding).where(
                RoleBinding.userid == userid,
                RoleBinding.role == role,
                RoleBinding.org_code == org_code,
                RoleBinding.dept_code == dept_code,
            )
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def holders(
        self, role: str, org_codes: Iterable[str], dept_code: str | None = None
    ) -> list[str]:
        stmt = select(RoleBinding.userid).where(
            RoleBinding.role == role, RoleBinding.org_code.in_(list(org_codes))
        )
        if dept_code is not None:
            stmt = stmt.where(RoleBinding.dept_code.in_([dept_code, ""]))
        return sorted(set((await self.session.execute(stmt)).scalars()))


class InspectorRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def active_by_userid(self, userid: str) -> Inspector | None:
        rows = await self.session.execute(
            select(Inspector)
            .where(Inspector.userid == userid, Inspector.active.is_(True))
            .order_by(Inspector.id)
            .limit(1)
        )
        return rows.scalar_one_or_none()


class TargetRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_code(self, code: str) -> Target | None:
        """The target a user names by its key, credit code or permit number (exactly)."""
        code = unicodedata.normalize("NFKC", code).strip().upper()
        rows = await self.session.execute(
            select(Target)
            .where(or_(Target.key == code, Target.uscc == code, Target.permit_no == code))
            .order_by(Target.id)
            .limit(1)
        )
        return rows.scalar_one_or_none()


class SequenceRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def next(self, name: str) -> int:
        """Next value of a named counter; an upsert, so two instances never get the same one."""
        return await self.reserve(name, 1)

    async def reserve(self, name: str, n: int) -> int:
        """Reserve ``n`` consecutive values in one statement (bulk inspection numbers); returns
        the first of them."""
        stmt = (
            insert_for(self.session)(Sequence)
            .values(name=name, value=n)
            .on_conflict_do_update(index_elements=["name"], set_={"value": Sequence.value + n})
            .returning(Sequence.value)
        )
        return int((await self.session.execute(stmt)).scalar_one()) - n + 1


class ConversationRepo:
    """What a user is in the middle of; expired states are ignored."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, userid: str, now: dt.datetime) -> Conversation | None:
        conv = await self.session.get(Conversation, userid)
        if conv is None or conv.expires_at <= now:
            return None
        return conv

    async def state(self, userid: str, now: dt.datetime) -> str | None:
        conv = await self.get(userid, now)
        return conv.state if conv else None

    async def set(
        self, userid: str, state: str, data: dict[str, Any], expires_at: dt.datetime
    ) -> None:
        conv = await self.session.get(Conversation, userid)
        if conv is None:
            self.session.add(
                Conversation(userid=userid, state=state, data=data, expires_at=expires_at)
            )
        else:
            conv.state, conv.data, conv.expires_at = state, data, expires_at
        await self.session.flush()

    async def clear(self, userid: str) -> None:
        await self.session.execute(delete(Conversation).where(Conversation.userid == userid))


class Repositories:
    def __init__(self, session: AsyncSession) -> None:
        self.orgs = OrgRepo(session)
        self.roles = RoleRepo(session)
        self.inspectors = InspectorRepo(session)
        self.targets = TargetRepo(session)
        self.sequences = SequenceRepo(session)
        self.conversations = ConversationRepo(session)
