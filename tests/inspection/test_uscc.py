import pytest

from inspection.uscc import (
    CHARSET,
    WEIGHTS,
    UsccError,
    check_char,
    make_uscc,
    normalise_uscc,
    validate_uscc,
)

# Public codes, each checked against the algorithm before being listed here.
PUBLIC_VALID = [
    "91350100M000100Y43",  # widely quoted example code
    "91110000802100433B",  # 北京百度网讯科技有限公司
    "914403001922038216",  # 华为技术有限公司
    "91110108551385082Q",  # 小米科技有限责任公司
]


@pytest.mark.parametrize("code", PUBLIC_VALID)
def test_art11_public_codes_validate(code: str) -> None:
    assert validate_uscc(code) == code


def test_art11_check_char_worked_by_hand() -> None:
    # With M = 21 and Y = 30, the weighted sum is 1640 = 52 * 31 + 28, and 31 - 28 = 3.
    assert check_char("91350100M000100Y4") == "3"


def test_art11_check_value_31_maps_to_zero() -> None:
    # Find a prefix whose weighted sum is a multiple of 31: the check character must be "0".
    base = "9115010000000000"
    for c in CHARSET:
        first17 = base + c
        total = sum(CHARSET.index(x) * w for x, w in zip(first17, WEIGHTS, strict=True))
        if total % 31 == 0:
            assert check_char(first17) == "0"
            return
    pytest.fail("no prefix with a sum divisible by 31")


def test_art11_make_uscc_builds_valid_codes_for_every_authority_prefix() -> None:
    # N (农业农村) and Y (其他) and every other charset character are accepted in positions 1-2.
    for first in CHARSET:
        code = make_uscc(f"{first}{first}150102MA0000001")
        assert validate_uscc(code) == code


def test_art11_normalise_handles_full_width_lower_case_and_spaces() -> None:
    assert normalise_uscc(" ９１３５ 0100m000100y43\t") == "91350100M000100Y43"
    assert validate_uscc("９１３５０１００ｍ０００１００ｙ４３") == "91350100M000100Y43"


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("91350100M000100Y4", "长度应为18位"),
        ("91350100M000100Y433", "长度应为18位"),
        ("91350100M0001O0Y43", "含非法字符 O"),
        ("91350100I000100Y43", "含非法字符 I"),
        ("9135010SM000100Y43", "含非法字符 S"),
        ("913501A0M000100Y43", "行政区划代码"),
        ("91350100M000100Y44", "校验位应为 3"),
        ("11100000000013127T", "校验位应为 D"),  # a widely quoted example with a wrong check
    ],
)
def test_art11_invalid_codes_say_why(code: str, reason: str) -> None:
    with pytest.raises(UsccError) as e:
        validate_uscc(code)
    assert reason in e.value.reason
    assert isinstance(e.value, ValueError)


def test_art11_single_character_typos_are_caught() -> None:
    code = "914403001922038216"
    for i in range(17):
        for c in CHARSET:
            if c == code[i]:
                continue
            typo = code[:i] + c + code[i + 1 :]
            if not typo[2:8].isdigit():
                continue
            with pytest.raises(UsccError):
                validate_uscc(typo)
