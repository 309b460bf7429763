"""The register of leave and declared conflicts, and swaps that pass over only people with a
record from before the request (Art. 29; DRAW_ALGORITHM.md section 10).

End to end: 请假 / 回避 typed through the encrypted callback, the chief's card or text, the
register in the real database, then swaps approved by the chief whose export both verifiers
replay, and a crafted export whose exclusion has no record, which both reject."""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path

from sqlalchemy import func, select, update

from inspection import reference_verifier, verify
from inspection.draw import next_replacement, result_from_json
from storage import draws
from storage import tasks as task_store
from storage.models import (
    Draw,
    DrawAmendment,
    Inspection,
    Inspector,
    RegisterEntry,
    SwapRequest,
    Target,
)
from tests.conftest import Harness
from tests.results_support import CHIEF, TASK, Visit, audit_actions, drawn
from tests.support.directory import inspector, run_import, write
from tests.support.draw_chat import setup
from tests.support.draw_exports import rechain


def record_no(reply: str) -> int:
    found = re.search(r"#(\d+)", reply)
    assert found, reply
    return int(found[1])


async def entries(h: Harness, rid: int) -> list[RegisterEntry]:
    async with h.db.transaction() as s:
        rows = await s.execute(
            select(RegisterEntry)
            .where(RegisterEntry.record_id == rid)
            .order_by(RegisterEntry.version)
        )
        return list(rows.scalars())


async def tap(h: Harness, user: str, rid: int, verb: str) -> None:
    status, _ = await h.post_card_event(
        user,
        event_key=f"reg:{rid}:{verb}",
        task_id=f"reg-{rid}",
        card_type="button_interaction",
        response_code=secrets.token_hex(12),
    )
    assert status == 200
    await h.settle()


async def next_in_cycle(h: Harness, v: Visit, leaving: str) -> tuple[str, str]:
    """(certificate, userid) of the person the cycle offers first for ``leaving``'s place."""
    async with h.db.transaction() as s:
        inspection = await s.get(Inspection, v.inspection_id)
        assert inspection is not None and inspection.draw_id is not None
        row = await s.get(Draw, inspection.draw_id)
        assert row is not None and row.result is not None
        cert = await s.scalar(select(Inspector.certificate_no).where(Inspector.userid == leaving))
        assert cert is not None
        first = next_replacement(
            result_from_json(row.result),
            draws.load_input(row.input_doc),
            inspection.target_key,
            cert,
        )
        userid = await s.scalar(select(Inspector.userid).where(Inspector.certificate_no == first))
        assert userid is not None
        return first, userid


async def swap(h: Harness, v: Visit, leaving: str) -> int:
    (reply,) = await h.say(leaving, f"申请替换 {v.number} 借调外地")
    assert "已提交替换申请" in reply, reply
    async with h.db.transaction() as s:
        rid = await s.scalar(select(func.max(SwapRequest.id)))
    assert rid is not None
    return int(rid)


async def export_of_task(h: Harness) -> dict[str, object]:
    async with h.db.transaction() as s:
        task = await task_store.get_task(s, TASK)
        assert task is not None
        assert await draws.verify_task(s, task) is None
        return await draws.export(s, task)


def both(doc: object) -> tuple[str | None, str | None]:
    raw = json.dumps(doc, ensure_ascii=False).encode("utf-8")
    return verify.verify_bytes(raw), reference_verifier.verify_bytes(raw)


async def test_art29_leave_by_chat_counts_once_the_chief_confirms_it_on_the_card(
    h: Harness,
) -> None:
    await setup(h)
    async with h.db.transaction() as s:
        person = await s.scalar(select(Inspector.userid).order_by(Inspector.id).limit(1))
    assert person is not None
    (bad,) = await h.say(person, "请假 2026-12-10 2026-12-01 病假")
    assert "早于" in bad
    (bad,) = await h.say(person, "请假 明天 2026-12-01 病假")
    assert "不是日期" in bad
    (reply,) = await h.say(person, "请假 2026-12-01 2026/12/05 病假 住院")
    rid = record_no(reply)
    (entry,) = await entries(h, rid)
    assert entry.state == "pending" and entry.effective_at is None
    assert (str(entry.date_from), str(entry.date_until)) == ("2026-12-01", "2026-12-05")
    assert entry.reason == "病假 住院" and entry.entered_by == person
    cards = [
        b["template_card"] for b in h.wecom.messages(CHIEF) if b.get("msgtype") == "template_card"
    ]
    assert [c["task_id"] for c in cards] == [f"reg-{rid}"]
    # Pending: the draw's pool does not read it yet.
    async with h.db.transaction() as s:
        task = await task_store.get_task(s, TASK)
        assert task is not None
        assert (await draws.preview(s, task)).excluded("inspector").get("on_leave", 0) == 0
    await tap(h, person, rid, "confirm")  # not by the person themselves
    assert "不能确认自己的" in h.wecom.texts_to(person)[-1]
    await tap(h, CHIEF, rid, "confirm")
    (entry,) = await entries(h, rid)
    assert entry.state == "confirmed" and entry.confirmed_by == CHIEF
    assert entry.effective_at == h.clock.now()
    assert any(f"#{rid}" in t and "已确认" in t for t in h.wecom.texts_to(person))
    (update_,) = h.wecom.card_updates
    assert update_["template_card"]["replace_text"].startswith("已确认")
    await tap(h, CHIEF, rid, "confirm")  # a duplicate tap changes nothing
    assert "无需重复操作" in h.wecom.texts_to(CHIEF)[-1]
    async with h.db.transaction() as s:
        task = await task_store.get_task(s, TASK)
        assert task is not None
        assert (await draws.preview(s, task)).excluded("inspector")["on_leave"] == 1
    (mine,) = await h.say(person, "我的登记")
    assert f"#{rid}" in mine and "已确认" in mine
    async with h.db.transaction() as s:
        name = await s.scalar(select(Inspector.name).where(Inspector.userid == person))
    (card,) = await h.say(CHIEF, f"查询人员 {name}")
    assert f"2026-12-01～2026-12-05（#{rid}）" in card, card
    # Withdrawn: a new version; the old one stays; the pool no longer leaves them out.
    (done,) = await h.say(person, f"撤销请假 {rid}")
    assert "已撤销" in done
    old, new = await entries(h, rid)
    assert (old.state, new.state, new.version) == ("confirmed", "withdrawn", 2)
    async with h.db.transaction() as s:
        task = await task_store.get_task(s, TASK)
        assert task is not None
        assert (await draws.preview(s, task)).excluded("inspector").get("on_leave", 0) == 0
    assert await audit_actions(h, "register.") == [
        "register.enter",
        "register.confirm",
        "register.withdraw",
    ]


async def test_art29_a_declared_conflict_names_every_target_of_the_company_once_confirmed(
    h: Harness,
) -> None:
    await setup(h)
    async with h.db.transaction() as s:
        person = await s.scalar(select(Inspector.userid).order_by(Inspector.id).limit(1))
        key = await s.scalar(select(Target.key).order_by(Target.key).limit(1))
        other = await s.scalar(select(Target.key).order_by(Target.key.desc()).limit(1))
        await s.execute(update(Target).where(Target.key == other).values(uscc=key))
    assert person is not None and key is not None and other is not None
    (unknown,) = await h.say(person, "回避 不存在的公司 亲属任职")
    assert "没有" in unknown
    (reply,) = await h.say(person, f"回避 {key} 配偶在该公司任职")
    rid = record_no(reply)
    (refused,) = await h.say(person, f"确认回避 {rid}")
    assert "部门负责人" in refused or "不能确认" in refused
    (done,) = await h.say(CHIEF, f"确认回避 {rid}")
    assert "已确认" in done
    (entry,) = await entries(h, rid)
    assert entry.kind == "conflict" and entry.state == "confirmed"
    assert sorted(entry.targets) == sorted({key, other}) and entry.company == key
    assert entry.reason == "配偶在该公司任职" and entry.declared_on is not None
    (reply,) = await h.say(person, "请假 2026-12-02 2026-12-03 事假")
    rejected = record_no(reply)
    (no,) = await h.say(CHIEF, f"驳回请假 {rejected} 年底任务重")
    assert "已驳回" in no
    (entry,) = await entries(h, rejected)
    assert entry.state == "rejected" and entry.note == "年底任务重"


async def test_art29_a_swap_passes_over_only_a_person_with_a_record_from_before_the_request(
    h: Harness,
) -> None:
    v, w, *_ = await drawn(h)
    leaving = v.members[1]
    first, first_user = await next_in_cycle(h, v, leaving)
    # The person the cycle offers first had a confirmed leave before the request: passed over.
    (reply,) = await h.say(first_user, "请假 2026-12-01 2026-12-31 病假")
    leave_id = record_no(reply)
    await h.say(CHIEF, f"确认请假 {leave_id}")
    h.clock.advance(minutes=5)
    rid = await swap(h, v, leaving)
    (approved,) = await h.say(CHIEF, f"批准替换 {rid}")
    assert "已批准" in approved, approved
    async with h.db.transaction() as s:
        (amendment,) = (await s.execute(select(DrawAmendment))).scalars()
        assert amendment.excluded == [first] and amendment.replacement != first
        assert amendment.evidence is not None
        (evidence,) = amendment.evidence
        assert (evidence["id"], evidence["kind"], evidence["person"]) == (
            str(leave_id),
            "leave",
            first_user,
        )
        assert amendment.requested_at is not None
    doc = await export_of_task(h)
    assert both(doc) == (None, None)
    # The same export with the record removed: the exclusion has no reason; both reject it,
    # although the chain is recomputed.
    forged = json.loads(json.dumps(doc))
    forged["amendments"][0]["evidence"] = []
    rechain(forged)
    ours, reference = both(forged)
    assert ours is not None and "evidence" in ours
    assert reference is not None and "evidence" in reference


async def test_art29_a_record_entered_after_the_swap_request_does_not_count(h: Harness) -> None:
    v, *_ = await drawn(h)
    leaving = v.members[1]
    first, first_user = await next_in_cycle(h, v, leaving)
    rid = await swap(h, v, leaving)
    h.clock.advance(minutes=5)
    (reply,) = await h.say(first_user, "请假 2026-12-01 2026-12-31 病假")
    await h.say(CHIEF, f"确认请假 {record_no(reply)}")
    h.clock.advance(minutes=5)
    (approved,) = await h.say(CHIEF, f"批准替换 {rid}")
    assert "已批准" in approved, approved
    async with h.db.transaction() as s:
        (amendment,) = (await s.execute(select(DrawAmendment))).scalars()
        assert amendment.replacement == first and amendment.excluded == []
    assert both(await export_of_task(h)) == (None, None)


async def test_art29_a_swap_is_refused_when_the_next_person_cannot_serve_and_has_no_record(
    h: Harness,
) -> None:
    v, *_ = await drawn(h)
    leaving = v.members[1]
    first, _ = await next_in_cycle(h, v, leaving)
    async with h.db.transaction() as s:  # left the service, nothing on the register
        await s.execute(
            update(Inspector).where(Inspector.certificate_no == first).values(active=False)
        )
    rid = await swap(h, v, leaving)
    (refused,) = await h.say(CHIEF, f"批准替换 {rid}")
    assert "无法执行" in refused and first in refused
    async with h.db.transaction() as s:
        assert (await s.execute(select(DrawAmendment))).first() is None
        row = await s.get(SwapRequest, rid)
        assert row is not None and row.status == "pending"


async def test_art29_import_makes_register_records_once_and_versions_changes(
    h: Harness, tmp_path: Path
) -> None:
    await setup(h)
    async with h.db.transaction() as s:
        keys = list((await s.scalars(select(Target.key).order_by(Target.key).limit(2))).all())

    async def imported(name: str, **row: object) -> list[RegisterEntry]:
        path = write(tmp_path / name, [inspector(**row)])
        report = await run_import(h.db, "inspectors", path)
        assert report.rejected == 0, report
        async with h.db.transaction() as s:
            return list((await s.scalars(select(RegisterEntry).order_by(RegisterEntry.id))).all())

    sheet = {"请假开始": "2026-12-01", "请假结束": "2026-12-10", "回避对象": keys[0]}
    first = await imported("a.xlsx", **sheet)
    assert sorted((e.kind, e.state, e.version) for e in first) == [
        ("conflict", "confirmed", 1),
        ("leave", "confirmed", 1),
    ]
    assert {e.source for e in first} == {"import"} and {e.entered_by for e in first} == {"admin"}
    again = await imported("b.xlsx", **sheet)  # the same sheet again: nothing new
    assert [e.id for e in again] == [e.id for e in first]
    changed = await imported("c.xlsx", **(sheet | {"请假结束": "2026-12-12", "回避对象": keys[1]}))
    leave = [e for e in changed if e.kind == "leave"]
    assert [(e.version, str(e.date_until)) for e in leave] == [(1, "2026-12-10"), (2, "2026-12-12")]
    assert len({e.record_id for e in leave}) == 1  # one record, two versions
    conflicts = [(e.targets, e.state, e.version) for e in changed if e.kind == "conflict"]
    assert sorted(conflicts) == sorted(
        [([keys[0]], "confirmed", 1), ([keys[0]], "withdrawn", 2), ([keys[1]], "confirmed", 1)]
    )
    cleared = await imported("d.xlsx", **(sheet | {"请假开始": "", "请假结束": ""}))
    assert [e.state for e in cleared if e.kind == "leave"][-1] == "withdrawn"
