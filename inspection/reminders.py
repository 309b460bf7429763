"""Which reminder occasions are due on a day (Art. 37, 40, 43): pure, given a deadline, a day
and the working calendar.

An occasion is one moment a person is reminded: "5 working days before", "1 working day
before", or one overdue working morning. Only the *current* occasion of a deadline is ever
due, so a bot that was down catches up with one reminder, never a burst of stale ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, time

from inspection.deadlines import (
    self_inspection_report_due,
    self_inspection_report_params,
    statistics_table_due,
    statistics_table_params,
)
from inspection.params import NoParamsInEffect, ParamHistory
from inspection.workdays import WorkCalendar

PUBLICATION_BEFORE = (5, 1)  # Art. 37: working days before the deadline
RESULTS_BEFORE = (3,)  # Art. 40: working days before the check period ends
REPORT_BEFORE = (5, 1)  # Art. 43: working days before the filing day


@dataclass(frozen=True)
class Occasion:
    key: str  # "before5", "before1", "overdue:2026-12-29"
    on: date  # the day it fell on
    # Working days left to the deadline (>= 0), or, once overdue, the working days over (< 0).
    days: int

    @property
    def overdue(self) -> bool:
        return self.days < 0


@dataclass(frozen=True)
class Reminder:
    """One reminder to send once: keyed by (kind, subject, occasion)."""

    kind: str
    subject: str
    occasion: str
    recipients: tuple[str, ...]
    text: str


def current_occasion(
    due: date,
    today: date,
    cal: WorkCalendar,
    before: Sequence[int],
    *,
    overdue_daily: bool = True,
) -> Occasion | None:
    """The occasion due ``today`` for a deadline whose last allowed day is ``due``.

    Before the deadline: the latest "n working days before" whose day has come (counted back
    from ``due`` over working days, so a deadline on a holiday is reminded on the last working
    days before it). After it: every working day, when ``overdue_daily``.
    """
    if today <= due:
        reached = [n for n in before if cal.add_working_days(due, -n) <= today]
        if not reached:
            return None
        n = min(reached)
        return Occasion(f"before{n}", cal.add_working_days(due, -n), _left(today, due, cal))
    if not overdue_daily or not cal.is_working_day(today):
        return None
    return Occasion(f"overdue:{today.isoformat()}", today, -cal.working_days_between(due, today))


def _left(today: date, due: date, cal: WorkCalendar) -> int:
    """Working days from today to the deadline, the deadline counted if it is one."""
    return cal.working_days_between(today, due)


def week_occasion(today: date) -> str:
    year, week, _ = today.isocalendar()
    return f"week:{year}-W{week:02d}"


@dataclass(frozen=True)
class ReportDeadline:
    """An Art. 43 deadline: the quarterly 统计表 or the annual self-inspection report."""

    kind: str  # statistics_table / self_inspection_report
    subject: str  # "2026Q4" / "2026"
    due: date
    label: str


def report_deadlines(
    today: date, history: ParamHistory, horizon_days: int = 40
) -> list[ReportDeadline]:
    """The Art. 43 deadlines from ``today`` to ``horizon_days`` ahead (a reminder is at most
    5 working days before, so 40 calendar days covers the longest holiday), each on the day
    set by the newest parameters in force on it (``inspection.deadlines``). A deadline no
    rules are in force on (one before the first rules took effect) does not exist."""
    out: list[ReportDeadline] = []
    for year in (today.year - 1, today.year):
        for quarter in (1, 2, 3, 4):
            try:
                params = statistics_table_params(history, year, quarter)
            except NoParamsInEffect:
                continue
            out.append(
                ReportDeadline(
                    "statistics_table",
                    f"{year}Q{quarter}",
                    statistics_table_due(year, quarter, params),
                    f"{year}年第{quarter}季度统计表",
                )
            )
        try:
            params = self_inspection_report_params(history, year + 1)
        except NoParamsInEffect:
            continue
        out.append(
            ReportDeadline(
                "self_inspection_report",
                str(year + 1),
                self_inspection_report_due(year + 1, params),
                f"{year + 1}年度自查报告",
            )
        )
    return sorted(
        (d for d in out if 0 <= (d.due - today).days <= horizon_days), key=lambda d: d.due
    )


CONSTRUCTION_WINDOW_DAYS = 60  # Art. 25(4): chiefs are told this long before the one-year mark


def one_year_mark(operation_started_on: date) -> date:
    """Art. 25(4): one year after going into production or use (29 February: the 28th)."""
    op = operation_started_on
    return op.replace(year=op.year + 1, day=28 if (op.month, op.day) == (2, 29) else op.day)


def construction_occasion(
    operation_started_on: date, today: date, window_days: int = CONSTRUCTION_WINDOW_DAYS
) -> str | None:
    """The occasion for an unchecked key project: within ``window_days`` of its one-year mark
    (told once per mark), else None."""
    mark = one_year_mark(operation_started_on)
    if 0 <= (mark - today).days <= window_days:
        return f"mark:{mark.isoformat()}"
    return None


def in_working_hours(
    local_day: date, local_time: time, cal: WorkCalendar, start: time, end: time
) -> bool:
    """Reminders go out on working days, from ``start`` and not after ``end`` (local time)."""
    return cal.is_working_day(local_day) and start <= local_time < end


def digest(lines_by_user: dict[str, list[str]]) -> dict[str, str]:
    """One message per person: a single reminder as it is, several as one numbered digest."""
    out: dict[str, str] = {}
    for user, lines in lines_by_user.items():
        if len(lines) == 1:
            out[user] = lines[0]
        else:
            body = "\n\n".join(f"{i}. {line}" for i, line in enumerate(lines, 1))
            out[user] = f"【待办提醒】您有{len(lines)}项待办：\n\n{body}"
    return out
