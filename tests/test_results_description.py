"""A result that found a problem needs its description (Art. 35, 38): held, then recorded or lapsed."""

from __future__ import annotations

from storage import results as store
from tests.conftest import Harness
from tests.results_support import audit_actions, click, describe, drawn, task_card_updates


async def test_art38_a_problem_phrase_is_held_until_its_description_arrives_or_lapses(
    h: Harness,
) -> None:
    v, w, x, *_ = await drawn(h)
    a, b = v.members[0], v.members[1]
    code = await click(h, a, v, "ordered_to_rectify")
    assert "请在30分钟内" in h.wecom.texts_to(a)[-1] and "问题说明" in h.wecom.texts_to(a)[-1]
    assert "正在填写问题说明" in h.wecom.texts_to(b)[-1]  # teammates are told
    assert h.wecom.card_updates == []
    await click(h, b, v, "no_problem")  # the hold is a's
    assert "正由检查员" in h.wecom.texts_to(b)[-1]
    (mine,) = await h.say(b, "我的任务")
    assert f"编号 {v.number}" in mine and "正在填写说明" in mine and "期限 2026-12-31" in mine
    h.clock.advance(minutes=10)
    # A description that begins like a command (记录 …) is still the description owed.
    replies = await describe(h, a, "记录显示除尘设施未运行，已责令限期整改")
    assert any("检查结果已记录" in r and "除尘设施未运行" in r for r in replies)
    async with h.db.transaction() as s:
        row = await store.current(s, v.inspection_id)
        assert row is not None
        assert (row.state, row.code, row.userid, row.channel) == (
            "recorded",
            "ordered_to_rectify",
            a,
            "card",
        )
        assert row.description == "记录显示除尘设施未运行，已责令限期整改"  # as typed
    # The card closes with a's own click's ResponseCode, once the description is in.
    (update,) = task_card_updates(h)
    assert update["response_code"] == code
    assert any("除尘设施未运行" in t for t in h.wecom.texts_to(b))
    # Phrase 5 asks which department it went to: the department comes first.
    c = w.members[0]
    await click(h, c, w, "transferred")
    assert "移交的部门" in h.wecom.texts_to(c)[-1]
    (again,) = await h.say(c, "市水务局")  # the department alone: the problem is asked for
    assert "市水务局" in again and "问题" in again
    await describe(h, c, "市水务局 取水口未登记")
    async with h.db.transaction() as s:
        row = await store.current(s, w.inspection_id)
        assert row is not None and (row.department, row.description) == ("市水务局", "取水口未登记")
    # Without its description in time, the hold lapses and the team may submit again.
    a, b = x.members[0], x.members[1]
    await click(h, a, x, "pending_followup")
    h.clock.advance(minutes=31)
    assert await h.runtime.due.tick() == 1
    await h.settle()
    assert "结果未记录" in h.wecom.texts_to(a)[-1]
    assert "组内成员均可提交" in h.wecom.texts_to(b)[-1]
    async with h.db.transaction() as s:
        assert await store.current(s, x.inspection_id) is None
    (reply,) = await h.say(a, "整改情况待复查")  # too late: no longer taken as the description
    assert "未识别的命令" in reply
    await click(h, b, x, "no_problem")
    async with h.db.transaction() as s:
        row = await store.current(s, x.inspection_id)
        assert row is not None and (row.code, row.userid) == ("no_problem", b)
    assert await audit_actions(h, "result.") == [
        "result.hold",
        "result.record",
        "result.hold",
        "result.record",
        "result.hold",
        "result.hold_lapsed",
        "result.record",
    ]


async def test_a_description_that_starts_with_a_command_word_is_still_the_description(
    h: Harness,
) -> None:
    v, *_ = await drawn(h)
    a = v.members[0]
    await click(h, a, v, "pending_followup")
    replies = await describe(h, a, "帮助企业制定整改方案，待复查")
    assert any("检查结果已记录" in r for r in replies)
    async with h.db.transaction() as s:
        row = await store.current(s, v.inspection_id)
        assert row is not None and row.description == "帮助企业制定整改方案，待复查"
    # A command word followed by a space is still the command, conversation or not.
    (help_text, *_) = await h.say(a, "帮助 ")
    assert "可用命令" in help_text
