"""The three lists' columns: Chinese headers, the names bureaus also use, the fill-in hints.

`SPECS` ties each list (`Kind`) to its columns, its row model and the fields whose changes are
kept in the directory history; the table each list is stored in is `lookups.TABLES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from storage.directory.rows import InspectorRow, ItemRow, Row, TargetRow
from storage.spreadsheet import normalise_header

TAG_PREFIX = "标识"
TAG_FIELD = "tag:"


class Kind(StrEnum):
    """The three lists, named as on the command line."""

    targets = "targets"
    inspectors = "inspectors"
    items = "items"


KIND_LABELS = {Kind.targets: "检查对象", Kind.inspectors: "检查人员", Kind.items: "抽查事项"}


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
    model: type[Row]
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
    Kind.targets: Spec(Kind.targets, TARGET_COLUMNS, TargetRow, TARGET_TRACKED, True),
    Kind.inspectors: Spec(
        Kind.inspectors, INSPECTOR_COLUMNS, InspectorRow, INSPECTOR_TRACKED, True
    ),
    Kind.items: Spec(
        Kind.items,
        ITEM_COLUMNS,
        ItemRow,
        frozenset({"active", "check_type", "method"}),
        False,
    ),
}


def headers(kind: Kind | str) -> list[str]:
    return [c.header for c in SPECS[Kind(kind)].columns]
