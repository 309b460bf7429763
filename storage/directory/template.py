"""The blank list a bureau fills in: Chinese headers, one valid example row, fill-in notes."""

from __future__ import annotations

from pathlib import Path

from inspection.uscc import make_uscc
from storage.directory.columns import SPECS, Kind, headers
from storage.spreadsheet import Cell, SheetSpec, write_csv, write_xlsx


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
