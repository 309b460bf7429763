"""Re-importing a list (Art. 11-13): a value edited in chat since the last import is kept unless
the import overwrites; `--dry-run` (and the upload page's preview) shows what an import would
change and saves nothing; the templates come from the upload page (`模板` in chat), their
example row marked and skipped. Through the chat callback, the CLI and the upload page."""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path

import aiohttp
import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from bot.cli import main
from inspection.uscc import make_uscc
from storage.models import DirectoryHistory, Target
from tests.conftest import Harness
from tests.support.directory import write

ADMIN = "admin_hhht"
USCC = make_uscc("91150102MA0N00003")
USCC2 = make_uscc("91150102MA0N00004")


def _row(**overrides: str) -> dict[str, str]:
    row = {
        "单位名称": "呼和浩特市青城热电有限公司",
        "统一社会信用代码": USCC,
        "所在旗县区": "150102",
        "监管类别": "重点",
        "经营状态": "在营",
        "地址": "新城区一号",
    }
    row.update(overrides)
    return row


async def _cli(h: Harness, *argv: str) -> int:
    return await asyncio.to_thread(main, [*argv, "--database-url", h.settings.database.url])


async def _target(h: Harness) -> Target:
    async with h.db.transaction() as s:
        return (await s.execute(select(Target).where(Target.uscc == USCC))).scalar_one()


@pytest.fixture
async def imported(h: Harness, tmp_path: Path) -> Path:
    await h.grant(ADMIN, "admin", "150100")
    sheet = write(tmp_path / "targets.xlsx", [_row()])
    assert await _cli(h, "import", "targets", str(sheet)) == 0
    return sheet


async def test_art13_a_reimport_keeps_a_tier_edited_in_chat_unless_it_overwrites(
    h: Harness, imported: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (edited,) = await h.say(ADMIN, f"修改对象 {USCC} 类别=特殊")
    assert "特殊" in edited and (await _target(h)).tier == "special"
    capsys.readouterr()
    # The same sheet again: the chat edit stays, and the summary says which value and why.
    assert await _cli(h, "import", "targets", str(imported)) == 0
    out = capsys.readouterr().out
    assert "Kept 1 value" in out and "tier" in out and "--overwrite" in out, out
    assert (await _target(h)).tier == "special"
    # A dry run shows what --overwrite would change, field by field, and saves nothing.
    renamed = write(imported.with_name("renamed.xlsx"), [_row(地址="新城区二号")])
    assert await _cli(h, "import", "targets", str(renamed), "--overwrite", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "Nothing was saved" in out
    assert "tier: special -> key" in out and "address: 新城区一号 -> 新城区二号" in out, out
    t = await _target(h)
    assert (t.tier, t.address) == ("special", "新城区一号")
    # --overwrite: the sheet wins, and the history says the import set it.
    assert await _cli(h, "import", "targets", str(renamed), "--overwrite") == 0
    t = await _target(h)
    assert (t.tier, t.address) == ("key", "新城区二号")
    async with h.db.transaction() as s:
        last = (
            (
                await s.execute(
                    select(DirectoryHistory)
                    .where(DirectoryHistory.field == "tier")
                    .order_by(DirectoryHistory.id.desc())
                )
            )
            .scalars()
            .first()
        )
    assert last is not None and last.evidence == "import" and last.after == "key"
    # The value last imported is the stored one again: a later sheet's change applies.
    changed = write(imported.with_name("general.xlsx"), [_row(监管类别="一般", 地址="新城区二号")])
    assert await _cli(h, "import", "targets", str(changed)) == 0
    assert (await _target(h)).tier == "general"
    assert "Kept" not in capsys.readouterr().out


async def _link(h: Harness, command: str) -> str:
    h.runtime.settings.server.public_url = "https://bot.example"
    (reply,) = await h.say(ADMIN, command)
    assert "shuangsuiji" not in reply  # no shell command for a chat admin
    match = re.search(r"https://bot\.example(/upload/\S+)", reply)
    assert match, reply
    return h.url.replace(h.settings.server.callback_path, "") + match.group(1)


async def test_templates_come_from_a_one_time_link_and_their_example_is_skipped(
    h: Harness, imported: Path
) -> None:
    url = await _link(h, "模板")
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as page:
            text = await page.text()
        links = re.findall(r'href="(/upload/[^"]+/template/(\w+)\.xlsx\?sig=\w+)"', text)
        assert {kind for _, kind in links} == {"targets", "inspectors", "items"}
        base = url.split("/upload/")[0]
        path = next(p for p, kind in links if kind == "targets")
        async with http.get(base + path) as download:
            assert download.status == 200
            assert "attachment" in download.headers["Content-Disposition"]
            content = await download.read()
        sheet = load_workbook(io.BytesIO(content)).worksheets[0]
        example = [c.value for c in sheet[2]]
        assert str(example[0]).startswith("【示例】") and "示例化工" in str(example[0])
        # Filled in below the example and uploaded through the same link.
        form = aiohttp.FormData()
        form.add_field("kind", "targets")
        filled = io.BytesIO()
        sheet_book = load_workbook(io.BytesIO(content))
        ws = sheet_book.worksheets[0]
        headers = [c.value for c in ws[1]]
        values = {**dict.fromkeys(headers, None), **_row(统一社会信用代码=USCC2)}
        values["单位名称"] = "呼和浩特市第二热电有限公司"
        ws.append([values.get(h_) for h_ in headers])
        sheet_book.save(filled)
        form.add_field("file", filled.getvalue(), filename="filled.xlsx")
        async with http.post(url, data=form) as r:
            body = await r.text()
        assert r.status == 200 and "第2行是模板中的示例，已跳过" in body, body
        assert "新增 1 条" in body
        async with http.get(base + path) as used:
            assert used.status == 410  # the link is used up: no more downloads either
    async with h.db.transaction() as s:
        names = set((await s.execute(select(Target.name))).scalars())
    assert names == {"呼和浩特市青城热电有限公司", "呼和浩特市第二热电有限公司"}


async def test_the_upload_page_previews_a_reimport_and_keeps_the_link(
    h: Harness, imported: Path
) -> None:
    await h.say(ADMIN, f"修改对象 {USCC} 类别=特殊")
    url = await _link(h, "导入")
    renamed = write(imported.with_name("r.xlsx"), [_row(地址="新城区三号")])

    async def upload(**flags: str) -> tuple[int, str]:
        form = aiohttp.FormData()
        form.add_field("kind", "targets")
        for name, value in flags.items():
            form.add_field(name, value)
        form.add_field("file", await asyncio.to_thread(renamed.read_bytes), filename="r.xlsx")
        async with aiohttp.ClientSession() as http, http.post(url, data=form) as r:
            return r.status, await r.text()

    status, body = await upload(preview="1")
    assert status == 200 and "预览" in body and "新城区三号" in body
    assert "保留 特殊" in body and "表格为 重点" in body, body  # the chat edit would be kept
    assert "special" not in body  # values as the sheet writes them
    t = await _target(h)
    assert (t.address, t.tier) == ("新城区一号", "special")  # nothing saved
    status, body = await upload()  # the same link still works for the real upload
    assert status == 200 and "导入完成" in body and "保留了 1 处" in body
    t = await _target(h)
    assert (t.address, t.tier) == ("新城区三号", "special")
