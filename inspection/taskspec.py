"""What a task asks for (Art. 22), and the compact one-line syntax admins type in chat.

    新建任务 <名称> 范围=150100 特殊=25% 重点=20% 一般=10% 检查期=2026-12-01~2026-12-31

Pure: parsing and validation only; organisations and check items are checked by storage.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from inspection.draw import LOCALITIES, Locality
from inspection.pool import Quota
from inspection.quotas import TIER_LABELS, Tier


class SpecError(ValueError):
    """A task description that cannot be accepted; ``zh`` for chat, ``en`` for the CLI."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(zh)
        self.zh = zh
        self.en = en


MAX_NAME, MAX_DEPT = 200, 20  # Task.name, Task.drawing_dept and Task.initiating_dept


@dataclass(frozen=True)
class TaskSpec:
    name: str
    check_start: dt.date
    check_end: dt.date
    quotas: Mapping[Tier, Quota] = field(default_factory=dict, hash=False)  # empty: Art. 25
    org_code: str | None = None  # drawing organisation; None: the admin's own
    scope_orgs: tuple[str, ...] = ()  # empty: the drawing organisation's subtree
    draw_on: dt.date | None = None
    item_codes: tuple[str, ...] = ()
    focus: str = ""
    drawing_dept: str = ""
    checking_depts: tuple[str, ...] = ()
    initiating_dept: str = ""
    participating_depts: tuple[str, ...] = ()
    tag_filter: Mapping[str, str] = field(default_factory=dict, hash=False)
    team_size: int | None = None  # None: the rule in force (Art. 28)
    qualifying_kinds: tuple[str, ...] = ("enforcement",)
    locality: Locality = "scope"
    auxiliary_per_team: int = 0
    avoid_last_inspector: bool = True
    max_load: int | None = None
    once_a_year: bool = True  # Art. 25: leave out entities randomly checked this year
    special_more_often: bool = True  # Art. 25: special targets may be checked more often
    recheck_below: bool = False  # Art. 30: re-check what the levels below checked
    skip_checked_above: bool = False  # Art. 30
    construction_projects: bool = True  # Art. 25(4)
    plan_id: int | None = None
    replaces: str = ""  # a task of the same unit whose draw was cancelled (its code)

    def __post_init__(self) -> None:
        if not self.name or len(self.name) > MAX_NAME:
            raise SpecError(
                f"任务名称不能为空，最长{MAX_NAME}个字（您输入了{len(self.name)}个字）。",
                f"task name is empty or longer than {MAX_NAME} characters ({len(self.name)})",
            )
        for label, english, dept in (
            ("抽取科室", "drawing department", self.drawing_dept),
            ("发起科室", "initiating department", self.initiating_dept),
        ):
            if len(dept) > MAX_DEPT:  # kept as typed: refused, never cut
                raise SpecError(
                    f"{label}最长{MAX_DEPT}个字，您输入了{len(dept)}个字。",
                    f"{english} is longer than {MAX_DEPT} characters ({len(dept)})",
                )
        if self.check_start > self.check_end:
            raise SpecError(
                f"检查期的开始日期{self.check_start}晚于结束日期{self.check_end}。",
                f"check start {self.check_start} is after check end {self.check_end}",
            )
        if self.draw_on is not None and self.draw_on > self.check_end:
            raise SpecError(
                f"抽取日期{self.draw_on}晚于检查期结束日期{self.check_end}。",
                f"draw date {self.draw_on} is after check end {self.check_end}",
            )
        if self.team_size is not None and self.team_size < 1:
            raise SpecError("检查组人数至少为1。", "team size must be at least 1")
        if self.auxiliary_per_team < 0:
            raise SpecError("辅助检查人员人数不能为负数。", "auxiliary count is negative")
        if self.max_load is not None and self.max_load < 1:
            raise SpecError("每人上限至少为1。", "max load must be at least 1")
        if self.locality not in LOCALITIES:
            raise SpecError(f"未知的属地要求：{self.locality}", f"unknown locality {self.locality}")
        if not self.qualifying_kinds:
            raise SpecError("至少指定一种计入检查组的证件。", "no qualifying certificate kind")
        if self.initiating_dept and not self.participating_depts:
            raise SpecError(
                "联合抽查需同时指定参与科室（参与科室=…）。",
                "a joint task needs participating departments",
            )
        joint = joint_departments(self.initiating_dept, self.participating_depts)
        outside = [d for d in self.checking_depts if joint and d not in joint]
        if outside:
            raise SpecError(
                f"检查科室{'、'.join(outside)}不是本联合抽查的发起科室或参与科室"
                f"（{'、'.join(joint)}，第21、23条）。",
                f"checking departments {', '.join(outside)} take no part in the joint task",
            )

    @property
    def year(self) -> int:
        return (self.draw_on or self.check_start).year

    @property
    def joint(self) -> bool:
        return bool(self.initiating_dept)


def joint_departments(initiating: str, participating: Sequence[str]) -> tuple[str, ...]:
    """The departments of an internal joint task (Art. 21, 23): the initiating one, then the
    participating ones; empty for a task that is not joint."""
    if not initiating:
        return ()
    return tuple(dict.fromkeys((initiating, *participating)))


def checking_departments(
    checking: Sequence[str], initiating: str, participating: Sequence[str]
) -> tuple[str, ...]:
    """Whose inspectors a task's teams are drawn from: the departments named to check, else for
    a joint task its own departments (Art. 19, 21, 23: the departments that check the market
    entity together), else every department (empty)."""
    return tuple(checking) or joint_departments(initiating, participating)


# --- values ------------------------------------------------------------------------------

CERT_WORDS = {
    "执法": "enforcement",
    "执法证": "enforcement",
    "enforcement": "enforcement",
    "工作": "work",
    "工作证": "work",
    "work": "work",
}
LOCALITY_WORDS: dict[str, Locality] = {
    "本旗县": "same_county",
    "本旗县区": "same_county",
    "同旗县": "same_county",
    "同旗县区": "same_county",
    "same_county": "same_county",
    "范围内": "scope",
    "任务范围": "scope",
    "任务范围内": "scope",
    "scope": "scope",
}
YES = {"是", "要", "排除", "yes", "true", "1", "y"}
NO = {"否", "不", "不排除", "no", "false", "0", "n"}
TAG_NAMES = {
    "行业": "industry",
    "规模": "scale",
    "绩效分级": "performance_grade",
    "监管类型": "supervision_type",
    "生产周期": "production_cycle",
    "污染物": "pollutant_types",
    "建设状态": "construction_status",
}
TIER_WORDS = {label: tier for tier, label in TIER_LABELS.items()} | {t.value: t for t in Tier}


def parse_date(text: str, what: str) -> dt.date:
    s = text.strip().replace("/", "-").replace(".", "-")
    if re.fullmatch(r"\d{8}", s):
        s = f"{s[:4]}-{s[4:6]}-{s[6:]}"
    try:
        return dt.date.fromisoformat(s)
    except ValueError:
        raise SpecError(
            f"{what}「{text}」不是有效日期，请写成 2026-12-01。",
            f"{what_en(what)} {text!r} is not a date (use 2026-12-01)",
        ) from None


def what_en(what: str) -> str:
    return {"检查期": "check period", "抽取日": "draw date"}.get(what, "date")


def parse_period(text: str) -> tuple[dt.date, dt.date]:
    parts = re.split(r"~|至|到|--|—", text)
    if len(parts) != 2:
        raise SpecError(
            f"检查期「{text}」应写成 开始~结束，如 2026-12-01~2026-12-31。",
            f"check period {text!r} should look like 2026-12-01~2026-12-31",
        )
    return parse_date(parts[0], "检查期"), parse_date(parts[1], "检查期")


def parse_quota(text: str, tier: Tier) -> Quota:
    """ "25%", "1/4" or "0.25" is a ratio; "30" or "30个" is a count."""
    s = text.strip().removesuffix("个")
    label = TIER_LABELS[tier]
    ratio: Fraction | None = None
    count: int | None = None
    try:
        if s.endswith("%"):
            ratio = Fraction(s[:-1]) / 100
        elif "/" in s or "." in s:
            ratio = Fraction(s)
        else:
            count = int(s)
    except (ValueError, ZeroDivisionError):
        raise SpecError(
            f"{label}的抽取要求「{text}」应为比例（如 25%）或数量（如 30）。",
            f"{tier.value}: {text!r} is neither a ratio (25%) nor a count",
        ) from None
    try:
        return Quota(ratio=ratio, count=count)
    except ValueError as exc:
        raise SpecError(f"{label}：{exc}", f"{tier.value}: {text!r} out of range") from None


def parse_bool(text: str, what: str) -> bool:
    word = text.strip().lower()
    if word in YES:
        return True
    if word in NO:
        return False
    raise SpecError(f"{what}应为「是」或「否」，而不是「{text}」。", f"{what}: expected yes or no")


ONCE_A_YEAR_FIXED = (
    "本年已查不能设为「否」：第二十五条规定同一市场主体每年只随机抽查一次，"
    "例外只有两项：特殊监管对象可多查（特殊多查=是，默认）；"
    "上级可复查下级已查的对象（复查下级=是，第三十条）。"
)


def parse_once_a_year(text: str) -> bool:
    """Art. 25: the once-a-year rule is not a task's to switch off; its two exceptions are
    ``特殊多查`` and ``复查下级`` (Art. 30)."""
    if not parse_bool(text, "本年已查"):
        raise SpecError(
            ONCE_A_YEAR_FIXED,
            "Art. 25: once a year cannot be switched off; the only exceptions are special"
            " targets checked more often (the default) and re-checking the level below"
            " (Art. 30, --recheck-below)",
        )
    return True


def parse_int(text: str, what: str, en: str) -> int:
    try:
        return int(text.strip().removesuffix("人").removesuffix("组"))
    except ValueError:
        raise SpecError(f"{what}应为整数，而不是「{text}」。", f"{en}: not a number") from None


def split_list(text: str) -> tuple[str, ...]:
    """Items separated by commas, semicolons or 、 (full-width ones too: the departments are
    split as typed)."""
    return tuple(p.strip() for p in re.split(r"[,;、，；]", text) if p.strip())


def parse_kinds(text: str) -> tuple[str, ...]:
    kinds = []
    for word in split_list(text):
        if word not in CERT_WORDS:
            raise SpecError(
                f"未知的证件类型「{word}」：可用 执法证、工作证。",
                f"unknown certificate kind {word!r}",
            )
        kinds.append(CERT_WORDS[word])
    return tuple(sorted(set(kinds)))


def parse_locality(text: str) -> Locality:
    word = text.strip()
    if word not in LOCALITY_WORDS:
        raise SpecError(
            f"属地要求「{text}」应为「本旗县区」或「范围内」。", f"unknown locality {text!r}"
        )
    return LOCALITY_WORDS[word]


def parse_tags(text: str) -> dict[str, str]:
    tags = {}
    for part in split_list(text):
        name, sep, value = part.partition(":")
        if not sep or not name.strip() or not value.strip():
            raise SpecError(
                f"标签条件「{part}」应写成 名称:值，如 行业:火电。",
                f"tag filter {part!r}: name:value",
            )
        tags[TAG_NAMES.get(name.strip(), name.strip())] = value.strip()
    return tags


# --- the chat line -------------------------------------------------------------------------

# The ratios and the team size are the task's own (Art. 24), no lower than the rules in force
# (Art. 25, 28, 45): the line names no values, 帮助 and a usage error add those in force.
CHAT_USAGE = (
    "新建任务 <名称> 范围=150100 特殊=<特殊比例> 重点=<重点比例> 一般=<一般比例>"
    " 检查期=2026-12-01~2026-12-31"
    " [抽取日= 事项=A01,A02 检查重点= 抽取科室= 检查科室= 发起科室= 参与科室= 组员=<人数>"
    " 证件=执法证,工作证 属地=本旗县区|范围内 辅助=1 回避上次=是 每人上限=3 标签=行业:火电"
    " 本年已查=排除 特殊多查=是 复查下级=否 上级已查=不排除 建设项目=是 单位=150100 计划=编号"
    " 替代=已作废抽取的任务]"
)


def fold(text: str) -> str:
    """What is parsed: NFKC (full-width ＝ ～ ， and digits become ASCII), trimmed."""
    return unicodedata.normalize("NFKC", text).strip()


def parse_task_line(text: str) -> TaskSpec:
    """Read ``<名称> 键=值 ...``: the keys and the parsed values are folded (full-width ＝ ～ ，
    work too); the name, the focus and the departments are kept as typed."""
    if not text.strip():
        raise SpecError(f"用法：{CHAT_USAGE}", "empty task description")
    names: list[str] = []
    values: dict[str, str] = {}
    for token in text.split():  # any whitespace, full-width spaces too
        key, value = split_option(token)
        if key is None:
            names.append(token)
            continue
        if key in values:
            raise SpecError(f"「{key}」写了两次。", f"{key} given twice")
        values[key] = value
    if "名称" in values:
        names.append(values.pop("名称"))
    if len(names) != 1:
        raise SpecError(
            "请给出一个不含空格的任务名称，其余各项写成 键=值。用法：" + CHAT_USAGE,
            "one task name without spaces expected",
        )
    return spec_from_fields({"名称": names[0], **values})


def split_option(token: str) -> tuple[str | None, str]:
    """``键=值`` (or ``键＝值``): (folded key, value as typed); (None, token) for a plain word."""
    for i, ch in enumerate(token):
        if fold(ch) == "=":
            return fold(token[:i]), token[i + 1 :]
    return None, token


# Fields a person writes in their own words: stored exactly as typed (trimmed), never folded.
# The checking, initiating and participating departments are codes matched against the
# inspectors' department codes (Art. 21, 23), so they are folded like every parsed code.
AS_TYPED = frozenset({"名称", "检查重点", "抽取科室"})


def spec_from_fields(fields: Mapping[str, str]) -> TaskSpec:
    """A task from named fields, as typed in chat (``键=值``) or as spreadsheet columns.

    The check period is ``检查期`` (``开始~结束``) or the two fields ``检查开始`` and ``检查结束``."""
    values = {
        fold(k): v.strip() if fold(k) in AS_TYPED else fold(v)
        for k, v in fields.items()
        if v is not None and v.strip()
    }
    name = values.pop("名称", "")
    if "检查开始" in values and "检查结束" in values and "检查期" not in values:
        values["检查期"] = f"{values.pop('检查开始')}~{values.pop('检查结束')}"
    if "检查期" not in values:
        raise SpecError("请写明检查期，如 检查期=2026-12-01~2026-12-31。", "check period missing")
    start, end = parse_period(values.pop("检查期"))
    kwargs: dict[str, object] = {"name": name, "check_start": start, "check_end": end}
    kwargs["quotas"] = {}
    kwargs.update(read_fields(values))
    return TaskSpec(**kwargs)  # type: ignore[arg-type]


def read_fields(values: Mapping[str, str]) -> dict[str, object]:
    """``TaskSpec`` keyword values from typed fields (``键=值``) other than 名称 and 检查期: the
    quotas of the tiers given, and each field's reader."""
    values = dict(values)
    kwargs: dict[str, object] = {}
    quotas = {}
    for word, tier in TIER_WORDS.items():
        if word in values:
            quotas[tier] = parse_quota(values.pop(word), tier)
    if quotas:
        kwargs["quotas"] = quotas
    readers: dict[str, tuple[str, Callable[[str], object]]] = {
        "单位": ("org_code", str.strip),
        "范围": ("scope_orgs", split_list),
        "抽取日": ("draw_on", lambda v: parse_date(v, "抽取日")),
        "事项": ("item_codes", split_list),
        "检查重点": ("focus", str.strip),
        "抽取科室": ("drawing_dept", str.strip),
        "检查科室": ("checking_depts", split_list),
        "发起科室": ("initiating_dept", str.strip),
        "参与科室": ("participating_depts", split_list),
        "组员": ("team_size", lambda v: parse_int(v, "检查组人数", "team size")),
        "证件": ("qualifying_kinds", parse_kinds),
        "属地": ("locality", parse_locality),
        "辅助": ("auxiliary_per_team", lambda v: parse_int(v, "辅助检查人员人数", "auxiliary")),
        "回避上次": ("avoid_last_inspector", lambda v: parse_bool(v, "回避上次")),
        "每人上限": ("max_load", lambda v: parse_int(v, "每人上限", "max load")),
        "标签": ("tag_filter", parse_tags),
        "本年已查": ("once_a_year", parse_once_a_year),
        "特殊多查": ("special_more_often", lambda v: parse_bool(v, "特殊多查")),
        "复查下级": ("recheck_below", lambda v: parse_bool(v, "复查下级")),
        "上级已查": ("skip_checked_above", lambda v: parse_bool(v, "上级已查")),
        "建设项目": ("construction_projects", lambda v: parse_bool(v, "建设项目")),
        "计划": ("plan_id", lambda v: parse_int(v, "计划编号", "plan")),
        "替代": ("replaces", str.strip),
    }
    for key, value in values.items():
        if key not in readers:
            known = "、".join(["名称", "检查期", *TIER_LABELS.values(), *readers])
            raise SpecError(f"不认识「{key}」。可写的项目：{known}。", f"unknown field {key!r}")
        attr, read = readers[key]
        kwargs[attr] = read(value)
    return kwargs


EDIT_USAGE = "修改任务 <任务> 键=值 … 原因=<原因>（如「修改任务 T2026-150100-001 检查期=2026-12-05~2026-12-31 原因=避开节前检查」）"
CANCEL_USAGE = "取消任务 <任务> <原因>"


def parse_edit_line(text: str) -> dict[str, object]:
    """What an edit changes: ``键=值`` tokens, read as in ``新建任务`` (名称 and 检查期 too), as
    ``TaskSpec`` keyword values; quotas only for the tiers given. The drawing organisation and
    the plan's year are not editable here."""
    text = unicodedata.normalize("NFKC", text).strip()
    values: dict[str, str] = {}
    for token in text.split():
        key, sep, value = token.partition("=")
        if not sep or not key or not value:
            raise SpecError(
                f"「{token}」应写成 键=值。用法：{EDIT_USAGE}", f"{token!r}: expected key=value"
            )
        if key in values:
            raise SpecError(f"「{key}」写了两次。", f"{key} given twice")
        values[key] = value
    if not values:
        raise SpecError(f"请写明要修改的项目。用法：{EDIT_USAGE}", "nothing to change")
    if "单位" in values:
        raise SpecError(
            "抽取单位不能修改：请取消该任务，再由该单位新建。", "the drawing organisation is fixed"
        )
    changes: dict[str, object] = {}
    if "名称" in values:
        changes["name"] = values.pop("名称")
    if "检查期" in values:
        changes["check_start"], changes["check_end"] = parse_period(values.pop("检查期"))
    changes.update(read_fields(values))
    return changes


def example_period(today: dt.date) -> tuple[dt.date, dt.date]:
    """The check period of ``example_line``: the rest of this month (or the next month, near
    its end)."""
    start = today + dt.timedelta(days=1)
    following = (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    end = following - dt.timedelta(days=1)
    if (end - start).days < 10:
        end = (following.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(1)
    return start, end


def percent(ratio: Fraction) -> str:
    """A ratio as people write it: 1/4 -> "25%", 1/8 -> "12.5%"."""
    value = ratio * 100
    return f"{value.numerator}%" if value.denominator == 1 else f"{float(value):g}%"


def example_line(
    scope: str, today: dt.date, minimums: Mapping[Tier, Fraction] | None = None
) -> str:
    """A ``新建任务`` line an admin can send as it is: their own scope, ``example_period`` as
    the check period and, given, the Art. 25 minimums in force then (Art. 45) as its ratios."""
    start, end = example_period(today)
    quarter = (start.month - 1) // 3 + 1
    ratios = "".join(f" {TIER_LABELS[t]}={percent(r)}" for t, r in (minimums or {}).items())
    return (
        f"新建任务 {start.year}年第{quarter}季度双随机抽查 范围={scope}{ratios} "
        f"检查期={start.isoformat()}~{end.isoformat()}"
    )
