"""A task's dates against today and the holiday calendar (Art. 20, 22, 37).

Pure: today and the covered years are given. A plan is annual (Art. 20): its year, and a task's,
is this year, or the next one planned ahead, or last year's still being recorded. A task whose
check period is already over can no longer be checked as planned, so it is refused; a check
period in a year whose State Council holiday schedule is not loaded is accepted with a warning,
because Art. 37's 20 working days cannot be counted there until the year is configured.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

from inspection.taskspec import SpecError
from inspection.workdays import WorkCalendar

YEARS_BACK = 1  # last year's plan may still be recorded
YEARS_AHEAD = 1  # next year's plan is made in this year's last months


def check_plan_year(year: int, today: dt.date) -> None:
    """Art. 20: an annual plan is for a year near today."""
    if not today.year - YEARS_BACK <= year <= today.year + YEARS_AHEAD:
        raise SpecError(
            f"计划年度{year}年不在{today.year - YEARS_BACK}年至{today.year + YEARS_AHEAD}年之间"
            "（年度抽查计划，第20条）。",
            f"plan year {year} is outside {today.year - YEARS_BACK}..{today.year + YEARS_AHEAD}",
        )


def check_task_dates(
    check_start: dt.date, check_end: dt.date, draw_on: dt.date | None, today: dt.date
) -> None:
    """Art. 22: the check period ends after it starts (``TaskSpec`` already says so), is not
    wholly in the past, and the task's year (of its draw date, or its check start) is near."""
    if check_end < today:
        raise SpecError(
            f"检查期{check_start}至{check_end}已经结束（今天是{today}），请改为今后的日期。",
            f"check period {check_start}..{check_end} is wholly in the past (today {today})",
        )
    year = (draw_on or check_start).year
    try:
        check_plan_year(year, today)
    except SpecError:
        what = "抽取日期" if draw_on else "检查开始日期"
        raise SpecError(
            f"{what}{draw_on or check_start}的年度{year}年不在"
            f"{today.year - YEARS_BACK}年至{today.year + YEARS_AHEAD}年之间（第20条）。",
            f"task year {year} is outside {today.year - YEARS_BACK}..{today.year + YEARS_AHEAD}",
        ) from None
    if check_end.year > today.year + YEARS_AHEAD + 1:
        raise SpecError(
            f"检查期结束日期{check_end}过远，请写明本年度或下一年度的日期。",
            f"check end {check_end} is too far ahead",
        )


def uncovered_years(
    check_start: dt.date, check_end: dt.date, covered: Collection[int]
) -> list[int]:
    """The years of the check period whose holiday schedule is not loaded."""
    return [y for y in range(check_start.year, check_end.year + 1) if y not in covered]


def calendar_warning(years: list[int]) -> tuple[str, str] | None:
    """(Chinese, English) words for ``uncovered_years``; None when every year is covered."""
    if not years:
        return None
    listed = "、".join(f"{y}年" for y in years)
    return (
        f"提示：检查期涉及{listed}，但{listed}的节假日安排尚未载入，公开期限（第37条，"
        "按工作日计算）暂无法计算。请在配置文件 [calendar] 中补充该年的节假日和调休工作日。",
        f"warning: the holiday calendar lacks {', '.join(map(str, years))} "
        "(add it under [calendar] in the settings)",
    )


def covered_years(
    holidays: Collection[dt.date] = (), makeup_workdays: Collection[dt.date] = ()
) -> frozenset[int]:
    """The years the packaged schedule knows, plus any year the settings' [calendar] names."""
    return WorkCalendar.from_chinese_calendar(holidays, makeup_workdays).covered_years
