"""The small upload page behind `导入` links: choose a list and a spreadsheet, get the result in
chat. Served as a sub-application, so only it accepts large bodies."""

from __future__ import annotations

import base64
import html
import tempfile
from pathlib import Path
from urllib.parse import quote

from aiohttp import BodyPartReader, web

from bot.chat.context import Clock
from bot.config import Settings
from storage import directory, uploads
from storage.db import Database
from storage.outbox import Outbox
from storage.spreadsheet import SpreadsheetError

MAX_UPLOAD = 20 * 1024 * 1024
KINDS = {"targets": "检查对象名录", "inspectors": "检查人员名录", "items": "随机抽查事项清单"}
SUFFIXES = (".xlsx", ".csv")

PAGE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>导入名录</title><style>
body{{font-family:sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem;line-height:1.6}}
label{{display:block;margin:.8rem 0 .3rem}} button{{margin-top:1rem;padding:.5rem 1.5rem}}
.note{{color:#555;font-size:.9rem}} pre{{white-space:pre-wrap;background:#f5f5f5;padding:.8rem}}
</style></head><body>{body}</body></html>"""


def _page(body: str, status: int = 200) -> web.Response:
    return web.Response(text=PAGE.format(body=body), status=status, content_type="text/html")


def _template_links(token_id: str, sig: str) -> str:
    links = "".join(
        f'<li><a href="/upload/{html.escape(token_id)}/template/{k}.xlsx?sig={html.escape(sig)}">'
        f"{v}模板.xlsx</a></li>"
        for k, v in KINDS.items()
    )
    return (
        f"<h3>表格模板</h3><ul>{links}</ul>"
        '<p class="note">模板第2行是示例（名称以「【示例】」开头），导入时自动跳过。</p>'
    )


def _form(token_id: str, sig: str) -> str:
    options = "".join(f'<option value="{k}">{v}</option>' for k, v in KINDS.items())
    return (
        "<h2>导入名录</h2>"
        f'<form method="post" action="/upload/{html.escape(token_id)}?sig={html.escape(sig)}" '
        'enctype="multipart/form-data">'
        f'<label>名录</label><select name="kind">{options}</select>'
        "<label>文件（.xlsx 或 .csv，UTF-8 或 GB18030）</label>"
        '<input type="file" name="file" accept=".xlsx,.csv" required>'
        '<label><input type="checkbox" name="strict" value="1"> 严格模式：有任何一行有误则全部不导入</label>'
        '<label><input type="checkbox" name="preview" value="1"> 只预览：列出将新增和修改的内容，'
        "不保存（链接仍可使用）</label>"
        '<label><input type="checkbox" name="overwrite" value="1"> 覆盖：上次导入后在对话中修改过的值'
        "也以表格为准（默认保留对话中的修改）</label>"
        "<button>上传</button></form>"
        '<p class="note">链接只能上传一次，15 分钟内有效。导入结果会发到您的企业微信。</p>'
        + _template_links(token_id, sig)
    )


class UploadPage:
    def __init__(self, settings: Settings, db: Database, clock: Clock) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        self.key = uploads.link_key(settings)

    async def show(self, request: web.Request) -> web.Response:
        token_id, sig = request.match_info["token"], request.query.get("sig", "")
        async with self.db.transaction() as session:
            try:
                await uploads.check(session, self.key, token_id, sig, self.clock.now())
            except uploads.LinkRefused as refused:
                return _page(f"<p>{refused.message}</p>", refused.status)
        return _page(_form(token_id, sig))

    async def receive(self, request: web.Request) -> web.Response:
        token_id, sig = request.match_info["token"], request.query.get("sig", "")
        async with self.db.transaction() as session:
            try:
                token = await uploads.check(session, self.key, token_id, sig, self.clock.now())
            except uploads.LinkRefused as refused:
                return _page(f"<p>{refused.message}</p>", refused.status)
        try:
            kind, filename, content, flags = await self._read_form(request)
        except ValueError as exc:
            return _page(f"<p>{html.escape(str(exc))}</p>" + _form(token_id, sig), 400)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / ("upload" + Path(filename).suffix.lower())
            path.write_bytes(content)
            if "preview" in flags:
                return await self._preview(token_id, sig, kind, filename, path, flags)
            return await self._import(token.userid, token_id, kind, filename, path, flags)

    async def template(self, request: web.Request) -> web.Response:
        """A template download, while the link is valid (downloads do not use it up)."""
        token_id, sig = request.match_info["token"], request.query.get("sig", "")
        kind = request.match_info["kind"]
        async with self.db.transaction() as session:
            try:
                await uploads.check(session, self.key, token_id, sig, self.clock.now())
            except uploads.LinkRefused as refused:
                return _page(f"<p>{refused.message}</p>", refused.status)
        if kind not in KINDS:
            return _page("<p>没有这种模板。</p>", 404)
        name = f"{KINDS[kind]}模板.xlsx"
        return web.Response(
            body=directory.template_bytes(kind),
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={
                "Content-Disposition": f'attachment; filename="{kind}-template.xlsx"; '
                f"filename*=UTF-8''{quote(name)}"
            },
        )

    async def _read_form(self, request: web.Request) -> tuple[str, str, bytes, set[str]]:
        kind, filename, content, flags = "", "", b"", set()
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "kind":
                kind = (await part.text()).strip()
            elif part.name in ("strict", "preview", "overwrite"):
                if (await part.text()).strip() == "1":
                    flags.add(part.name)
            elif part.name == "file":
                filename = part.filename or ""
                content = await part.read()
        if kind not in KINDS:
            raise ValueError("请选择要导入的名录。")
        if not filename.lower().endswith(SUFFIXES) or not content:
            raise ValueError("请选择一个 .xlsx 或 .csv 文件。")
        return kind, filename, content, flags

    async def _preview(
        self, token_id: str, sig: str, kind: str, filename: str, path: Path, flags: set[str]
    ) -> web.Response:
        """The import run in a transaction that is rolled back: what it would do; the link
        stays usable for the real upload."""
        now = self.clock.now()
        try:
            async with self.db.transaction() as session:
                report = await directory.import_rows(
                    session,
                    kind,
                    path,
                    actor="preview",
                    now=now,
                    strict="strict" in flags,
                    tz=self.settings.tz,
                    overwrite="overwrite" in flags,
                )
                raise _Preview(report)
        except _Preview as preview:
            report = preview.report
        except directory.StrictImportError as failed:
            report = failed.report
        except SpreadsheetError as exc:
            message = html.escape(str(exc))
            return _page(f"<p>文件无法读取：{message}</p>" + _form(token_id, sig), 400)
        report.file, report.dry_run = filename, True
        body = f"<h2>导入预览（未保存）</h2><pre>{html.escape(report.summary_zh(limit=50))}</pre>"
        return _page(body + _form(token_id, sig))

    async def _import(
        self, userid: str, token_id: str, kind: str, filename: str, path: Path, flags: set[str]
    ) -> web.Response:
        now = self.clock.now()
        report: directory.ImportReport
        try:
            async with self.db.transaction() as session:
                if not await uploads.consume(session, token_id, now):
                    return _page("<p>该链接已使用过或已过期。请重新发送「导入」。</p>", 410)
                report = await directory.import_rows(
                    session,
                    kind,
                    path,
                    actor=userid,
                    now=now,
                    strict="strict" in flags,
                    tz=self.settings.tz,
                    overwrite="overwrite" in flags,
                )
                report.file = filename
                self._tell(Outbox(session, now), userid, report)
        except directory.StrictImportError as failed:
            report = failed.report
            report.file = filename
            async with self.db.transaction() as session:
                await uploads.consume(session, token_id, now)
                self._tell(Outbox(session, now), userid, report)
        except SpreadsheetError as exc:
            message = html.escape(str(exc))
            return _page(f"<p>文件无法读取：{message}</p><p>链接仍可再用一次。</p>", 400)
        body = f"<h2>导入完成</h2><pre>{html.escape(report.summary_zh())}</pre>"
        return _page(body + "<p>结果已发到您的企业微信。</p>")

    @staticmethod
    def _tell(outbox: Outbox, userid: str, report: directory.ImportReport) -> None:
        outbox.reply(userid, report.summary_zh())
        if report.rejections:
            content = base64.b64encode(report.rejections_xlsx()).decode("ascii")
            outbox.file([userid], directory.rejections_file_name(report), content)


class _Preview(Exception):
    def __init__(self, report: directory.ImportReport) -> None:
        super().__init__("preview")
        self.report = report


def upload_app(settings: Settings, db: Database, clock: Clock) -> web.Application:
    page = UploadPage(settings, db, clock)
    app = web.Application(client_max_size=MAX_UPLOAD)
    app.router.add_get("/{token}/template/{kind}.xlsx", page.template)
    app.router.add_get("/{token}", page.show)
    app.router.add_post("/{token}", page.receive)
    return app
