"""Rule parameters with an effective date (Art. 45: later national or regional rules prevail).

Ratios, team size, the publication deadline, the Art. 43 filing dates and extra result phrases
are data, not constants: a rule change is a new ``RuleParams`` entry, and past tasks and periods
keep the values in force at the time.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction
from types import MappingProxyType

from inspection.quotas import Tier
from inspection.results import MAX_CODE, MAX_PHRASE, PHRASES, check_extra

RULES_ISSUED = date(2024, 7, 18)


@dataclass(frozen=True)
class RuleParams:
    effective_from: date
    ratio_special: Fraction = Fraction(1, 4)  # Art. 25(1)
    ratio_key: Fraction = Fraction(1, 5)  # Art. 25(2)
    ratio_general: Fraction = Fraction(1, 10)  # Art. 25(3)
    team_size: int = 2  # Art. 28
    publication_working_days: int = 20  # Art. 37
    # Art. 43: the quarterly 统计表 by this day of the following quarter's first month ...
    statistics_table_day: int = 5
    # ... and the annual self-inspection report by this (month, day) of its year.
    self_inspection_report_by: tuple[int, int] = (11, 5)
    # Region-added result phrases {code: phrase} on top of the seven of Art. 38.
    extra_result_phrases: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        for name in ("ratio_special", "ratio_key", "ratio_general"):
            value = getattr(self, name)
            # str() first so that a float such as 0.1 becomes exactly 1/10.
            ratio = Fraction(str(value)) if isinstance(value, float) else Fraction(value)
            if not 0 <= ratio <= 1:
                raise ValueError(f"抽查比例应在0到100%之间：{name}={ratio}")
            object.__setattr__(self, name, ratio)
        if self.team_size < 1:
            raise ValueError(f"检查组人数至少为1：{self.team_size}")
        if self.publication_working_days < 0:
            raise ValueError(f"公开期限不能为负数：{self.publication_working_days}")
        if not 1 <= self.statistics_table_day <= MAX_DAY:
            raise ValueError(f"统计表报送日应在1至{MAX_DAY}日之间：{self.statistics_table_day}")
        month, day = self.self_inspection_report_by
        if not _month_day_exists(month, day):
            raise ValueError(f"自查报告报送日期不存在：{month}月{day}日")
        check_extra(self.extra_result_phrases)
        # Read-only, so that a shared default history cannot be altered by accident.
        object.__setattr__(
            self, "extra_result_phrases", MappingProxyType(dict(self.extra_result_phrases))
        )

    def ratio(self, tier: Tier) -> Fraction:
        return self.ratios()[tier]

    def ratios(self) -> dict[Tier, Fraction]:
        return {
            Tier.special: self.ratio_special,
            Tier.key: self.ratio_key,
            Tier.general: self.ratio_general,
        }


# The 统计表's day must exist in every month; the report's date in every year (no 29 February).
MAX_DAY = 28


def _month_day_exists(month: int, day: int) -> bool:
    try:
        date(2001, month, day)  # not a leap year
    except ValueError:
        return False
    return True


class NoParamsInEffect(LookupError):
    """No rules are in force on ``date`` (``None``: no rules are configured at all)."""

    def __init__(self, d: date | None, first: date | None) -> None:
        if d is None:
            super().__init__("没有配置抽查规则参数（第45条）")
            self.english = "no rule parameters are configured"
        else:
            since = f"，最早的规则自{first.isoformat()}起施行" if first else ""
            super().__init__(f"{d.isoformat()}没有施行中的抽查规则参数{since}（第45条）")
            self.english = f"no rule parameters are in force on {d.isoformat()}" + (
                f" (the earliest take effect on {first.isoformat()})" if first else ""
            )
        self.date = d


class ParamHistory:
    """Rule parameters over time, sorted by ``effective_from``."""

    def __init__(self, entries: Iterable[RuleParams]) -> None:
        ordered = tuple(sorted(entries, key=lambda p: p.effective_from))
        dates = [p.effective_from for p in ordered]
        if len(set(dates)) != len(dates):
            raise ValueError("同一生效日期有多组规则参数")
        self.entries: tuple[RuleParams, ...] = ordered
        self._dates = dates

    def at(self, d: date) -> RuleParams:
        """The parameters in force on ``d``: the latest entry with ``effective_from <= d``."""
        i = bisect.bisect_right(self._dates, d)
        if i == 0:
            raise NoParamsInEffect(d, self._dates[0] if self._dates else None)
        return self.entries[i - 1]

    def for_deadline(self, due_under: Callable[[RuleParams], date]) -> RuleParams:
        """The parameters that set a deadline (Art. 43, 45): the newest rules in force on the
        deadline they set. Each entry is tried newest first with ``due_under`` (the deadline
        those rules would set); the first whose ``effective_from`` is on or before that day
        wins, so a change in force by the deadline moves it, whenever the period began. A
        deadline no rules are in force on (Q2 2024 under the rules of 2024-07-18: the 5th of
        July) does not exist: ``NoParamsInEffect``."""
        for params in reversed(self.entries):
            if params.effective_from <= due_under(params):
                return params
        if not self.entries:
            raise NoParamsInEffect(None, None)
        first = self.entries[0]
        raise NoParamsInEffect(due_under(first), first.effective_from)

    def with_entry(self, params: RuleParams) -> ParamHistory:
        """A new history with ``params`` added (replacing an entry of the same date)."""
        kept = [p for p in self.entries if p.effective_from != params.effective_from]
        return ParamHistory([*kept, params])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ParamHistory) and self.entries == other.entries

    def __hash__(self) -> int:
        return hash(self.entries)

    def __repr__(self) -> str:
        return f"ParamHistory({self.entries!r})"


DEFAULT_PARAMS = RuleParams(effective_from=RULES_ISSUED)
DEFAULT_HISTORY = ParamHistory([DEFAULT_PARAMS])

# --- the parameter table's rows (storage.params keeps them, one row per key and date) ----------

RATIO_KEYS = ("ratio_special", "ratio_key", "ratio_general")  # Art. 25 quarterly minimums
COUNT_KEYS = ("team_size", "publication_working_days")  # Art. 28, Art. 37
DAY_KEY = "statistics_table_day"  # Art. 43: 1..28
MONTH_DAY_KEY = "self_inspection_report_by"  # Art. 43: "MM-DD"
REQUIRED_KEYS = (*RATIO_KEYS, *COUNT_KEYS, DAY_KEY, MONTH_DAY_KEY)
_MONTH_DAY = re.compile(r"(\d{1,2})\s*(?:-|/|\.|月)\s*(\d{1,2})\s*日?")
RESULT_PREFIX = "result."  # result.<code> = phrase (Art. 38)
FIXED_RESULT_KEYS = frozenset(RESULT_PREFIX + code.value for code in PHRASES)


class BadParam(ValueError):
    """A parameter row that cannot be accepted; ``english`` is the command line's wording."""

    def __init__(self, chinese: str, english: str) -> None:
        super().__init__(chinese)
        self.english = english


def parse_value(key: str, text: str) -> str:
    """The canonical stored text of a parameter value, or ``BadParam``.

    Ratios accept ``25%``, ``0.25`` or ``1/4`` and are stored as exact fractions ("1/4");
    counts are whole numbers; the 统计表's day a day of the month (``5`` or ``5日``); the
    self-inspection report's date a month and day (``11-05`` or ``11月5日``, stored ``11-05``);
    a result phrase is stored exactly as typed (stripped).
    """
    word = unicodedata.normalize("NFKC", text).strip()
    if key in RATIO_KEYS:
        try:
            ratio = Fraction(word[:-1]) / 100 if word.endswith("%") else Fraction(word)
        except (ValueError, ZeroDivisionError):
            raise BadParam(f"比例「{text}」无法识别", f"{key}: {text!r} is not a ratio") from None
        if not 0 <= ratio <= 1:
            raise BadParam(f"比例应在0到100%之间：{text}", f"{key}: {text!r} is outside 0..100%")
        return str(ratio)
    if key in COUNT_KEYS:
        if not word.isdigit() or (key == "team_size" and int(word) < 1):
            raise BadParam(f"{key}应为正整数：{text}", f"{key}: {text!r} is not a positive number")
        return str(int(word))
    if key == DAY_KEY:
        day = word.removesuffix("日").strip()
        if not day.isdigit() or not 1 <= int(day) <= MAX_DAY:
            raise BadParam(
                f"统计表报送日应为1至{MAX_DAY}日：{text}",
                f"{key}: {text!r} is not a day of the month from 1 to {MAX_DAY}",
            )
        return str(int(day))
    if key == MONTH_DAY_KEY:
        m = _MONTH_DAY.fullmatch(word)
        if m is None or not _month_day_exists(int(m[1]), int(m[2])):
            raise BadParam(
                f"自查报告报送日期应写成月-日，如11-05：{text}",
                f"{key}: {text!r} is not a month and day (MM-DD; no 29 February)",
            )
        return f"{int(m[1]):02d}-{int(m[2]):02d}"
    if key.startswith(RESULT_PREFIX) and len(key) > len(RESULT_PREFIX):
        if key in FIXED_RESULT_KEYS:
            raise BadParam(
                "第38条的七种检查结果表述不可更改", f"{key} is one of the seven fixed phrases"
            )
        phrase = text.strip()
        code = key[len(RESULT_PREFIX) :]
        if len(code) > MAX_CODE or len(phrase) > MAX_PHRASE:
            raise BadParam(
                f"自定义检查结果的代码最长{MAX_CODE}个字、表述最长{MAX_PHRASE}个字"
                f"（实为{len(code)}、{len(phrase)}个字）",
                f"{key}: the code may have {MAX_CODE} characters and the phrase {MAX_PHRASE} "
                f"({len(code)} and {len(phrase)} given)",
            )
        try:
            check_extra({code: phrase})
        except ValueError as exc:
            raise BadParam(str(exc), f"{key}: {phrase!r} clashes with the seven phrases") from None
        return phrase
    known = ", ".join((*REQUIRED_KEYS, RESULT_PREFIX + "<code>"))
    raise BadParam(f"没有名为「{key}」的参数", f"unknown parameter {key!r}; known: {known}")


def history_from_rows(rows: Iterable[tuple[str, str, date]]) -> ParamHistory:
    """The history the table describes: on each effective date, the values set on that date
    on top of those in force the day before. ``rows`` are (key, value, effective_from)."""
    by_date: dict[date, dict[str, str]] = {}
    for key, value, since in rows:
        by_date.setdefault(since, {})[key] = value
    entries: list[RuleParams] = []
    state: dict[str, str] = {}
    for since in sorted(by_date):
        state = {**state, **by_date[since]}
        if not all(k in state for k in REQUIRED_KEYS):
            continue  # not a complete set of rules yet: nothing is in force
        extra = {
            k[len(RESULT_PREFIX) :]: v
            for k, v in state.items()
            if k.startswith(RESULT_PREFIX) and k not in FIXED_RESULT_KEYS
        }
        entries.append(
            RuleParams(
                effective_from=since,
                ratio_special=Fraction(state["ratio_special"]),
                ratio_key=Fraction(state["ratio_key"]),
                ratio_general=Fraction(state["ratio_general"]),
                team_size=int(state["team_size"]),
                publication_working_days=int(state["publication_working_days"]),
                statistics_table_day=int(state[DAY_KEY]),
                self_inspection_report_by=_month_day(state[MONTH_DAY_KEY]),
                extra_result_phrases=extra,
            )
        )
    return ParamHistory(entries)


def _month_day(stored: str) -> tuple[int, int]:
    month, _, day = stored.partition("-")
    return int(month), int(day)


def stored_value(params: RuleParams, key: str) -> str:
    """A required parameter's value as the table stores it."""
    if key == MONTH_DAY_KEY:
        month, day = params.self_inspection_report_by
        return f"{month:02d}-{day:02d}"
    return str(getattr(params, key))


def seed_rows() -> list[tuple[str, str]]:
    """The values of the 2024-07-18 rules, as (key, value) rows: what the migrations seed."""
    rows = [(k, stored_value(DEFAULT_PARAMS, k)) for k in REQUIRED_KEYS]
    rows += [(RESULT_PREFIX + code.value, text) for code, text in PHRASES.items()]
    return rows
