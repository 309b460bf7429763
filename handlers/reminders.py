"""Reminders before and after deadlines (Art. 37, 40, 43), each sent once per occasion, on
working days in working hours, one message per person.

The scheduler only ticks; ``run_reminders`` asks the database what is due now, claims each
reminder's key in this transaction (storage.reminders.claim) and queues one message (a digest
when there are several) per recipient.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from bot.chat.context import Context, Role
from bot.chat.router import Router
from inspection.deadlines import results_publication_due
from inspection.pool import CONSTRUCTION_APPROVALS
from inspection.reminders import (
    CONSTRUCTION_WINDOW_DAYS,
    PUBLICATION_BEFORE,
    REPORT_BEFORE,
    RESULTS_BEFORE,
    Occasion,
    Reminder,
    construction_occasion,
    current_occasion,
    digest,
    in_working_hours,
    one_year_mark,
    report_deadlines,
    week_occasion,
)
from inspection.workdays import WorkCalendar
from storage import publication as pub_store
from storage import reminders as store
from storage.gcpause import gc_paused
from storage.models import Task
from storage.outbox import split_text
from storage.params import in_force
from storage.repos import OrgNode
from storage.results import work_calendar
from storage.tasks import rule_params

router = Router("reminders")

RESULTS_HORIZON_DAYS = 21  # 3 working days before a check period's end, across any holiday


def calendar(ctx: Context) -> WorkCalendar:
    """The State Council schedule plus [calendar]; a year neither covers counts weekends alone
    and what is computed there is provisional (Art. 37)."""
    c = ctx.settings.calendar
    return work_calendar(tuple(c.holidays), tuple(c.makeup_workdays)).provisional()


@dataclass(frozen=True)
class TaskDeadline:
    due: dt.date
    missing_years: tuple[int, ...]  # not loaded: the deadline is provisional
    working_days: int  # Art. 37's count in force for the task
    # Due from the recording of a result that came in after the task's clock started.
    recorded_later: bool = False

    @property
    def provisional(self) -> bool:
        return bool(self.missing_years)

    def note(self) -> str:
        if not self.missing_years:
            return ""
        years = "、".join(str(y) for y in self.missing_years)
        return f"（暂定：{years}年节假日安排尚未载入，按周末计算，载入后重新计算）"

    def counted_from(self) -> str:
        return (
            f"录入后{self.working_days}个工作日"
            if self.recorded_later
            else (f"完成后{self.working_days}个工作日")
        )


def publication_deadline_of(
    ctx: Context, task: Task, cal: WorkCalendar, first_unpublished_at: dt.datetime | None = None
) -> TaskDeadline:
    """Art. 37 (``inspection.deadlines.results_publication_due``): results of the task due n
    working days (n in force for the task, 20 under the rules of 2024-07-18) after its clock
    start when recorded by then, else n working days after their recording; given the
    earliest unpublished result's recording, the date its unit is due by; without, the task
    clock's."""
    assert task.completed_at is not None
    tz = ctx.settings.tz
    clock = task.completed_at.astimezone(tz).date()
    recorded = [] if first_unpublished_at is None else [first_unpublished_at.astimezone(tz).date()]
    days = rule_params(task.check_start).publication_working_days
    due = results_publication_due(clock, recorded, cal, days)
    start = max([clock, *recorded])
    return TaskDeadline(due, tuple(cal.uncovered_years(start, due)), days, start > clock)


class People:
    """Who holds which role where, read once per run."""

    def __init__(self, bindings: Iterable[tuple[str, str, str, str]], tree: dict[str, OrgNode]):
        self.tree = tree
        self._by: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
        self._orgs: dict[str, set[str]] = defaultdict(set)
        for userid, role, org, dept in bindings:
            self._by[(role, org)].append((userid, dept))
            self._orgs[userid].add(org)

    @classmethod
    async def load(cls, ctx: Context) -> People:
        rows = await ctx.repos.roles.all()
        tree = await ctx.repos.orgs.tree()
        return cls(((b.userid, b.role, b.org_code, b.dept_code) for b in rows), tree)

    def holders(self, roles: Iterable[Role], org: str, dept: str = "") -> tuple[str, ...]:
        users = [
            u
            for role in roles
            for u, d in self._by.get((role.value, org), [])
            if not dept or d in ("", dept)
        ]
        return tuple(sorted(set(users)))

    def by_chat_org(
        self, users: Iterable[str], chats: dict[str, str]
    ) -> dict[str, tuple[str, ...]]:
        """The recipients who hold a role in an organisation with a digest chat, per such
        organisation: their reminders go to its chat, not to them one by one."""
        out: dict[str, list[str]] = defaultdict(list)
        for user in users:
            for org in sorted(self._orgs.get(user, set()) & chats.keys()):
                out[org].append(user)
        return {org: tuple(u) for org, u in out.items()}

    def name(self, org: str) -> str:
        node = self.tree.get(org)
        return node.name if node else org

    def parent(self, org: str) -> str | None:
        node = self.tree.get(org)
        return node.parent_code if node else None

    def of_level(self, level: str) -> list[str]:
        return sorted(code for code, node in self.tree.items() if node.level == level)


@gc_paused  # tens of thousands of short-lived rows and texts, no cycles among them
async def run_reminders(ctx: Context) -> int:
    """Art. 37, 40, 43: what is due now, each reminder once, one message per person, or one
    digest per organisation in its digest chat (提醒群) for its people; outside working hours
    only the kinds configured urgent. Returns how many reminders went out."""
    settings = ctx.settings.reminders
    local = ctx.now().astimezone(ctx.settings.tz)
    today, cal = local.date(), calendar(ctx)
    quiet = not in_working_hours(today, local.time(), cal, settings.start, settings.end)
    if quiet and not settings.urgent:
        return 0
    people = await People.load(ctx)
    # A recomputed deadline is recorded only when its announcement can go out with it.
    announce = not quiet or "deadline_moved" in settings.urgent
    due = [
        *await publication_reminders(ctx, today, cal, people, announce=announce),
        *await results_reminders(ctx, today, cal, people),
        *report_reminders(today, cal, people),
        *await construction_reminders(ctx, today, people),
    ]
    if quiet:
        due = [r for r in due if r.kind in settings.urgent]
    won = await store.claim(ctx.session, due, ctx.now())
    chats = await store.digest_chats(ctx.session)
    lines: dict[str, list[str]] = defaultdict(list)
    in_chat: dict[str, list[tuple[Reminder, tuple[str, ...]]]] = defaultdict(list)
    for r in won:
        routed = people.by_chat_org(r.recipients, chats)
        for org, users in routed.items():
            in_chat[org].append((r, users))
        covered = {u for users in routed.values() for u in users}
        for user in r.recipients:
            if user not in covered:
                lines[user].append(r.text)
    for user, text in digest(lines).items():
        ctx.outbox.text([user], text)
    for org, items in sorted(in_chat.items()):
        for part in split_text(chat_digest(people.name(org), today, items)):
            ctx.outbox.appchat_text(chats[org], part)
    return len(won)


def chat_digest(unit: str, today: dt.date, items: list[tuple[Reminder, tuple[str, ...]]]) -> str:
    """One message to an organisation's digest chat: every item due or overdue, with its
    deadline (in the item's text) and who must act."""
    body = "\n\n".join(
        f"{i}. {r.text}\n   经办：{'、'.join(users)}" for i, (r, users) in enumerate(items, 1)
    )
    return f"【{unit}待办汇总】{today} 共 {len(items)} 项待办或逾期：\n\n{body}"


# --- Art. 37: publication ----------------------------------------------------------------------


async def publication_reminders(
    ctx: Context, today: dt.date, cal: WorkCalendar, people: People, *, announce: bool = True
) -> list[Reminder]:
    """Publishers and chiefs of each checking unit, 5 and 1 working days before its deadline,
    then every working morning until published; the level above, a weekly list of what is
    overdue, results recorded after their unit published included. A unit is due by its
    earliest unpublished result's date (Art. 37: a result recorded after the task's clock
    started is due from its recording). Units whose results are all secret are exempt."""
    overdue: dict[str, list[str]] = defaultdict(list)
    tasks = {t.id: t for t in await store.completed_tasks(ctx.session)}
    out: list[Reminder] = []
    if tasks:
        clocks = {i: publication_deadline_of(ctx, t, cal) for i, t in tasks.items()}
        out += await recomputed_deadlines(ctx, tasks, clocks, people) if announce else []
        done = await pub_store.published(ctx.session, list(tasks))
        for u in await pub_store.unit_results(ctx.session, list(tasks)):
            if (u.task_id, u.org_code) in done or not u.results:
                continue
            task = tasks[u.task_id]
            d = publication_deadline_of(ctx, task, cal, u.first_unpublished_at)
            occ = current_occasion(d.due, today, cal, PUBLICATION_BEFORE)
            if occ is None:
                continue
            text = publication_text(task, people.name(u.org_code), u.results, d, occ)
            who = publishers(people, u.org_code)
            out.append(Reminder("publication", f"{task.code}:{u.org_code}", occ.key, who, text))
            if occ.overdue:
                note_overdue(overdue, people, task, u.org_code, u.results, d, occ)
    out += await late_result_reminders(ctx, today, cal, people, overdue)
    week = week_occasion(today)
    for parent, items in sorted(overdue.items()):
        who = people.holders((Role.ADMIN, Role.CHIEF), parent)
        text = f"【公开逾期周报】{people.name(parent)}下级单位逾期未公开的任务（第37条）：\n" + (
            "\n".join(items)
        )
        out.append(Reminder("publication_overdue_list", parent, week, who, text))
    return out


def publishers(people: People, org: str) -> tuple[str, ...]:
    return people.holders((Role.PUBLISHER, Role.CHIEF), org) or people.holders((Role.ADMIN,), org)


def note_overdue(
    overdue: dict[str, list[str]],
    people: People,
    task: Task,
    org: str,
    results: int,
    d: TaskDeadline,
    occ: Occasion,
    what: str = "未公开",
) -> None:
    """One line of the weekly list to the level above (Art. 37)."""
    parent = people.parent(org)
    if parent:
        overdue[parent].append(
            f"· {people.name(org)} 任务 {task.code}「{task.name}」"
            f"期限 {d.due}，逾期 {-occ.days} 个工作日，{results} 条{what}"
        )


async def late_result_reminders(
    ctx: Context,
    today: dt.date,
    cal: WorkCalendar,
    people: People,
    overdue: dict[str, list[str]] | None = None,
) -> list[Reminder]:
    """Art. 37: results recorded after their unit published the task are published within 20
    working days of their recording. The unit's publishers and chiefs, 5 and 1 working days
    before the earliest one's deadline, then every working morning, until a supplement 公示
    publishes them; a later batch (after a supplement) has its own deadline and reminders.
    Overdue ones go on the level above's weekly list (``overdue``)."""
    late = await pub_store.late_results(ctx.session)
    if not late:
        return []
    tasks = await store.tasks_by_id(ctx.session, sorted({u.task_id for u in late}))
    out: list[Reminder] = []
    for u in late:
        task = tasks[u.task_id]
        d = publication_deadline_of(ctx, task, cal, u.first_recorded_at)
        occ = current_occasion(d.due, today, cal, PUBLICATION_BEFORE)
        if occ is None:
            continue
        recorded = u.first_recorded_at.astimezone(ctx.settings.tz).date()
        text = late_result_text(task, people.name(u.org_code), u.results, d, occ)
        subject = f"{task.code}:{u.org_code}:{recorded.isoformat()}"
        who = publishers(people, u.org_code)
        out.append(Reminder("publication_late", subject, occ.key, who, text))
        if occ.overdue and overdue is not None:
            note_overdue(
                overdue, people, task, u.org_code, u.results, d, occ, "公开后录入未补充公开"
            )
    return out


def late_result_text(task: Task, unit: str, results: int, d: TaskDeadline, occ: Occasion) -> str:
    what = f"任务 {task.code}「{task.name}」{unit}在公开后录入的 {results} 条检查结果尚未补充公开"
    how = f"在门户网站补充公开后发送「公示 {task.code} <网址>」登记。"
    if occ.overdue:
        return (
            f"【补充公开逾期】{what}，期限 {d.due}{d.note()} 已过，逾期 {-occ.days} 个工作日"
            f"（第37条，录入后{d.working_days}个工作日内公开）。{how}"
        )
    return (
        f"【补充公开提醒】{what}，须于 {d.due}{d.note()} 前公开（第37条，录入后{d.working_days}个工作日内），"
        f"还剩 {occ.days} 个工作日。{how}"
    )


def publication_text(task: Task, unit: str, results: int, d: TaskDeadline, occ: Occasion) -> str:
    how = f"公开后发送「公示 {task.code} <网址>」登记。"
    if occ.overdue:
        return (
            f"【公开逾期】任务 {task.code}「{task.name}」{unit}的 {results} 条检查结果"
            f"公开期限 {d.due}{d.note()} 已过，逾期 {-occ.days} 个工作日（第37条）。{how}"
        )
    return (
        f"【公开提醒】任务 {task.code}「{task.name}」{unit}的 {results} 条检查结果须于 "
        f"{d.due}{d.note()} 前公开（第37条，{d.counted_from()}），还剩 {occ.days} 个工作日。{how}"
    )


async def recomputed_deadlines(
    ctx: Context, tasks: dict[int, Task], deadlines: dict[int, TaskDeadline], people: People
) -> list[Reminder]:
    """Remember each deadline as computed; when a missing year's schedule is added, the
    provisional ones are recomputed and the region's admins told which moved. A year still
    missing is told to them once."""
    known = await store.deadlines(ctx.session, "publication")
    region = people.of_level("region")
    admins = tuple(u for org in region for u in people.holders((Role.ADMIN,), org))
    out: list[Reminder] = []
    for task_id, d in deadlines.items():
        code = tasks[task_id].code
        row = known.get(code)
        if row is None:
            await store.note_deadline(
                ctx.session, "publication", code, d.due, d.provisional, ctx.now()
            )
            continue
        if (row.due, row.provisional) == (d.due, d.provisional):
            continue
        if row.provisional and row.due != d.due:
            text = (
                f"【公开期限已重新计算】任务 {code} 的公开期限由暂定的 {row.due} 改为 {d.due}"
                f"{d.note()}（节假日安排已载入，第37条）。"
            )
            out.append(Reminder("deadline_moved", code, f"{row.due}->{d.due}", admins, text))
        row.due, row.provisional, row.computed_at = d.due, d.provisional, ctx.now()
    for year in sorted({y for d in deadlines.values() for y in d.missing_years}):
        out.append(
            Reminder(
                "calendar_missing",
                str(year),
                "missing",
                admins,
                f"【节假日安排缺失】{year}年的国务院节假日安排尚未载入，涉及该年的公开期限暂按周末"
                f"计算（暂定）。请在配置 [calendar] 中补充该年的节假日和调休工作日，"
                "载入后将重新计算并告知变化。",
            )
        )
    return out


# --- Art. 40: results within the check period ---------------------------------------------------


async def results_reminders(
    ctx: Context, today: dt.date, cal: WorkCalendar, people: People
) -> list[Reminder]:
    """Inspectors whose inspection is still open 3 working days before the check period ends
    and every working morning after; the task's chiefs see the list. A task whose check period
    has ended with results missing is itself overdue (Art. 40)."""
    horizon = today + dt.timedelta(days=RESULTS_HORIZON_DAYS)
    open_ = await store.open_inspections_ending_by(ctx.session, horizon)
    if not open_:
        return []
    tasks = await store.tasks_by_id(ctx.session, sorted({i.task_id for i in open_}))
    occasions: dict[dt.date, Occasion | None] = {}
    out: list[Reminder] = []
    per_task: dict[int, list[str]] = defaultdict(list)
    for i in open_:
        if i.check_end not in occasions:
            occasions[i.check_end] = current_occasion(i.check_end, today, cal, RESULTS_BEFORE)
        occ = occasions[i.check_end]
        if occ is None:
            continue
        task = tasks[i.task_id]
        state = (
            f"检查期已于 {i.check_end} 结束，逾期 {-occ.days} 个工作日"
            if occ.overdue
            else f"检查期 {i.check_end} 结束，还剩 {occ.days} 个工作日"
        )
        text = (
            f"【检查提醒】编号 {i.number} {i.target_name}（任务 {task.code}）{state}，"
            f"尚未提交检查结果（第40条）。完成后在任务卡片上提交，或发送「结果 {i.number} <序号>」。"
        )
        out.append(Reminder("results", str(i.number), occ.key, i.members, text))
        per_task[i.task_id].append(f"· 编号 {i.number} {i.target_name}：{state}")
    for task_id, items in per_task.items():
        task = tasks[task_id]
        occ = current_occasion(task.check_end, today, cal, RESULTS_BEFORE)
        key = occ.key if occ is not None else f"overdue:{today}"
        ended = task.check_end < today
        head = (
            f"【任务逾期】任务 {task.code}「{task.name}」检查期已于 {task.check_end} 结束，"
            f"尚有 {len(items)} 项检查无结果（第40条）："
            if ended
            else f"【检查进度】任务 {task.code}「{task.name}」尚有 {len(items)} 项检查无结果："
        )
        who = people.holders((Role.CHIEF,), task.org_code, task.drawing_dept)
        out.append(Reminder("results_list", task.code, key, who, head + "\n" + "\n".join(items)))
    return out


# --- Art. 43: the league/city bureaus' reports --------------------------------------------------


def report_reminders(today: dt.date, cal: WorkCalendar, people: People) -> list[Reminder]:
    """Admins and chiefs of each league/city bureau, 5 and 1 working days before the filing
    days the rules in force set (统计表: the 5th of a quarter's first month, 自查报告:
    November 5, under the rules of 2024-07-18). A due date on a holiday does not move: the
    reminders fall on the last working days before it."""
    out: list[Reminder] = []
    for d in report_deadlines(today, in_force()):
        occ = current_occasion(d.due, today, cal, REPORT_BEFORE, overdue_daily=False)
        if occ is None:
            continue
        text = (
            f"【报送提醒】{d.label}须于 {d.due}（含当日）前报送（第43条），"
            f"截止前还有 {occ.days} 个工作日。"
        )
        for city in people.of_level("city"):
            who = people.holders((Role.ADMIN, Role.CHIEF), city)
            if who:
                out.append(Reminder(d.kind, f"{d.subject}:{city}", occ.key, who, text))
    return out


# --- Art. 25(4): key construction projects -------------------------------------------------------


async def construction_reminders(ctx: Context, today: dt.date, people: People) -> list[Reminder]:
    """Chiefs over a key construction project approved by the Ministry or the region, once,
    when its one-year mark after going into operation is within 60 days and it has not been
    checked since construction began (Art. 25(4): full coverage)."""
    began_to = today - dt.timedelta(days=365 - CONSTRUCTION_WINDOW_DAYS - 1)
    began_from = today - dt.timedelta(days=366)
    projects = await store.unchecked_key_projects(
        ctx.session, sorted(CONSTRUCTION_APPROVALS), began_from, began_to
    )
    out: list[Reminder] = []
    for p in projects:
        occasion = construction_occasion(p.operation_started_on, today)
        if occasion is None:
            continue
        chain = await ctx.repos.orgs.ancestors(p.org_code)
        orgs = [o for o in chain if people.tree[o].level != "region"]
        who = tuple(sorted({u for o in orgs for u in people.holders((Role.CHIEF,), o)}))
        mark = one_year_mark(p.operation_started_on)
        text = (
            f"【建设项目全覆盖】{p.name}（{p.key}）于 {p.operation_started_on} 投入生产或使用，"
            f"须在 {mark} 前至少检查一次（第25条第4项），至今尚未检查，"
            f"还有 {(mark - today).days} 天。请将其纳入抽查任务。"
        )
        out.append(Reminder("construction", p.key, occasion, who, text))
    return out
