"""Reading and writing the spreadsheets bureaus really use (no database here).

Files are written by the tests themselves: .xlsx with openpyxl's ordinary mode (not our own
writer), .csv in UTF-8, UTF-8 with BOM and GB18030.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook

from storage.directory.rows import OrgIndex
from storage.directory.values import clean_text, parse_date
from storage.spreadsheet import (
    SheetSpec,
    SpreadsheetError,
    detect_encoding,
    formula_cells,
    iter_raw_rows,
    open_table,
    write_csv,
    write_xlsx,
)
from storage.synthetic import organisations

HEADERS = {"单位名称": "name", "统一社会信用代码": "uscc", "成立日期": "established_on"}
TODAY = dt.date(2026, 11, 30)


def xlsx(path: Path, rows: list[list[Any]]) -> Path:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    return path


def csv_file(path: Path, rows: list[list[Any]], encoding: str) -> Path:
    with open(path, "w", encoding=encoding, newline="") as file:
        csv.writer(file).writerows(rows)
    return path


@pytest.mark.parametrize("engine", ["calamine", "openpyxl"])
def test_art11_both_xlsx_readers_give_the_same_cells(tmp_path: Path, engine: str) -> None:
    path = xlsx(
        tmp_path / "t.xlsx",
        [["单位名称", "成立日期", "数量"], ["甲公司", dt.datetime(2015, 6, 1), 3]],
    )
    rows = list(iter_raw_rows(path, engine=engine))  # type: ignore[arg-type]
    assert rows[0] == (1, ["单位名称", "成立日期", "数量"])
    number, cells = rows[1]
    assert number == 2
    assert cells[0] == "甲公司"
    assert parse_date(cells[1], today=TODAY) == dt.date(2015, 6, 1)
    assert cells[2] == 3


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_art11_csv_encoding_is_detected(tmp_path: Path, encoding: str) -> None:
    path = csv_file(
        tmp_path / "t.csv",
        [["单位名称", "统一社会信用代码"], ["乌海市某某焦化有限公司", "X"]],
        encoding,
    )
    with open_table(path, HEADERS, min_matches=2) as table:
        rows = list(table.rows)
    assert rows == [(2, {"name": "乌海市某某焦化有限公司", "uscc": "X"})]


def test_gb18030_is_told_apart_from_utf8() -> None:
    assert detect_encoding("单位名称".encode("gb18030")) == "gb18030"
    assert detect_encoding("单位名称".encode()) == "utf-8"
    assert detect_encoding(b"\xef\xbb\xbf" + "单位名称".encode()) == "utf-8-sig"


def test_header_row_is_found_below_a_title_and_rows_keep_excel_numbers(tmp_path: Path) -> None:
    path = xlsx(
        tmp_path / "t.xlsx",
        [
            ["呼和浩特市检查对象名录库（2026年）"],
            [],
            ["序号", "单位名称 *", "统一社会信用代码（18位）"],
            [1, "甲公司", "A"],
            [],
            [2, "乙公司", "B"],
        ],
    )
    with open_table(path, HEADERS) as table:
        assert table.header_row == 3
        assert table.unknown_headers == ["序号"]
        assert table.headers == {"name": "单位名称 *", "uscc": "统一社会信用代码（18位）"}
        rows = list(table.rows)
    assert [n for n, _ in rows] == [4, 6]


def test_a_file_without_a_recognisable_header_is_refused(tmp_path: Path) -> None:
    path = xlsx(tmp_path / "t.xlsx", [["a", "b"], [1, 2]])
    with pytest.raises(SpreadsheetError, match="表头"), open_table(path, HEADERS):
        pass


def test_other_file_types_are_refused_in_chinese(tmp_path: Path) -> None:
    path = tmp_path / "t.pdf"
    path.write_bytes(b"%PDF")
    with pytest.raises(SpreadsheetError, match="不支持"), open_table(path, HEADERS):
        pass


def test_export_writes_formula_looking_text_as_text(tmp_path: Path) -> None:
    path = tmp_path / "out.xlsx"
    dangerous = ["=1+1", "+86 471 1234567", "-2+3", "@SUM(A1)", '=HYPERLINK("http://x","点我")']
    write_xlsx(path, [SheetSpec("名录", ["值"], [[v] for v in dangerous])])
    assert formula_cells(path) == []
    sheet = load_workbook(path).active
    assert sheet is not None
    cells = [row[0] for row in sheet.iter_rows(min_row=2)]
    assert [c.value for c in cells] == dangerous
    assert all(c.data_type == "s" and c.quotePrefix for c in cells)


def test_csv_export_escapes_formulas_and_the_reader_undoes_it(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    write_csv(path, ["单位名称", "统一社会信用代码"], [["=cmd|' /C calc'!A0", "-1"]])
    assert "'=cmd" in path.read_text(encoding="utf-8-sig")
    with open_table(path, HEADERS) as table:
        assert list(table.rows) == [(2, {"name": "=cmd|' /C calc'!A0", "uscc": "-1"})]


@pytest.mark.parametrize(
    "cell",
    [
        "2015-06-01",
        "2015/6/1",
        "2015年6月1日",
        "2015.06.01",
        "20150601",
        "2015-06-01 00:00:00",
        42156,  # the Excel serial number of 2015-06-01
        42156.0,
        "42156",
        dt.datetime(2015, 6, 1),
        dt.date(2015, 6, 1),
        " ２０１５－０６－０１ ",  # full-width, as typed with a Chinese input method
    ],
)
def test_art11_dates_are_read_in_every_format_bureaus_use(cell: Any) -> None:
    assert parse_date(cell, today=TODAY) == dt.date(2015, 6, 1)


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        ("2023-02-30", "不存在"),
        ("2023/13/01", "不存在"),
        ("2026-12-01", "晚于今天"),
        ("明年", "无法识别"),
        ("1899-12-31", "早于1900年"),
        (True, "不是日期"),
    ],
)
def test_art11_impossible_future_and_unreadable_dates_are_refused(cell: Any, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_date(cell, today=TODAY)


def test_future_dates_are_allowed_where_they_make_sense() -> None:
    assert parse_date("2027-01-05", today=TODAY, allow_future=True) == dt.date(2027, 1, 5)


def test_full_width_characters_and_stray_whitespace_are_normalised() -> None:
    assert clean_text("  呼和浩特市　某某（集团）有限公司\u200b ") == "呼和浩特市某某(集团)有限公司"
    assert clean_text("张  三") == "张三"
    assert clean_text("ABC  Trading\tCo.") == "ABC Trading Co."
    assert clean_text(13800000000.0) == "13800000000"


@pytest.mark.parametrize(
    "written",
    ["150102", "１５０１０２", "新城区", "新城区分局", "呼和浩特市新城区", "150102 新城区分局"],
)
def test_art5_a_banner_or_county_is_given_by_code_or_by_name(written: str) -> None:
    orgs = OrgIndex.build((o.code, o.name, o.parent_code) for o in organisations())
    assert orgs.resolve(written) == "150102"
    assert orgs.resolve("包头市") == "150200"
    assert orgs.resolve("1501021") is None


@pytest.mark.parametrize("engine", ["calamine", "openpyxl"])
def test_a_damaged_workbook_is_refused_in_chinese(tmp_path: Path, engine: str) -> None:
    path = tmp_path / "名录.xlsx"
    path.write_bytes(b"not a zip file at all")
    with pytest.raises(SpreadsheetError, match="无法作为Excel文件读取"):
        list(iter_raw_rows(path, engine=engine))  # type: ignore[arg-type]


def test_control_characters_are_dropped_on_the_way_in_and_out(tmp_path: Path) -> None:
    assert clean_text("甲\x07公司\x00") == "甲公司"
    path = tmp_path / "out.xlsx"
    write_xlsx(path, [SheetSpec("名录", ["值"], [["乙\x1b公司"], ["#N/A"]])])
    sheet = load_workbook(path).active
    assert sheet is not None
    assert [(c.value, c.data_type) for c in sheet["A"][1:]] == [("乙公司", "s"), ("#N/A", "s")]
