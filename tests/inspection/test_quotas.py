from fractions import Fraction

import pytest

from inspection.quotas import TIER_LABELS, QuarterCoverage, Tier, quarter_coverage, required_count

ART25 = {Tier.special: Fraction(1, 4), Tier.key: Fraction(1, 5), Tier.general: Fraction(1, 10)}


def test_art25_required_count_rounds_up_exactly() -> None:
    assert required_count(7, Fraction(1, 4)) == 2
    assert required_count(5, Fraction(1, 5)) == 1
    assert required_count(0, Fraction(1, 10)) == 0
    assert required_count(30, Fraction("0.1")) == 3  # exact: a float 0.1 * 30 would round up to 4
    assert required_count(31, Fraction("0.1")) == 4
    assert required_count(8, Fraction(1, 4)) == 2
    assert required_count(3, 1) == 3


@pytest.mark.parametrize(
    ("size", "ratio"), [(-1, Fraction(1, 10)), (5, Fraction(3, 2)), (5, Fraction(-1, 10))]
)
def test_art25_required_count_rejects_nonsense(size: int, ratio: Fraction) -> None:
    with pytest.raises(ValueError):
        required_count(size, ratio)


def test_art25_quarter_coverage_per_tier() -> None:
    cov = quarter_coverage(
        sizes={Tier.special: 7, Tier.key: 5, Tier.general: 95},
        done={Tier.special: 2, Tier.key: 0, Tier.general: 12},
        ratios=ART25,
    )
    assert [(t.tier, t.required, t.done, t.shortfall, t.met) for t in cov.tiers] == [
        (Tier.special, 2, 2, 0, True),
        (Tier.key, 1, 0, 1, False),
        (Tier.general, 10, 12, 0, True),
    ]
    assert not cov.met
    assert cov[Tier.key].shortfall == 1
    assert cov == QuarterCoverage.compute(
        {Tier.special: 7, Tier.key: 5, Tier.general: 95},
        {Tier.special: 2, Tier.general: 12},
        ART25,
    )


def test_art25_empty_directory_is_met() -> None:
    assert quarter_coverage({}, {}, ART25).met


def test_art12_tier_labels() -> None:
    assert [TIER_LABELS[t] for t in Tier] == ["特殊", "重点", "一般"]
