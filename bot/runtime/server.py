"""The WeCom callback endpoint: verify, decrypt, record, acknowledge. The work runs after.

Order of checks on POST: body size (413), outer XML (400), signature in constant time (403),
timestamp within tolerance of the injected clock (403), decryption and corp id (400), inner XML
(400), then the durable insert (200 on commit, 503 if the database cannot take it).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Iterator

from aiohttp import web

from bot.chat.context import Clock, DrillClock, wall_clock_of
from bot.chat.inbound import PayloadError, envelope, safe_xml
from bot.config import Settings
from bot.runtime.public import public_app
from bot.runtime.upload import MAX_UPLOAD, upload_app
from bot.wecom.crypto import CryptoError, WeComCrypto
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


class IngressGate:
    """Acknowledging comes first: background loops wait while callbacks are in flight (up to
    `max_wait`, so a steady stream of callbacks cannot starve them)."""

    def __init__(self, max_wait: float = 0.05) -> None:
        self.inflight = 0
        self.max_wait = max_wait
        self._idle = asyncio.Event()
        self._idle.set()

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        self.inflight += 1
        self._idle.clear()
        try:
            yield
        finally:
            self.inflight -= 1
            if not self.inflight:
                self._idle.set()

    async def wait_idle(self) -> None:
        if self.inflight:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), self.max_wait)


class GroupRecorder:
    """Concurrent callbacks share one INSERT and one commit (group commit): each request waits
    for the commit that holds its event, so a 200 still means "recorded durably"."""

    def __init__(self, db: Database, on_recorded: OnRecorded, max_batch: int = 500) -> None:
        self.db = db
        self.on_recorded = on_recorded
        self.max_batch = max_batch
        self._queue: asyncio.Queue[tuple[inbound.NewEvent, asyncio.Future[None]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def record(self, event: inbound.NewEvent) -> None:
        """Returns once the event is committed; raises if the database could not take it."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((event, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        await future

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                events = [event for event, _ in batch]
                await self.db.run_write(functools.partial(inbound.record_many, events=events))
            except Exception as exc:
                log.error("cannot record %d inbound events: %s", len(batch), exc)
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for _, future in batch:
                if not future.done():
                    future.set_result(None)
            self.on_recorded()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class CallbackEndpoint:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        clock: Clock,
        on_recorded: OnRecorded | None = None,
        gate: IngressGate | None = None,
    ) -> None:
        w = settings.wecom
        self.gate = gate or IngressGate()
        self.settings = settings
        self.db = db
        self.clock = clock
        self.on_recorded = on_recorded or (lambda: None)
        self.crypto = WeComCrypto(
            w.token.get_secret_value(), w.encoding_aes_key.get_secret_value(), w.corp_id
        )
        self.tolerance = settings.server.timestamp_tolerance_s
        self.recorder = GroupRecorder(db, self.on_recorded)

    def _query(self, request: web.Request, *names: str) -> list[str] | None:
        values = [request.query.get(n, "") for n in names]
        return values if all(values) else None

    def _fresh(self, timestamp: str) -> bool:
        if not timestamp.isdigit() or len(timestamp) > 12:
            return False
        # WeCom's window is real time, also under a drill clock.
        now = wall_clock_of(self.clock).now()
        return abs(now.timestamp() - int(timestamp)) <= self.tolerance

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
        with self.gate.busy():
            return await self._receive(request)

    async def _receive(self, request: web.Request) -> web.Response:
        params = self._query(request, "msg_signature", "timestamp", "nonce")
        if params is None:
            return _plain(400, "missing parameters")
        signature, timestamp, nonce = params
        limit = self.settings.server.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            return _plain(413, "body too large")
        raw = await request.content.read(limit + 1)  # chunked bodies: never read past the limit
        if len(raw) > limit:
            return _plain(413, "body too large")
        try:
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
        event = inbound.NewEvent(env.dedup_key, env.user, env.kind, xml, self.clock.now())
        try:
            await self.recorder.record(event)
        except Exception:
            return _plain(503, "service unavailable")
        return _plain(200)

    async def healthz(self, request: web.Request) -> web.Response:
        ok = await self.db.ping()
        body: dict[str, object] = {
            "database": "ok" if ok else "unreachable",
            "now": self.clock.now().isoformat(),
        }
        if isinstance(self.clock, DrillClock):
            body["drill"] = True
        return web.json_response(body, status=200 if ok else 503)


def make_app(
    settings: Settings,
    db: Database,
    clock: Clock,
    on_recorded: OnRecorded | None = None,
    gate: IngressGate | None = None,
) -> web.Application:
    endpoint = CallbackEndpoint(settings, db, clock, on_recorded, gate)
    # The callback enforces its own, much smaller limit; the upload page takes files.
    app = web.Application(client_max_size=MAX_UPLOAD, middlewares=[never_500])
    app[CRYPTO] = endpoint.crypto
    path = settings.server.callback_path
    app.router.add_get(path, endpoint.verify_url)
    app.router.add_post(path, endpoint.receive)
    app.router.add_get("/healthz", endpoint.healthz)
    app.add_subapp("/upload/", upload_app(settings, db, clock))
    if settings.public.enabled:
        app.add_subapp(settings.public.path_prefix + "/", public_app(settings, db))

    async def close_recorder(_: web.Application) -> None:
        await endpoint.recorder.close()

    app.on_cleanup.append(close_recorder)
    return app
