"""The quarterly statistics table and the annual figures (Art. 14, 17, 25, 37, 39, 41, 43).

Pure: the figures of one unit for a period as plain data, the columns of the table in one
definition, and the roll-up of units into their level above. No published copy of the official
《生态环境"双随机、一公开"情况统计表》 layout could be found; the columns below follow the
issue's list and are kept in ``COLUMNS`` alone, so a bureau's layout is one edit away.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from fractions import Fraction
from typing import Literal

from inspection.origins import OUTSIDE_KINDS
from inspection.quotas import Tier
from inspection.results import PHRASES, ResultCode

TIERS = (Tier.special, Tier.key, Tier.general)
TIER_NAMES = {Tier.special: "特殊", Tier.key: "重点", Tier.general: "一般"}
PROBLEM_CODES = (
    ResultCode.ordered_to_rectify,
    ResultCode.case_filed,
    ResultCode.transferred,
    ResultCode.pending_followup,
)


def quarter_of(day: dt.date) -> tuple[int, int]:
    return day.year, (day.month - 1) // 3 + 1


def quarter_bounds(year: int, quarter: int) -> tuple[dt.date, dt.date]:
    """First day of the quarter and first day of the next (half-open)."""
    if not 1 <= quarter <= 4:
        raise ValueError(f"季度应为1至4：{quarter}")
    start = dt.date(year, 3 * quarter - 2, 1)
    end = dt.date(year + (quarter == 4), 1 if quarter == 4 else 3 * quarter + 1, 1)
    return start, end


@dataclass
class Figures:
    """One unit's figures for a period (counts; coverage is derived)."""

    targets: dict[Tier, int] = field(default_factory=lambda: dict.fromkeys(TIERS, 0))
    checked: dict[Tier, int] = field(default_factory=lambda: dict.fromkeys(TIERS, 0))
    by_result: dict[str, int] = field(default_factory=lambda: {c.value: 0 for c in ResultCode})
    cases_filed: int = 0
    handovers: int = 0  # to other authorities (result 5) and to the judiciary
    outside: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTSIDE_KINDS, 0))
    # Art. 37, by result and checking unit: published in the period by / after its due day, and
    # due by the period's end yet unpublished at its end.
    published_on_time: int = 0
    published_late: int = 0
    publication_outstanding: int = 0
    inspectors: int = 0
    draws_witnessed: int = 0
    draws_unwitnessed: int = 0
    draws_cancelled: int = 0

    @property
    def problems(self) -> int:
        return sum(self.by_result[c.value] for c in PROBLEM_CODES)

    @property
    def random_checks(self) -> int:
        return sum(self.by_result.values())

    def coverage(self, tier: Tier) -> Fraction | None:
        n = self.targets[tier]
        return Fraction(self.checked[tier], n) if n else None

    def add(self, other: Figures) -> None:
        """Roll ``other`` into this one (the level above, Art. 39, 41). Inspectors are added
        as counted per unit: a person who checked in two units counts in each."""
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if isinstance(mine, dict):
                for key, value in theirs.items():
                    mine[key] = mine.get(key, 0) + value
            else:
                setattr(self, f.name, mine + theirs)


def rolled_up(parts: Iterable[Figures]) -> Figures:
    total = Figures()
    for part in parts:
        total.add(part)
    return total


Kind = Literal["int", "percent", "text"]


Value = int | float | str | None


@dataclass(frozen=True)
class Column:
    header: str
    kind: Kind
    value: Callable[[Figures, Mapping[Tier, Fraction]], Value]  # (figures, minimums)


def _tier_columns(tier: Tier) -> list[Column]:
    name = TIER_NAMES[tier]
    return [
        Column(f"{name}监管对象数（季初）", "int", lambda f, m: f.targets[tier]),
        Column(f"{name}监管对象抽查数", "int", lambda f, m: f.checked[tier]),
        Column(
            f"{name}抽查比例",
            "percent",
            lambda f, m: float(c) if (c := f.coverage(tier)) is not None else None,
        ),
        Column(f"{name}最低比例", "percent", lambda f, m: float(m[tier])),
        Column(
            f"{name}是否达标",
            "text",
            lambda f, m: (
                "" if (c := f.coverage(tier)) is None else ("是" if c >= m[tier] else "否")
            ),
        ),
    ]


def _result_column(code: ResultCode) -> Column:
    return Column(f"结果：{PHRASES[code]}", "int", lambda f, m: f.by_result[code.value])


def _outside_column(kind: str, label: str) -> Column:
    return Column(f"双随机以外：{label}", "int", lambda f, m: f.outside[kind])


COLUMNS: tuple[Column, ...] = (
    *(c for tier in TIERS for c in _tier_columns(tier)),
    Column("双随机抽查次数", "int", lambda f, m: f.random_checks),
    *(_result_column(code) for code in ResultCode),
    Column("发现问题数", "int", lambda f, m: f.problems),
    Column("立案调查数", "int", lambda f, m: f.cases_filed),
    Column("移交移送数", "int", lambda f, m: f.handovers),
    *(_outside_column(kind, label) for kind, label in OUTSIDE_KINDS.items()),
    # Art. 37, 43: counted by result (a secret one is never due), for the checking unit that
    # must publish it: results made public in the quarter by their due day / after it (a
    # supplement 公示 too); results recorded by the quarter's end, due by then and not public
    # at its end.
    Column("按时公开结果数", "int", lambda f, m: f.published_on_time),
    Column("逾期公开结果数", "int", lambda f, m: f.published_late),
    Column("到期未公开结果数（季末）", "int", lambda f, m: f.publication_outstanding),
    Column("参加检查人数", "int", lambda f, m: f.inspectors),
    Column("见证抽取次数", "int", lambda f, m: f.draws_witnessed),
    Column("未见证抽取次数", "int", lambda f, m: f.draws_unwitnessed),
    Column("取消（作废）抽取次数", "int", lambda f, m: f.draws_cancelled),
)
