"""Spreadsheets in and out: `.xlsx` and `.csv` as bureaus really keep them.

Reading finds the header row (a title row above it is common), maps the Chinese headers to
field names and yields ``(row_number, {field: cell})`` with the row number Excel shows.
`.xlsx` (and old `.xls`) is read with python-calamine by default: 100,000 rows x 23 columns
read in about 3 s, against about 60 s with openpyxl's read-only mode on the same machine
(bench/bench_import.py). `.csv` may be UTF-8 (with or without BOM), UTF-16 with BOM or
GB18030; the encoding is detected.

Writing uses openpyxl's write-only mode. A text cell starting with ``=``, ``+``, ``-``, ``@``
(or a tab / carriage return) is stored as an inline string with the "quote prefix" style, the
same as typing an apostrophe in Excel: shown as text, never evaluated, even after editing.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

Cell = str | int | float | bool | dt.date | dt.datetime | dt.time | dt.timedelta | None
Engine = Literal["calamine", "openpyxl"]

DEFAULT_XLSX_ENGINE: Engine = "calamine"
# Characters that make Excel (or LibreOffice) start a formula; OWASP's CSV-injection list.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# How far down to look for the header row (title rows, notes above the table).
HEADER_SCAN_ROWS = 10
EXCEL_ERRORS = frozenset(
    {"#N/A", "#REF!", "#VALUE!", "#DIV/0!", "#NAME?", "#NUM!", "#NULL!", "#GETTING_DATA"}
)


class SpreadsheetError(ValueError):
    """The file as a whole cannot be read; the message is Chinese, for the user."""


# --- cells ----------------------------------------------------------------------------------


def cell_text(value: Cell) -> str:
    """A cell as the text a user would read in it (numbers without a spurious ``.0``)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def is_blank(value: Cell) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def looks_like_formula(value: str) -> bool:
    return value.startswith(FORMULA_PREFIXES)


def normalise_header(header: Cell) -> str:
    """NFKC, no whitespace, no required-marker ``*``, no trailing ``(hint)``."""
    text = "".join(unicodedata.normalize("NFKC", cell_text(header)).split())
    text = text.strip("*")
    text = re.sub(r"\([^()]*\)$", "", text)
    return text.strip("*").lower()


# --- reading --------------------------------------------------------------------------------


RawRows = Iterator[tuple[int, list[Cell]]]


def _calamine_sheets(path: Path) -> Iterator[tuple[str, Callable[[], RawRows]]]:
    from python_calamine import (
        CalamineError,
        CalamineWorkbook,
        PasswordError,
        SheetTypeEnum,
        SheetVisibleEnum,
    )

    try:
        workbook = CalamineWorkbook.from_path(str(path))
    except PasswordError as exc:
        raise SpreadsheetError("文件设有打开密码：请另存为无密码的文件后再导入") from exc
    except CalamineError as exc:
        raise SpreadsheetError(f"无法作为Excel文件读取「{path.name}」：文件可能已损坏") from exc
    try:
        for index, meta in enumerate(workbook.sheets_metadata):
            if meta.visible == SheetVisibleEnum.Visible and meta.typ == SheetTypeEnum.WorkSheet:

                def rows(index: int = index) -> RawRows:
                    sheet = workbook.get_sheet_by_index(index)
                    # python-calamine yields every row from row 1 but starts each row at the
                    # first used column; pad so column positions match the file.
                    pad: list[Cell] = [None] * sheet.start[1] if sheet.start else []
                    for number, row in enumerate(sheet.iter_rows(), start=1):
                        cells: list[Cell] = list(row)
                        yield number, pad + cells if pad else cells

                yield meta.name, rows
    finally:
        workbook.close()


def _openpyxl_sheets(path: Path) -> Iterator[tuple[str, Callable[[], RawRows]]]:
    from zipfile import BadZipFile

    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (BadZipFile, KeyError, OSError) as exc:
        raise SpreadsheetError(f"无法作为Excel文件读取「{path.name}」：文件可能已损坏") from exc
    try:
        for sheet in workbook.worksheets:
            if getattr(sheet, "sheet_state", "visible") != "visible":
                continue

            def rows(sheet: Any = sheet) -> RawRows:
                # Files written by some tools carry a wrong <dimension>; don't trust it.
                sheet.reset_dimensions()
                for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
                    yield number, list(row)

            yield sheet.title, rows
    finally:
        workbook.close()


def detect_encoding(data: bytes) -> str:
    """UTF-8 (BOM or not), UTF-16 with BOM, else GB18030 (a superset of GBK and GB2312)."""
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return "utf-8"
    try:
        data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise SpreadsheetError("无法识别CSV文件的编码（支持UTF-8、UTF-8 BOM、GB18030）") from exc
    return "gb18030"


def _csv_sheets(path: Path) -> Iterator[tuple[str, Callable[[], RawRows]]]:
    data = path.read_bytes()
    text = data.decode(detect_encoding(data))
    del data
    first_line = text[: text.find("\n")] if "\n" in text else text
    delimiter = max([",", "\t", ";"], key=first_line.count)

    def rows() -> RawRows:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        for number, row in enumerate(reader, start=1):
            # Our own CSV writer escapes formula-looking text with an apostrophe; undo it.
            yield number, [_unquote(c) for c in row]

    yield path.stem, rows


def _unquote(value: str) -> str:
    return value[1:] if value.startswith("'") and looks_like_formula(value[1:]) else value


def _sheets(path: Path, engine: Engine | None) -> Iterator[tuple[str, Callable[[], RawRows]]]:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _csv_sheets(path)
    if suffix in (".xlsx", ".xlsm"):
        chosen = engine or DEFAULT_XLSX_ENGINE
        return _calamine_sheets(path) if chosen == "calamine" else _openpyxl_sheets(path)
    if suffix == ".xls":
        return _calamine_sheets(path)  # calamine reads the old binary format too
    raise SpreadsheetError(f"不支持的文件类型「{path.suffix}」：请使用 .xlsx 或 .csv")


def iter_raw_rows(path: Path, *, engine: Engine | None = None) -> RawRows:
    """Every row of the first visible sheet, numbered as Excel numbers them."""
    for _name, rows in _sheets(Path(path), engine):
        yield from rows()
        return


@dataclass
class SheetTable:
    """A sheet whose header row was recognised."""

    sheet: str
    header_row: int
    fields: list[str | None]  # the field of each column position, None when unknown
    headers: dict[str, str]  # field -> the header as written in the file
    unknown_headers: list[str]
    rows: Iterator[tuple[int, dict[str, Cell]]] = field(repr=False)

    @property
    def present(self) -> frozenset[str]:
        return frozenset(self.headers)


def _map_header(
    header: Cell, header_map: Mapping[str, str], prefixes: Mapping[str, str]
) -> str | None:
    key = normalise_header(header)
    if not key:
        return None
    if key in header_map:
        return header_map[key]
    for prefix, field_prefix in prefixes.items():
        # "标识：夜间生产" -> "tag:夜间生产" (NFKC has turned the full-width colon into ":")
        if key.startswith(prefix + ":") and len(key) > len(prefix) + 1:
            raw = "".join(unicodedata.normalize("NFKC", cell_text(header)).split())
            return field_prefix + raw.split(":", 1)[1]
    return None


def _records(
    rows: RawRows, header_row: int, fields: list[str | None]
) -> Iterator[tuple[int, dict[str, Cell]]]:
    """Data rows as {field: cell}; blank rows skipped; empty cells are None."""
    positions = [position for position, name in enumerate(fields) if name is not None]
    names = [name for name in fields if name is not None]
    last = max(positions, default=-1)
    for number, row in rows:
        if number <= header_row:
            continue
        if len(row) > last:
            values = [row[position] for position in positions]
        else:  # a short row (CSV): the missing cells are empty, not gaps
            values = [row[p] if p < len(row) else None for p in positions]
        if any(not is_blank(v) for v in values):
            yield (
                number,
                {
                    name: None if value == "" else value
                    for name, value in zip(names, values, strict=True)
                },
            )


@contextlib.contextmanager
def open_table(
    path: Path | str,
    header_map: Mapping[str, str],
    *,
    prefixes: Mapping[str, str] | None = None,
    min_matches: int = 2,
    engine: Engine | None = None,
) -> Iterator[SheetTable]:
    """Find the first sheet with a header row (``min_matches`` known headers) and map it.

    ``header_map`` maps normalised headers (see `normalise_header`) to field names;
    ``prefixes`` maps a header prefix such as ``标识`` to a field prefix such as ``tag:``.
    """
    path = Path(path)
    if not path.exists():
        raise SpreadsheetError(f"文件不存在：{path.name}")
    prefixes = prefixes or {}
    sheets = _sheets(path, engine)
    try:
        for name, make_rows in sheets:
            rows = make_rows()
            for number, row in rows:
                if number > HEADER_SCAN_ROWS:
                    break
                fields = [_map_header(h, header_map, prefixes) for h in row]
                known = [f for f in fields if f is not None]
                if len(known) < min_matches:
                    continue
                seen: dict[str, str] = {}
                unknown: list[str] = []
                for header, f in zip(row, fields, strict=True):
                    if f is None:
                        if not is_blank(header):
                            unknown.append(cell_text(header).strip())
                    elif f in seen:
                        raise SpreadsheetError(f"第{number}行的列「{cell_text(header)}」重复")
                    else:
                        seen[f] = cell_text(header).strip()
                yield SheetTable(
                    name, number, fields, seen, unknown, _records(rows, number, fields)
                )
                return
        raise SpreadsheetError("没有找到表头行：请使用模板中的列名（可先导出模板）")
    finally:
        close = getattr(sheets, "close", None)
        if close is not None:
            close()


# --- writing --------------------------------------------------------------------------------


@dataclass
class SheetSpec:
    title: str
    headers: Sequence[str]
    rows: Iterable[Sequence[Cell]]
    widths: Sequence[int] = ()


def _header_width(header: str) -> int:
    # CJK characters are about two Latin characters wide.
    return max(8, sum(2 if ord(c) > 0x2E80 else 1 for c in header) + 2)


class XlsxWriter:
    """A write-only workbook (constant memory): text stays text, dates are dates.

    Rows can be appended one at a time, e.g. while streaming a query.
    """

    def __init__(self) -> None:
        from openpyxl import Workbook

        self.workbook = Workbook(write_only=True)
        self._sheet: Any = None

    def add_sheet(
        self, name: str, headers: Sequence[str], widths: Sequence[int] = (), *, title: str = ""
    ) -> None:
        """A sheet ``name`` with its header row, below a ``title`` row when given."""
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.styles import Font
        from openpyxl.utils import get_column_letter

        sheet = self.workbook.create_sheet(name[:31])
        for position, width in enumerate(widths or [_header_width(h) for h in headers], 1):
            sheet.column_dimensions[get_column_letter(position)].width = width
        sheet.freeze_panes = "A3" if title else "A2"
        bold = Font(bold=True)
        if title:
            heading = WriteOnlyCell(sheet, value=title)
            heading.data_type = "s"  # text, whatever it starts with
            heading.font = Font(bold=True, size=13)
            sheet.append([heading])
        cells = []
        for header in headers:
            cell = WriteOnlyCell(sheet, value=header)
            cell.data_type = "s"
            cell.font = bold
            cells.append(cell)
        sheet.append(cells)
        self._sheet = sheet

    def append(self, row: Sequence[Cell]) -> None:
        self._sheet.append([_write_cell(self._sheet, value) for value in row])

    def save(self, dest: Path | str | IO[bytes]) -> None:
        self.workbook.save(str(dest) if isinstance(dest, str | Path) else dest)


def write_xlsx(dest: Path | str | IO[bytes], sheets: Sequence[SheetSpec]) -> None:
    writer = XlsxWriter()
    for spec in sheets:
        writer.add_sheet(spec.title, spec.headers, spec.widths)
        for row in spec.rows:
            writer.append(row)
    writer.save(dest)


def xlsx_bytes(sheets: Sequence[SheetSpec]) -> bytes:
    buffer = io.BytesIO()
    write_xlsx(buffer, sheets)
    return buffer.getvalue()


def _write_cell(sheet: Any, value: Cell) -> Any:
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    if isinstance(value, str):
        # openpyxl refuses control characters
        text = value if value.isprintable() else str(ILLEGAL_CHARACTERS_RE.sub("", value))
        if not looks_like_formula(text) and text not in EXCEL_ERRORS:
            return text  # openpyxl stores it as a string (cheaper than a cell object)
        cell = WriteOnlyCell(sheet, value=text)
        # openpyxl turns "=..." into a formula (and "#N/A" into an error); force a plain
        # (inline) string, and the quote-prefix style keeps Excel from evaluating it even
        # after the cell is edited.
        cell.data_type = "s"
        cell.quotePrefix = True
        return cell
    if isinstance(value, dt.datetime):
        cell = WriteOnlyCell(sheet, value=value.replace(tzinfo=None))
        cell.number_format = "yyyy-mm-dd hh:mm"
        return cell
    if isinstance(value, dt.date):
        cell = WriteOnlyCell(sheet, value=value)
        cell.number_format = "yyyy-mm-dd"
        return cell
    return value


def write_csv(dest: Path | str, headers: Sequence[str], rows: Iterable[Sequence[Cell]]) -> None:
    """UTF-8 with BOM (so Excel opens it as UTF-8); formula-looking text gets an apostrophe."""
    with open(dest, "w", encoding="utf-8-sig", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(headers)
        for row in rows:
            writer.writerow([csv_cell(v) for v in row])


def csv_cell(value: Cell) -> str:
    """A CSV cell: as typed, but text starting with ``= + - @`` (or a tab or carriage return)
    gets a leading ``'``, so that a spreadsheet opening the file shows it and never evaluates
    it (formula injection). Every CSV of ours written for people goes through here."""
    text = cell_text(value)
    return "'" + text if looks_like_formula(text) else text


def formula_cells(path: Path | str) -> list[str]:
    """Coordinates of every formula cell in a workbook (for tests and checks of our exports)."""
    from openpyxl import load_workbook

    workbook = load_workbook(path)
    try:
        return [
            f"{sheet.title}!{cell.coordinate}"
            for sheet in workbook.worksheets
            for row in sheet.iter_rows()
            for cell in row
            if cell.data_type == "f"
        ]
    finally:
        workbook.close()
