from datetime import date
from fractions import Fraction

import pytest

from inspection.params import (
    DEFAULT_HISTORY,
    RULES_ISSUED,
    NoParamsInEffect,
    ParamHistory,
    RuleParams,
)
from inspection.quotas import Tier


def test_art45_default_parameters_are_those_of_the_2024_rules() -> None:
    p = DEFAULT_HISTORY.at(date(2026, 1, 1))
    assert p.effective_from == RULES_ISSUED == date(2024, 7, 18)
    assert p.ratios() == {
        Tier.special: Fraction(1, 4),
        Tier.key: Fraction(1, 5),
        Tier.general: Fraction(1, 10),
    }
    assert (p.team_size, p.publication_working_days) == (2, 20)
    assert dict(p.extra_result_phrases) == {}


def test_art45_later_rules_prevail_from_their_effective_date() -> None:
    change = RuleParams(effective_from=date(2026, 7, 1), ratio_general=Fraction(3, 20))
    history = DEFAULT_HISTORY.with_entry(change)
    assert history.at(date(2026, 6, 30)).ratio(Tier.general) == Fraction(1, 10)
    assert history.at(date(2026, 7, 1)).ratio(Tier.general) == Fraction(3, 20)
    assert history.at(date(2030, 1, 1)) is change
    assert DEFAULT_HISTORY.at(date(2026, 7, 1)).ratio_general == Fraction(1, 10)


def test_art45_no_parameters_before_the_first_entry() -> None:
    with pytest.raises(NoParamsInEffect, match="2024-07-17"):
        DEFAULT_HISTORY.at(date(2024, 7, 17))
    with pytest.raises(NoParamsInEffect):
        ParamHistory([]).at(date(2026, 1, 1))


def test_art45_history_is_sorted_and_dates_unique() -> None:
    a = RuleParams(effective_from=date(2026, 1, 1))
    b = RuleParams(effective_from=date(2025, 1, 1))
    assert [p.effective_from for p in ParamHistory([a, b]).entries] == [
        b.effective_from,
        a.effective_from,
    ]
    with pytest.raises(ValueError):
        ParamHistory([a, RuleParams(effective_from=date(2026, 1, 1), team_size=3)])


def test_art45_ratios_are_exact_fractions() -> None:
    p = RuleParams(effective_from=date(2026, 1, 1), ratio_key=0.3, ratio_special="1/3")  # type: ignore[arg-type]
    assert p.ratio_key == Fraction(3, 10)
    assert p.ratio_special == Fraction(1, 3)
    with pytest.raises(ValueError):
        RuleParams(effective_from=date(2026, 1, 1), ratio_key=Fraction(6, 5))


def test_art38_extra_phrases_are_checked_and_read_only() -> None:
    p = RuleParams(
        effective_from=date(2026, 1, 1), extra_result_phrases={"suspended": "检查对象已停产"}
    )
    assert p.extra_result_phrases["suspended"] == "检查对象已停产"
    with pytest.raises(TypeError):
        p.extra_result_phrases["x"] = "y"  # type: ignore[index]
    with pytest.raises(ValueError):
        RuleParams(effective_from=date(2026, 1, 1), extra_result_phrases={"x": "不配合检查"})
    assert hash(p) == hash(RuleParams(effective_from=date(2026, 1, 1)))


def test_art45_the_table_rows_make_the_history_values_carry_over() -> None:
    from inspection.params import history_from_rows, seed_rows

    rows = [(k, v, RULES_ISSUED) for k, v in seed_rows()]
    rows.append(("team_size", "3", date(2027, 1, 1)))
    rows.append(("result.suspended", "检查对象已停产", date(2027, 1, 1)))
    history = history_from_rows(rows)
    assert history.at(date(2026, 12, 31)) == DEFAULT_HISTORY.at(date(2026, 12, 31))
    later = history.at(date(2027, 1, 1))
    assert (later.team_size, later.ratio_key) == (3, Fraction(1, 5))
    assert dict(later.extra_result_phrases) == {"suspended": "检查对象已停产"}
    # An incomplete set of rules before the first full date is not in force.
    early = history_from_rows([("team_size", "2", date(2020, 1, 1)), *rows])
    with pytest.raises(NoParamsInEffect):
        early.at(date(2021, 1, 1))


def test_art25_art38_values_are_parsed_and_the_seven_phrases_refused() -> None:
    from inspection.params import BadParam, parse_value

    assert [parse_value("ratio_key", v) for v in ("25%", "0.25", "1/4", "２５%")] == ["1/4"] * 4
    assert parse_value("publication_working_days", "15") == "15"
    for key, value in (
        ("ratio_key", "abc"),
        ("ratio_key", "101%"),
        ("team_size", "0"),
        ("result.no_problem", "没问题"),
        ("result.x", "不配合检查"),
        ("colour", "red"),
    ):
        with pytest.raises(BadParam):
            parse_value(key, value)
