"""Spreadsheet cells to values: text cleaning, and the converters the row models use.

Each converter takes a cell as read (str, number, date, bool or None) and returns the value to
store, or raises ValueError with a Chinese reason that quotes the cell; the reason reaches the
user in the rejected-rows report. No database here: the converters that need the import's
context (organisations, targets, today) are in `storage.directory.rows`.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any

from inspection.uscc import UsccError, validate_uscc
from storage.spreadsheet import EXCEL_ERRORS, Cell, cell_text, is_blank

_CJK = "\u2e80-\u9fff\uf900-\ufaff\U00020000-\U0003ffff"
# Spaces next to CJK characters are padding ("张  三" aligned in a personnel list), not content.
_SPACE_NEAR_CJK = re.compile(f"(?<=[{_CJK}]) | (?=[{_CJK}])")
_INVISIBLE_CHARS = "\u200b\u200c\u200d\u2060\ufeff\u00ad"
_INVISIBLE = dict.fromkeys(map(ord, _INVISIBLE_CHARS), None)
_HAS_INVISIBLE = re.compile(f"[{_INVISIBLE_CHARS}]")
_LIST_SEPARATORS = re.compile(r"[、,;/|\n]+")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(value: Cell) -> str:
    """NFKC (full-width to half-width), invisible characters dropped, whitespace collapsed."""
    if value is None:
        return ""
    return _clean_str(value if type(value) is str else cell_text(value))


@functools.lru_cache(maxsize=16384)
def _clean_str(text: str) -> str:
    # Cached: most cells repeat (一般, 在营, 废气、废水, county codes), and this runs on every
    # cell of a 100,000-row file.
    if not text.isprintable():  # true of tabs and newlines, and of control characters
        text = _CONTROL.sub("", text)
    if text.isascii():  # the common case: nothing but whitespace to tidy
        return " ".join(text.split())
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    if _HAS_INVISIBLE.search(text):
        text = text.translate(_INVISIBLE)
    text = " ".join(text.split())
    return _SPACE_NEAR_CJK.sub("", text) if " " in text else text


def fail(reason: str) -> ValueError:
    return ValueError(reason)


def raw_text(value: Any) -> str:
    if value is None:
        return ""
    text = _clean_str(value if type(value) is str else cell_text(value))  # clean_text, inlined
    if text[:1] == "#" and text in EXCEL_ERRORS:
        raise fail(f"单元格为Excel错误值「{text}」")
    return text


def _bounded(text: str, max_len: int, required: bool, empty: Any) -> Any:
    """``text``, or ``empty`` for a blank optional cell; too long or missing is refused."""
    if not text:
        if required:
            raise fail("必填项为空")
        return empty
    if len(text) > max_len:
        raise fail(f"超过{max_len}个字符（实为{len(text)}个）")
    return text


def plain_text(max_len: int, *, required: bool = False) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        return _bounded(raw_text(value), max_len, required, "")

    return check


def code_text(max_len: int, *, required: bool = False) -> Callable[[Any], Any]:
    """Identifiers (certificate and item numbers): no whitespace at all, upper case."""

    def check(value: Any) -> Any:
        if isinstance(value, float) and abs(value) >= 1e15:
            raise fail("数字格式导致精度丢失，请将该列设为文本格式后重新填写")
        return _bounded("".join(raw_text(value).split()).upper(), max_len, required, None)

    return check


def uscc_code(value: Any) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        if abs(value) >= 1e15:
            raise fail("数字格式导致精度丢失，请将该列设为文本格式后重新填写")
        value = cell_text(value)
    if is_blank(value):
        return None
    try:
        return validate_uscc(raw_text(value))
    except UsccError as exc:
        raise fail(f"「{exc.code}」{exc.reason}") from None


_PERMIT = re.compile(r"^[0-9A-Z][0-9A-Z-]{5,63}$")


def permit_number(value: Any) -> str | None:
    text = code_text(64)(value)
    if text is None:
        return None
    if not _PERMIT.match(text):
        raise fail(f"「{text}」格式不正确：应为6至64位的数字、字母或连字符")
    return str(text)


def choice(
    choices: Mapping[str, str], what: str, default: str | None = None, shown: str = ""
) -> Callable[..., Any]:
    """Chinese labels (and our English codes) to codes; ``default`` None means required."""
    lookup = {clean_text(k).lower(): v for k, v in choices.items()}
    shown = shown or "/".join(dict.fromkeys(k for k in choices if not k.isascii()))

    def check(value: Any) -> Any:
        text = raw_text(value)
        if not text:
            if default is None:
                raise fail("必填项为空")
            return default
        try:
            return lookup[text.lower()]
        except KeyError:
            raise fail(f"「{text}」不是有效的{what}，应为 {shown}") from None

    return check


_YES = {"是", "y", "yes", "true", "1", "√", "✓", "有"}
_NO = {"否", "n", "no", "false", "0", "×", "✗", "无"}


def yes_no(default: bool) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        if isinstance(value, bool):
            return value
        text = raw_text(value).lower()
        if not text:
            return default
        if text in _YES:
            return True
        if text in _NO:
            return False
        raise fail(f"「{text}」应填 是 或 否")

    return check


def text_list(max_item: int) -> Callable[[Any], tuple[str, ...]]:
    # A tuple: cached results must not be shared mutable lists (pydantic makes the list).
    def check(value: Any) -> tuple[str, ...]:
        items = [clean_text(p) for p in _LIST_SEPARATORS.split(raw_text(value))]
        out = tuple(dict.fromkeys(p for p in items if p))
        for item in out:
            if len(item) > max_item:
                raise fail(f"「{item}」超过{max_item}个字符")
        return out

    return check


def int_range(low: int, high: int) -> Callable[[Any], int | None]:
    def check(value: Any) -> int | None:
        if isinstance(value, bool):
            raise fail("应为整数")
        if isinstance(value, int | float):
            number = float(value)
        else:
            text = raw_text(value).removesuffix("年")
            if not text:
                return None
            try:
                number = float(text)
            except ValueError:
                raise fail(f"「{text}」不是整数") from None
        if not number.is_integer() or not low <= number <= high:
            raise fail(f"应为{low}至{high}之间的整数，实为 {cell_text(value)}")
        return int(number)

    return check


_DATE_TEXT = re.compile(
    r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?"
    r"(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$"
)
_DATE_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_SERIAL = re.compile(r"^\d{1,5}(?:\.\d+)?$")
EXCEL_EPOCH = dt.date(1899, 12, 30)  # serial 1 is 1900-01-01 (with Lotus's 1900-02-29 bug)


def parse_date(value: Cell, *, today: dt.date, allow_future: bool = False) -> dt.date | None:
    """Text (2015-06-01, 2015/6/1, 2015年6月1日, 20150601), Excel serials, date cells."""
    if is_blank(value):
        return None
    shown = cell_text(value).strip()
    if isinstance(value, dt.datetime):
        day = value.date()
    elif isinstance(value, dt.date):
        day = value
    elif isinstance(value, bool | dt.time | dt.timedelta):
        raise fail(f"「{shown}」不是日期")
    elif isinstance(value, int | float):
        day = _from_number(float(value), shown)
    else:
        text = clean_text(value)
        match = _DATE_TEXT.match(text) or _DATE_COMPACT.match(text)
        if match:
            day = _make_date(int(match[1]), int(match[2]), int(match[3]), shown)
        elif _SERIAL.match(text):
            day = _from_number(float(text), shown)
        else:
            raise fail(f"无法识别的日期「{shown}」，请写作 2015-06-01")
    if day.year < 1900:
        raise fail(f"日期「{shown}」早于1900年")
    if not allow_future and day > today:
        raise fail(f"日期「{shown}」晚于今天（{today.isoformat()}）")
    return day


@functools.lru_cache(maxsize=8192, typed=True)
def parse_date_cached(value: Cell, today: dt.date, allow_future: bool) -> dt.date | None:
    return parse_date(value, today=today, allow_future=allow_future)


def _from_number(number: float, shown: str) -> dt.date:
    if number.is_integer() and 19000101 <= number <= 99991231:
        digits = str(int(number))  # 20150601 typed as a number
        return _make_date(int(digits[:4]), int(digits[4:6]), int(digits[6:]), shown)
    if not 1 <= number < 2958466:
        raise fail(f"「{shown}」不是有效的日期序号")
    return EXCEL_EPOCH + dt.timedelta(days=int(number))


def _make_date(year: int, month: int, day: int, shown: str) -> dt.date:
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise fail(f"日期「{shown}」不存在") from None


_PHONE = re.compile(r"^\+?[0-9][0-9-]{5,19}$")


def phone_number(value: Any) -> str:
    text = "".join(raw_text(value).split()).replace("(", "").replace(")", "-")
    if text and not _PHONE.match(text):
        raise fail(f"「{text}」不是有效的电话号码")
    return text


_USERID = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


def wecom_userid(value: Any) -> str | None:
    text = raw_text(value)
    if not text:
        return None
    if not _USERID.match(text):
        raise fail(f"「{text}」不是有效的企业微信账号（字母、数字、_ . @ -，最多64位）")
    return text
