"""CLI verbs `import`, `template` and `export`: the directory (targets, inspectors, check items)
as spreadsheets."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from bot.cli._base import CliError, Verbs, add_verb, database, now, output_file
from bot.config import Settings

if TYPE_CHECKING:
    from storage.directory.report import ImportReport

KINDS = ["targets", "inspectors", "items"]
CHECKS = "inspections"  # checks made before adoption (storage.imported_checks), not a directory


def register(verbs: Verbs) -> None:
    imp = add_verb(
        verbs,
        "import",
        "import targets, inspectors, check items or earlier inspections from .xlsx or .csv",
        cmd_import,
    )
    imp.add_argument("kind", choices=[*KINDS, CHECKS])
    imp.add_argument("file")
    imp.add_argument("--strict", action="store_true", help="commit nothing if any row is bad")
    imp.epilog = (
        "exit 0 when the good rows were saved (the summary counts the rejected ones); "
        "2 when nothing was saved because rows were rejected (--strict, or every row bad)"
    )
    imp.add_argument("--report", help="write the rejected rows to this .xlsx")
    imp.add_argument(
        "--dry-run",
        action="store_true",
        help="show what the import would add and change, field by field; save nothing",
    )
    imp.add_argument(
        "--overwrite",
        action="store_true",
        help="replace values edited in chat since the last import (kept by default)",
    )
    tpl = add_verb(
        verbs,
        "template",
        "write an empty spreadsheet with the headers and one example row",
        cmd_template,
    )
    tpl.add_argument("kind", choices=[*KINDS, CHECKS])
    tpl.add_argument("file", nargs="?")
    exp = add_verb(verbs, "export", "write the current directory as .xlsx", cmd_export)
    exp.add_argument("kind", choices=KINDS)
    exp.add_argument("file", nargs="?")


async def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise CliError(f"file {path} does not exist")
    if args.report:
        output_file(args.report)
    from storage import directory, imported_checks
    from storage.spreadsheet import SpreadsheetError

    if args.kind == CHECKS and (args.dry_run or args.overwrite):
        raise CliError("--dry-run and --overwrite apply to targets, inspectors and items")
    if args.kind == CHECKS and len(path.name) > imported_checks.MAX_SOURCE_FILE:
        raise CliError(  # each check records its file's name, whole
            f"the file name has {len(path.name)} characters; at most "
            f"{imported_checks.MAX_SOURCE_FILE} are kept: rename the file"
        )
    async with database(settings) as db:
        try:
            async with db.transaction() as session:
                at = now()
                if args.kind == CHECKS:
                    report = await imported_checks.import_checks(
                        session,
                        path,
                        actor="cli",
                        now=at,
                        today=at.astimezone(settings.tz).date(),
                        tz=settings.tz,
                        strict=args.strict,
                    )
                else:
                    report = await directory.import_rows(
                        session,
                        args.kind,
                        path,
                        actor="cli",
                        now=at,
                        strict=args.strict,
                        tz=settings.tz,
                        overwrite=args.overwrite,
                    )
                    if args.dry_run:
                        raise _Preview(report)  # rolls the transaction back
        except _Preview as preview:
            report = preview.report
            report.dry_run = True
        except directory.StrictImportError as failed:
            report = failed.report
            report.dry_run = args.dry_run
        except SpreadsheetError as exc:
            raise CliError(f"cannot read {path}: {exc}") from exc
    print(report.to_text())
    _write_report(args, report)
    return 0 if _saved_anything(report) or not report.rejected else 2


class _Preview(Exception):
    """--dry-run: the import ran in a transaction that is now rolled back."""

    def __init__(self, report: ImportReport) -> None:
        super().__init__("dry run")
        self.report = report


def _saved_anything(report: ImportReport) -> bool:
    """Exit 0 when the good rows were saved (the summary counts the rejected ones), 2 when
    rejections left nothing saved: strict mode, or every row rejected."""
    return report.committed and report.added + report.updated + report.unchanged > 0


def _write_report(args: argparse.Namespace, report: ImportReport) -> None:
    if not report.rejected:
        return
    if args.report:
        Path(args.report).write_bytes(report.rejections_xlsx())  # noqa: ASYNC240
        print(f"rejected rows written to {args.report}")
    else:
        print("(--report FILE.xlsx writes the rejected rows to a spreadsheet)")


async def cmd_template(args: argparse.Namespace, settings: Settings) -> int:
    from storage import directory, imported_checks

    path = output_file(args.file or f"{args.kind}-template.xlsx")
    if args.kind == CHECKS:
        imported_checks.write_template(path)
    else:
        directory.write_template(args.kind, path)
    print(f"template written to {path}")
    return 0


async def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from storage import directory

    path = output_file(args.file or f"{args.kind}.xlsx")
    async with database(settings) as db, db.transaction() as session:
        count = await directory.export(session, args.kind, path)
    print(f"{count} rows written to {path}")
    return 0
