"""The WeCom callback endpoint: verify, decrypt, record, acknowledge. The work runs after.

Order of checks on POST: body size (413), outer XML (400), signature in constant time (403),
timestamp within tolerance of the injected clock (403), decryption and corp id (400), inner XML
(400), then the durable insert (200 on commit, 503 if the database cannot take it).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.config import Settings
from bot.context import Clock
from bot.inbound import PayloadError, envelope, safe_xml
from bot.wecom_crypto import CryptoError, WeComCrypto
from storage import inbound
from storage.db import Database

log = logging.getLogger(__name__)

CRYPTO = web.AppKey("crypto", WeComCrypto)
OnRecorded = Callable[[], None]


def _plain(status: int, body: str = "") -> web.Response:
    return web.Response(status=status, text=body, content_type="text/plain")


@web.middleware
async def never_500(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """No stack trace ever leaves; a fault of ours is a 503 so WeCom retries."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _plain(503, "service unavailable")


class CallbackEndpoint:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        clock: Clock,
        on_recorded: OnRecorded | None = None,
    ) -> None:
        w = settings.wecom
        self.settings = settings
        self.db = db
        self.clock = clock
        self.on_recorded = on_recorded or (lambda: None)
        self.crypto = WeComCrypto(
            w.token.get_secret_value(), w.encoding_aes_key.get_secret_value(), w.corp_id
        )
        self.tolerance = settings.server.timestamp_tolerance_s

    def _query(self, request: web.Request, *names: str) -> list[str] | None:
        values = [request.query.get(n, "") for n in names]
        return values if all(values) else None

    def _fresh(self, timestamp: str) -> bool:
        if not timestamp.isdigit() or len(timestamp) > 12:
            return False
        return abs(self.clock.now().timestamp() - int(timestamp)) <= self.tolerance

    async def verify_url(self, request: web.Request) -> web.Response:
        params = self._query(request, "msg_signature", "timestamp", "nonce", "echostr")
        if params is None:
            return _plain(400, "missing parameters")
        signature, timestamp, nonce, echostr = params
        if not self.crypto.verify(signature, timestamp, nonce, echostr):
            return _plain(403, "bad signature")
        if not self._fresh(timestamp):
            return _plain(403, "stale timestamp")
        try:
            return _plain(200, self.crypto.decrypt(echostr))
        except CryptoError:
            return _plain(400, "cannot decrypt")

    async def receive(self, request: web.Request) -> web.Response:
        params = self._query(request, "msg_signature", "timestamp", "nonce")
        if params is None:
            return _plain(400, "missing parameters")
        signature, timestamp, nonce = params
        try:
            raw = await request.read()  # client_max_size turns an oversized body into 413
            outer = safe_xml(raw.decode("utf-8"))
        except (PayloadError, UnicodeDecodeError):
            return _plain(400, "malformed body")
        encrypt = (outer.findtext("Encrypt") or "").strip()
        to_user = (outer.findtext("ToUserName") or "").strip()
        if not encrypt:
            return _plain(400, "malformed body")
        if not self.crypto.verify(signature, timestamp, nonce, encrypt):
            return _plain(403, "bad signature")
        if not self._fresh(timestamp):
            return _plain(403, "stale timestamp")
        if to_user and to_user != self.crypto.corp_id:
            return _plain(400, "wrong corp id")
        try:
            xml = self.crypto.decrypt(encrypt)
            env = envelope(xml)
        except (CryptoError, PayloadError):
            return _plain(400, "cannot decrypt or parse")
        try:
            async with self.db.transaction() as session:
                new_id = await inbound.record(
                    session,
                    dedup_key=env.dedup_key,
                    userid=env.user,
                    kind=env.kind,
                    payload=xml,
                    now=self.clock.now(),
                )
        except Exception:
            log.exception("cannot record inbound event")
            return _plain(503, "service unavailable")
        if new_id is not None:
            self.on_recorded()
        return _plain(200)

    async def healthz(self, request: web.Request) -> web.Response:
        ok = await self.db.ping()
        return web.json_response(
            {"database": "ok" if ok else "unreachable"}, status=200 if ok else 503
        )


def make_app(
    settings: Settings, db: Database, clock: Clock, on_recorded: OnRecorded | None = None
) -> web.Application:
    endpoint = CallbackEndpoint(settings, db, clock, on_recorded)
    app = web.Application(client_max_size=settings.server.max_body_bytes, middlewares=[never_500])
    app[CRYPTO] = endpoint.crypto
    path = settings.server.callback_path
    app.router.add_get(path, endpoint.verify_url)
    app.router.add_post(path, endpoint.receive)
    app.router.add_get("/healthz", endpoint.healthz)
    return app
