"""Directory spreadsheets as an official fills them in: rows, files, and their import."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Any

from openpyxl import Workbook

from storage.db import Database
from storage.directory import ImportReport, import_rows

NOW = dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.UTC)


def inspector(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "姓名": "李四",
        "性别": "男",
        "单位": "呼和浩特市生态环境局",
        "所属机构代码": "150100",
        "科室": "执法科",
        "执法证号/工作证号": "15010020150001",
        "证件类型": "执法证",
        "发证日期": "2015-06-01",
        "职务": "科员",
        "联系电话": "13800000000",
        "企业微信账号": "lisi",
        "辅助人员": "否",
        "工作年限": 8,
        "专长": "大气、固废",
        "请假开始": "",
        "请假结束": "",
        "回避对象": "",
    }
    row.update(overrides)
    return row


def item(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "事项编号": "HB-001",
        "抽查事项": "排污许可制度执行情况检查",
        "检查对象范围": "持有排污许可证的排污单位",
        "检查类型": "不定向",
        "检查方式": "现场",
        "检查依据": "《排污许可管理条例》",
        "责任科室": "执法科",
        "所属机构代码": "150100",
    }
    row.update(overrides)
    return row


def write(path: Path, rows: list[dict[str, Any]], encoding: str = "utf-8") -> Path:
    """Header row from the first row's keys; .xlsx via openpyxl, .csv in ``encoding``."""
    names = list(rows[0])
    if path.suffix == ".csv":
        with open(path, "w", encoding=encoding, newline="") as file:
            writer = csv.writer(file)
            writer.writerow(names)
            writer.writerows([[r.get(n, "") for n in names] for r in rows])
        return path
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(names)
    for r in rows:
        sheet.append([r.get(n) for n in names])
    workbook.save(path)
    return path


async def run_import(
    db: Database, kind: str, path: Path, *, strict: bool = False, actor: str = "admin"
) -> ImportReport:
    async with db.transaction() as session:
        return await import_rows(session, kind, path, actor=actor, now=NOW, strict=strict)
