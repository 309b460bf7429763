"""Rule parameters with an effective date (Art. 45: later national or regional rules prevail).

Ratios, team size, the publication deadline and extra result phrases are data, not constants:
a rule change is a new ``RuleParams`` entry, and past tasks keep the values in force at the time.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction
from types import MappingProxyType

from inspection.quotas import Tier
from inspection.results import check_extra

RULES_ISSUED = date(2024, 7, 18)


@dataclass(frozen=True)
class RuleParams:
    effective_from: date
    ratio_special: Fraction = Fraction(1, 4)  # Art. 25(1)
    ratio_key: Fraction = Fraction(1, 5)  # Art. 25(2)
    ratio_general: Fraction = Fraction(1, 10)  # Art. 25(3)
    team_size: int = 2  # Art. 28
    publication_working_days: int = 20  # Art. 37
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


class NoParamsInEffect(LookupError):
    def __init__(self, d: date, first: date | None) -> None:
        since = f"，最早的规则自{first.isoformat()}起施行" if first else ""
        super().__init__(f"{d.isoformat()}没有施行中的抽查规则参数{since}")
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
