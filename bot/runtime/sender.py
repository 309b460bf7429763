"""Delivers the outbox to WeCom: claim with a lease, reserve the recipients' budget, send, mark.

Budget. WeCom silently drops messages past 30 a minute and 1,000 an hour per recipient per app,
counted when a message *arrives*. The ledger (outbox_delivery) holds one slot per recipient per
attempt, under a per-recipient lock, so it holds across instances. A slot is stamped "lease
from now" while its call is in flight (no arrival can come later: the lease bounds a call), and
at the answer once the call returns, which is never before the arrival; an attempt lost in
transit (timeout, reset, HTTP 5xx) keeps its slot, since WeCom may have counted it, and only an
outright refusal frees it. A slot frees a minute (an hour) plus ``budget_margin_seconds`` after
its stamp, which covers the difference between our clock and WeCom's.

Concurrency. A claimed batch is split into lanes of messages that share no recipient (or group
chat); lanes run concurrently (``send_concurrency`` at most), each lane in id order, so one
recipient's hung call holds up that recipient only and each recipient's order is kept. Lanes
refill independently: the next batch is claimed once no more than half a batch is unanswered,
not when the slowest lane is through; a lane of the new batch that shares a recipient with a
lane still running starts after it.

Transactions. A claimed batch costs three transactions, not two per message: the claim; one
that reserves the budget of every message in it (one query for the recipients' usage, one for
the duplicate-check decisions, the slots written together); and the marks, group-committed:
whatever answers have come in are marked together, while the lanes go on sending.

Duplicates. Every message/send carries WeCom's duplicate check with the longest interval WeCom
allows (4 hours), so that a resend of the same outbox message (its outcome unknown: the process
died after WeCom took it, before we marked it) is dropped by WeCom. The request also carries the
outbox id, but WeCom documents only "同样内容（请求json）" and not whether keys it does not know
take part, so nothing relies on it: a message whose recipients and body equal another message
first sent within the interval goes *without* the check (decided once, at its first send, under
the recipients' lock, and kept for its resends). So two identical replies (帮助 twice) both
arrive whichever way WeCom compares. The cost, stated in the README: a resend of such a message
after an unknown outcome, or of any message after an outage longer than 4 hours, can arrive
twice; we prefer a doubled message to a lost one.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import logging
import uuid
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from bot.chat.context import Clock
from bot.config import Settings
from bot.wecom.api import DUPLICATE_CHECK_MAX, WeComClient, WeComError
from storage import outbox as ob
from storage.db import Database
from storage.models import OutboxMessage

log = logging.getLogger(__name__)

MINUTE, HOUR = dt.timedelta(minutes=1), dt.timedelta(hours=1)
BUDGETED = {ob.SEND, ob.UPLOAD_AND_SEND_FILE}
DUPLICATE_WINDOW = dt.timedelta(seconds=DUPLICATE_CHECK_MAX)

UNDELIVERED_ADMIN = "消息未能送达（编号 {id}，收件人：{to}），已重试 {attempts} 次：{error}"
UNDELIVERED_USER = "您的请求已处理，但回复未能送达（编号 {id}），管理员已收到通知。"


async def _nothing() -> None:
    return None


@dataclass(frozen=True)
class _Answer:
    """What one attempt came to: WeCom's response, or the error; and when."""

    message: OutboxMessage
    response: dict[str, Any] | None
    error: WeComError | None
    at: dt.datetime


@dataclass
class _Ledger:
    """A recipient's slots in WeCom's minute and hour, as this batch reserves more."""

    minute: int = 0
    oldest_in_minute: dt.datetime | None = None
    hour: int = 0
    oldest_in_hour: dt.datetime | None = None

    @classmethod
    def of(cls, usage: ob.Usage | None) -> _Ledger:
        if usage is None:
            return cls()
        return cls(usage.minute, usage.oldest_in_minute, usage.hour, usage.oldest_in_hour)

    def frees(self, w: Any, margin: dt.timedelta) -> dt.datetime | None:
        """None when a slot is free now; else when the first one frees up."""
        waits = []
        if self.minute >= w.per_minute and self.oldest_in_minute is not None:
            waits.append(self.oldest_in_minute + MINUTE + margin)
        if self.hour >= w.per_hour and self.oldest_in_hour is not None:
            waits.append(self.oldest_in_hour + HOUR + margin)
        return max(waits, default=None)

    def add(self, at: dt.datetime) -> None:
        self.minute += 1
        self.hour += 1
        self.oldest_in_minute = min(self.oldest_in_minute or at, at)
        self.oldest_in_hour = min(self.oldest_in_hour or at, at)


def _keys(m: OutboxMessage) -> list[str]:
    """What a message's order is kept within: each recipient, or its group chat."""
    if m.recipients:
        return [f"u:{r.lower()}" for r in m.recipients]
    return [f"c:{m.body.get('chatid', '')}"]


def lanes(messages: list[OutboxMessage]) -> list[list[OutboxMessage]]:
    """Messages split into groups that share no recipient or chat, each in the claimed order."""
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for m in messages:
        first, *rest = _keys(m)
        for k in rest:
            parent[root(k)] = root(first)
    grouped: dict[str, list[OutboxMessage]] = {}
    for m in messages:
        grouped.setdefault(root(_keys(m)[0]), []).append(m)
    return list(grouped.values())


class OutboxSender:
    def __init__(
        self,
        db: Database,
        client: WeComClient,
        settings: Settings,
        clock: Clock,
        *,
        owner: str | None = None,
        batch: int = 50,
    ) -> None:
        self.db = db
        self.client = client
        self.settings = settings
        self.clock = clock
        self.owner = owner or f"sender-{uuid.uuid4().hex[:12]}"
        self.batch = batch
        self.lease = dt.timedelta(seconds=settings.worker.lease_seconds)
        self.margin = dt.timedelta(seconds=settings.worker.budget_margin_seconds)
        self.duplicate_window = DUPLICATE_CHECK_MAX
        self.wake = asyncio.Event()
        self._lanes = asyncio.Semaphore(settings.worker.send_concurrency)
        # Awaited before each message: lets the callback endpoint's acknowledgements go first.
        self.before_each: Callable[[], Awaitable[None]] = _nothing

    async def run_once(self) -> int:
        """Deliver what is due now; returns how many messages left (sent or failed for good).

        Lanes refill independently: once no more than half a batch is unanswered, the next
        batch is claimed (and its budget reserved) and its lanes start at once, so a slow lane
        holds up its own recipients only. A new lane that shares a recipient (or chat) with a
        lane still running starts when that lane is through: each recipient's order holds.

        No refill while a message claimed half a lease ago or more is still unanswered: its
        lease could run out before its call is made, and a claim would then take it again (and
        send it twice) and reserve budget beside a slot whose stamp no longer covers the call."""
        answers: list[_Answer] = []
        arrived = asyncio.Event()
        running: set[asyncio.Task[None]] = set()
        tails: dict[str, asyncio.Task[None]] = {}  # recipient or chat key -> its latest lane
        started: list[asyncio.Task[None]] = []
        unanswered, done, exhausted = 0, 0, False
        claimed_at: dict[int, dt.datetime] = {}  # unanswered message id -> when it was claimed

        def held_long() -> bool:
            now = self.clock.now()
            return any(now - at >= self.lease / 2 for at in claimed_at.values())

        async def lane(group: list[OutboxMessage], after: list[asyncio.Task[None]]) -> None:
            nonlocal unanswered
            if after:
                await asyncio.wait(after)  # the earlier lanes of these recipients
            async with self._lanes:
                for message in group:
                    await self.before_each()
                    answers.append(await self._attempt(message))
                    unanswered -= 1
                    claimed_at.pop(message.id, None)
                    arrived.set()

        def start(group: list[OutboxMessage]) -> None:
            keys = {k for m in group for k in _keys(m)}
            after = [t for k in keys if (t := tails.get(k)) is not None and not t.done()]
            task = asyncio.create_task(lane(group, list(dict.fromkeys(after))))
            for k in keys:
                tails[k] = task
            started.append(task)
            running.add(task)
            task.add_done_callback(running.discard)
            task.add_done_callback(lambda _: arrived.set())

        try:
            while True:
                if answers:
                    if running and len(answers) < self.batch // 2:
                        await asyncio.sleep(0)  # answers already in let in: fewer, bigger marks
                    batch = list(answers)
                    answers.clear()
                    done += await self._mark(batch)
                    continue
                if not exhausted and unanswered <= self.batch // 2 and not held_long():
                    now = self.clock.now()
                    async with self.db.transaction(rules=False) as session:
                        claimed = await ob.claim(session, self.owner, now, self.lease, self.batch)
                    exhausted = not claimed
                    if claimed:
                        ready, _ = await self._reserve_all(claimed)
                        for group in lanes(ready):
                            unanswered += len(group)
                            claimed_at.update((m.id, now) for m in group)
                            start(group)
                    continue  # answers may have come in meanwhile (PostgreSQL awaits I/O)
                if not running:
                    break  # nothing claimable, nothing in flight, every answer marked
                await arrived.wait()
                arrived.clear()
            for task in started:
                task.result()  # a lane's own failure (not a WeCom error: those are answers)
        finally:
            lanes_left = [t for t in started if not t.done()]
            for task in lanes_left:
                task.cancel()
            if lanes_left:
                await asyncio.gather(*lanes_left, return_exceptions=True)
        return done

    async def _attempt(self, message: OutboxMessage) -> _Answer:
        try:
            response = await self._call(message)
        except WeComError as exc:
            return _Answer(message, None, exc, self.clock.now())
        except Exception as exc:  # a bug or an unexpected payload: keep the message, report
            log.exception("outbox message %s could not be sent", message.id)
            error = WeComError(
                -2, f"{type(exc).__name__}: {exc}", retryable=False, maybe_delivered=True
            )
            return _Answer(message, None, error, self.clock.now())
        return _Answer(message, response, None, self.clock.now())

    async def _mark(self, answers: list[_Answer]) -> int:
        """One transaction for these answers; returns how many messages reached a final state."""
        finished, given_up = 0, []
        async with self.db.transaction(rules=False) as session:
            sent = [a for a in answers if a.error is None]
            await ob.mark_sent(
                session, [(a.message.id, a.message.attempts, a.at, a.response or {}) for a in sent]
            )
            for a in sent:
                await ob.record_card(session, a.message, a.response or {}, a.at)
                invalid = list((a.response or {}).get("invaliduser") or [])
                if invalid:
                    # Recorded and reported (shown by the console and the admin's status), not
                    # retried.
                    await ob.invalid_users(session, a.message.id, invalid)
                    log.warning("outbox message %s: WeCom does not know %s", a.message.id, invalid)
            finished += len(sent)
            for a in answers:
                if a.error is not None and await self._failed(session, a.message, a.error):
                    finished += 1
                    given_up.append(a)
        for a in given_up:
            assert a.error is not None
            log.error(
                "outbox message %s failed for good: %s: %s",
                a.message.id,
                a.error.errcode,
                a.error.errmsg,
            )
        return finished

    async def _reserve(self, message: OutboxMessage) -> dt.datetime | None:
        """Reserve this message's slots, or say when the budget frees up (it is deferred)."""
        ready, waits = await self._reserve_all([message])
        return None if ready else waits.get(message.id)

    async def _reserve_all(
        self, messages: list[OutboxMessage]
    ) -> tuple[list[OutboxMessage], dict[int, dt.datetime]]:
        """Reserve one slot per recipient for each message's attempt, in the claimed order, in
        one transaction; a message whose recipient's budget is spent is deferred until it frees
        up (waiting for budget is not an attempt). Slots of earlier attempts that may have
        arrived stay: WeCom counted them. Returns the messages to send and the deferrals."""
        budgeted = [m for m in messages if m.api in BUDGETED and m.recipients]
        if not budgeted:
            return messages, {}
        budgeted_ids = {m.id for m in budgeted}
        w = self.settings.worker
        ready: list[OutboxMessage] = []
        waits: dict[int, dt.datetime] = {}
        async with self.db.transaction(rules=False) as session:
            recipients = sorted({r for m in budgeted for r in m.recipients})
            if self.db.dialect == "postgresql":
                for recipient in recipients:  # in one order: no deadlock between instances
                    await session.execute(
                        text("SELECT pg_advisory_xact_lock(:k)"),
                        {"k": zlib.crc32(recipient.encode()) - 2**31},
                    )
            now = self.clock.now()
            usage = await ob.recent_usage(session, recipients, now, self.margin)
            ledger = {r: _Ledger.of(usage.get(r)) for r in recipients}
            keys = {
                m.id: ob.content_key(m.recipients, m.body)
                for m in budgeted
                if m.api == ob.SEND and m.duplicate_check is None
            }
            # The duplicate check: on at the first send, unless another message with the same
            # content went within the interval (see the module docstring), this batch included.
            recent = await ob.contents_sent_since(
                session, set(keys.values()), list(keys), now - DUPLICATE_WINDOW
            )
            slots: list[tuple[int, int, str]] = []
            firsts: list[tuple[int, str, bool]] = []
            for m in messages:
                if m.id not in budgeted_ids:
                    ready.append(m)
                    continue
                wait = max(
                    (t for r in m.recipients if (t := ledger[r].frees(w, self.margin))),
                    default=None,
                )
                if wait is not None:
                    waits[m.id] = wait
                    continue
                for r in m.recipients:
                    # Counted from now for the waits above (its answer comes no earlier); the
                    # row is stamped "lease from now" until the answer.
                    ledger[r].add(now)
                    slots.append((m.id, m.attempts, r))
                key = keys.get(m.id)
                if key is not None:
                    m.duplicate_check = key not in recent
                    recent.add(key)
                    firsts.append((m.id, key, m.duplicate_check))
                ready.append(m)
            await ob.reserve_many(session, slots, now + self.lease)
            await ob.first_sends(session, firsts, now)
            await ob.wait_for_budget(session, waits)
        return ready, waits

    def _addressed(self, message: OutboxMessage, body: dict[str, Any]) -> dict[str, Any]:
        """A message/send body for this outbox message: the same JSON on every retry (the
        client adds the agentid). The duplicate check as decided at the first send."""
        check = message.duplicate_check is not False
        return {
            **body,
            "touser": "|".join(message.recipients),
            "enable_duplicate_check": 1 if check else 0,
            "duplicate_check_interval": self.duplicate_window,
            "outbox_id": message.id,
        }

    async def _call(self, message: OutboxMessage) -> dict[str, Any]:
        body = message.body
        if message.api == ob.SEND:
            receipt = await self.client.send_message(self._addressed(message, body))
            return {
                "msgid": receipt.msgid,
                "invaliduser": receipt.invalid_users,
                "response_code": receipt.response_code,
            }
        if message.api == ob.UPDATE_CARD:
            return await self.client.update_template_card(body)
        if message.api == ob.UPLOAD_AND_SEND_FILE:
            content = base64.b64decode(body["content_b64"])
            media_id = await self.client.upload_media("file", body["filename"], content)
            file = {"msgtype": "file", "file": {"media_id": media_id}}
            receipt = await self.client.send_message(self._addressed(message, file))
            return {"msgid": receipt.msgid, "invaliduser": receipt.invalid_users}
        if message.api == ob.APPCHAT_SEND:
            await self.client.appchat_send(body)
            return {}
        if message.api == ob.APPCHAT_CREATE:
            chatid = await self.client.appchat_create(
                body["name"], body["owner"], body["userlist"], body.get("chatid")
            )
            return {"chatid": chatid}
        if message.api == ob.APPCHAT_UPDATE:
            await self.client.appchat_update(
                body["chatid"],
                add=body["add_user_list"],
                remove=body["del_user_list"],
                owner=body.get("owner"),
            )
            return {}
        raise WeComError(-2, f"unknown outbox api {message.api}", retryable=False)

    async def _settle_slots(self, session: Any, message: OutboxMessage, exc: WeComError) -> None:
        """A lost attempt may have arrived: its slots count from now. A refused one never did."""
        if exc.maybe_delivered:
            await ob.stamp(session, message.id, message.attempts, self.clock.now())
        else:
            await ob.release(session, message.id, message.attempts)

    async def _failed(self, session: Any, message: OutboxMessage, exc: WeComError) -> bool:
        """Transient errors (token errors twice in a row among them) are retried with backoff;
        after ``max_attempts``, or at once for a refusal, the message fails and the admins
        (and the user, for a reply) are told. Returns True when it failed for good."""
        error = f"{exc.errcode}: {exc.errmsg}"
        await self._settle_slots(session, message, exc)
        row = await session.get(OutboxMessage, message.id, populate_existing=True)
        if row is None:
            return False
        row.lease_owner, row.lease_until, row.error = None, None, error
        if exc.retryable and message.attempts < self.settings.worker.max_attempts:
            delay = dt.timedelta(seconds=min(5 * 2**message.attempts, 600))
            row.not_before = self.clock.now() + delay
            return False
        row.status = "failed"
        await self._tell_undelivered(session, message, error)
        return True

    async def _tell_undelivered(self, session: Any, message: OutboxMessage, error: str) -> None:
        if (message.ref or "").startswith(ob.UNDELIVERED):
            return  # a notice about a failure: no notice about the notice
        now = self.clock.now()
        outbox = ob.Outbox(session, now)
        admins = await ob.admins(session)
        if admins:
            to = "、".join(message.recipients) or str(message.body.get("chatid", ""))
            notice = UNDELIVERED_ADMIN.format(
                id=message.id, to=to, attempts=message.attempts, error=error
            )
            outbox.undelivered(admins, notice, message.id)
        replied = [u for u in message.recipients if u not in admins]
        if message.priority == ob.REPLY and message.api == ob.SEND and len(replied) == 1:
            outbox.undelivered(replied, UNDELIVERED_USER.format(id=message.id), message.id)
