"""What an import did: counts, the rejected rows and why, in English (CLI) and Chinese (chat),
and the rejected-rows workbook sent back to the user."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from storage.directory.columns import KIND_LABELS, Kind
from storage.spreadsheet import SheetSpec, xlsx_bytes


@dataclass(frozen=True)
class Rejection:
    row: int
    column: str
    reason: str
    value: str = ""


@dataclass(frozen=True)
class Change:
    """One field of one record as the import changes it (or, for ``kept``, would have)."""

    row: int
    key: str
    field: str
    before: Any
    after: Any
    label: str = ""  # the column's Chinese header
    before_zh: str = ""  # the values as the sheet writes them (特殊, 在营, 是)
    after_zh: str = ""

    def text(self) -> str:
        return f"{self.key} {self.field}: {_shown(self.before)} -> {_shown(self.after)}"

    def text_zh(self) -> str:
        return (
            f"{self.key}「{self.label or self.field}」：{_shown(self.before_zh or self.before)} → "
            f"{_shown(self.after_zh or self.after)}"
        )

    def kept_zh(self) -> str:
        return (
            f"{self.key}「{self.label or self.field}」：保留 {_shown(self.before_zh or self.before)}"
            f"（表格为 {_shown(self.after_zh or self.after)}）"
        )


def _shown(value: Any) -> str:
    return "（空）" if value is None or value == "" else str(value)


MAX_CHANGES_KEPT = 1000  # changes listed in a report (all are counted)


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
    # Rows that are the template's example (呼和浩特市示例化工有限公司, 李四/lisi, HB-001): skipped.
    examples_skipped: list[int] = field(default_factory=list)
    # Values edited in chat (or set from an inspection) since the last import, which the file
    # would have replaced: kept unless the import overwrites.
    kept: list[Change] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)  # the first MAX_CHANGES_KEPT
    changed_fields: int = 0
    dry_run: bool = False  # a preview: nothing was saved
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

    def note_change(self, change: Change) -> None:
        self.changed_fields += 1
        if len(self.changes) < MAX_CHANGES_KEPT:
            self.changes.append(change)

    def to_text(self, limit: int = 50) -> str:
        """English, for the CLI (reasons stay in Chinese: they quote the file)."""
        if self.dry_run and self.committed:
            lines = [
                f"Dry run of the import of {self.kind} from {self.file}: it would add "
                f"{self.added}, update {self.updated}, leave {self.unchanged} unchanged, reject "
                f"{self.rejected}. Nothing was saved."
            ]
            lines += [f"  would change {c.text()}" for c in self.changes[:limit]]
            if self.changed_fields > limit:
                lines.append(f"  ... {self.changed_fields} field changes in all")
        elif self.committed:
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
        if self.unknown_headers:
            lines.append("Columns ignored: " + ", ".join(self.unknown_headers))
        if self.examples_skipped:
            rows = ", ".join(map(str, self.examples_skipped))
            lines.append(f"Skipped the template's example row(s): row {rows}.")
        if self.kept:
            lines.append(
                f"Kept {len(self.kept)} value(s) edited in chat since the last import "
                "(--overwrite replaces them):"
            )
            lines += [
                f"  kept {c.key} {c.field} = {_shown(c.before)} (the file says {_shown(c.after)})"
                for c in self.kept[:limit]
            ]
        for r in self.rejections[:limit]:
            shown = f" [{r.value}]" if r.value else ""
            lines.append(f"  row {r.row}, {r.column}: {r.reason}{shown}")
        if len(self.rejections) > limit:
            lines.append(f"  ... and {len(self.rejections) - limit} more")
        return "\n".join(lines)

    def summary_zh(self, limit: int = 5) -> str:
        """Chinese, for chat: counts, the first few reasons; the rest is in the file."""
        label = report_label(self)
        if self.dry_run and self.committed:
            head = (
                f"{label}导入预览（未保存）：将新增 {self.added} 条，更新 {self.updated} 条，"
                f"未变 {self.unchanged} 条，退回 {self.rejected} 行。"
            )
        elif not self.committed:
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
        if self.examples_skipped:
            rows = "、".join(f"第{n}行" for n in self.examples_skipped)
            lines.append(f"{rows}是模板中的示例，已跳过。")
        if self.kept:
            lines.append(
                f"保留了 {len(self.kept)} 处上次导入后在对话中修改的值（表格中的值未采用，"
                "需要以表格为准时勾选「覆盖」重新导入）："
            )
            lines += [f"· {c.kept_zh()}" for c in self.kept[:limit]]
        if self.dry_run:
            lines += [f"· 将修改 {c.text_zh()}" for c in self.changes[:limit]]
            if self.changed_fields > limit:
                lines.append(f"……共 {self.changed_fields} 处修改。")
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
