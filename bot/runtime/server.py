"""The WeCom callback endpoint: verify, decrypt, record, acknowledge. The work runs after.

Order of checks on POST: body size (413), outer XML (400), signature in constant time (403),
timestamp within tolerance of the injected clock (403), decryption and corp id (400), inner XML
(400), then the durable insert (200 on commit, 503 if the database cannot take it).

Every wait for the database on this path is bounded (`[server] ack_timeout_s`, well inside
WeCom's 5 s), and so is the number of callbacks in flight (`max_inflight`): without the database
the endpoint answers 503 at once or after the timeout, holds nothing, and logs the outage once
when it starts and once when it ends. A 503 loses nothing: WeCom retries, and an event recorded
after its request gave up is the same row (the dedup key) when the retry comes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
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
from storage.inbox import InboxWriter

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
    `max_wait`). A steady stream of callbacks must not starve them: once a wait ran out, they
    run for as long again without waiting (nor committing after every event), then wait anew.
    Without that, a flood of callbacks kept something in flight all the time and each worker
    transaction handled one event after a 50 ms wait: 20 events/s while WeCom kept resending."""

    def __init__(
        self, max_wait: float = 0.05, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.inflight = 0
        self.max_wait = max_wait
        self.monotonic = monotonic
        self._idle = asyncio.Event()
        self._idle.set()
        self._pass_until = 0.0  # monotonic time until which the loops do not wait

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

    def waiting(self) -> bool:
        """Whether callbacks are in flight now and the loops should let them go first."""
        return self.inflight > 0 and self.monotonic() >= self._pass_until

    async def wait_idle(self) -> None:
        if not self.waiting():
            return
        try:
            await asyncio.wait_for(self._idle.wait(), self.max_wait)
        except TimeoutError:
            self._pass_until = self.monotonic() + self.max_wait


class Outage:
    """Logs a database outage (or an overload: too many callbacks in flight) once when it
    begins and once when it ends, not per request."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.since: float | None = None
        self.refused = 0
        self.state = ""

    def failed(self, reason: str, *, state: str = "database unavailable") -> None:
        self.refused += 1
        if self.since is None:
            self.since, self.state = time.monotonic(), state
            log.error("%s: %s (%s); answering 503", self.what, state, reason)

    def recovered(self) -> None:
        if self.since is not None:
            log.warning(
                "%s: %s after %.1f s (%d requests answered 503)",
                self.what,
                "no longer overloaded"
                if self.state == "overloaded"
                else "database available again",
                time.monotonic() - self.since,
                self.refused,
            )
        self.since, self.refused = None, 0


class Unavailable(Exception):
    """The event was not recorded in time (or the queue is full): answer 503."""


class GroupRecorder:
    """Concurrent callbacks share one INSERT and one commit (group commit): each request waits
    for the commit that holds its event, so a 200 still means "recorded durably".

    A request waits at most `timeout`; then it answers 503 and its event is dropped from the
    queue if not yet written. One write waits at most `write_timeout`, so the queue moves on
    when the database comes back, without a restart."""

    def __init__(
        self,
        db: Database,
        on_recorded: OnRecorded,
        *,
        timeout: float = 0.5,
        max_queued: int = 512,
        max_batch: int = 500,
        inbox: InboxWriter | None = None,
    ) -> None:
        self.db = db
        self.inbox = inbox
        self.on_recorded = on_recorded
        self.timeout = timeout
        self.write_timeout = max(2 * timeout, 1.0)
        self.max_queued = max_queued
        self.max_batch = max_batch
        self.outage = Outage("callback")
        self._queue: asyncio.Queue[tuple[inbound.NewEvent, asyncio.Future[None]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def record(self, event: inbound.NewEvent) -> None:
        """Returns once the event is committed; raises Unavailable if it was not in time."""
        if self._queue.qsize() >= self.max_queued:
            self.outage.failed("queue full")
            raise Unavailable("queue full")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((event, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        try:
            await asyncio.wait_for(asyncio.shield(future), self.timeout)
        except TimeoutError:
            future.cancel()  # not written yet: the writer skips it; WeCom will retry
            self.outage.failed(f"no commit within {self.timeout:g} s")
            raise Unavailable("timeout") from None
        except Exception as exc:
            raise Unavailable(str(exc)) from exc

    async def _write(self, events: list[inbound.NewEvent]) -> None:
        # Bounded inside the driver, never cancelled from here (storage.db.Database.run_write).
        if self.inbox is not None:
            await self.inbox.record(events, give_up_after=self.write_timeout)
            return
        work = functools.partial(inbound.record_many, events=events)
        await self.db.run_write(work, give_up_after=self.write_timeout)

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            batch = [(event, future) for event, future in batch if not future.done()]
            if not batch:
                continue
            try:
                await self._write([event for event, _ in batch])
            except Exception as exc:
                reason = (str(exc).strip().splitlines() or [""])[0][:200]
                self.outage.failed(f"{type(exc).__name__}: {reason}")
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                        future.exception()  # retrieved: a request that gave up never reads it
                continue
            self.outage.recovered()
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
        inbox: InboxWriter | None = None,
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
        self.timeout = settings.server.ack_timeout_s
        self.max_inflight = settings.server.max_inflight
        self.recorder = GroupRecorder(
            db, self.on_recorded, timeout=self.timeout, max_queued=self.max_inflight, inbox=inbox
        )
        self.health = Outage("healthz")

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
        if self.gate.inflight >= self.max_inflight:
            self.recorder.outage.failed(
                f"more than {self.max_inflight} callbacks in flight", state="overloaded"
            )
            return _plain(503, "service unavailable")
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
        except Unavailable:
            return _plain(503, "service unavailable")
        return _plain(200)

    async def healthz(self, request: web.Request) -> web.Response:
        ping = asyncio.ensure_future(self.db.ping(give_up_after=self.timeout))
        try:  # shielded: a late ping finishes on its own (bounded in the driver)
            ok = await asyncio.wait_for(asyncio.shield(ping), self.timeout)
        except TimeoutError:
            ok = False
        if ok:
            self.health.recovered()
        else:
            self.health.failed("no answer to SELECT 1")
        body: dict[str, object] = {
            "database": "ok" if ok else "unreachable",
            "now": self.clock.now().isoformat(),  # the domain's time: simulated in a drill
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
    inbox: InboxWriter | None = None,
) -> web.Application:
    endpoint = CallbackEndpoint(settings, db, clock, on_recorded, gate, inbox)
    # The callback enforces its own, much smaller limit; the upload page takes files.
    app = web.Application(client_max_size=MAX_UPLOAD, middlewares=[never_500])
    app[CRYPTO] = endpoint.crypto
    path = settings.server.callback_path
    app.router.add_get(path, endpoint.verify_url)
    app.router.add_post(path, endpoint.receive)
    app.router.add_get("/healthz", endpoint.healthz)
    app.add_subapp("/upload/", upload_app(settings, db, clock))
    if settings.public.enabled:
        app.add_subapp(settings.public.path_prefix + "/", public_app(settings, db, clock))

    async def close_recorder(_: web.Application) -> None:
        await endpoint.recorder.close()

    app.on_cleanup.append(close_recorder)
    return app
