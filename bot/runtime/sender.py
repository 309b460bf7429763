"""Delivers the outbox to WeCom: claim with a lease, reserve the recipients' budget, send, mark.

WeCom silently drops messages past 30 a minute and 1,000 an hour per recipient per app; the
budget is counted from the outbox_delivery table under a per-recipient lock, so it holds across
instances. Every message/send carries WeCom's duplicate check and the outbox id (WeCom compares
the whole request JSON and ignores the extra key), so a retry of the same outbox message is the
very same JSON: a message whose outcome was unknown (the process died after WeCom took it,
before we marked it) is sent again and WeCom drops the copy, while two different messages with
the same text both arrive.
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
from bot.wecom.api import WeComClient, WeComError
from storage import outbox as ob
from storage.db import Database
from storage.models import OutboxMessage

log = logging.getLogger(__name__)

MINUTE, HOUR = dt.timedelta(minutes=1), dt.timedelta(hours=1)
BUDGETED = {ob.SEND, ob.UPLOAD_AND_SEND_FILE}


async def _nothing() -> None:
    return None


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
        self.duplicate_window = min(max(3 * settings.worker.lease_seconds, 60), 4 * 3600)
        self.wake = asyncio.Event()
        # Awaited before each message: lets the callback endpoint's acknowledgements go first.
        self.before_each: Callable[[], Awaitable[None]] = _nothing

    async def run_once(self) -> int:
        """Deliver what is due now; returns how many messages left (sent or failed for good)."""
        done = 0
        while True:
            async with self.db.transaction() as session:
                claimed = await ob.claim(
                    session, self.owner, self.clock.now(), self.lease, self.batch
                )
            if not claimed:
                return done
            progressed = False
            for message in claimed:
                await self.before_each()
                if await self.deliver(message):
                    done += 1
                    progressed = True
            if not progressed:
                return done

    async def deliver(self, message: OutboxMessage) -> bool:
        """Returns True when the message reached a final state (sent or failed)."""
        if message.api in BUDGETED and message.recipients:
            wait_until = await self._reserve(message)
            if wait_until is not None:
                await self._defer(message.id, wait_until, None)
                return False
        try:
            response = await self._call(message)
        except WeComError as exc:
            return await self._failed(message, exc)
        except Exception as exc:  # a bug or an unexpected payload: keep the message, report
            log.exception("outbox message %s could not be sent", message.id)
            return await self._failed(
                message, WeComError(-2, f"{type(exc).__name__}: {exc}", retryable=False)
            )
        await self._mark_sent(message.id, response)
        return True

    async def _reserve(self, message: OutboxMessage) -> dt.datetime | None:
        """Reserve one delivery per recipient, or say when the budget frees up."""
        w = self.settings.worker
        async with self.db.transaction() as session:
            if self.db.dialect == "postgresql":
                for recipient in sorted(message.recipients):
                    await session.execute(
                        text("SELECT pg_advisory_xact_lock(:k)"),
                        {"k": zlib.crc32(recipient.encode()) - 2**31},
                    )
            now = self.clock.now()
            recipients = list(message.recipients)
            usage = await ob.recent_usage(session, recipients, now)
            waits = []
            for u in usage.values():
                if u.minute >= w.per_minute and u.oldest_in_minute is not None:
                    waits.append(u.oldest_in_minute + MINUTE)
                if u.hour >= w.per_hour and u.oldest_in_hour is not None:
                    waits.append(u.oldest_in_hour + HOUR)
            if waits:
                return max(waits)
            if message.attempts > 1:
                await ob.release_reservation(session, message.id)  # the earlier attempt's
            await ob.reserve(session, message.id, recipients, now)
        return None

    def _addressed(self, message: OutboxMessage, body: dict[str, Any]) -> dict[str, Any]:
        """A message/send body for this outbox message: the same JSON on every retry (the
        client adds the agentid)."""
        return {
            **body,
            "touser": "|".join(message.recipients),
            "enable_duplicate_check": 1,
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

    async def _mark_sent(self, message_id: int, response: dict[str, Any]) -> None:
        async with self.db.transaction() as session:
            row = await session.get(OutboxMessage, message_id, populate_existing=True)
            if row is None:
                return
            row.status, row.sent_at, row.response = "sent", self.clock.now(), response
            await ob.record_card(session, row, response, self.clock.now())
            row.lease_owner, row.lease_until, row.error = None, None, None
            invalid = list(response.get("invaliduser") or [])
            if invalid:
                # Recorded and reported (shown by the console and the admin's status), not retried.
                row.invalid_users = invalid
                log.warning("outbox message %s: WeCom does not know %s", message_id, invalid)

    async def _defer(self, message_id: int, until: dt.datetime, error: str | None) -> None:
        async with self.db.transaction() as session:
            row = await session.get(OutboxMessage, message_id, populate_existing=True)
            if row is None:
                return
            row.not_before, row.lease_owner, row.lease_until = until, None, None
            if error is None:
                row.attempts = max(row.attempts - 1, 0)  # waiting for budget is not an attempt
            else:
                row.error = error
                await ob.release_reservation(session, message_id)

    async def _failed(self, message: OutboxMessage, exc: WeComError) -> bool:
        error = f"{exc.errcode}: {exc.errmsg}"
        if exc.retryable and message.attempts < self.settings.worker.max_attempts:
            delay = dt.timedelta(seconds=min(5 * 2**message.attempts, 600))
            await self._defer(message.id, self.clock.now() + delay, error)
            return False
        async with self.db.transaction() as session:
            row = await session.get(OutboxMessage, message.id, populate_existing=True)
            if row is not None:
                row.status, row.error, row.lease_owner, row.lease_until = (
                    "failed",
                    error,
                    None,
                    None,
                )
                await ob.release_reservation(session, message.id)
        log.error("outbox message %s failed for good: %s", message.id, error)
        return True
