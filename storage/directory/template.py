"""The blank list a bureau fills in: Chinese headers, one example row, fill-in notes.

The example row's name starts with EXAMPLE_MARK, and the import skips such rows (and says so):
a bureau that fills in the template below the example, or over it without removing the mark,
never imports 呼和浩特市示例化工有限公司, 李四/lisi or HB-001 as real data."""

from __future__ import annotations

from pathlib import Path

from inspection.uscc import EXAMPLE_USCC
from storage.directory.columns import SPECS, Kind, headers
from storage.spreadsheet import Cell, SheetSpec, write_csv, write_xlsx, xlsx_bytes

EXAMPLE_MARK = "【示例】"
EXAMPLE_NOTE = f"第2行是示例（名称以「{EXAMPLE_MARK}」开头），导入时自动跳过；可删除，也可保留。"


def example_row(kind: Kind | str) -> dict[str, Cell]:
    """A valid row for the template (field -> cell)."""
    kind = Kind(kind)
    if kind is Kind.targets:
        uscc = EXAMPLE_USCC
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


def _row(kind: Kind, marked: bool) -> list[Cell]:
    example = example_row(kind)
    if marked:
        example["name"] = EXAMPLE_MARK + str(example["name"])
    return [example.get(c.field) for c in SPECS[kind].columns]


def _sheets(kind: Kind, marked: bool) -> list[SheetSpec]:
    spec = SPECS[kind]
    notes = [(c.header, "是" if c.required else "", c.hint or "") for c in spec.columns]
    if marked:
        notes.insert(0, ("（示例行）", "", EXAMPLE_NOTE))
    return [
        SheetSpec(spec.label, headers(spec.kind), [_row(kind, marked)]),
        SheetSpec("填写说明", ("列名", "必填", "说明"), notes, (20, 8, 60)),
    ]


def write_template(kind: Kind | str, path: Path | str, *, marked: bool = True) -> None:
    """An empty list with the Chinese headers and one example row (.xlsx or .csv); the row is
    marked as the example (skipped by the import) unless ``marked=False`` (test data)."""
    kind = Kind(kind)
    path = Path(path)
    if path.suffix.lower() == ".csv":
        write_csv(path, headers(kind), [_row(kind, marked)])
        return
    write_xlsx(path, _sheets(kind, marked))


def template_bytes(kind: Kind | str) -> bytes:
    """The .xlsx template, for the upload page's download links."""
    return xlsx_bytes(_sheets(Kind(kind), True))
