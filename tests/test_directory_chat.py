"""一单两库 in chat, end to end through the encrypted callback: lookups, changes with history,
annual counts, and the one-time upload link (expired, reused, forged)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select

from storage import audit, directory
from storage.models import DirectoryHistory, Target
from tests.conftest import Harness

ADMIN = "admin_hhht"


async def _load_example_directory(h: Harness, tmp_path: Path) -> None:
    """The template's example rows, unmarked (as data), imported through the real import path."""
    for kind in ("items", "targets", "inspectors"):
        path = tmp_path / f"{kind}.xlsx"
        directory.write_template(kind, path, marked=False)
        async with h.db.transaction() as session:
            await directory.import_rows(
                session, kind, path, actor="test", now=h.clock.now(), strict=True
            )


async def _example_target(h: Harness) -> Target:
    async with h.db.transaction() as session:
        return (await session.execute(select(Target))).scalars().one()


@pytest.fixture
async def loaded(h: Harness, tmp_path: Path) -> Harness:
    await _load_example_directory(h, tmp_path)
    target = await _example_target(h)
    await h.grant(ADMIN, "admin", target.org_code[:4] + "00")
    return h


async def test_art11_look_up_a_target_by_credit_code_and_by_name(loaded: Harness) -> None:
    h = loaded
    target = await _example_target(h)
    (by_code,) = await h.say(ADMIN, f"查询 {target.uscc}")
    assert target.name in by_code and "类别" in by_code and "年检查次数" in by_code
    (by_name,) = await h.say(ADMIN, f"查询 {target.name[:4]}")
    assert target.name in by_name


async def test_lookups_outside_the_admins_subtree_find_nothing(loaded: Harness) -> None:
    h = loaded
    target = await _example_target(h)
    other_city = "150200" if not target.org_code.startswith("1502") else "150300"
    await h.grant("admin_other", "admin", other_city)
    (reply,) = await h.say("admin_other", f"查询 {target.uscc}")
    assert "没有找到" in reply


async def test_inspectors_cannot_look_up_targets(loaded: Harness) -> None:
    (reply,) = await loaded.say("someone", "查询 公司")
    assert "还不是本系统的用户" in reply


async def test_art13_changing_tier_and_status_by_message_is_recorded(loaded: Harness) -> None:
    h = loaded
    target = await _example_target(h)
    (reply,) = await h.say(ADMIN, f"修改对象 {target.key} 类别=特殊 状态=停产 标识:园区=金山园区")
    assert "已修改" in reply
    async with h.db.transaction() as session:
        changed = await session.get(Target, target.id)
        assert changed is not None
        assert (changed.tier, changed.status, changed.tags.get("园区")) == (
            "special",
            "suspended",
            "金山园区",
        )
        history = (
            await session.execute(
                select(DirectoryHistory).where(
                    DirectoryHistory.subject_key == target.key, DirectoryHistory.actor == ADMIN
                )
            )
        ).scalars()
        fields = {(r.field, r.before, r.after) for r in history}
        assert ("tier", target.tier, "special") in fields
        assert ("status", target.status, "suspended") in fields
        assert (await audit.verify(session)).ok


async def test_a_bad_change_is_explained_and_changes_nothing(loaded: Harness) -> None:
    h = loaded
    target = await _example_target(h)
    (reply,) = await h.say(ADMIN, f"修改对象 {target.key} 类别=特殊 颜色=红")
    assert "不能修改「颜色」" in reply
    async with h.db.transaction() as session:
        unchanged = await session.get(Target, target.id)
        assert unchanged is not None and unchanged.tier == target.tier


async def test_art14_art17_annual_counts_answer(loaded: Harness) -> None:
    (reply,) = await loaded.say(ADMIN, "年度统计")
    assert "年度统计" in reply and "检查对象" in reply


# --- the upload link ------------------------------------------------------------------------


async def _link(h: Harness) -> str:
    h.runtime.settings.server.public_url = "https://bot.example"
    (reply,) = await h.say(ADMIN, "导入")
    match = re.search(r"https://bot\.example(/upload/\S+)", reply)
    assert match, reply
    return h.url.replace(h.settings.server.callback_path, "") + match.group(1)


async def _upload(url: str, path: Path, kind: str = "targets") -> tuple[int, str]:
    form = aiohttp.FormData()
    form.add_field("kind", kind)
    form.add_field("file", await asyncio.to_thread(path.read_bytes), filename=path.name)
    async with aiohttp.ClientSession() as http, http.post(url, data=form) as r:
        return r.status, await r.text()


async def test_upload_link_imports_once_and_reports_in_chat(
    loaded: Harness, tmp_path: Path
) -> None:
    h = loaded
    url = await _link(h)
    async with aiohttp.ClientSession() as http, http.get(url) as page:
        assert page.status == 200 and "导入名录" in await page.text()
    path = tmp_path / "t.xlsx"
    directory.write_template("targets", path)
    status, body = await _upload(url, path)
    assert status == 200 and "导入完成" in body
    await h.settle()
    assert any("导入" in t for t in h.wecom.texts_to(ADMIN)[-1:])
    status, body = await _upload(url, path)
    assert status == 410 and "已使用过" in body


async def test_upload_link_expires(loaded: Harness, tmp_path: Path) -> None:
    h = loaded
    url = await _link(h)
    h.clock.advance(minutes=16)
    path = tmp_path / "t.xlsx"
    directory.write_template("targets", path)
    status, body = await _upload(url, path)
    assert status == 410 and "已过期" in body


async def test_a_forged_upload_link_is_refused(loaded: Harness, tmp_path: Path) -> None:
    h = loaded
    url = await _link(h)
    forged = url[:-4] + ("0000" if not url.endswith("0000") else "1111")
    async with aiohttp.ClientSession() as http, http.get(forged) as page:
        assert page.status == 403 and "链接无效" in await page.text()
    guessed = re.sub(r"/upload/[0-9a-f]+", "/upload/" + "ab" * 24, url)
    async with aiohttp.ClientSession() as http, http.get(guessed) as page:
        assert page.status == 403


async def test_an_unreadable_file_leaves_the_link_usable(loaded: Harness, tmp_path: Path) -> None:
    h = loaded
    url = await _link(h)
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(b"this is not a spreadsheet")
    status, body = await _upload(url, bad)
    assert status == 400 and "文件无法读取" in body
    good = tmp_path / "t.xlsx"
    directory.write_template("targets", good)
    assert (await _upload(url, good))[0] == 200


async def test_without_a_public_url_the_admin_is_told_why(loaded: Harness) -> None:
    (reply,) = await loaded.say(ADMIN, "导入")
    assert "public_url" in reply
