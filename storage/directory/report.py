"""What an import did: counts, the rejected rows and why, in English (CLI) and Chinese (chat),
and the rejected-rows workbook sent back to the user."""

from __future__ import annotations

from dataclasses import dataclass, field

from storage.directory.columns import KIND_LABELS, Kind
from storage.spreadsheet import SheetSpec, xlsx_bytes


@dataclass(frozen=True)
class Rejection:
    row: int
    column: str
    reason: str
    value: str = ""


@dataclass
class ImportReport:
    kind: Kind | str
    file: str
    strict: bool = False
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    unknown_headers: list[str] = field(default_factory=list)
    departments_created: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # English lines for the CLI
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
        if self.committed:
            lines = [
                f"Import of {self.kind} from {self.file}: {self.added} added, "
                f"{self.updated} updated, {self.unchanged} unchanged, {self.rejected} rejected."
            ]
        else:  # what the counts would have been is no fact: say only what happened
            checked = self.added + self.updated + self.unchanged
            lines = [
                f"Import of {self.kind} from {self.file}: nothing was imported (strict mode: "
                f"{self.rejected} rows rejected; the {checked} good rows were not saved)."
            ]
        if self.departments_created and self.committed:
            shown = ", ".join(self.departments_created[:limit])
            more = len(self.departments_created) - limit
            lines.append(
                f"Departments created: {shown}" + (f" and {more} more" if more > 0 else "")
            )
        if self.notes and self.committed:
            lines += self.notes
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
        label = report_label(self)
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


def report_label(report: ImportReport) -> str:
    # Lists outside the directory (imported checks) reuse the report under their own name.
    return KIND_LABELS[report.kind] if isinstance(report.kind, Kind) else "检查记录"


def rejections_file_name(report: ImportReport) -> str:
    return f"{report_label(report)}导入退回明细.xlsx"
