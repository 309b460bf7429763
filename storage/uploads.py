"""One-time upload links: a self-built WeCom app never receives files, so `导入` hands an admin a
signed, short-lived, single-use link to a page the bot serves."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from storage.models import UploadToken

LIFETIME = dt.timedelta(minutes=15)


def link_key(settings: Settings) -> bytes:
    """The HMAC key for upload links: its own setting, else the app secret."""
    secret = (
        settings.server.link_secret.get_secret_value() or settings.wecom.secret.get_secret_value()
    )
    return ("upload-link:" + secret).encode()


def signature(key: bytes, token_id: str, expires_at: dt.datetime) -> str:
    message = f"{token_id}.{int(expires_at.timestamp())}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Link:
    token_id: str
    sig: str
    expires_at: dt.datetime

    def path(self) -> str:
        return f"/upload/{self.token_id}?sig={self.sig}"


async def issue(
    session: AsyncSession,
    key: bytes,
    *,
    token_id: str,
    userid: str,
    purpose: str,
    now: dt.datetime,
    lifetime: dt.timedelta = LIFETIME,
) -> Link:
    expires = (now + lifetime).replace(microsecond=0)
    session.add(UploadToken(id=token_id, userid=userid, purpose=purpose, expires_at=expires))
    await session.flush()
    return Link(token_id, signature(key, token_id, expires), expires)


class LinkRefused(Exception):
    """Why a link does not open (Chinese, shown on the page)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def check(
    session: AsyncSession, key: bytes, token_id: str, sig: str, now: dt.datetime
) -> UploadToken:
    """The token, if the link is genuine, unexpired and unused; LinkRefused otherwise."""
    token = await session.get(UploadToken, token_id) if len(token_id) <= 64 else None
    if token is None or not hmac.compare_digest(
        signature(key, token.id, token.expires_at), sig or ""
    ):
        raise LinkRefused(403, "链接无效。请在企业微信中重新发送「导入」获取新链接。")
    if token.used_at is not None:
        raise LinkRefused(410, "该链接已使用过，每个链接只能上传一次。请重新发送「导入」。")
    if token.expires_at <= now:
        raise LinkRefused(410, "该链接已过期。请在企业微信中重新发送「导入」获取新链接。")
    return token


async def consume(session: AsyncSession, token_id: str, now: dt.datetime) -> bool:
    """Mark used, once: of two uploads racing on one link, only one wins."""
    result = await session.execute(
        update(UploadToken)
        .where(
            UploadToken.id == token_id,
            UploadToken.used_at.is_(None),
            UploadToken.expires_at > now,
        )
        .values(used_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
