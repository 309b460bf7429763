"""The rows of the three lists as pydantic models, validated with the import's context.

A bad cell is a ValidationError at its field with a Chinese reason (see `values`). The context
(`RowContext`: today, the organisations, the known targets) is loaded by the importer and passed
to `model_validate`; the models themselves never touch the database.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationInfo, field_validator

from inspection.uscc import normalise_uscc
from storage.directory.choices import (
    APPROVAL_CHOICES,
    CERT_CHOICES,
    CHECK_TYPE_CHOICES,
    GENDER_CHOICES,
    GRADE_CHOICES,
    METHOD_CHOICES,
    STATUS_CHOICES,
    TIER_CHOICES,
)
from storage.directory.values import (
    choice,
    clean_text,
    code_text,
    fail,
    int_range,
    parse_date_cached,
    permit_number,
    phone_number,
    plain_text,
    raw_text,
    text_list,
    uscc_code,
    wecom_userid,
    yes_no,
)


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
class RowContext:
    """What a row is checked against: today (no future dates), the organisations, the targets."""

    today: dt.date
    orgs: OrgIndex
    targets: TargetIndex | None = None


def _date(*, allow_future: bool = False) -> Callable[[Any, RowContext], dt.date | None]:
    def check(value: Any, context: RowContext) -> dt.date | None:
        return parse_date_cached(value, context.today, allow_future)

    return check


def _org(value: Any, context: RowContext) -> str:
    text = raw_text(value)
    if not text:
        raise fail("必填项为空")
    code = context.orgs.resolve(text)
    if code is None:
        raise fail(f"「{text}」不是已知的机构（请填写行政区划代码，如 150102，或机构名称）")
    return code


_CONFLICT_NAMES = text_list(200)


def _conflicts(value: Any, context: RowContext) -> list[str]:
    names = _CONFLICT_NAMES(value)
    if not names:
        return []
    targets = context.targets
    keys: set[str] = set()
    for name in names:
        found = targets.resolve(name) if targets is not None else []
        if not found:
            raise fail(
                f"回避对象「{name}」不在检查对象名录库中（可填单位名称、信用代码或许可证编号）"
            )
        keys.update(found)
    return sorted(keys)


def _cell(convert: Callable[[Any], Any]) -> Any:
    """How a field is read from a spreadsheet cell: a converter raising ValueError (Chinese).

    Converters are pure, and most columns repeat a few values (一般, 在营, 废气、废水), so their
    results are cached: about 1.5 s saved on 100,000 rows. ``typed``: 1, 1.0 and True differ.
    (Measured: pydantic-core calls one validator per field as fast as a bare Python loop.)
    """
    return BeforeValidator(functools.lru_cache(maxsize=4096, typed=True)(convert))


def _in_context(convert: Callable[[Any, RowContext], Any]) -> Any:
    """A converter that needs the import's context (today, the organisations, the targets)."""

    def with_context(value: Any, info: ValidationInfo) -> Any:
        context = info.context
        assert isinstance(context, RowContext), "rows are validated with a RowContext"
        return convert(value, context)

    return BeforeValidator(with_context)


class Row(BaseModel):
    """A spreadsheet row; a bad cell is a ValidationError at its field with a Chinese reason."""

    model_config = ConfigDict(extra="forbid")


def _not_before(value: dt.date | None, start: dt.date | None, what: str) -> dt.date | None:
    if value is not None and start is not None and value < start:
        raise fail(what.format(end=value.isoformat(), start=start.isoformat()))
    return value


_GRADE = choice(GRADE_CHOICES, "绩效分级", "", "A/B/B-/C/D")


def _grade(value: Any) -> str | None:
    return _GRADE(value) or None


class TargetRow(Row):
    """One row of the target directory (Art. 11-13)."""

    name: Annotated[str, _cell(plain_text(200, required=True))]
    uscc: Annotated[str | None, _cell(uscc_code)] = None
    permit_no: Annotated[str | None, _cell(permit_number)] = None
    legal_rep: Annotated[str, _cell(plain_text(50))] = ""
    entity_type: Annotated[str, _cell(plain_text(50))] = ""
    registration_authority: Annotated[str, _cell(plain_text(100))] = ""
    established_on: Annotated[dt.date | None, _in_context(_date())] = None
    org_code: Annotated[str, _in_context(_org)]
    tier: Annotated[str, _cell(choice(TIER_CHOICES, "监管类别"))]
    industry: Annotated[str, _cell(plain_text(100))] = ""
    pollutant_types: Annotated[list[str], _cell(text_list(30))] = []
    scale: Annotated[str, _cell(plain_text(20))] = ""
    production_cycle: Annotated[str, _cell(plain_text(50))] = ""
    supervision_type: Annotated[str, _cell(plain_text(50))] = ""
    performance_grade: Annotated[str | None, _cell(_grade)] = None
    on_positive_list: Annotated[bool, _cell(yes_no(False))] = False
    construction_status: Annotated[str, _cell(plain_text(30))] = ""
    approval_level: Annotated[str, _cell(choice(APPROVAL_CHOICES, "审批级别", ""))] = ""
    construction_started_on: Annotated[dt.date | None, _in_context(_date())] = None
    operation_started_on: Annotated[dt.date | None, _in_context(_date())] = None
    status: Annotated[str, _cell(choice(STATUS_CHOICES, "经营状态", "operating"))] = "operating"
    address: Annotated[str, _cell(plain_text(300))] = ""

    @field_validator("operation_started_on", mode="after")
    @classmethod
    def _operation_after_construction(cls, value: Any, info: ValidationInfo) -> Any:
        started = info.data.get("construction_started_on")
        return _not_before(value, started, "投产日期 {end} 早于开工日期 {start}")


class InspectorRow(Row):
    """One row of the inspector directory (Art. 15-18)."""

    name: Annotated[str, _cell(plain_text(50, required=True))]
    gender: Annotated[str, _cell(choice(GENDER_CHOICES, "性别", ""))] = ""
    unit: Annotated[str, _cell(plain_text(100))] = ""
    org_code: Annotated[str, _in_context(_org)]
    dept_code: Annotated[str, _cell(plain_text(100))] = (
        ""  # a department name or code, resolved later
    )
    certificate_no: Annotated[str, _cell(code_text(64, required=True))]
    certificate_kind: Annotated[str, _cell(choice(CERT_CHOICES, "证件类型", "enforcement"))] = (
        "enforcement"
    )
    certificate_issued_on: Annotated[dt.date | None, _in_context(_date())] = None
    position: Annotated[str, _cell(plain_text(50))] = ""
    phone: Annotated[str, _cell(phone_number)] = ""
    userid: Annotated[str | None, _cell(wecom_userid)] = None
    auxiliary: Annotated[bool, _cell(yes_no(False))] = False
    years_of_service: Annotated[int | None, _cell(int_range(0, 60))] = None
    expertise: Annotated[list[str], _cell(text_list(50))] = []
    leave_from: Annotated[dt.date | None, _in_context(_date(allow_future=True))] = None
    leave_until: Annotated[dt.date | None, _in_context(_date(allow_future=True))] = None
    conflicts: Annotated[list[str], _in_context(_conflicts)] = []
    active: Annotated[bool, _cell(yes_no(True))] = True

    @field_validator("leave_until", mode="after")
    @classmethod
    def _leave_ends_after_it_starts(cls, value: Any, info: ValidationInfo) -> Any:
        start = info.data.get("leave_from")
        return _not_before(value, start, "请假结束 {end} 早于请假开始 {start}")


class ItemRow(Row):
    """One row of the check-item list (Art. 8-10)."""

    code: Annotated[str, _cell(code_text(40, required=True))]
    name: Annotated[str, _cell(plain_text(200, required=True))]
    target_scope: Annotated[str, _cell(plain_text(2000))] = ""
    check_type: Annotated[str, _cell(choice(CHECK_TYPE_CHOICES, "检查类型"))]
    method: Annotated[str, _cell(choice(METHOD_CHOICES, "检查方式"))]
    legal_basis: Annotated[str, _cell(plain_text(4000))] = ""
    responsible_dept: Annotated[str, _cell(plain_text(100))] = ""
    org_code: Annotated[str, _in_context(_org)]
    active: Annotated[bool, _cell(yes_no(True))] = True
