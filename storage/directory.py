"""一单两库: the check-item list, the target directory and the inspector directory (Art. 8-18).

Bureaus keep these lists in Excel. `import_rows` takes such a spreadsheet as it is, validates
every row (pydantic models, Chinese reasons), adds new records, updates only the fields that
changed, and records every change of a target's tier, tags or status and of an inspector's
standing in `DirectoryHistory` (Art. 13, 16). Re-importing the same file changes nothing.

Import semantics:

* a column missing from the file leaves that field untouched; an empty cell in a column that
  is there clears the field (the spreadsheet is the directory);
* a target's key is its permit/registration number, else its USCC; an inspector's is the
  certificate number; a check item's is (organisation, item number);
* department-defined tags are columns headed ``标识：<名称>`` (Art. 12);
* records missing from the file are left alone (a partial file is not a deletion list).

Performance (bench/bench_import.py): existing records are read once as key -> (id,
fingerprint of the compared fields); rows are validated and written in batches with
executemany, never one SELECT per row; only rows whose fingerprint differs are read back.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import re
import unicodedata
import zoneinfo
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, cast

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from sqlalchemy import (
    JSON,
    Date,
    Table,
    Text,
    bindparam,
    insert,
    or_,
    select,
    text,
    type_coerce,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from inspection.quotas import TIER_LABELS, Tier
from inspection.uscc import UsccError, make_uscc, normalise_uscc, validate_uscc
from storage import audit
from storage.models import (
    CheckItem,
    Department,
    DirectoryHistory,
    Inspector,
    Organisation,
    Target,
)
from storage.spreadsheet import (
    EXCEL_ERRORS,
    Cell,
    SheetSpec,
    SheetTable,
    SpreadsheetError,
    XlsxWriter,
    cell_text,
    is_blank,
    normalise_header,
    open_table,
    write_csv,
    write_xlsx,
    xlsx_bytes,
)

CHINA = zoneinfo.ZoneInfo("Asia/Shanghai")
BATCH = 2000
LOAD_PAGE = 10000
SQLITE_IMPORT_CACHE_KB = 65536
TAG_PREFIX = "标识"
TAG_FIELD = "tag:"
MAX_TAG_NAME = 30  # DirectoryHistory.field is 40 characters: "tags." + name


class Kind(StrEnum):
    """The three lists, named as on the command line."""

    targets = "targets"
    inspectors = "inspectors"
    items = "items"


KIND_LABELS = {Kind.targets: "检查对象", Kind.inspectors: "检查人员", Kind.items: "抽查事项"}
HISTORY_KIND = {Kind.targets: "target", Kind.inspectors: "inspector", Kind.items: "item"}


# --- text and values ------------------------------------------------------------------------

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


def _fail(reason: str) -> ValueError:
    return ValueError(reason)


def _raw_text(value: Any) -> str:
    if value is None:
        return ""
    text = _clean_str(value if type(value) is str else cell_text(value))  # clean_text, inlined
    if text[:1] == "#" and text in EXCEL_ERRORS:
        raise _fail(f"单元格为Excel错误值「{text}」")
    return text


def _bounded(text: str, max_len: int, required: bool, empty: Any) -> Any:
    """``text``, or ``empty`` for a blank optional cell; too long or missing is refused."""
    if not text:
        if required:
            raise _fail("必填项为空")
        return empty
    if len(text) > max_len:
        raise _fail(f"超过{max_len}个字符（实为{len(text)}个）")
    return text


def _text(max_len: int, *, required: bool = False) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        return _bounded(_raw_text(value), max_len, required, "")

    return check


def _code_text(max_len: int, *, required: bool = False) -> Callable[[Any], Any]:
    """Identifiers (certificate and item numbers): no whitespace at all, upper case."""

    def check(value: Any) -> Any:
        if isinstance(value, float) and abs(value) >= 1e15:
            raise _fail("数字格式导致精度丢失，请将该列设为文本格式后重新填写")
        return _bounded("".join(_raw_text(value).split()).upper(), max_len, required, None)

    return check


def _uscc(value: Any) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        if abs(value) >= 1e15:
            raise _fail("数字格式导致精度丢失，请将该列设为文本格式后重新填写")
        value = cell_text(value)
    if is_blank(value):
        return None
    try:
        return validate_uscc(_raw_text(value))
    except UsccError as exc:
        raise _fail(f"「{exc.code}」{exc.reason}") from None


_PERMIT = re.compile(r"^[0-9A-Z][0-9A-Z-]{5,63}$")


def _permit(value: Any) -> str | None:
    text = _code_text(64)(value)
    if text is None:
        return None
    if not _PERMIT.match(text):
        raise _fail(f"「{text}」格式不正确：应为6至64位的数字、字母或连字符")
    return str(text)


def _enum(
    choices: Mapping[str, str], what: str, default: str | None = None, shown: str = ""
) -> Callable[..., Any]:
    """Chinese labels (and our English codes) to codes; ``default`` None means required."""
    lookup = {clean_text(k).lower(): v for k, v in choices.items()}
    shown = shown or "/".join(dict.fromkeys(k for k in choices if not k.isascii()))

    def check(value: Any) -> Any:
        text = _raw_text(value)
        if not text:
            if default is None:
                raise _fail("必填项为空")
            return default
        try:
            return lookup[text.lower()]
        except KeyError:
            raise _fail(f"「{text}」不是有效的{what}，应为 {shown}") from None

    return check


_YES = {"是", "y", "yes", "true", "1", "√", "✓", "有"}
_NO = {"否", "n", "no", "false", "0", "×", "✗", "无"}


def _yes_no(default: bool) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        if isinstance(value, bool):
            return value
        text = _raw_text(value).lower()
        if not text:
            return default
        if text in _YES:
            return True
        if text in _NO:
            return False
        raise _fail(f"「{text}」应填 是 或 否")

    return check


def _list(max_item: int) -> Callable[[Any], tuple[str, ...]]:
    # A tuple: cached results must not be shared mutable lists (pydantic makes the list).
    def check(value: Any) -> tuple[str, ...]:
        items = [clean_text(p) for p in _LIST_SEPARATORS.split(_raw_text(value))]
        out = tuple(dict.fromkeys(p for p in items if p))
        for item in out:
            if len(item) > max_item:
                raise _fail(f"「{item}」超过{max_item}个字符")
        return out

    return check


def _int_range(low: int, high: int) -> Callable[[Any], int | None]:
    def check(value: Any) -> int | None:
        if isinstance(value, bool):
            raise _fail("应为整数")
        if isinstance(value, int | float):
            number = float(value)
        else:
            text = _raw_text(value).removesuffix("年")
            if not text:
                return None
            try:
                number = float(text)
            except ValueError:
                raise _fail(f"「{text}」不是整数") from None
        if not number.is_integer() or not low <= number <= high:
            raise _fail(f"应为{low}至{high}之间的整数，实为 {cell_text(value)}")
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
        raise _fail(f"「{shown}」不是日期")
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
            raise _fail(f"无法识别的日期「{shown}」，请写作 2015-06-01")
    if day.year < 1900:
        raise _fail(f"日期「{shown}」早于1900年")
    if not allow_future and day > today:
        raise _fail(f"日期「{shown}」晚于今天（{today.isoformat()}）")
    return day


@functools.lru_cache(maxsize=8192, typed=True)
def _parse_date_cached(value: Cell, today: dt.date, allow_future: bool) -> dt.date | None:
    return parse_date(value, today=today, allow_future=allow_future)


def _from_number(number: float, shown: str) -> dt.date:
    if number.is_integer() and 19000101 <= number <= 99991231:
        digits = str(int(number))  # 20150601 typed as a number
        return _make_date(int(digits[:4]), int(digits[4:6]), int(digits[6:]), shown)
    if not 1 <= number < 2958466:
        raise _fail(f"「{shown}」不是有效的日期序号")
    return EXCEL_EPOCH + dt.timedelta(days=int(number))


def _make_date(year: int, month: int, day: int, shown: str) -> dt.date:
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise _fail(f"日期「{shown}」不存在") from None


def _date(*, allow_future: bool = False) -> Callable[[Any, _Context], dt.date | None]:
    def check(value: Any, context: _Context) -> dt.date | None:
        return _parse_date_cached(value, context.today, allow_future)

    return check


_PHONE = re.compile(r"^\+?[0-9][0-9-]{5,19}$")


def _phone(value: Any) -> str:
    text = "".join(_raw_text(value).split()).replace("(", "").replace(")", "-")
    if text and not _PHONE.match(text):
        raise _fail(f"「{text}」不是有效的电话号码")
    return text


_USERID = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


def _userid(value: Any) -> str | None:
    text = _raw_text(value)
    if not text:
        return None
    if not _USERID.match(text):
        raise _fail(f"「{text}」不是有效的企业微信账号（字母、数字、_ . @ -，最多64位）")
    return text


def _org(value: Any, context: _Context) -> str:
    text = _raw_text(value)
    if not text:
        raise _fail("必填项为空")
    code = context.orgs.resolve(text)
    if code is None:
        raise _fail(f"「{text}」不是已知的机构（请填写行政区划代码，如 150102，或机构名称）")
    return code


_CONFLICT_NAMES = _list(200)


def _conflicts(value: Any, context: _Context) -> list[str]:
    names = _CONFLICT_NAMES(value)
    if not names:
        return []
    targets = context.targets
    keys: set[str] = set()
    for name in names:
        found = targets.resolve(name) if targets is not None else []
        if not found:
            raise _fail(
                f"回避对象「{name}」不在检查对象名录库中（可填单位名称、信用代码或许可证编号）"
            )
        keys.update(found)
    return sorted(keys)


# --- enumerations in Chinese ----------------------------------------------------------------

TIER_CHOICES = {
    **{label: tier.value for tier, label in TIER_LABELS.items()},
    **{f"{label}监管对象": tier.value for tier, label in TIER_LABELS.items()},
    **{tier.value: tier.value for tier in Tier},
}
STATUS_LABELS = {"operating": "在营", "suspended": "停产", "deregistered": "注销"}
STATUS_CHOICES = {
    "在营": "operating",
    "存续": "operating",
    "营业": "operating",
    "开业": "operating",
    "停产": "suspended",
    "停业": "suspended",
    "歇业": "suspended",
    "注销": "deregistered",
    "已注销": "deregistered",
    **{code: code for code in STATUS_LABELS},
}
GRADE_CHOICES = {g: g for g in ("A", "B", "B-", "C", "D")} | {
    f"{g}级": g for g in ("A", "B", "B-", "C", "D")
}
APPROVAL_LABELS = {"ministry": "生态环境部", "region": "自治区", "city": "盟市", "county": "旗县区"}
APPROVAL_CHOICES = {
    "生态环境部": "ministry",
    "部级": "ministry",
    "国家": "ministry",
    "自治区": "region",
    "自治区级": "region",
    "省级": "region",
    "盟市": "city",
    "盟市级": "city",
    "市级": "city",
    "旗县区": "county",
    "旗县区级": "county",
    "县级": "county",
    **{code: code for code in APPROVAL_LABELS},
}
CERT_LABELS = {"enforcement": "执法证", "work": "工作证"}
CERT_CHOICES = {
    "执法证": "enforcement",
    "行政执法证": "enforcement",
    "执法证件": "enforcement",
    "工作证": "work",
    "工作证件": "work",
    **{code: code for code in CERT_LABELS},
}
GENDER_CHOICES = {"男": "男", "女": "女", "m": "男", "f": "女", "male": "男", "female": "女"}
CHECK_TYPE_LABELS = {"directed": "定向", "undirected": "不定向"}
CHECK_TYPE_CHOICES = {
    "定向": "directed",
    "不定向": "undirected",
    **{c: c for c in CHECK_TYPE_LABELS},
}
METHOD_LABELS = {"onsite": "现场", "offsite": "非现场"}
METHOD_CHOICES = {
    "现场": "onsite",
    "现场检查": "onsite",
    "非现场": "offsite",
    "非现场检查": "offsite",
    **{c: c for c in METHOD_LABELS},
}


# --- row models (pydantic at the edge) ------------------------------------------------------


@dataclass
class OrgIndex:
    """Organisation codes and the names a bureau might write for them, loaded once."""

    names: dict[str, str]  # code -> name
    aliases: dict[str, str]  # normalised alias -> code

    @classmethod
    def build(cls, orgs: Iterable[tuple[str, str, str | None]]) -> OrgIndex:
        rows = list(orgs)
        names = {code: name for code, name, _ in rows}
        aliases: dict[str, str] = {}
        for code, name, parent in rows:
            short = re.sub(r"(分局|生态环境局|生态环境厅)$", "", name)
            forms = {code, name, short}
            if parent is not None and parent in names:
                parent_short = re.sub(r"生态环境局$", "", names[parent])
                forms |= {parent_short + short, parent_short + name}
            for form in sorted(forms):
                aliases.setdefault(clean_text(form), code)
        return cls(names, aliases)

    def resolve(self, text: str) -> str | None:
        text = clean_text(text)
        if text in self.aliases:
            return self.aliases[text]
        # "150102 新城区分局" as our exports and many bureau sheets write it
        match = re.match(r"^(\d{6})(?!\d)", text)
        if match and match[1] in self.names:
            return match[1]
        return None


@dataclass
class TargetIndex:
    """Target keys by key, USCC and name: resolves an inspector's declared conflicts."""

    by_key: set[str]
    by_other: dict[str, list[str]]

    def resolve(self, text: str) -> list[str]:
        if text in self.by_key:
            return [text]
        found = self.by_other.get(text) or self.by_other.get(normalise_uscc(text))
        return list(found or [])


@dataclass
class _Context:
    today: dt.date
    orgs: OrgIndex
    targets: TargetIndex | None = None


def _cell(convert: Callable[[Any], Any]) -> Any:
    """How a field is read from a spreadsheet cell: a converter raising ValueError (Chinese).

    Converters are pure, and most columns repeat a few values (一般, 在营, 废气、废水), so their
    results are cached: about 1.5 s saved on 100,000 rows. ``typed``: 1, 1.0 and True differ.
    (Measured: pydantic-core calls one validator per field as fast as a bare Python loop.)
    """
    return BeforeValidator(functools.lru_cache(maxsize=4096, typed=True)(convert))


def _in_context(convert: Callable[[Any, _Context], Any]) -> Any:
    """A converter that needs the import's context (today, the organisations, the targets)."""

    def with_context(value: Any, info: ValidationInfo) -> Any:
        context = info.context
        assert isinstance(context, _Context), "rows are validated with a _Context"
        return convert(value, context)

    return BeforeValidator(with_context)


class _Row(BaseModel):
    """A spreadsheet row; a bad cell is a ValidationError at its field with a Chinese reason."""

    model_config = ConfigDict(extra="forbid")


def _not_before(value: dt.date | None, start: dt.date | None, what: str) -> dt.date | None:
    if value is not None and start is not None and value < start:
        raise _fail(what.format(end=value.isoformat(), start=start.isoformat()))
    return value


_GRADE = _enum(GRADE_CHOICES, "绩效分级", "", "A/B/B-/C/D")


def _grade(value: Any) -> str | None:
    return _GRADE(value) or None


class TargetRow(_Row):
    """One row of the target directory (Art. 11-13)."""

    name: Annotated[str, _cell(_text(200, required=True))]
    uscc: Annotated[str | None, _cell(_uscc)] = None
    permit_no: Annotated[str | None, _cell(_permit)] = None
    legal_rep: Annotated[str, _cell(_text(50))] = ""
    entity_type: Annotated[str, _cell(_text(50))] = ""
    registration_authority: Annotated[str, _cell(_text(100))] = ""
    established_on: Annotated[dt.date | None, _in_context(_date())] = None
    org_code: Annotated[str, _in_context(_org)]
    tier: Annotated[str, _cell(_enum(TIER_CHOICES, "监管类别"))]
    industry: Annotated[str, _cell(_text(100))] = ""
    pollutant_types: Annotated[list[str], _cell(_list(30))] = []
    scale: Annotated[str, _cell(_text(20))] = ""
    production_cycle: Annotated[str, _cell(_text(50))] = ""
    supervision_type: Annotated[str, _cell(_text(50))] = ""
    performance_grade: Annotated[str | None, _cell(_grade)] = None
    on_positive_list: Annotated[bool, _cell(_yes_no(False))] = False
    construction_status: Annotated[str, _cell(_text(30))] = ""
    approval_level: Annotated[str, _cell(_enum(APPROVAL_CHOICES, "审批级别", ""))] = ""
    construction_started_on: Annotated[dt.date | None, _in_context(_date())] = None
    operation_started_on: Annotated[dt.date | None, _in_context(_date())] = None
    status: Annotated[str, _cell(_enum(STATUS_CHOICES, "经营状态", "operating"))] = "operating"
    address: Annotated[str, _cell(_text(300))] = ""

    @field_validator("operation_started_on", mode="after")
    @classmethod
    def _operation_after_construction(cls, value: Any, info: ValidationInfo) -> Any:
        started = info.data.get("construction_started_on")
        return _not_before(value, started, "投产日期 {end} 早于开工日期 {start}")


class InspectorRow(_Row):
    """One row of the inspector directory (Art. 15-18)."""

    name: Annotated[str, _cell(_text(50, required=True))]
    gender: Annotated[str, _cell(_enum(GENDER_CHOICES, "性别", ""))] = ""
    unit: Annotated[str, _cell(_text(100))] = ""
    org_code: Annotated[str, _in_context(_org)]
    dept_code: Annotated[str, _cell(_text(100))] = ""  # a department name or code, resolved later
    certificate_no: Annotated[str, _cell(_code_text(64, required=True))]
    certificate_kind: Annotated[str, _cell(_enum(CERT_CHOICES, "证件类型", "enforcement"))] = (
        "enforcement"
    )
    certificate_issued_on: Annotated[dt.date | None, _in_context(_date())] = None
    position: Annotated[str, _cell(_text(50))] = ""
    phone: Annotated[str, _cell(_phone)] = ""
    userid: Annotated[str | None, _cell(_userid)] = None
    auxiliary: Annotated[bool, _cell(_yes_no(False))] = False
    years_of_service: Annotated[int | None, _cell(_int_range(0, 60))] = None
    expertise: Annotated[list[str], _cell(_list(50))] = []
    leave_from: Annotated[dt.date | None, _in_context(_date(allow_future=True))] = None
    leave_until: Annotated[dt.date | None, _in_context(_date(allow_future=True))] = None
    conflicts: Annotated[list[str], _in_context(_conflicts)] = []
    active: Annotated[bool, _cell(_yes_no(True))] = True

    @field_validator("leave_until", mode="after")
    @classmethod
    def _leave_ends_after_it_starts(cls, value: Any, info: ValidationInfo) -> Any:
        start = info.data.get("leave_from")
        return _not_before(value, start, "请假结束 {end} 早于请假开始 {start}")


class ItemRow(_Row):
    """One row of the check-item list (Art. 8-10)."""

    code: Annotated[str, _cell(_code_text(40, required=True))]
    name: Annotated[str, _cell(_text(200, required=True))]
    target_scope: Annotated[str, _cell(_text(2000))] = ""
    check_type: Annotated[str, _cell(_enum(CHECK_TYPE_CHOICES, "检查类型"))]
    method: Annotated[str, _cell(_enum(METHOD_CHOICES, "检查方式"))]
    legal_basis: Annotated[str, _cell(_text(4000))] = ""
    responsible_dept: Annotated[str, _cell(_text(100))] = ""
    org_code: Annotated[str, _in_context(_org)]
    active: Annotated[bool, _cell(_yes_no(True))] = True


# --- the columns of each list -----------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    header: str
    field: str
    required: bool = False
    aliases: tuple[str, ...] = ()
    hint: str = ""


def _c(header: str, field: str, hint: str = "", *aliases: str, required: bool = False) -> Column:
    return Column(header, field, required, aliases, hint)


TARGET_COLUMNS = (
    _c("单位名称", "name", "", "企业名称", "排污单位名称", "检查对象名称", "名称", required=True),
    _c("统一社会信用代码", "uscc", "18位；与排污许可证编号至少填一项", "社会信用代码", "信用代码"),
    _c(
        "排污许可证编号",
        "permit_no",
        "排污许可证或排污登记编号；一个单位多个许可证时每个一行",
        "许可证编号",
        "排污许可证号",
        "登记编号",
        "排污登记编号",
        "许可证/登记编号",
    ),
    _c("法定代表人", "legal_rep", "", "法人代表", "法人"),
    _c("主体类型", "entity_type", "如 有限责任公司", "企业类型", "单位类型", "市场主体类型"),
    _c("登记机关", "registration_authority"),
    _c("成立日期", "established_on", "如 2015-06-01", "注册日期"),
    _c(
        "所在旗县区",
        "org_code",
        "行政区划代码（如 150102）或名称（如 新城区分局）",
        "旗县区",
        "所属旗县区",
        "行政区划",
        "行政区划代码",
        "属地",
        required=True,
    ),
    _c("监管类别", "tier", "特殊/重点/一般", "监管对象类别", "名录类别", required=True),
    _c("行业", "industry", "", "行业类别", "所属行业"),
    _c("污染物类别", "pollutant_types", "多个用、分隔，如 废气、废水", "污染物种类"),
    _c("规模", "scale", "如 大型/中型/小型/微型", "企业规模"),
    _c("生产周期", "production_cycle", "如 全年/季节性"),
    _c("监管类型", "supervision_type"),
    _c("绩效分级", "performance_grade", "A/B/B-/C/D", "重污染天气绩效分级"),
    _c("正面清单", "on_positive_list", "是/否", "监督执法正面清单", "是否纳入正面清单"),
    _c("建设项目状态", "construction_status", "如 在建/已投产"),
    _c("审批级别", "approval_level", "生态环境部/自治区/盟市/旗县区", "环评审批级别"),
    _c("开工日期", "construction_started_on"),
    _c("投产日期", "operation_started_on"),
    _c("经营状态", "status", "在营/停产/注销，空白为在营", "状态"),
    _c("地址", "address", "", "注册地址", "生产经营地址", "详细地址"),
)

INSPECTOR_COLUMNS = (
    _c("姓名", "name", required=True),
    _c("性别", "gender", "男/女"),
    _c("单位", "unit", "如 呼和浩特市生态环境综合行政执法支队", "工作单位"),
    _c(
        "所属机构代码",
        "org_code",
        "行政区划代码（如 150100）或机构名称",
        "所属机构",
        required=True,
    ),
    _c("科室", "dept_code", "科室名称；尚无的科室会自动建立", "部门", "所在科室"),
    _c(
        "执法证号/工作证号",
        "certificate_no",
        "每人一行，以证号区分",
        "执法证号",
        "工作证号",
        "证件号码",
        "执法证件号",
        "证号",
        required=True,
    ),
    _c("证件类型", "certificate_kind", "执法证/工作证，空白为执法证"),
    _c("发证日期", "certificate_issued_on"),
    _c("职务", "position"),
    _c("联系电话", "phone", "", "电话", "手机", "手机号"),
    _c("企业微信账号", "userid", "企业微信 UserID", "企业微信ID", "userid", "企业微信userid"),
    _c("辅助人员", "auxiliary", "是/否（专家、监测机构等辅助检查人员填 是）", "是否辅助人员"),
    _c("工作年限", "years_of_service", "整数"),
    _c("专长", "expertise", "多个用、分隔", "专业特长"),
    _c("请假开始", "leave_from", "可填将来日期"),
    _c("请假结束", "leave_until", "可填将来日期"),
    _c("回避对象", "conflicts", "单位名称、信用代码或许可证编号，多个用、分隔"),
    _c("在岗", "active", "是/否，空白为是", "是否在岗"),
)

ITEM_COLUMNS = (
    _c("事项编号", "code", "", "编号", required=True),
    _c("抽查事项", "name", "", "事项名称", "抽查事项名称", required=True),
    _c("检查对象范围", "target_scope", "", "抽查对象", "检查对象"),
    _c("检查类型", "check_type", "定向/不定向", required=True),
    _c("检查方式", "method", "现场/非现场", required=True),
    _c("检查依据", "legal_basis", "", "法律依据", "抽查依据"),
    _c("责任科室", "responsible_dept", "", "责任部门", "实施主体"),
    _c("所属机构代码", "org_code", "行政区划代码或机构名称", "所属机构", required=True),
    _c("启用", "active", "是/否，空白为是", "是否启用"),
)


@dataclass(frozen=True)
class Spec:
    kind: Kind
    columns: tuple[Column, ...]
    model: type[_Row]
    table: Any  # the ORM class
    tracked: frozenset[str]  # fields whose changes go to DirectoryHistory
    tags: bool  # accepts 标识：<名称> columns

    @property
    def label(self) -> str:
        return KIND_LABELS[self.kind]

    @property
    def header_map(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for column in self.columns:
            for name in (column.header, *column.aliases):
                out.setdefault(normalise_header(name), column.field)
        return out

    def header_of(self, field_name: str) -> str:
        if field_name.startswith(TAG_FIELD):
            return f"{TAG_PREFIX}：{field_name[len(TAG_FIELD) :]}"
        for column in self.columns:
            if column.field == field_name:
                return column.header
        return field_name


# Changes to these fields are kept in DirectoryHistory: tier, tags and status (Art. 12-13),
# an inspector's standing (Art. 16-18). "tags" stands for each department-defined tag.
TARGET_TRACKED = frozenset(
    [
        "key",
        "tier",
        "status",
        "org_code",
        "industry",
        "pollutant_types",
        "scale",
        "production_cycle",
        "supervision_type",
        "performance_grade",
        "on_positive_list",
        "construction_status",
        "approval_level",
        "construction_started_on",
        "operation_started_on",
        "tags",
    ]
)
INSPECTOR_TRACKED = frozenset(
    [
        "active",
        "auxiliary",
        "certificate_kind",
        "org_code",
        "dept_code",
        "leave_from",
        "leave_until",
        "conflicts",
        "tags",
    ]
)
SPECS = {
    Kind.targets: Spec(Kind.targets, TARGET_COLUMNS, TargetRow, Target, TARGET_TRACKED, True),
    Kind.inspectors: Spec(
        Kind.inspectors, INSPECTOR_COLUMNS, InspectorRow, Inspector, INSPECTOR_TRACKED, True
    ),
    Kind.items: Spec(
        Kind.items,
        ITEM_COLUMNS,
        ItemRow,
        CheckItem,
        frozenset({"active", "check_type", "method"}),
        False,
    ),
}


# --- the report -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Rejection:
    row: int
    column: str
    reason: str
    value: str = ""


@dataclass
class ImportReport:
    kind: Kind
    file: str
    strict: bool = False
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    unknown_headers: list[str] = field(default_factory=list)
    departments_created: list[str] = field(default_factory=list)
    _rejected_rows: set[int] = field(default_factory=set, repr=False)

    @property
    def rejected(self) -> int:
        """Rows refused (a row may have several rejections, one per bad column)."""
        return len(self._rejected_rows)

    @property
    def committed(self) -> bool:
        """False when strict mode refused the whole file."""
        return not (self.strict and self.rejections)

    def reject(self, row: int, column: str, reason: str, value: str = "") -> None:
        self.rejections.append(Rejection(row, column, reason, value))
        self._rejected_rows.add(row)

    def to_text(self, limit: int = 50) -> str:
        """English, for the CLI (reasons stay in Chinese: they quote the file)."""
        lines = [
            f"Import of {self.kind.value} from {self.file}: {self.added} added, "
            f"{self.updated} updated, {self.unchanged} unchanged, {self.rejected} rejected."
        ]
        if not self.committed:
            lines.append("Strict mode: some rows were rejected, so nothing was imported.")
        if self.departments_created:
            shown = ", ".join(self.departments_created[:limit])
            more = len(self.departments_created) - limit
            lines.append(
                f"Departments created: {shown}" + (f" and {more} more" if more > 0 else "")
            )
        if self.unknown_headers:
            lines.append("Columns ignored: " + ", ".join(self.unknown_headers))
        for r in self.rejections[:limit]:
            shown = f" [{r.value}]" if r.value else ""
            lines.append(f"  row {r.row}, {r.column}: {r.reason}{shown}")
        if len(self.rejections) > limit:
            lines.append(f"  ... and {len(self.rejections) - limit} more")
        return "\n".join(lines)

    def summary_zh(self, limit: int = 5) -> str:
        """Chinese, for chat: counts, the first few reasons; the rest is in the file."""
        label = KIND_LABELS[self.kind]
        if not self.committed:
            head = (
                f"{label}导入未执行（严格模式）：有 {self.rejected} 行不合格，本次未导入任何数据。"
            )
        else:
            head = (
                f"{label}导入完成：新增 {self.added} 条，更新 {self.updated} 条，"
                f"未变 {self.unchanged} 条，退回 {self.rejected} 行。"
            )
        lines = [head]
        if self.departments_created:
            created = self.departments_created
            more = f"等 {len(created)} 个" if len(created) > limit else ""
            lines.append("新建科室：" + "、".join(created[:limit]) + more)
        if self.unknown_headers:
            lines.append("未识别的列（已忽略）：" + "、".join(self.unknown_headers))
        for r in self.rejections[:limit]:
            lines.append(f"第{r.row}行「{r.column}」：{r.reason}")
        if len(self.rejections) > limit:
            lines.append(f"……共 {len(self.rejections)} 处问题，详见附件。")
        return "\n".join(lines)

    def rejections_xlsx(self) -> bytes:
        rows = ((r.row, r.column, r.reason, r.value) for r in self.rejections)
        return xlsx_bytes(
            [SheetSpec("退回明细", ("行号", "列", "原因", "单元格内容"), rows, (8, 20, 60, 30))]
        )


class StrictImportError(Exception):
    """Strict mode and some row was bad: the caller's transaction must roll back."""

    def __init__(self, report: ImportReport) -> None:
        super().__init__(report.to_text(limit=10))
        self.report = report


# --- import ---------------------------------------------------------------------------------


def _canon(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return tuple(_canon(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _canon(v)) for k, v in value.items()))
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _json_object(value: Any) -> dict[str, Any]:
    """A JSON column selected as text (most targets have no department tags: "{}")."""
    if isinstance(value, dict):
        return value
    return json.loads(value) if value and value != "{}" else {}


def _table(model: Any) -> Table:
    """The Core table of a model: executemany without the ORM's per-object work."""
    return cast(Table, model.__table__)


async def load_orgs(session: AsyncSession) -> OrgIndex:
    rows = await session.execute(
        select(Organisation.code, Organisation.name, Organisation.parent_code)
    )
    return OrgIndex.build((code, name, parent) for code, name, parent in rows)


async def load_target_index(session: AsyncSession) -> TargetIndex:
    by_key: set[str] = set()
    by_other: dict[str, list[str]] = {}
    rows = await session.stream(
        select(Target.key, Target.uscc, Target.name).execution_options(yield_per=5000)
    )
    async for partition in rows.partitions():
        for key, uscc, name in partition:
            by_key.add(key)
            for other in (uscc, name):
                if other:
                    by_other.setdefault(other, []).append(key)
    return TargetIndex(by_key, by_other)


@dataclass
class _Pending:
    row: int
    key: str
    values: dict[str, Any]  # compared fields, file values
    tag_values: dict[str, str | None]
    record: dict[str, Any]  # full record, for an insert
    existing_id: int | None = None


class _Importer:
    def __init__(
        self,
        session: AsyncSession,
        spec: Spec,
        *,
        actor: str,
        now: dt.datetime,
        today: dt.date,
        strict: bool,
        report: ImportReport,
    ) -> None:
        self.session = session
        self.spec = spec
        self.actor = actor
        self.now = now
        self.today = today
        self.strict = strict
        self.report = report
        self.existing: dict[str, tuple[int, int]] = {}  # key -> (id, fingerprint)
        self.as_text: list[int] = []  # positions in `compared` of JSON and date fields
        self.seen: dict[str, int] = {}  # key -> first row in this file
        self.claimed: set[int] = set()  # existing ids already matched by a row of this file
        self.userids: dict[str, str] = {}  # inspectors: userid -> certificate number
        self.permit_usccs: set[str] = set()  # targets: USCCs of records keyed by a permit
        self.departments: dict[tuple[str, str], str] = {}  # (org, name or code) -> code
        self.new_departments: list[dict[str, Any]] = []
        self.pending: list[_Pending] = []
        self.compared: list[str] = []
        self.tag_names: list[str] = []
        self.file_headers: dict[str, str] = {}

    # -- setup --

    def _db_key(self, row: Any) -> str:
        if self.spec.kind is Kind.items:
            return f"{row.org_code}/{row.code}"
        if self.spec.kind is Kind.inspectors:
            return str(row.certificate_no)
        return str(row.key)

    def _fingerprint(self, row: Mapping[Any, Any], tags: Mapping[str, Any] | None) -> int:
        """A hash of the compared fields, the same for a stored record and an unchanged row.

        JSON and date fields are compared as text: the stored JSON text (selected without
        decoding, see `load`) against json.dumps of the row, the date's ISO form on both sides.
        A fingerprint that differs only sends the row to `_update`, which compares the decoded
        values, so a difference in representation costs time, never correctness. Equal
        fingerprints of one key with different values would need a 64-bit hash collision.
        """
        values = [row[f] for f in self.compared]
        for position in self.as_text:
            value = values[position]
            if value is not None and not isinstance(value, str):
                values[position] = (
                    json.dumps(value) if isinstance(value, list | dict) else str(value)
                )
        if self.tag_names:
            tags = tags or {}
            values.extend(tags.get(t) for t in self.tag_names)
        return hash(tuple(values))

    async def load(self, file_headers: dict[str, str]) -> None:
        """Existing records as key -> (id, fingerprint of the compared fields), read once."""
        spec = self.spec
        self.file_headers = file_headers
        # A target's "key" is derived, never compared: another key is another target.
        self.compared = [f for f in spec.model.model_fields if f in file_headers]
        self.tag_names = sorted(
            f[len(TAG_FIELD) :] for f in file_headers if f.startswith(TAG_FIELD)
        )
        key_names = {
            Kind.targets: ["key", "uscc"],
            Kind.inspectors: ["certificate_no", "userid", "active"],
            Kind.items: ["org_code", "code"],
        }[spec.kind]
        # Core columns (no ORM row machinery), and JSON and dates as text (see _fingerprint):
        # decoding and parsing them for 100,000 rows costs seconds.
        table = _table(spec.table)
        self.as_text = [
            i for i, f in enumerate(self.compared) if isinstance(table.c[f].type, JSON | Date)
        ]
        names = ["id", *self.compared, *key_names, *(["tags"] if self.tag_names else [])]
        columns = [
            type_coerce(table.c[n], Text).label(n)
            if n == "tags" or isinstance(table.c[n].type, JSON | Date)
            else table.c[n]
            for n in dict.fromkeys(names)
        ]
        stmt = select(*columns).order_by(table.c.id).limit(LOAD_PAGE)
        last = 0
        while True:  # keyset pages: far cheaper than a server-side stream on aiosqlite
            rows = (await self.session.execute(stmt.where(table.c.id > last))).all()
            for row in rows:
                mapping = row._mapping
                tags = _json_object(mapping["tags"]) if self.tag_names else None
                self.existing[self._db_key(row)] = (row.id, self._fingerprint(mapping, tags))
                if spec.kind is Kind.inspectors and row.userid and row.active:
                    self.userids[row.userid] = row.certificate_no
                elif spec.kind is Kind.targets and row.uscc and row.key != row.uscc:
                    self.permit_usccs.add(row.uscc)
            if len(rows) < LOAD_PAGE:
                break
            last = rows[-1].id
        if spec.kind is Kind.inspectors:
            depts = await self.session.execute(
                select(Department.org_code, Department.code, Department.name)
            )
            for org_code, code, name in depts:
                self.departments.setdefault((org_code, clean_text(name)), code)
                self.departments.setdefault((org_code, clean_text(code)), code)

    async def run(self, table: SheetTable) -> None:
        context = _Context(self.today, await load_orgs(self.session))
        if "conflicts" in table.present:
            context.targets = await load_target_index(self.session)
        await self.load(table.headers)
        # (Tried: writing one batch while validating the next. No faster: the SQLite thread
        # and this loop then contend for the GIL.)
        for number, record in table.rows:
            item = self.validate(number, record, context)
            if item is not None:
                self.classify(item)
            if len(self.pending) >= BATCH:
                await self.flush(self._take())
        await self.flush(self._take())

    # -- rows --

    def validate(self, number: int, record: dict[str, Cell], context: _Context) -> _Pending | None:
        spec, report = self.spec, self.report
        tag_cells = {name: record.pop(TAG_FIELD + name, None) for name in self.tag_names}
        ok = True
        try:
            row = spec.model.model_validate(record, context=context)
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                name = str(error["loc"][0]) if error["loc"] else ""
                reason = str(error.get("ctx", {}).get("error") or error["msg"])
                report.reject(number, self._header(name), reason, cell_text(record.get(name)))
            ok = False
        tag_values: dict[str, str | None] = {}
        for name, value in tag_cells.items():
            text = clean_text(value)
            if len(text) > 100:
                report.reject(number, self._header(TAG_FIELD + name), "超过100个字符", text)
                ok = False
            tag_values[name] = text or None
        if not ok:
            return None
        full = dict(row.__dict__)  # the validated fields; cheaper than model_dump()
        values = {f: full[f] for f in self.compared}
        key = self._key(number, row, values, full)
        if key is None:
            return None
        first = self.seen.get(key)
        if first is not None:
            column = self._header(self._key_field(row))
            report.reject(number, column, f"与第{first}行重复（同一文件中出现两次）", key)
            return None
        self.seen[key] = number
        return _Pending(number, key, values, tag_values, full)

    def _header(self, field_name: str) -> str:
        """The column as the file heads it (the user's own words), else our header."""
        return self.file_headers.get(field_name) or self.spec.header_of(field_name)

    def _key_field(self, row: Any) -> str:
        if self.spec.kind is Kind.targets:
            return "permit_no" if row.permit_no else "uscc"
        return "certificate_no" if self.spec.kind is Kind.inspectors else "code"

    def _key(
        self, number: int, row: Any, values: dict[str, Any], full: dict[str, Any]
    ) -> str | None:
        kind = self.spec.kind
        if kind is Kind.targets:
            key = row.permit_no or row.uscc
            if not key:
                self.report.reject(
                    number,
                    self._header("permit_no"),
                    "排污许可证编号和统一社会信用代码都为空：至少填写一项",
                )
                return None
            if row.permit_no and row.uscc:
                self.permit_usccs.add(row.uscc)
            elif key in self.permit_usccs and key not in self.existing:
                # Known by its permits: a row keyed by the USCC would add the company twice.
                self.report.reject(
                    number,
                    self._header("permit_no"),
                    "该单位已按排污许可证编号登记在名录中：请填写排污许可证编号",
                    str(key),
                )
                return None
            full["key"] = key
            return str(key)
        if kind is Kind.items:
            return f"{row.org_code}/{row.code}"
        # inspectors: a WeCom account belongs to one person; the department name -> code
        if row.userid:
            holder = self.userids.get(row.userid)
            if holder is not None and holder != row.certificate_no:
                self.report.reject(
                    number,
                    self._header("userid"),
                    f"企业微信账号已属于证号为 {holder} 的人员",
                    row.userid,
                )
                return None
            self.userids[row.userid] = row.certificate_no
        if "dept_code" in values:
            code = self._department(number, row.org_code, row.dept_code)
            if code is None:
                return None
            values["dept_code"] = full["dept_code"] = code
        return str(row.certificate_no)

    def _department(self, number: int, org_code: str, name: str) -> str | None:
        if not name:
            return ""
        found = self.departments.get((org_code, name))
        if found is not None:
            return found
        if len(name) > 20:
            self.report.reject(number, self._header("dept_code"), "新科室名称超过20个字符", name)
            return None
        # A department named for the first time is created, with its name as its code.
        self.departments[(org_code, name)] = name
        self.new_departments.append({"org_code": org_code, "code": name, "name": name})
        self.report.departments_created.append(f"{org_code}/{name}")
        return name

    def classify(self, item: _Pending) -> None:
        found = self.existing.get(item.key)
        if found is None and self.spec.kind is Kind.targets:
            # A target first known by its USCC now has a permit number: re-key that record.
            uscc = item.record.get("uscc")
            if uscc and item.key != uscc and uscc in self.existing:
                old_id, _ = self.existing[uscc]
                if old_id not in self.claimed:
                    self.claimed.add(old_id)
                    item.existing_id = old_id
                    item.values["key"] = item.key
                    self.report.updated += 1
                    self.pending.append(item)
                    return
        if found is None or found[0] in self.claimed:
            self.report.added += 1
            self.pending.append(item)
            return
        existing_id, digest = found
        self.claimed.add(existing_id)
        if digest == self._fingerprint(item.values, item.tag_values):
            self.report.unchanged += 1
            return
        item.existing_id = existing_id
        self.report.updated += 1
        self.pending.append(item)

    # -- writes --

    def _writing(self) -> bool:
        return not (self.strict and self.report.rejections)

    def _take(self) -> tuple[list[_Pending], list[dict[str, Any]]]:
        """The rows and departments to write next (taken now, written maybe later)."""
        taken = (self.pending, self.new_departments)
        self.pending, self.new_departments = [], []
        return taken

    async def flush(self, taken: tuple[list[_Pending], list[dict[str, Any]]]) -> None:
        pending, departments = taken
        if not self._writing():
            return
        if departments:
            await self.session.execute(insert(Department), departments)
        # Updates first: a re-keyed target frees its old key for a row later in the batch.
        await self._update([p for p in pending if p.existing_id is not None])
        await self._insert([p for p in pending if p.existing_id is None])

    async def _insert(self, items: list[_Pending]) -> None:
        # No history row per new record: the first change's "before" is the initial value, and
        # the import itself is in the audit record. (100,000 extra rows cost ~4 s.)
        if not items:
            return
        table = self.spec.table
        has_updated_at = hasattr(table, "updated_at")
        records = []
        for item in items:
            record = item.record
            if self.spec.tags:
                record["tags"] = {k: v for k, v in item.tag_values.items() if v is not None}
            if has_updated_at:
                record["updated_at"] = self.now
            records.append(record)
        await self.session.execute(insert(_table(table)), records)

    def _history(self, key: str, field_name: str, before: Any, after: Any) -> dict[str, Any]:
        """A DirectoryHistory row; ``before`` and ``after`` must already be JSON values."""
        return {
            "kind": HISTORY_KIND[self.spec.kind],
            "subject_key": key[:64],
            "field": field_name[:40],
            "before": before,
            "after": after,
            "actor": self.actor,
            "at": self.now,
        }

    async def _update(self, items: list[_Pending]) -> None:
        """Write only the fields that changed, and a history row for each tracked one."""
        if not items:
            return
        before = await self._current([item.existing_id for item in items if item.existing_id])
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        history: list[dict[str, Any]] = []
        for item in items:
            assert item.existing_id is not None
            changes = self._changes(item, before[item.existing_id], history)
            if not changes:  # the digest differed but no value did (e.g. a re-ordered tag set)
                self.report.updated -= 1
                self.report.unchanged += 1
                continue
            if hasattr(self.spec.table, "updated_at"):
                changes["updated_at"] = self.now
            groups.setdefault(tuple(sorted(changes)), []).append(
                {"_id": item.existing_id, **{f"_{k}": v for k, v in changes.items()}}
            )
        table = _table(self.spec.table)
        for names, params in groups.items():
            stmt = (
                update(table)
                .where(table.c.id == bindparam("_id"))
                .values({name: bindparam(f"_{name}") for name in names})
            )
            await self.session.execute(stmt, params)
        if history:
            await self.session.execute(insert(_table(DirectoryHistory)), history)

    async def _current(self, ids: list[int]) -> dict[int, Mapping[str, Any]]:
        """The stored values of the compared fields, for the records about to change."""
        table = self.spec.table
        wanted = ["key", *self.compared] if self.spec.kind is Kind.targets else self.compared
        columns = [table.id, *(getattr(table, f) for f in dict.fromkeys(wanted))]
        if self.spec.tags:
            columns.append(table.tags)
        current: dict[int, Mapping[str, Any]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = await self.session.execute(select(*columns).where(table.id.in_(chunk)))
            current.update({row.id: row._mapping for row in rows})
        return current

    def _changes(
        self, item: _Pending, old: Mapping[str, Any], history: list[dict[str, Any]]
    ) -> dict[str, Any]:
        changes = {f: v for f, v in item.values.items() if _canon(old[f]) != _canon(v)}
        for name, value in changes.items():
            if name in self.spec.tracked:
                before, after = _jsonable(old[name]), _jsonable(value)
                history.append(self._history(item.key, name, before, after))
        if self.tag_names:
            old_tags = dict(old["tags"] or {})
            new_tags = dict(old_tags)
            for name, tag in item.tag_values.items():
                if tag is None:
                    new_tags.pop(name, None)
                else:
                    new_tags[name] = tag
            if new_tags != old_tags:
                changes["tags"] = new_tags
            for name in sorted(set(old_tags) | set(new_tags)):
                if old_tags.get(name) != new_tags.get(name):
                    before, after = old_tags.get(name), new_tags.get(name)
                    history.append(self._history(item.key, f"tags.{name}", before, after))
        return changes


def _check_header(spec: Spec, table: SheetTable, report: ImportReport) -> None:
    for column in spec.columns:
        if column.required and column.field not in table.present:
            report.reject(table.header_row, column.header, "缺少必填列")
    for name in table.present:
        if name.startswith(TAG_FIELD) and len(name) - len(TAG_FIELD) > MAX_TAG_NAME:
            report.reject(table.header_row, table.headers[name], "标识名称超过30个字符")


@contextlib.asynccontextmanager
async def _bulk_settings(session: AsyncSession) -> AsyncIterator[None]:
    """SQLite's default 2 MB page cache thrashes on 100,000 random-key index inserts."""
    if session.get_bind().dialect.name != "sqlite":
        yield
        return
    before = (await session.execute(text("PRAGMA cache_size"))).scalar_one()
    await session.execute(text(f"PRAGMA cache_size=-{SQLITE_IMPORT_CACHE_KB}"))
    try:
        yield
    finally:
        await session.execute(text(f"PRAGMA cache_size={int(before)}"))


async def import_rows(
    session: AsyncSession,
    kind: Kind | str,
    path: Path | str,
    *,
    actor: str,
    now: dt.datetime,
    strict: bool,
    today: dt.date | None = None,
) -> ImportReport:
    """Import a spreadsheet into one of the three lists, in the caller's transaction.

    Good rows go in; bad rows are reported (row, column, reason). With ``strict``, any bad row
    raises `StrictImportError` (carrying the full report) so the caller rolls back. ``today``
    (for refusing future dates) defaults to ``now``'s date in China. Raises `SpreadsheetError`
    when the file cannot be read at all (wrong type, no header row, unknown encoding).
    """
    kind = Kind(kind)
    spec = SPECS[kind]
    path = Path(path)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    report = ImportReport(kind, path.name, strict=strict)
    importer = _Importer(
        session,
        spec,
        actor=actor,
        now=now,
        today=today or now.astimezone(CHINA).date(),
        strict=strict,
        report=report,
    )
    prefixes = {normalise_header(TAG_PREFIX): TAG_FIELD} if spec.tags else {}
    with open_table(path, spec.header_map, prefixes=prefixes) as table:
        report.unknown_headers = table.unknown_headers
        _check_header(spec, table, report)
        if not report.rejections:
            async with _bulk_settings(session):
                await importer.run(table)
    if not report.committed:
        raise StrictImportError(report)
    if report.rejections and not (report.added or report.updated or report.unchanged):
        return report  # nothing readable: no audit entry for an import that did nothing
    await audit.append(
        session,
        at=now,
        actor=actor,
        action="directory.import",
        subject=f"directory:{kind.value}",
        payload={
            "file": path.name,
            "added": report.added,
            "updated": report.updated,
            "unchanged": report.unchanged,
            "rejected": report.rejected,
            "strict": strict,
            "departments_created": report.departments_created,
        },
    )
    return report


# --- templates and exports ------------------------------------------------------------------


def example_row(kind: Kind | str) -> dict[str, Cell]:
    """A valid row for the template (field -> cell)."""
    kind = Kind(kind)
    if kind is Kind.targets:
        uscc = make_uscc("91150102MA0N00001")
        return {
            "name": "呼和浩特市示例化工有限公司",
            "uscc": uscc,
            "permit_no": f"{uscc}001P",
            "legal_rep": "张三",
            "entity_type": "有限责任公司",
            "registration_authority": "呼和浩特市新城区市场监督管理局",
            "established_on": "2015-06-01",
            "org_code": "150102",
            "tier": "重点",
            "industry": "化学原料和化学制品制造业",
            "pollutant_types": "废气、废水",
            "scale": "中型",
            "production_cycle": "全年",
            "supervision_type": "排污许可重点管理",
            "performance_grade": "B",
            "on_positive_list": "否",
            "construction_status": "已投产",
            "approval_level": "自治区",
            "construction_started_on": "2016-03-01",
            "operation_started_on": "2017-09-01",
            "status": "在营",
            "address": "呼和浩特市新城区示例路1号",
        }
    if kind is Kind.inspectors:
        return {
            "name": "李四",
            "gender": "男",
            "unit": "呼和浩特市生态环境局",
            "org_code": "150100",
            "dept_code": "执法科",
            "certificate_no": "15010020150001",
            "certificate_kind": "执法证",
            "certificate_issued_on": "2015-06-01",
            "position": "科员",
            "phone": "13800000000",
            "userid": "lisi",
            "auxiliary": "否",
            "years_of_service": 8,
            "expertise": "大气、固废",
            "leave_from": "",
            "leave_until": "",
            "conflicts": "",
            "active": "是",
        }
    return {
        "code": "HB-001",
        "name": "排污许可制度执行情况检查",
        "target_scope": "持有排污许可证的排污单位",
        "check_type": "不定向",
        "method": "现场",
        "legal_basis": "《排污许可管理条例》第三十四条",
        "responsible_dept": "执法科",
        "org_code": "150100",
        "active": "是",
    }


def headers(kind: Kind | str) -> list[str]:
    return [c.header for c in SPECS[Kind(kind)].columns]


def write_template(kind: Kind | str, path: Path | str) -> None:
    """An empty list with the Chinese headers and one valid example row (.xlsx or .csv)."""
    spec = SPECS[Kind(kind)]
    path = Path(path)
    example = example_row(spec.kind)
    row = [example.get(c.field) for c in spec.columns]
    if path.suffix.lower() == ".csv":
        write_csv(path, headers(spec.kind), [row])
        return
    notes = ((c.header, "是" if c.required else "", c.hint or "") for c in spec.columns)
    write_xlsx(
        path,
        [
            SheetSpec(spec.label, headers(spec.kind), [row]),
            SheetSpec("填写说明", ("列名", "必填", "说明"), notes, (20, 8, 60)),
        ],
    )


EXPORT_LABELS: dict[str, Mapping[str, str]] = {
    "tier": {t.value: label for t, label in TIER_LABELS.items()},
    "status": STATUS_LABELS,
    "approval_level": APPROVAL_LABELS,
    "certificate_kind": CERT_LABELS,
    "check_type": CHECK_TYPE_LABELS,
    "method": METHOD_LABELS,
}


def _export_cell(spec: Spec, name: str, row: Mapping[Any, Any], context: dict[str, Any]) -> Cell:
    """A stored value as the import reads it back: Chinese labels, 是/否, lists with 、."""
    value = row[name]
    if value is None:
        return None
    if name in EXPORT_LABELS:
        return EXPORT_LABELS[name].get(value, value)
    if name == "org_code" and spec.kind is Kind.targets:
        return str(context["orgs"].get(value, value))
    if name == "dept_code":
        return str(context["departments"].get((row["org_code"], value), value))
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, list):
        return "、".join(str(v) for v in value)
    if isinstance(value, dt.date | int | float | str):
        return value
    return str(value)


async def _tag_names(session: AsyncSession, spec: Spec) -> list[str]:
    names: set[str] = set()
    if spec.tags:
        stream = await session.stream(select(spec.table.tags).execution_options(yield_per=5000))
        async for partition in stream.partitions():
            for (tags,) in partition:
                names.update(tags or {})
    return sorted(names)


async def _export_context(session: AsyncSession, spec: Spec) -> dict[str, Any]:
    orgs = await session.execute(select(Organisation.code, Organisation.name))
    departments: dict[tuple[str, str], str] = {}
    if spec.kind is Kind.inspectors:
        rows = await session.execute(select(Department.org_code, Department.code, Department.name))
        departments = {(org, code): name for org, code, name in rows}
    return {"orgs": {code: name for code, name in orgs}, "departments": departments}


EXPORT_ORDER = {
    Kind.targets: ("org_code", "key"),
    Kind.inspectors: ("org_code", "certificate_no"),
    Kind.items: ("org_code", "code"),
}


async def export(session: AsyncSession, kind: Kind | str, path: Path | str) -> int:
    """The current list as .xlsx in the import's format (it re-imports unchanged).

    Rows are streamed into a write-only workbook, so 100,000 targets fit in little memory.
    """
    spec = SPECS[Kind(kind)]
    table = spec.table
    fields = [c.field for c in spec.columns]
    context = await _export_context(session, spec)
    tag_names = await _tag_names(session, spec)
    columns = [getattr(table, f) for f in fields]
    if spec.tags:
        columns.append(table.tags)
    writer = XlsxWriter()
    tag_headers = [spec.header_of(TAG_FIELD + t) for t in tag_names]
    writer.add_sheet(spec.label, [*headers(spec.kind), *tag_headers])
    order = [getattr(table, f) for f in EXPORT_ORDER[spec.kind]]
    stmt = select(*columns).order_by(*order).execution_options(yield_per=2000)
    count = 0
    async for partition in (await session.stream(stmt)).partitions():
        for row in partition:
            mapping = row._mapping
            cells = [_export_cell(spec, f, mapping, context) for f in fields]
            if spec.tags:
                tags = mapping["tags"] or {}
                cells.extend(tags.get(t) for t in tag_names)
            writer.append(cells)
            count += 1
    writer.save(Path(path))
    return count


# --- lookup ---------------------------------------------------------------------------------


async def find_targets(
    session: AsyncSession, query: str, *, limit: int = 10, orgs: Collection[str] | None = None
) -> list[Target]:
    """`查询 <名称或信用代码>`: exact key or USCC first, else exact name, else name contains;
    only targets of ``orgs`` when given (the asker's subtree)."""
    text = clean_text(query)
    if not text:
        return []
    code = normalise_uscc(text)
    base = select(Target).limit(limit)
    if orgs is not None:
        base = base.where(Target.org_code.in_(list(orgs)))
    stmt = base.where(or_(Target.key == code, Target.uscc == code))
    found = list((await session.execute(stmt)).scalars())
    if found:
        return found
    stmt = base.where(Target.name == text).order_by(Target.key)
    found = list((await session.execute(stmt)).scalars())
    if found:
        return found
    stmt = base.where(Target.name.contains(text, autoescape=True)).order_by(Target.name, Target.key)
    return list((await session.execute(stmt)).scalars())


def rejections_file_name(report: ImportReport) -> str:
    return f"{KIND_LABELS[report.kind]}导入退回明细.xlsx"


__all__ = [
    "Column",
    "ImportReport",
    "Kind",
    "Rejection",
    "SpreadsheetError",
    "StrictImportError",
    "example_row",
    "export",
    "find_targets",
    "headers",
    "import_rows",
    "parse_date",
    "write_template",
]
