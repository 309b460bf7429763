"""Quarterly minimum coverage per tier (Art. 24-25).

Ratios are exact ``Fraction`` values; the required count is rounded up, since "至少25%" of 7
targets is 2 targets, not 1.75.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from fractions import Fraction


class Tier(StrEnum):
    """Sub-directory of the target directory (Art. 12)."""

    special = "special"
    key = "key"
    general = "general"


TIER_LABELS: dict[Tier, str] = {
    Tier.special: "特殊",
    Tier.key: "重点",
    Tier.general: "一般",
}


def required_count(tier_size: int, ratio: Fraction | int) -> int:
    """ceil(ratio x tier_size), computed exactly (no float rounding)."""
    if tier_size < 0:
        raise ValueError(f"监管对象数量不能为负数：{tier_size}")
    r = Fraction(ratio)
    if not 0 <= r <= 1:
        raise ValueError(f"抽查比例应在0到100%之间，实为{r}")
    return -(-r.numerator * tier_size // r.denominator)


@dataclass(frozen=True)
class TierCoverage:
    tier: Tier
    size: int
    ratio: Fraction
    required: int
    done: int
    shortfall: int
    met: bool


@dataclass(frozen=True)
class QuarterCoverage:
    tiers: tuple[TierCoverage, ...]

    @property
    def met(self) -> bool:
        return all(t.met for t in self.tiers)

    def __getitem__(self, tier: Tier) -> TierCoverage:
        for t in self.tiers:
            if t.tier == tier:
                return t
        raise KeyError(tier)

    @classmethod
    def compute(
        cls,
        sizes: Mapping[Tier, int],
        done: Mapping[Tier, int],
        ratios: Mapping[Tier, Fraction],
    ) -> QuarterCoverage:
        """Coverage of each tier this quarter.

        ``sizes``: targets in each sub-directory; ``done``: distinct targets of that tier
        randomly inspected this quarter; ``ratios``: the minimum ratios in force
        (``RuleParams.ratios()``). A tier missing from a mapping counts as 0.
        """
        rows = []
        for tier in Tier:
            size = sizes.get(tier, 0)
            ratio = Fraction(ratios.get(tier, 0))
            required = required_count(size, ratio)
            n = done.get(tier, 0)
            if n < 0:
                raise ValueError(f"已抽查数量不能为负数：{n}")
            shortfall = max(required - n, 0)
            rows.append(TierCoverage(tier, size, ratio, required, n, shortfall, shortfall == 0))
        return cls(tuple(rows))


def quarter_coverage(
    sizes: Mapping[Tier, int], done: Mapping[Tier, int], ratios: Mapping[Tier, Fraction]
) -> QuarterCoverage:
    """Same as ``QuarterCoverage.compute``."""
    return QuarterCoverage.compute(sizes, done, ratios)


# --- a quarter's coverage from the directory and the checks (Art. 25) ---------------------


@dataclass(frozen=True)
class Change:
    """One recorded change of a directory field: when, and the value it replaced."""

    at: datetime
    before: object


def value_at(current: object, changes: Iterable[Change], when: datetime) -> object:
    """A field's value at ``when``: the value the first change at or after ``when`` replaced,
    or the current value when nothing changed since."""
    later = [c for c in changes if c.at >= when]
    return min(later, key=lambda c: c.at).before if later else current


@dataclass(frozen=True)
class DirectoryEntry:
    """A target as it stood at the quarter's start: its sub-directory and status (Art. 12-13)."""

    key: str
    tier: str
    status: str


def in_quarter_directory(entry: DirectoryEntry) -> bool:
    """A deregistered target is no longer in the directory it would be counted against."""
    return entry.status != "deregistered" and entry.tier in Tier.__members__


def coverage_of(
    directory: Iterable[DirectoryEntry],
    checked: Collection[str],
    ratios: Mapping[Tier, Fraction],
) -> QuarterCoverage:
    """Art. 25: distinct targets randomly checked this quarter (``checked``: their keys) over
    the targets of each sub-directory at the quarter's start."""
    sizes: dict[Tier, int] = {}
    done: dict[Tier, int] = {}
    for entry in directory:
        if not in_quarter_directory(entry):
            continue
        tier = Tier(entry.tier)
        sizes[tier] = sizes.get(tier, 0) + 1
        if entry.key in checked:
            done[tier] = done.get(tier, 0) + 1
    return QuarterCoverage.compute(sizes, done, ratios)


# --- pace: a tier falling behind its quarterly minimum (Art. 25) -------------------------------


class PaceOccasion(StrEnum):
    """``behind``: two thirds of the quarter gone, less than two thirds of the minimum reached;
    ``final``: ten working days (or fewer) left and the minimum not reached."""

    behind = "behind"
    final = "final"


PACE_SHARE = Fraction(2, 3)
FINAL_WORKING_DAYS = 10


def pace_occasion(
    first: date, last: date, today: date, final_from: date | None, tier: TierCoverage
) -> PaceOccasion | None:
    """Which warning a tier's coverage calls for today, if any. ``final_from``: the tenth working
    day before the quarter's last day (None when the calendar does not cover it)."""
    if tier.shortfall == 0 or not first <= today <= last:
        return None
    if final_from is not None and today >= final_from:
        return PaceOccasion.final
    elapsed = Fraction((today - first).days + 1, (last - first).days + 1)
    if elapsed >= PACE_SHARE and tier.done < PACE_SHARE * tier.required:
        return PaceOccasion.behind
    return None


def counts_to_draw(cov: QuarterCoverage, available: Mapping[Tier, int]) -> dict[Tier, int]:
    """Targets a new draw must yield per tier to close the gap: the shortfall, at most what the
    pool still holds once the once-a-year exclusions are taken out (``available``)."""
    out = {}
    for t in cov.tiers:
        n = min(t.shortfall, available.get(t.tier, 0))
        if n > 0:
            out[t.tier] = n
    return out


def pace_window(first: date, last: date, today: date, final_from: date | None) -> bool:
    """Whether any tier could call for a warning today (cheap: no figures needed)."""
    if not first <= today <= last:
        return False
    if final_from is not None and today >= final_from:
        return True
    return Fraction((today - first).days + 1, (last - first).days + 1) >= PACE_SHARE
