"""Rule parameters by effective date (Art. 24, 25, 37, 38, 45): one table, seeded with the
2024-07-18 rules, changed by the region from the command line, read by every draw, count and
deadline as in force on its date."""

from __future__ import annotations

import datetime as dt
import re
from fractions import Fraction
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.cli import main
from inspection.params import DEFAULT_PARAMS, NoParamsInEffect
from inspection.quotas import Tier
from storage import params, results
from storage.db import Database
from storage.models import AuditEntry, RuleParam, Task
from tests.conftest import START, Harness
from tests.factories import uscc
from tests.support.draw_chat import ADMIN, CHIEF, NEW_TASK, setup

AT = START.astimezone(dt.UTC)
TODAY = START.date()


async def _set(db: Database, key: str, value: str, since: dt.date, **kw: bool) -> None:
    async with db.transaction() as s:
        await params.set_param(
            s,
            key=key,
            value=value,
            effective_from=since,
            reason="测试：规则调整",
            by="radmin",
            now=AT,
            today=TODAY,
            **kw,
        )


async def _grant_region_admin(db: Database) -> None:
    from storage.repos import Repositories

    async with db.transaction() as s:
        await Repositories(s).roles.grant("radmin", "admin", "150000", "", "test", AT)


async def test_art45_the_migration_seeds_the_rules_of_2024_07_18(db: Database) -> None:
    async with db.transaction() as s:
        rows = (await s.execute(select(RuleParam))).scalars().all()
        in_force = params.rule_params(dt.date(2026, 6, 1))
    assert {r.effective_from for r in rows} == {dt.date(2024, 7, 18)}
    values = {r.key: r.value for r in rows}
    assert (values["ratio_special"], values["ratio_key"], values["ratio_general"]) == (
        "1/4",
        "1/5",
        "1/10",
    )
    assert (values["team_size"], values["publication_working_days"]) == ("2", "20")
    # Art. 43: the 统计表 by the 5th of the quarter's first month, the report by 5 November.
    assert (values["statistics_table_day"], values["self_inspection_report_by"]) == ("5", "11-05")
    assert sum(1 for k in values if k.startswith("result.")) == 7
    assert values["result.refused"] == "不配合检查"
    assert in_force == DEFAULT_PARAMS


async def test_art45_a_change_applies_from_its_date_and_only_the_region_makes_it(
    db: Database,
) -> None:
    since = dt.date(2027, 1, 1)
    with pytest.raises(params.ParamRefused) as refused:
        await _set(db, "ratio_general", "15%", since)
    assert refused.value.reason == "not_region_admin"
    await _grant_region_admin(db)
    await _set(db, "ratio_general", "15%", since)
    await _set(db, "team_size", "3", since)
    async with db.transaction() as s:
        before, after = params.rule_params(since - dt.timedelta(days=1)), params.rule_params(since)
        entries = [a.action for a in (await s.execute(select(AuditEntry))).scalars()]
    assert before.ratio(Tier.general) == Fraction(1, 10) and before.team_size == 2
    assert after.ratio(Tier.general) == Fraction(3, 20) and after.team_size == 3
    assert after.ratio(Tier.key) == Fraction(1, 5)  # unchanged keys carry over
    assert entries.count("params.set") == 2
    with pytest.raises(params.ParamRefused) as twice:
        await _set(db, "team_size", "4", since)
    assert twice.value.reason == "already_set"


async def test_art45_a_date_in_the_past_needs_force(db: Database) -> None:
    await _grant_region_admin(db)
    past = dt.date(2026, 1, 1)
    with pytest.raises(params.ParamRefused) as refused:
        await _set(db, "publication_working_days", "15", past)
    assert refused.value.reason == "in_the_past"
    await _set(db, "publication_working_days", "15", past, force=True)
    async with db.transaction() as s:
        assert params.rule_params(dt.date(2026, 3, 1)).publication_working_days == 15
        (forced,) = [
            a.payload
            for a in (await s.execute(select(AuditEntry))).scalars()
            if a.action == "params.set"
        ]
    assert forced["forced"] is True


async def test_art38_the_seven_phrases_never_change_a_further_one_is_added_with_its_date(
    db: Database,
) -> None:
    await _grant_region_admin(db)
    since = dt.date(2027, 1, 1)
    with pytest.raises(params.ParamRefused) as fixed:
        await _set(db, "result.refused", "拒绝检查", since)
    assert fixed.value.reason == "bad_value"
    with pytest.raises(params.ParamRefused) as clash:
        await _set(db, "result.suspended", "未发现问题", since)
    assert clash.value.reason == "bad_value"
    await _set(db, "result.suspended", "检查对象已停产", since)
    async with db.transaction() as _:
        later, earlier = results.phrases_for(since), results.phrases_for(dt.date(2026, 12, 31))
    assert later["suspended"] == "检查对象已停产" and len(later) == 8
    assert "suspended" not in earlier and len(earlier) == 7


async def test_art37_art45_the_publication_deadline_uses_the_days_in_force_at_check_start(
    db: Database,
) -> None:
    await _grant_region_admin(db)
    await _set(db, "publication_working_days", "10", dt.date(2027, 1, 1))
    calendar = results.work_calendar((dt.date(2027, 1, 1),), ())
    async with db.transaction() as _:
        old, _missing = results.publication_due(
            Task(code="T1", check_start=dt.date(2026, 12, 1)), dt.date(2027, 1, 4), calendar
        )
        new, _missing = results.publication_due(
            Task(code="T2", check_start=dt.date(2027, 1, 4)), dt.date(2027, 1, 4), calendar
        )
    assert (old, new) == (dt.date(2027, 2, 1), dt.date(2027, 1, 18))


async def test_art28_art45_the_running_bot_uses_a_change_from_its_date(h: Harness) -> None:
    """Set from another process (the CLI's transaction), seen by the bot's next event."""
    await setup(h)
    await _grant_region_admin(h.db)
    await _set(h.db, "team_size", "3", TODAY)
    key, a, b = uscc(200), "cu1501020", "cu1501021"
    (small,) = await h.say(CHIEF, f"登记检查 {key} 投诉 夜间异味 成员={a},{b}")
    assert "至少需要3名" in small
    (refused,) = await h.say(ADMIN, f"{NEW_TASK.replace('四季度', '一季度')} 组员=2")
    assert "不得少于3人" in refused


async def test_art45_a_check_start_before_any_configured_rules_is_refused_clearly(
    h: Harness,
) -> None:
    await setup(h)
    early = NEW_TASK.replace("四季度", "旧").replace(
        "2026-12-01~2026-12-31", "2024-06-01~2024-06-30"
    )
    h.clock.set(dt.datetime(2024, 5, 20, 1, 0, tzinfo=dt.UTC))  # a period still to come then
    (reply,) = await h.say(ADMIN, early)
    assert "2024-06-01没有施行中的抽查规则参数" in reply and "2024-07-18" in reply
    h.clock.set(dt.datetime(2024, 7, 1, 1, 0, tzinfo=dt.UTC))
    (chat,) = await h.say(CHIEF, f"登记检查 {uscc(200)} 投诉 夜间异味 成员=cu1501020,cu1501021")
    assert "没有施行中的抽查规则参数" in chat
    async with h.db.transaction() as s:
        assert (await s.execute(select(Task).where(Task.year == 2024))).first() is None
        with pytest.raises(NoParamsInEffect):
            params.rule_params(dt.date(2024, 7, 17))


def test_art45_params_from_the_command_line(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--database-url", db_url]
    reason = ["--reason", "生态环境部新规"]
    future = ["--from", "2099-01-01"]
    by = ["--by", "boss"]
    assert main(["role", "grant", "boss", "admin", "150000", *base]) == 0
    assert main(["role", "grant", "cityboss", "admin", "150100", *base]) == 0
    capsys.readouterr()
    cases = [
        (["ratio_key", "30%", *future, *reason, "--by", "cityboss"], "region (150000)"),
        (["ratio_key", "130%", *future, *reason, "--by", "boss"], "outside 0..100%"),
        (["ratio_key", "30%", "--from", "2025-01-01", *reason, "--by", "boss"], "--force"),
        (["result.refused", "拒检", *future, *reason, "--by", "boss"], "seven fixed phrases"),
        (["colour", "red", *future, *reason, "--by", "boss"], "unknown parameter"),
        # The result's columns hold 100 characters of phrase: a longer one is refused, not cut.
        (["result.suspended", "停" * 101, *future, *reason, "--by", "boss"], "101"),
        (["team_size", "3", "--from", "2099-13-01", *reason, "--by", "boss"], "not a date"),
    ]
    for args, says in cases:
        assert main(["params", "set", *args, *base]) == 2
        err = capsys.readouterr().err
        assert says in err and err.count("\n") == 1 and "Traceback" not in err
    assert main(["params", "set", "ratio_key", "30%", *future, *reason, "--by", "boss", *base]) == 0
    assert "ratio_key = 3/10 from 2099-01-01" in capsys.readouterr().out
    assert main(["params", "list", "--on", "2099-01-01", *base]) == 0
    out = capsys.readouterr().out
    assert "ratio_key\t3/10" in out and "ratio_general\t1/10" in out and "team_size\t2" in out
    # Art. 43's filing days, set the same way: a day of the month, a month and day.
    for key, value, stored in (
        ("statistics_table_day", "１０日", "10"),
        ("self_inspection_report_by", "10月31日", "10-31"),
    ):
        assert main(["params", "set", key, value, *future, *reason, "--by", "boss", *base]) == 0
        assert f"{key} = {stored} from 2099-01-01" in capsys.readouterr().out
    for key, value in (("statistics_table_day", "31"), ("self_inspection_report_by", "02-29")):
        assert main(["params", "set", key, value, "--from", "2099-02-01", *reason, *by, *base]) == 2
        err = capsys.readouterr().err
        assert key in err and err.count("\n") == 1 and "Traceback" not in err
    assert main(["params", "list", "--on", "2099-01-01", *base]) == 0
    out = capsys.readouterr().out
    assert "statistics_table_day\t10" in out and "self_inspection_report_by\t10-31" in out
    assert main(["params", "list", "--on", "2098-12-31", *base]) == 0
    out = capsys.readouterr().out
    assert "statistics_table_day\t5" in out and "self_inspection_report_by\t11-05" in out
    assert main(["params", "list", *base]) == 0
    listing = capsys.readouterr().out
    assert "2024-07-18\tresult.no_problem\t未发现问题" in listing
    assert "2099-01-01\tratio_key\t3/10\tboss\t生态环境部新规" in listing
    assert main(["params", "list", "--on", "2024-07-17", *base]) == 2
    err = capsys.readouterr().err
    assert "no rule parameters are in force on 2024-07-17" in err and err.count("\n") == 1


def test_art45_a_task_starting_before_any_configured_rules_is_refused_on_the_cli(
    db_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # The command line on a drill clock in May 2024, so the period is still to come (a
    # period wholly in the past is refused before the rules are looked up).
    config = tmp_path / "drill.toml"
    config.write_text("[clock]\nstart = 2024-05-20T09:00:00+08:00\n", encoding="utf-8")
    task = ["task", "create", "--org", "150100", "--name", "旧任务", "--general", "10%"]
    dates = ["--start", "2024-06-01", "--end", "2024-06-30"]
    assert main([*task, *dates, "--config", str(config), "--database-url", db_url]) == 2
    err = capsys.readouterr().err
    assert "no rule parameters are in force on 2024-06-01" in err and "2024-07-18" in err
    assert err.count("\n") == 1 and "Traceback" not in err


async def test_art25_art45_the_sendable_example_names_the_minimums_in_force_in_its_period(
    h: Harness,
) -> None:
    """The example 新建任务 line a usage error offers starts tomorrow: from then the region's
    new special minimum (30 %) is in force, so that is the ratio it names, and it is sent as
    it stands."""
    await setup(h)
    await _grant_region_admin(h.db)
    await _set(h.db, "ratio_special", "30%", TODAY + dt.timedelta(days=1))
    (usage,) = await h.say(ADMIN, "新建任务 两个 名称")
    line = next(x for x in usage.splitlines() if x.startswith("例如：")).removeprefix("例如：")
    assert "特殊=30%" in line and "重点=20%" in line and "一般=10%" in line, line
    (made,) = await h.say(ADMIN, line)
    code = re.search(r"T2026-\d{6}-\d{3}", made)
    assert code, made
    async with h.db.transaction() as s:
        task = await s.scalar(select(Task).where(Task.code == code.group(0)))
    assert task is not None and task.quotas["special"]["ratio"] == "3/10", task.quotas


async def test_art25_art28_art45_the_task_help_names_the_rules_in_force_not_fixed_numbers(
    h: Harness,
) -> None:
    """帮助 新建任务: the usage line names no ratios or team size as if they were the rules;
    the example and the line under it give the values in force today (here the region's new
    special minimum of 30 % and teams of 3, both from today)."""
    await setup(h)
    await _grant_region_admin(h.db)
    await _set(h.db, "ratio_special", "30%", TODAY)
    await _set(h.db, "team_size", "3", TODAY)
    (reply,) = await h.say(ADMIN, "帮助 新建任务")
    usage = next(x for x in reply.splitlines() if x.startswith("用法："))
    assert "%" not in usage and "组员=2" not in usage, usage
    example = next(x for x in reply.splitlines() if x.startswith("示例"))
    assert "特殊=30%" in example and "重点=20%" in example and "一般=10%" in example, example
    rules = next(x for x in reply.splitlines() if x.startswith("现行规则"))
    assert "特殊30%" in rules and "重点20%" in rules and "每组3人" in rules, rules
    assert TODAY.isoformat() in rules
