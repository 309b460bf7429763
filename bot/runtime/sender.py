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
recipient's hung call holds up that recipient only and each recipient's order is kept. The
next batch is claimed when every lane of this one is through, so messages that become due
meanwhile wait for the slowest lane (at most the client's attempts times its timeout).

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


def lanes(messages: list[OutboxMessage]) -> list[list[OutboxMessage]]:
    """Messages split into groups that share no recipient or chat, each in the claimed order."""
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    def keys(m: OutboxMessage) -> list[str]:
        if m.recipients:
            return [f"u:{r.lower()}" for r in m.recipients]
        return [f"c:{m.body.get('chatid', '')}"]

    for m in messages:
        first, *rest = keys(m)
        for k in rest:
            parent[root(k)] = root(first)
    grouped: dict[str, list[OutboxMessage]] = {}
    for m in messages:
        grouped.setdefault(root(keys(m)[0]), []).append(m)
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
        """Deliver what is due now; returns how many messages left (sent or failed for good)."""
        done = 0
        while True:
            async with self.db.transaction(rules=False) as session:
                claimed = await ob.claim(
                    session, self.owner, self.clock.now(), self.lease, self.batch
                )
            if not claimed:
                return done
            finished = sum(await asyncio.gather(*(self._lane(lane) for lane in lanes(claimed))))
            done += finished
            if not finished:
                return done

    async def _lane(self, messages: list[OutboxMessage]) -> int:
        finished = 0
        async with self._lanes:
            for message in messages:
                await self.before_each()
                if await self.deliver(message):
                    finished += 1
        return finished

    async def deliver(self, message: OutboxMessage) -> bool:
        """Returns True when the message reached a final state (sent or failed)."""
        if message.api in BUDGETED and message.recipients:
            wait_until = await self._reserve(message)
            if wait_until is not None:
                await self._defer(message, wait_until, None)
                return False
        try:
            response = await self._call(message)
        except WeComError as exc:
            return await self._failed(message, exc)
        except Exception as exc:  # a bug or an unexpected payload: keep the message, report
            log.exception("outbox message %s could not be sent", message.id)
            return await self._failed(
                message,
                WeComError(
                    -2, f"{type(exc).__name__}: {exc}", retryable=False, maybe_delivered=True
                ),
            )
        await self._mark_sent(message, response)
        return True

    async def _reserve(self, message: OutboxMessage) -> dt.datetime | None:
        """Reserve one slot per recipient for this attempt, or say when the budget frees up.
        Slots of earlier attempts that may have arrived stay: WeCom counted them."""
        w = self.settings.worker
        async with self.db.transaction(rules=False) as session:
            if self.db.dialect == "postgresql":
                for recipient in sorted(message.recipients):
                    await session.execute(
                        text("SELECT pg_advisory_xact_lock(:k)"),
                        {"k": zlib.crc32(recipient.encode()) - 2**31},
                    )
            now = self.clock.now()
            recipients = list(message.recipients)
            usage = await ob.recent_usage(session, recipients, now, self.margin)
            waits = []
            for u in usage.values():
                if u.minute >= w.per_minute and u.oldest_in_minute is not None:
                    waits.append(u.oldest_in_minute + MINUTE + self.margin)
                if u.hour >= w.per_hour and u.oldest_in_hour is not None:
                    waits.append(u.oldest_in_hour + HOUR + self.margin)
            if waits:
                return max(waits)
            if message.api == ob.SEND and message.duplicate_check is None:
                await self._decide_duplicate_check(session, message, now)
            await ob.reserve(session, message.id, message.attempts, recipients, now + self.lease)
        return None

    async def _decide_duplicate_check(
        self, session: Any, message: OutboxMessage, now: dt.datetime
    ) -> None:
        """On at the first send, unless another message with the same content went within the
        interval: WeCom might take this one for a copy of that one (see the module docstring)."""
        key = ob.content_key(message.recipients, message.body)
        clash = await ob.same_content_since(session, message.id, key, now - DUPLICATE_WINDOW)
        message.duplicate_check = not clash
        await ob.first_send(session, message.id, key, now, not clash)

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

    async def _mark_sent(self, message: OutboxMessage, response: dict[str, Any]) -> None:
        async with self.db.transaction(rules=False) as session:
            now = self.clock.now()
            await ob.stamp(session, message.id, message.attempts, now)
            row = await session.get(OutboxMessage, message.id, populate_existing=True)
            if row is None:
                return
            row.status, row.sent_at, row.response = "sent", now, response
            await ob.record_card(session, row, response, now)
            row.lease_owner, row.lease_until, row.error = None, None, None
            invalid = list(response.get("invaliduser") or [])
            if invalid:
                # Recorded and reported (shown by the console and the admin's status), not retried.
                row.invalid_users = invalid
                log.warning("outbox message %s: WeCom does not know %s", message.id, invalid)

    async def _settle_slots(self, session: Any, message: OutboxMessage, exc: WeComError) -> None:
        """A lost attempt may have arrived: its slots count from now. A refused one never did."""
        if exc.maybe_delivered:
            await ob.stamp(session, message.id, message.attempts, self.clock.now())
        else:
            await ob.release(session, message.id, message.attempts)

    async def _defer(
        self, message: OutboxMessage, until: dt.datetime, failure: WeComError | None
    ) -> None:
        async with self.db.transaction(rules=False) as session:
            row = await session.get(OutboxMessage, message.id, populate_existing=True)
            if row is None:
                return
            row.not_before, row.lease_owner, row.lease_until = until, None, None
            if failure is None:
                row.attempts = max(row.attempts - 1, 0)  # waiting for budget is not an attempt
            else:
                row.error = f"{failure.errcode}: {failure.errmsg}"
                await self._settle_slots(session, message, failure)

    async def _failed(self, message: OutboxMessage, exc: WeComError) -> bool:
        """Transient errors (token errors twice in a row among them) are retried with backoff;
        after ``max_attempts``, or at once for a refusal, the message fails and the admins
        (and the user, for a reply) are told."""
        error = f"{exc.errcode}: {exc.errmsg}"
        if exc.retryable and message.attempts < self.settings.worker.max_attempts:
            delay = dt.timedelta(seconds=min(5 * 2**message.attempts, 600))
            await self._defer(message, self.clock.now() + delay, exc)
            return False
        async with self.db.transaction(rules=False) as session:
            row = await session.get(OutboxMessage, message.id, populate_existing=True)
            if row is not None:
                row.status, row.error, row.lease_owner, row.lease_until = (
                    "failed",
                    error,
                    None,
                    None,
                )
                await self._settle_slots(session, message, exc)
                await self._tell_undelivered(session, message, error)
        log.error("outbox message %s failed for good: %s", message.id, error)
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
