"""The record (Art. 33, 40): every step under its task, readable by a supervisor, tamper-evident."""

from __future__ import annotations

import argparse

import pytest
from sqlalchemy import select, update

from bot.cli.audit import cmd_audit
from storage.models import AuditEntry
from tests.conftest import Harness
from tests.results_support import CHIEF, TASK, drawn


async def test_art40_audit_show_reads_like_the_story_and_verify_finds_tampering(
    h: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    v, w, *_ = await drawn(h)
    await h.say(v.members[0], f"结果 {v.number} 1")
    await h.say(CHIEF, f"更正 {v.number} 2 复核发现围挡破损")
    await h.say(w.members[1], f"申请替换 {w.number} 家中有事")
    await h.say(CHIEF, "批准替换 1")
    show = argparse.Namespace(audit_verb="show", task=TASK, subject="")
    assert await cmd_audit(show, h.settings) == 0
    lines = capsys.readouterr().out.splitlines()
    story = "\n".join(lines)
    for words in (
        "新建任务",
        "封存抽取条件并提交密钥承诺",
        "提交检查结果",
        "更正检查结果",
        "申请替换",
        "批准替换",
        "变更抽取结果（替换）",
    ):
        assert words in story, words
    (recorded,) = [line for line in lines if "提交检查结果" in line]
    # Local time (the clock is 09:00 in Asia/Shanghai), who with their name, which inspection.
    assert " 2026-12-01 09:00:00 " in recorded
    assert f"{v.members[0]}（检查员" in recorded and f"编号 {v.number}：「未发现问题」" in recorded
    assert "已通知：" in recorded
    verify = argparse.Namespace(audit_verb="verify", task=None, subject="")
    assert await cmd_audit(verify, h.settings) == 0
    assert "intact" in capsys.readouterr().out
    async with h.db.transaction() as s:  # someone edits a result in the record
        entry_id = await s.scalar(select(AuditEntry.id).where(AuditEntry.action == "result.record"))
        await s.execute(
            update(AuditEntry)
            .where(AuditEntry.id == entry_id)
            .values(payload={"inspection": v.number, "phrase": "不配合检查"})
        )
    assert await cmd_audit(verify, h.settings) == 1
    assert f"BROKEN at entry {entry_id}" in capsys.readouterr().out
