"""The outbox: every outgoing message is a row written in the transaction that caused it.

Handlers call `Outbox`; only `bot.runtime.sender` reads the table and talks to WeCom.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, and_, bindparam, case, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import cards
from storage.bulk import binder, insert_rows
from storage.models import GroupChat, OutboxDelivery, OutboxMessage, RoleBinding, TemplateCard

REPLY, NOTIFY, BULK = 0, 1, 2

SEND = "message/send"
UPDATE_CARD = "message/update_template_card"
APPCHAT_SEND = "appchat/send"
APPCHAT_CREATE = "appchat/create"
APPCHAT_UPDATE = "appchat/update"
UPLOAD_AND_SEND_FILE = "media/upload+message/send"


TEXT_BYTES = 1800  # WeCom refuses text messages over 2048 bytes


def split_text(text: str, limit: int = TEXT_BYTES) -> list[str]:
    """Cut at line ends so that every part fits in one WeCom text message."""
    parts: list[str] = []
    current: list[str] = []
    size = 0
    for line in text.split("\n"):
        n = len(line.encode()) + 1
        if current and size + n > limit:
            parts.append("\n".join(current))
            current, size = [], 0
        current.append(line[: limit // 3])
        size += n
    if current:
        parts.append("\n".join(current))
    return parts


# The columns ``Outbox._add`` sets (with the model's default for invalid_users).
BULK_COLUMNS = ("recipients", "body", "ref")  # what differs between bulk rows (template_cards)


_MESSAGES: Table = OutboxMessage.__table__  # type: ignore[assignment]
_INSERT_MESSAGES = insert(_MESSAGES)  # built once: the worker's every reply goes through it


class Outbox:
    """Queues messages in the caller's transaction. Nothing leaves before that commits.

    ``deferred=True`` (the event worker's way): the one-by-one methods keep their rows here and
    ``write`` inserts them, in queuing order, with one Core statement, instead of as ORM objects
    flushed one by one (what a simple reply costs most of the worker's time for otherwise);
    whoever defers must ``write`` before the transaction (or savepoint) ends, and the returned
    objects carry no id. Otherwise each is added to the session and flushed with it."""

    def __init__(
        self,
        session: AsyncSession,
        now: dt.datetime,
        cause_event_id: int | None = None,
        *,
        deferred: bool = False,
    ):
        self.session = session
        self.now = now
        self.cause_event_id = cause_event_id
        self.deferred = deferred
        self.queued = 0  # messages the one-by-one methods queued
        self.bulk_queued = 0  # rows written by the bulk methods (template_cards)
        self._unwritten: list[dict[str, Any]] = []  # deferred: rows ``write`` has yet to insert

    def _add(
        self,
        api: str,
        recipients: Sequence[str],
        body: dict[str, Any],
        priority: int,
        ref: str | None = None,
    ) -> None:
        row = {
            "created_at": self.now,
            "priority": priority,
            "api": api,
            "recipients": sorted(set(recipients)),
            "body": body,
            "status": "pending",
            "attempts": 0,
            "not_before": self.now,
            "cause_event_id": self.cause_event_id,
            "ref": ref,
        }
        if self.deferred:
            self._unwritten.append({**row, "invalid_users": []})
        else:
            self.session.add(OutboxMessage(**row))
        self.queued += 1

    async def write(self) -> None:
        """Deferred: insert what was queued since the last ``write``, in queuing order."""
        rows, self._unwritten = self._unwritten, []
        if rows:
            conn = await self.session.connection()
            await conn.execute(_INSERT_MESSAGES, rows[0] if len(rows) == 1 else rows)

    def text(self, users: Iterable[str], content: str, *, priority: int = NOTIFY) -> None:
        """A text; a long one goes as several messages, cut at line ends."""
        users = list(users)
        for part in split_text(content):
            self._add(SEND, users, {"msgtype": "text", "text": {"content": part}}, priority)

    def reply(self, user: str, content: str) -> None:
        """The answer to a user's own command: goes before notifications."""
        self.text([user], content, priority=REPLY)

    def markdown(self, users: Iterable[str], content: str, *, priority: int = NOTIFY) -> None:
        users = list(users)
        body = {"msgtype": "markdown", "markdown": {"content": content}}
        self._add(SEND, users, body, priority)

    def textcard(
        self,
        users: Iterable[str],
        title: str,
        description: str,
        url: str,
        *,
        priority: int = NOTIFY,
    ) -> None:
        users = list(users)
        body = {
            "msgtype": "textcard",
            "textcard": {"title": title, "description": description, "url": url, "btntxt": "详情"},
        }
        self._add(SEND, users, body, priority)

    def template_card(
        self, users: Iterable[str], card: dict[str, Any], *, priority: int = NOTIFY
    ) -> None:
        users = list(users)
        body = {"msgtype": "template_card", "template_card": card}
        self._add(SEND, users, body, priority, ref=card.get("task_id"))

    async def template_cards(
        self,
        batch: Sequence[tuple[Iterable[str], dict[str, Any]]],
        *,
        priority: int = NOTIFY,
    ) -> int:
        """Many template cards at once (a draw's teams: 10,000 at 100,000 targets): the rows
        ``template_card`` would queue one by one, written by one executemany instead of as
        ORM objects flushed one by one (on SQLite through the driver: see ``storage.bulk``).
        What was queued before is flushed first, so message ids keep the order of queuing.
        The rows are not ORM objects and are not counted in ``queued``; ``bulk_queued`` counts
        them.
        Returns how many were queued."""
        if not batch:
            return 0
        await self.write()
        await self.session.flush()
        value = binder(self.session)
        now = value(self.now)
        same_for_all = {
            "created_at": now,
            "priority": priority,
            "api": SEND,
            "status": "pending",
            "attempts": 0,
            "not_before": now,
            "cause_event_id": self.cause_event_id,
            "invalid_users": value([]),
        }
        rows = [
            (
                value(sorted(set(users))),
                value({"msgtype": "template_card", "template_card": card}),
                card.get("task_id"),
            )
            for users, card in batch
        ]
        await insert_rows(self.session, "outbox_message", BULK_COLUMNS, rows, same_for_all)
        self.bulk_queued += len(rows)
        return len(rows)

    def update_card(self, users: Iterable[str], response_code: str, card: dict[str, Any]) -> None:
        users = list(users)
        body = {
            "userids": sorted(set(users)),
            "response_code": response_code,
            "template_card": card,
        }
        self._add(UPDATE_CARD, users, body, REPLY, ref=card.get("task_id"))

    def update_button(
        self, users: Iterable[str], response_code: str, label: str, *, task_id: str
    ) -> None:
        """A button card's buttons replaced by one disabled label (e.g. 已确认)."""
        users = list(users)
        body = {
            "userids": sorted(set(users)),
            "response_code": response_code,
            "button": {"replace_name": label},
        }
        self._add(UPDATE_CARD, users, body, REPLY, ref=task_id)

    def file(
        self, users: Iterable[str], filename: str, content_b64: str, *, priority: int = REPLY
    ) -> None:
        users = list(users)
        body = {"filename": filename, "content_b64": content_b64}
        self._add(UPLOAD_AND_SEND_FILE, users, body, priority)

    def appchat_text(self, chatid: str, content: str) -> None:
        body = {"chatid": chatid, "msgtype": "text", "text": {"content": content}}
        self._add(APPCHAT_SEND, [], body, NOTIFY, ref=chatid)

    def appchat_textcard(self, chatid: str, title: str, description: str, url: str) -> None:
        body = {
            "chatid": chatid,
            "msgtype": "textcard",
            "textcard": {"title": title, "description": description, "url": url, "btntxt": "详情"},
        }
        self._add(APPCHAT_SEND, [], body, NOTIFY, ref=chatid)

    def appchat_create(self, chatid: str, name: str, owner: str, users: list[str]) -> None:
        body = {"chatid": chatid, "name": name, "owner": owner, "userlist": sorted(set(users))}
        self.session.add(
            GroupChat(
                chatid=chatid, name=name, owner=owner, created_at=self.now, updated_at=self.now
            )
        )
        self._add(APPCHAT_CREATE, [], body, NOTIFY, ref=chatid)

    def appchat_update(
        self,
        chatid: str,
        add: list[str] | None = None,
        remove: list[str] | None = None,
        owner: str | None = None,
    ) -> None:
        """Members in and out; ``owner`` hands the chat to another member (it must be one
        after the change: WeCom refuses to remove the owner without naming a new one)."""
        body: dict[str, Any] = {
            "chatid": chatid,
            "add_user_list": add or [],
            "del_user_list": remove or [],
        }
        if owner is not None:
            body["owner"] = owner
        self._add(APPCHAT_UPDATE, [], body, NOTIFY, ref=chatid)

    def undelivered(self, users: Iterable[str], content: str, about: int) -> None:
        """A notice that message ``about`` was given up; never itself the subject of one."""
        body = {"msgtype": "text", "text": {"content": content}}
        self._add(SEND, list(users), body, REPLY, ref=f"{UNDELIVERED}{about}")


UNDELIVERED = "undelivered:"  # ref prefix of the notices about a message given up


# --- the delivering side (used by bot.runtime.sender) ------------------------------------------------

# Built once, as Core statements on the tables: the sender runs them for every message (an ORM
# bulk UPDATE by primary key costs several times as much per row).
_SLOTS: Table = OutboxDelivery.__table__  # type: ignore[assignment]
_STAMP_SLOTS = (
    update(_SLOTS)
    .where(_SLOTS.c.message_id == bindparam("m"), _SLOTS.c.attempt == bindparam("a"))
    .values(sent_at=bindparam("at"))
)
_SENT = (
    update(_MESSAGES)
    .where(_MESSAGES.c.id == bindparam("m"))
    .values(
        status="sent",
        sent_at=bindparam("at"),
        response=bindparam("answer", type_=_MESSAGES.c.response.type),
        lease_owner=None,
        lease_until=None,
        error=None,
    )
)
_RESERVE = insert(_SLOTS)
_WAIT = (
    update(_MESSAGES)
    .where(_MESSAGES.c.id == bindparam("m"))
    .values(not_before=bindparam("until"), lease_owner=None, lease_until=None)
)
_FIRST_SEND = (
    update(_MESSAGES)
    .where(_MESSAGES.c.id == bindparam("m"))
    .values(
        content_key=bindparam("key"),
        first_sent_at=bindparam("at"),
        duplicate_check=bindparam("check"),
    )
)


def _claimable(now: dt.datetime) -> Any:
    return and_(
        OutboxMessage.status == "pending",
        OutboxMessage.not_before <= now,
        or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until < now),
    )


async def claim(
    session: AsyncSession, owner: str, now: dt.datetime, lease: dt.timedelta, limit: int
) -> list[OutboxMessage]:
    """Lease up to `limit` due messages, replies first; returns those this owner won."""
    due = (
        select(OutboxMessage.id)
        .where(_claimable(now))
        .order_by(OutboxMessage.priority, OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)  # PostgreSQL: instances take disjoint rows
    )
    # One statement: the re-check in WHERE makes a row another instance took meanwhile lose;
    # the rows won come back whole (RETURNING), in no set order.
    result = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(due.scalar_subquery()), _claimable(now))
        .values(lease_owner=owner, lease_until=now + lease, attempts=OutboxMessage.attempts + 1)
        .returning(OutboxMessage)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    return sorted(result.scalars(), key=lambda m: (m.priority, m.id))


@dataclass(frozen=True)
class Usage:
    """A recipient's deliveries in the last minute and hour, with the oldest of each."""

    minute: int
    oldest_in_minute: dt.datetime | None
    hour: int
    oldest_in_hour: dt.datetime | None


async def recent_usage(
    session: AsyncSession,
    recipients: Sequence[str],
    now: dt.datetime,
    margin: dt.timedelta = dt.timedelta(0),
) -> dict[str, Usage]:
    """One query for both windows of WeCom's per-recipient limits, each widened by ``margin``.
    Slots still in flight are stamped in the future and count in both."""
    if not recipients:
        return {}
    minute_ago = now - dt.timedelta(minutes=1) - margin
    in_minute = OutboxDelivery.sent_at > minute_ago
    rows = await session.execute(
        select(
            OutboxDelivery.recipient,
            func.count(case((in_minute, 1))),
            func.min(case((in_minute, OutboxDelivery.sent_at))),
            func.count(),
            func.min(OutboxDelivery.sent_at),
        )
        .where(
            OutboxDelivery.recipient.in_(list(recipients)),
            OutboxDelivery.sent_at > now - dt.timedelta(hours=1) - margin,
        )
        .group_by(OutboxDelivery.recipient)
    )
    return {r: Usage(m, om, h, oh) for r, m, om, h, oh in rows.all()}


async def reserve_many(
    session: AsyncSession, slots: Sequence[tuple[int, int, str]], until: dt.datetime
) -> None:
    """``reserve`` for several attempts at once: (message id, attempt, recipient) each."""
    if slots:
        await session.execute(
            _RESERVE,
            [
                {"message_id": m, "attempt": a, "recipient": r, "sent_at": until}
                for m, a, r in slots
            ],
        )


async def wait_for_budget(session: AsyncSession, waits: dict[int, dt.datetime]) -> None:
    """Messages whose recipients' budget is spent: claimable again when it frees up; waiting
    is not an attempt."""
    if waits:
        await session.execute(
            _WAIT, [{"m": message_id, "until": until} for message_id, until in waits.items()]
        )
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(list(waits)), OutboxMessage.attempts > 0)
            .values(attempts=OutboxMessage.attempts - 1)
            .execution_options(synchronize_session=False)
        )


async def mark_sent(
    session: AsyncSession, sent: Sequence[tuple[int, int, dt.datetime, dict[str, Any]]]
) -> None:
    """Messages WeCom took: (id, attempt, answered at, response) each. Their attempt's slots
    are stamped with the answer's time (never before WeCom counted it)."""
    if not sent:
        return
    await session.execute(_STAMP_SLOTS, [{"m": m, "a": a, "at": at} for m, a, at, _ in sent])
    await session.execute(
        _SENT, [{"m": m, "at": at, "answer": response} for m, _, at, response in sent]
    )


async def invalid_users(session: AsyncSession, message_id: int, users: list[str]) -> None:
    await session.execute(
        update(OutboxMessage).where(OutboxMessage.id == message_id).values(invalid_users=users)
    )


async def stamp(session: AsyncSession, message_id: int, attempt: int, at: dt.datetime) -> None:
    """The attempt was answered (or lost in transit) at ``at``: WeCom counted it no later."""
    await session.execute(
        update(OutboxDelivery)
        .where(OutboxDelivery.message_id == message_id, OutboxDelivery.attempt == attempt)
        .values(sent_at=at)
    )


async def release(session: AsyncSession, message_id: int, attempt: int) -> None:
    """WeCom refused the attempt outright: it never arrived, its slots are free."""
    await session.execute(
        delete(OutboxDelivery).where(
            OutboxDelivery.message_id == message_id, OutboxDelivery.attempt == attempt
        )
    )


def content_key(recipients: Sequence[str], body: dict[str, Any]) -> str:
    """What WeCom's duplicate check may compare, hashed: the recipients and the message."""
    canonical = json.dumps([sorted(recipients), body], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def contents_sent_since(
    session: AsyncSession, keys: set[str], message_ids: list[int], since: dt.datetime
) -> set[str]:
    """Which of these content keys another message (not one of ``message_ids``) was first sent
    with after ``since``."""
    if not keys:
        return set()
    rows = await session.execute(
        select(OutboxMessage.content_key).where(
            OutboxMessage.content_key.in_(sorted(keys)),
            OutboxMessage.id.not_in(message_ids),
            OutboxMessage.first_sent_at > since,
        )
    )
    return {k for k in rows.scalars() if k is not None}


async def first_sends(
    session: AsyncSession, firsts: Sequence[tuple[int, str, bool]], at: dt.datetime
) -> None:
    """``first_send`` for several messages: (id, content key, duplicate check) each."""
    if firsts:
        await session.execute(
            _FIRST_SEND,
            [{"m": m, "key": key, "at": at, "check": check} for m, key, check in firsts],
        )


async def admins(session: AsyncSession) -> list[str]:
    """Everyone holding the admin role anywhere: they hear of messages given up."""
    rows = await session.execute(select(RoleBinding.userid).where(RoleBinding.role == "admin"))
    return sorted(set(rows.scalars()))


async def chat_owner(session: AsyncSession, chatid: str) -> str | None:
    """Who owns the chat now: the owner it was created with, or the last one handed to."""
    return await session.scalar(select(GroupChat.owner).where(GroupChat.chatid == chatid))


async def hand_over_chat(session: AsyncSession, chatid: str, owner: str, now: dt.datetime) -> None:
    await session.execute(
        update(GroupChat).where(GroupChat.chatid == chatid).values(owner=owner, updated_at=now)
    )


async def record_card(
    session: AsyncSession, message: OutboxMessage, response: dict[str, Any], now: dt.datetime
) -> None:
    """A delivered template card's response code, kept where an update of the card finds it."""
    code = response.get("response_code")
    if message.api != SEND or not code or not message.ref:
        return
    if message.body.get("msgtype") != "template_card":
        return
    await session.merge(TemplateCard(task_id=message.ref, response_code=code, delivered_at=now))
    await cards.remember(session, message.ref, code, now)


async def card_response_code(session: AsyncSession, task_id: str) -> str:
    code = await session.scalar(
        select(TemplateCard.response_code).where(TemplateCard.task_id == task_id)
    )
    return code or ""
