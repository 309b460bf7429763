import pytest

from inspection.results import (
    PHRASES,
    ResultCode,
    check_extra,
    needs_description,
    number,
    parse_result,
    phrase,
)

ART38 = [
    ("no_problem", "未发现问题"),
    ("ordered_to_rectify", "发现问题已责令整改"),
    ("case_filed", "发现违法行为已立案调查"),
    ("deregistered", "检查对象已注销"),
    ("transferred", "发现问题已移交有关部门"),
    ("refused", "不配合检查"),
    ("pending_followup", "发现问题待后续处理"),
]


def test_art38_seven_codes_in_the_order_and_wording_of_the_article() -> None:
    assert [(c.value, phrase(c)) for c in ResultCode] == ART38
    assert [number(c) for c in ResultCode] == [1, 2, 3, 4, 5, 6, 7]
    assert set(PHRASES) == set(ResultCode)


def test_art38_description_required_when_a_problem_was_found() -> None:
    assert [n for n, c in enumerate(ResultCode, start=1) if needs_description(c)] == [2, 3, 5, 7]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", ResultCode.no_problem),
        (" 3 ", ResultCode.case_filed),
        ("７", ResultCode.pending_followup),  # full-width digit
        ("不配合检查", ResultCode.refused),
        ("transferred", ResultCode.transferred),
        ("检查对象已注销\n", ResultCode.deregistered),
    ],
)
def test_art38_parse_result_accepts_number_phrase_or_code(text: str, expected: ResultCode) -> None:
    assert parse_result(text) == expected


@pytest.mark.parametrize("text", ["0", "8", "", "未发现", "No_Problem", "1 2"])
def test_art38_parse_result_rejects_anything_else_listing_the_choices(text: str) -> None:
    with pytest.raises(ValueError) as e:
        parse_result(text)
    message = str(e.value)
    assert "无法识别的检查结果" in message
    assert all(p in message for p in PHRASES.values())


def test_art38_region_may_add_phrases_returned_as_their_code() -> None:
    extra = {"suspended": "检查对象已停产"}
    assert parse_result("检查对象已停产", extra) == "suspended"
    assert parse_result("suspended", extra) == "suspended"
    assert parse_result("2", extra) is ResultCode.ordered_to_rectify
    with pytest.raises(ValueError, match="检查对象已停产"):
        parse_result("其他", extra)


def test_art38_region_cannot_redefine_the_seven() -> None:
    with pytest.raises(ValueError, match="冲突"):
        check_extra({"ok": "未发现问题"})
    with pytest.raises(ValueError, match="冲突"):
        check_extra({"refused": "拒绝检查"})
    with pytest.raises(ValueError, match="冲突"):
        parse_result("x", {"8x": "3"})
