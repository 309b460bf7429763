"""一公开: the public page (Art. 37), served by `serve` when ``[public] enabled``.

One page per organisation and year, ``<prefix>/<org code>/<year>``: every published result of
that unit and the units below it (target, credit code, task, check date, checking unit, result
phrase), searchable by credit code or by any two or more characters of a name, with CSV and
JSON downloads of the same search. ``<prefix>/<org>/<year>/draws`` lists the year's draws:
commitment, witness form (how many witnesses, by when) as soon as a draw is sealed, witness
values once the draw is made, cancellations with their reason and approval, and what replaced
what. ``<prefix>/<org>/<year>/draws/<task>`` (and its ``.json``, the public record) answers on
the page of any organisation of the task's chain; the results link to the drawing
organisation's page of the task's year. ``<prefix>/verify/DRAW_ALGORITHM.md`` and
``<prefix>/verify/reference_verifier.py`` serve the published algorithm and the stdlib verifier
as shipped.

It is a public endpoint: it reads only the public tables (``storage.public``) and the draw's
public fields, escapes everything (Jinja2 autoescape), sends security headers, caps page sizes
and queries, and limits requests per client (behind a reverse proxy, the client address comes
from ``X-Forwarded-For`` only when the peer is a configured trusted proxy). No JavaScript.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import math
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from importlib import resources
from typing import Any
from urllib.parse import quote

import jinja2
from aiohttp import web
from sqlalchemy import select

from bot.chat.context import Clock, SystemClock
from bot.config import Settings
from storage import public
from storage.db import Database
from storage.draws import (
    DrawRefused,
    public_draw_of,
    served_public_export,
    witness_of,
)
from storage.models import Draw, Organisation, PublicEntry, Task
from storage.repos import Repositories

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_PAGE = 10_000  # page numbers beyond this are refused
TRACKED_CLIENTS = 10_000  # rate-limit memory: the least recently seen are forgotten
DRAW_STATES = {
    "committed": "已封存，待见证",
    "drawn": "已抽取",
    "failed": "抽取失败",
    "cancelled": "已作废（经批准）",
    "abandoned": "已放弃",  # draws before issue 13
    "superseded": "已被重新抽取取代",  # idem
}
# Served read-only for anyone to verify a draw (the algorithm and the stdlib verifier): fixed
# routes, the files' bytes as shipped in the ``inspection`` package.
VERIFIER_FILES = {
    "DRAW_ALGORITHM.md": "text/markdown",
    "reference_verifier.py": "text/plain",
}
APPROVALS = {"level_above": "上级批准", "region_two_person": "自治区部门负责人与另一管理员两人批准"}


def _shown(witness: str | Sequence[str] | Mapping[str, str] | None) -> str | None:
    if witness is None or isinstance(witness, str):
        return witness
    if isinstance(witness, Mapping):
        return f"{witness['source']}：{witness['value']}"
    return " | ".join(witness)


def _cancellation(row: Draw, tz: dt.tzinfo) -> dict[str, Any] | None:
    """A cancellation as the public sees it: the reason, whose approval, when (no names)."""
    c = row.cancellation
    if row.status != "cancelled" or not c:
        return None
    return {
        "reason": c.get("reason", ""),
        "approval": APPROVALS.get(c.get("approval", ""), c.get("approval", "")),
        "at": dt.datetime.fromisoformat(c["approved_at"]).astimezone(tz),
        "drawn": row.drawn_at is not None,
    }


_env = jinja2.Environment(
    loader=jinja2.PackageLoader("bot.runtime", "templates/public"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)

CSS = """
body{font-family:system-ui,"Noto Sans CJK SC","PingFang SC","Microsoft YaHei",sans-serif;
margin:0 auto;max-width:68rem;padding:0 1rem 3rem;color:#1a1a1a;line-height:1.5}
header{border-bottom:3px solid #b71c1c;margin-bottom:1rem}h1{font-size:1.4rem;margin:.8rem 0}
table{border-collapse:collapse;width:100%;font-size:.95rem}th,td{border-bottom:1px solid #ddd;
padding:.45rem .4rem;text-align:left;vertical-align:top}th{background:#f5f5f5}
form{margin:1rem 0}input[type=search]{width:min(24rem,70%);padding:.4rem;font-size:1rem}
button{padding:.4rem .9rem;font-size:1rem}.muted{color:#666;font-size:.9rem}
.corrected{color:#b71c1c;font-size:.85rem}nav a{margin-right:1rem}
code{word-break:break-all;font-size:.85rem}
@media (max-width:40rem){thead{display:none}tr{display:block;border-bottom:2px solid #ccc;
margin-bottom:.6rem}td{display:block;border:0;padding:.15rem 0}
td::before{content:attr(data-label) "：";color:#666}}
"""


class RateLimiter:
    """At most ``per_minute`` requests per client in any 60 s (a sliding window)."""

    def __init__(self, per_minute: int, now: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.now = now
        self.seen: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, client: str) -> int:
        """0 when the request may go ahead (and is counted), else seconds to wait."""
        now = self.now()
        hits = self.seen.pop(client, None) or deque()
        while hits and hits[0] <= now - 60:
            hits.popleft()
        self.seen[client] = hits
        if len(self.seen) > TRACKED_CLIENTS:
            self.seen.popitem(last=False)
        if len(hits) >= self.per_minute:
            return max(1, math.ceil(hits[0] + 60 - now))
        hits.append(now)
        return 0


def client_address(request: web.Request, trusted: Sequence[Network]) -> str:
    """The peer, or behind trusted proxies the right-most X-Forwarded-For address that is not
    one of them (a client can prepend anything, never append)."""
    peer = request.remote or ""

    def is_trusted(addr: str) -> bool:
        try:
            ip = ipaddress.ip_address(addr.strip())
        except ValueError:
            return False
        return any(ip in net for net in trusted)

    if not trusted or not is_trusted(peer):
        return peer
    for hop in reversed(request.headers.get("X-Forwarded-For", "").split(",")):
        hop = hop.strip()
        if hop and not is_trusted(hop):
            return hop
    return peer


def _headers(settings: Settings) -> dict[str, str]:
    ancestors = " ".join(settings.public.frame_ancestors) or "'none'"
    return {
        "Content-Security-Policy": (
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
            f"base-uri 'none'; frame-ancestors {ancestors}"
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "public, max-age=60",
    }


class PublicPages:
    def __init__(self, settings: Settings, db: Database, clock: Clock | None = None) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock or SystemClock()
        self.limiter = RateLimiter(settings.public.requests_per_minute)
        self.trusted = [
            ipaddress.ip_network(p, strict=False) for p in settings.public.trusted_proxies
        ]
        self.headers = _headers(settings)
        shipped = resources.files("inspection")
        self.verifier = {name: shipped.joinpath(name).read_bytes() for name in VERIFIER_FILES}

    # --- plumbing ---

    @web.middleware
    async def guard(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        wait = self.limiter.retry_after(client_address(request, self.trusted))
        if wait:
            response: web.StreamResponse = web.Response(
                status=429, text="请求过于频繁，请稍后再试。", headers={"Retry-After": str(wait)}
            )
        else:
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                response = web.Response(status=exc.status, text=exc.text or exc.reason)
            except Exception:
                log.exception("public page %s failed", request.path)
                response = web.Response(status=503, text="暂时无法访问，请稍后再试。")
        response.headers.update(self.headers)
        return response

    def render(self, template: str, **values: Any) -> web.Response:
        html = _env.get_template(template).render(prefix=self.settings.public.path_prefix, **values)
        return web.Response(text=html, content_type="text/html", charset="utf-8")

    async def org_or_404(self, session: Any, code: str) -> Organisation:
        org = await session.get(Organisation, code) if code.isdigit() and len(code) <= 12 else None
        if org is None:
            raise web.HTTPNotFound(text="没有这个单位。")
        return org

    @staticmethod
    def year_of(word: str) -> int:
        if not (word.isdigit() and len(word) == 4 and 2000 <= int(word) <= 2100):
            raise web.HTTPNotFound(text="年份应为四位数字，如 2026。")
        return int(word)

    @staticmethod
    def page_number(request: web.Request) -> int:
        word = request.query.get("page", "1")
        if not word.isdigit() or not 1 <= int(word) <= MAX_PAGE:
            raise web.HTTPBadRequest(text="页码无效。")
        return int(word)

    # --- pages ---

    async def css(self, request: web.Request) -> web.Response:
        return web.Response(text=CSS, content_type="text/css")

    async def index(self, request: web.Request) -> web.Response:
        async with self.db.transaction() as session:
            orgs = list(await session.scalars(select(Organisation).order_by(Organisation.code)))
            published = set(await session.scalars(select(PublicEntry.org_code).distinct()))
        this_year = dt.datetime.now(self.settings.tz).year
        return self.render("index.html", orgs=orgs, published=published, year=this_year)

    async def results(self, request: web.Request) -> web.StreamResponse:
        code, year_word = request.match_info["org"], request.match_info["year"]
        fmt = request.match_info.get("fmt", "")
        year = self.year_of(year_word)
        query = request.query.get("q", "")[: public.MAX_QUERY]
        async with self.db.transaction() as session:
            org = await self.org_or_404(session, code)
            subtree = await Repositories(session).orgs.subtree(org.code)
            units = None if org.parent_code is None else subtree  # the region: every unit
            if fmt:
                found = await public.page(session, units, year, query=query, limit=public.MAX_ROWS)
                return self.download(fmt, org, year, found)
            size = self.settings.public.page_size
            number = self.page_number(request)
            found = await public.page(
                session, units, year, query=query, offset=(number - 1) * size, limit=size
            )
            years = await public.years(session, subtree)
            links = await self.draw_links(session, {e.task_code for e in found.entries})
        pages = max(1, -(-found.total // size))
        return self.render(
            "results.html",
            org=org,
            year=year,
            years=years,
            query=query,
            found=found,
            columns=public.COLUMNS,
            page=number,
            pages=pages,
            cell=public.cell,
            links=links,
        )

    async def draw_links(self, session: Any, codes: set[str]) -> dict[str, str]:
        """Each task's draw record on its drawing organisation's page and the task's year: the
        one URL that answers whichever page (region, city, checking county) shows the task."""
        if not codes:
            return {}
        rows = await session.execute(
            select(Task.code, Task.org_code, Task.year).where(Task.code.in_(sorted(codes)))
        )
        prefix = self.settings.public.path_prefix
        return {
            code: f"{prefix}/{org}/{year}/draws/{quote(code, safe='')}"
            for code, org, year in rows.all()
        }

    def download(self, fmt: str, org: Organisation, year: int, found: public.Page) -> web.Response:
        """Exactly the lines shown, and the count of withheld secret checks the page states:
        in the JSON as ``withheld``; the CSV keeps one shape of row and has it in the response
        header ``X-Withheld`` only (and in the JSON of the same search)."""
        name = f"{org.code}-{year}"
        headers = {
            "Content-Disposition": f'attachment; filename="{name}.{fmt}"',
            "X-Withheld": str(found.withheld),
        }
        if fmt == "json":
            return web.Response(
                text=public.json_text(org.code, org.name, year, found.entries, found.withheld),
                content_type="application/json",
                charset="utf-8",
                headers=headers,
            )
        return web.Response(
            body=public.csv_bytes(found.entries),
            content_type="text/csv",
            charset="utf-8",
            headers=headers,
        )

    async def in_chain(self, session: Any, org: Organisation, task_org: str) -> bool:
        """The page's organisation is the task's drawing organisation, above it or below it:
        every page that shows the task's results may link to its draw record."""
        orgs = Repositories(session).orgs
        return task_org in await orgs.subtree(org.code) or org.code in await orgs.subtree(task_org)

    async def verifier_file(self, request: web.Request) -> web.Response:
        """The published algorithm and the stdlib verifier, byte for byte as shipped."""
        name = request.match_info["name"]
        return web.Response(
            body=self.verifier[name], content_type=VERIFIER_FILES[name], charset="utf-8"
        )

    async def draws(self, request: web.Request) -> web.Response:
        code, year = request.match_info["org"], self.year_of(request.match_info["year"])
        only = request.match_info.get("task")
        async with self.db.transaction() as session:
            org = await self.org_or_404(session, code)
            stmt = (
                select(Task, Draw)
                .join(Draw, Draw.task_id == Task.id)
                .where(Task.year == year)
                .order_by(Task.code, Draw.attempt)
            )
            # One task: from any page of its chain (see ``in_chain``); else the org's own.
            stmt = stmt.where(Task.code == only if only else Task.org_code == org.code)
            rows = (await session.execute(stmt)).all()
            if only and rows and not await self.in_chain(session, org, rows[0][0].org_code):
                rows = []
            # A draw is public as a whole: its witness value(s) once the draw is made.
            values = {row.id: witness_of(row) for _, row in rows}
            exported = set()
            for task, row in rows:  # the last draw of a task, once its inspections are done
                if row.status == "drawn":
                    try:
                        exported.add((task.code, (await public_draw_of(session, task)).attempt))
                    except DrawRefused:
                        pass
        if only and not rows:
            raise web.HTTPNotFound(text="没有这个任务的抽取记录。")
        draws = [
            {
                "task": task.code,
                "name": task.name,
                "attempt": row.attempt,
                "state": DRAW_STATES.get(row.status, row.status),
                "committed_at": row.committed_at.astimezone(self.settings.tz),
                "commitment": row.commitment,
                "fingerprint": row.fingerprint,
                "witnessed": row.witnessed,
                # The witness values are public once the draw is made; the secret only in the
                # full record. Before that: how many witnesses, and by when (no names).
                "witness": _shown(values[row.id]),
                "witnesses": len(row.witnesses) if row.witnesses is not None else None,
                "public_source": row.public_source["source"] if row.public_source else None,
                "deadline": row.witness_deadline.astimezone(self.settings.tz)
                if row.witness_deadline
                else None,
                "unwitnessed_reason": row.unwitnessed_reason,
                "cancelled": _cancellation(row, self.settings.tz),
                "replaces": task.replaces,
                "drawn_at": row.drawn_at.astimezone(self.settings.tz) if row.drawn_at else None,
                "exported": (task.code, row.attempt) in exported,
            }
            for task, row in rows
        ]
        return self.render("draws.html", org=org, year=year, draws=draws, only=only)

    async def draw_record(self, request: web.Request) -> web.Response:
        """``<org>/<year>/draws/<task>.json``: only what ``public_export`` returns."""
        code, year = request.match_info["org"], self.year_of(request.match_info["year"])
        async with self.db.transaction() as session:
            org = await self.org_or_404(session, code)
            task = await session.scalar(
                select(Task).where(Task.year == year, Task.code == request.match_info["task"])
            )
            if task is not None and not await self.in_chain(session, org, task.org_code):
                task = None
            try:
                body = (
                    None
                    if task is None
                    else await served_public_export(session, task, self.clock.now())
                )
            except DrawRefused:
                body = None
        if body is None:
            raise web.HTTPNotFound(text="该任务的抽取记录尚未公开（检查全部完成后公开）。")
        return web.Response(
            text=body,
            content_type="application/json",
            charset="utf-8",
        )


def public_app(settings: Settings, db: Database, clock: Clock | None = None) -> web.Application:
    pages = PublicPages(settings, db, clock)
    app = web.Application(middlewares=[pages.guard], client_max_size=4096)
    app.router.add_get("/", pages.index)
    app.router.add_get("/public.css", pages.css)
    app.router.add_get(
        "/verify/{name:DRAW_ALGORITHM\\.md|reference_verifier\\.py}", pages.verifier_file
    )
    app.router.add_get("/{org:[0-9]{1,12}}/{year:[0-9]{4}}", pages.results)
    app.router.add_get("/{org:[0-9]{1,12}}/{year:[0-9]{4}}.{fmt:csv|json}", pages.results)
    app.router.add_get("/{org:[0-9]{1,12}}/{year:[0-9]{4}}/draws", pages.draws)
    app.router.add_get(
        "/{org:[0-9]{1,12}}/{year:[0-9]{4}}/draws/{task:[A-Za-z0-9_-]{1,64}}.json",
        pages.draw_record,
    )
    app.router.add_get("/{org:[0-9]{1,12}}/{year:[0-9]{4}}/draws/{task}", pages.draws)
    return app
