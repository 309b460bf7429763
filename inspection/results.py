"""Result codes of an inspection (Art. 38).

The seven phrases are fixed and never change meaning; the region may add more ("等"), which
arrive here as ``extra`` mappings {code: phrase} from configuration.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from enum import StrEnum


class ResultCode(StrEnum):
    """The seven result codes of Art. 38, in the order of the article."""

    no_problem = "no_problem"
    ordered_to_rectify = "ordered_to_rectify"
    case_filed = "case_filed"
    deregistered = "deregistered"
    transferred = "transferred"
    refused = "refused"
    pending_followup = "pending_followup"


PHRASES: dict[ResultCode, str] = {
    ResultCode.no_problem: "未发现问题",
    ResultCode.ordered_to_rectify: "发现问题已责令整改",
    ResultCode.case_filed: "发现违法行为已立案调查",
    ResultCode.deregistered: "检查对象已注销",
    ResultCode.transferred: "发现问题已移交有关部门",
    ResultCode.refused: "不配合检查",
    ResultCode.pending_followup: "发现问题待后续处理",
}

_ORDER: tuple[ResultCode, ...] = tuple(ResultCode)

# A problem was found: the record must say what it was.
_NEEDS_DESCRIPTION = frozenset(
    {
        ResultCode.ordered_to_rectify,
        ResultCode.case_filed,
        ResultCode.transferred,
        ResultCode.pending_followup,
    }
)


def phrase(code: ResultCode) -> str:
    """The exact Chinese wording published for ``code``."""
    return PHRASES[code]


def number(code: ResultCode) -> int:
    """Position of ``code`` in Art. 38, 1..7 (what users type in chat)."""
    return _ORDER.index(code) + 1


def needs_description(code: ResultCode) -> bool:
    """True when a problem was found (codes 2, 3, 5, 7) and its description is required."""
    return code in _NEEDS_DESCRIPTION


MAX_CODE, MAX_PHRASE = 40, 100  # InspectionResult.code and .phrase


def check_extra(extra: Mapping[str, str]) -> None:
    """Reject region-added phrases that would redefine or shadow one of the seven (Art. 38)."""
    fixed_words = {c.value for c in ResultCode} | set(PHRASES.values())
    fixed_words |= {str(i) for i in range(1, len(_ORDER) + 1)}
    seen: set[str] = set()
    for code, text in extra.items():
        code_n = _normalise(code)
        text_n = _normalise(text)
        if not code_n or not text_n:
            raise ValueError("自定义检查结果的代码和表述都不能为空")
        for what, word, limit in (("代码", code, MAX_CODE), ("表述", text, MAX_PHRASE)):
            if len(word) > limit:  # the result's columns: refused, never cut
                raise ValueError(f"自定义检查结果的{what}最长{limit}个字，实为{len(word)}个字")
        for word in (code_n, text_n):
            if word in fixed_words:
                raise ValueError(f"自定义检查结果「{word}」与法定的七种表述冲突")
            if word in seen:
                raise ValueError(f"自定义检查结果「{word}」重复")
            seen.add(word)


def parse_result(text: str, extra: Mapping[str, str] | None = None) -> ResultCode | str:
    """Read a result as a user typed it.

    Accepts the number 1..7 (full-width digits too, via NFKC), the exact phrase or the code
    name. A region-added phrase or its code returns the code string from ``extra``.
    Raises ``ValueError`` with a Chinese message listing the choices otherwise.
    """
    word = _normalise(text)
    for i, code in enumerate(_ORDER, start=1):
        if word in (str(i), code.value, PHRASES[code]):
            return code
    if extra:
        check_extra(extra)
        for code_str, text_str in extra.items():
            if word in (_normalise(code_str), _normalise(text_str)):
                return code_str
    raise ValueError(_choices_message(text, extra))


def _normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip()


def _choices_message(text: str, extra: Mapping[str, str] | None) -> str:
    lines = [f"{i}. {PHRASES[code]}" for i, code in enumerate(_ORDER, start=1)]
    lines += [f"· {t}" for t in (extra or {}).values()]
    return f"无法识别的检查结果「{text.strip()}」，请回复序号或以下表述之一：\n" + "\n".join(lines)
