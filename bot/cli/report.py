"""CLI verb `report`: the quarterly statistics table, the annual self-inspection report draft,
and the annual counts per target and inspector (Art. 14, 17, 25, 39, 41, 43)."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from bot.cli._base import CliError, Verbs, add_action, add_actions, add_verb, database, now
from bot.config import Settings


def register(verbs: Verbs) -> None:
    verb = add_verb(verbs, "report", "statistics table, annual report, annual counts", cmd_report)
    actions = add_actions(verb, "report_verb")
    quarterly = add_action(actions, "quarterly", "the quarterly statistics table (.xlsx)")
    quarterly.add_argument("--quarter", required=True, type=int, choices=[1, 2, 3, 4])
    annual = add_action(actions, "annual", "the annual self-inspection report draft (.docx)")
    counts = add_action(actions, "counts", "annual counts per target and inspector (.xlsx)")
    for sub in (quarterly, annual, counts):
        sub.add_argument("--org", required=True, help="organisation code, e.g. 150100")
        sub.add_argument("--year", required=True, type=int)
        sub.add_argument("--out", required=True, help="the file to write")
    quarterly.add_argument("--chart", help="also write the coverage chart (.png) here")


def _check_out(path: str, suffix: str) -> Path:
    out = Path(path)
    if out.suffix.lower() != suffix:
        raise CliError(f"{out.name}: the file must end in {suffix}")
    if not out.parent.is_dir():
        raise CliError(f"folder {out.parent} does not exist")
    return out


def _write(out: Path, data: bytes) -> None:
    try:
        out.write_bytes(data)
    except OSError as exc:
        raise CliError(f"cannot write {out}: {exc.strerror}") from None


async def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from inspection.report import quarter_bounds
    from storage import report, report_files
    from storage.models import Organisation
    from storage.repos import Repositories
    from storage.results import work_calendar
    from storage.tasks import rule_params

    suffix = {"quarterly": ".xlsx", "annual": ".docx", "counts": ".xlsx"}[args.report_verb]
    out = _check_out(args.out, suffix)
    chart = _check_out(args.chart, ".png") if getattr(args, "chart", None) else None
    if not 2000 <= args.year <= 2100:
        raise CliError(f"year {args.year} is out of range")
    if args.report_verb == "quarterly":
        start, end = quarter_bounds(args.year, args.quarter)
        period = f"{args.year}年第{args.quarter}季度"
    else:
        start, end = dt.date(args.year, 1, 1), dt.date(args.year + 1, 1, 1)
        period = f"{args.year}年"
    minimums = rule_params(start).ratios()
    tz = settings.tz
    async with database(settings) as db, db.transaction() as session:
        org = await session.get(Organisation, args.org)
        if org is None:
            raise CliError(f"no organisation {args.org}")
        title = f"{org.name}{period}生态环境“双随机、一公开”情况统计表"
        if args.report_verb == "counts":
            units = await Repositories(session).orgs.subtree(org.code)
            targets, people = await report.annual_counts(session, units, args.year, tz)
            _write(out, report_files.counts_xlsx(f"{org.name}{period}检查次数", targets, people))
            print(f"{len(targets)} targets and {len(people)} inspectors written to {out}")
            return 0
        c = settings.calendar  # Art. 37 due days: the packaged schedule plus [calendar]
        cal = work_calendar(tuple(c.holidays), tuple(c.makeup_workdays)).provisional()
        sheets = await report.sheets(session, org.code, start, end, tz, cal)
    if args.report_verb == "annual":
        data = report_files.annual_docx(org.name, args.year, sheets[0], minimums, now().date())
        _write(out, data)
        print(f"annual self-inspection report draft for {org.code} {args.year} written to {out}")
        return 0
    _write(out, report_files.table_xlsx(title, sheets, minimums))
    if chart is not None:
        _write(chart, report_files.coverage_png(title, sheets[0], minimums))
    rows = sum(len(s.rows) for s in sheets)
    print(f"statistics table {period} of {org.code}: {len(sheets)} sheets, {rows} rows, {out}")
    return 0
