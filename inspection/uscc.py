"""Unified social credit code (统一社会信用代码), GB 32100-2015 (Art. 11).

Layout of the 18 characters:

* 1: registration-authority code, 2: entity-type code (any character of the charset is
  accepted in both, so that new authorities such as N or Y need no code change);
* 3-8: administrative division code (GB/T 2260, digits);
* 9-17: organisation code (GB 11714; its own check character is not verified here, because
  codes issued to individual businesses do not always carry one);
* 18: check character over positions 1-17.
"""

from __future__ import annotations

import unicodedata

CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
LENGTH = 18

_VALUE = {c: i for i, c in enumerate(CHARSET)}


class UsccError(ValueError):
    """An invalid code; ``reason`` is the Chinese explanation shown to the user."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"统一社会信用代码「{code}」无效：{reason}")
        self.code = code
        self.reason = reason


def normalise_uscc(s: str) -> str:
    """NFKC (full-width to half-width), upper case, all whitespace removed."""
    return "".join(unicodedata.normalize("NFKC", s).upper().split())


def check_char(first17: str) -> str:
    """The check character for the first 17 characters (already normalised)."""
    if len(first17) != LENGTH - 1:
        raise UsccError(first17, f"前17位长度应为17位，实为{len(first17)}位")
    _check_charset(first17)
    total = sum(_VALUE[c] * w for c, w in zip(first17, WEIGHTS, strict=True))
    return CHARSET[(31 - total % 31) % 31]


def validate_uscc(s: str) -> str:
    """Return the normalised code, or raise ``UsccError`` saying what is wrong."""
    code = normalise_uscc(s)
    if len(code) != LENGTH:
        raise UsccError(code, f"长度应为18位，实为{len(code)}位")
    _check_charset(code)
    if not code[2:8].isdigit():
        raise UsccError(code, f"第3至8位应为行政区划代码（数字），实为 {code[2:8]}")
    expected = check_char(code[:17])
    if code[17] != expected:
        raise UsccError(code, f"校验位应为 {expected}，实为 {code[17]}")
    return code


def make_uscc(first17_without_check: str) -> str:
    """Complete 17 characters with their check character (synthetic data, tests)."""
    first17 = normalise_uscc(first17_without_check)
    return first17 + check_char(first17)


def _check_charset(code: str) -> None:
    for c in code:
        if c not in _VALUE:
            # I, O, Z, S and V are left out of the standard to avoid confusion with digits.
            raise UsccError(code, f"含非法字符 {c}")


# The credit code of every example: the templates' example rows and the chat's usage lines.
EXAMPLE_USCC = make_uscc("91150102MA0N00001")
