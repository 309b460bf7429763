"""CLI verbs `plan`, `task` and `draw` (Art. 20-22, 27-29): create and list plans and tasks,
export a draw's record and verify it by replaying it."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.cli._base import (
    CliError,
    Verbs,
    add_action,
    add_actions,
    add_verb,
    database,
    now,
    output_file,
    refusal_line,
)
from bot.config import Settings
from inspection.quotas import Tier

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from storage.models import Task

ACTOR = "cli"


def register(verbs: Verbs) -> None:
    p = add_verb(verbs, "plan", "annual random-inspection plans (Art. 20, 22)", plan)
    pv = add_actions(p, "plan_verb")
    create = add_action(pv, "create", "create a plan")
    create.add_argument("--org", required=True, help="organisation code, e.g. 150100")
    create.add_argument("--year", type=int, required=True)
    create.add_argument("--name", required=True)
    listing = add_action(pv, "list", "list plans")
    listing.add_argument("--org")
    listing.add_argument("--year", type=int)

    t = add_verb(verbs, "task", "random-inspection tasks (Art. 22)", task)
    tv = add_actions(t, "task_verb")
    create = add_action(tv, "create", "create a task")
    create.add_argument("--org", required=True, help="drawing organisation, e.g. 150100")
    create.add_argument("--name", required=True)
    create.add_argument("--start", required=True, help="check start, 2026-12-01")
    create.add_argument("--end", required=True, help="check end, 2026-12-31")
    create.add_argument("--plan", type=int, help="plan id")
    create.add_argument("--scope", help="organisation codes, comma-separated (default --org)")
    create.add_argument("--draw-date", help="planned draw date")
    for tier in Tier:
        create.add_argument(
            f"--{tier.value}", help=f"{tier.value} targets: ratio (25%%, 1/4) or count (30)"
        )
    create.add_argument("--items", help="check item codes, comma-separated")
    create.add_argument("--focus", help="focus of the checks")
    create.add_argument("--drawing-dept")
    create.add_argument("--checking-depts", help="comma-separated")
    create.add_argument("--initiating-dept", help="joint task: initiating department")
    create.add_argument("--participating-depts", help="joint task: comma-separated")
    create.add_argument("--team-size", type=int, help="qualified members per team (Art. 28)")
    create.add_argument("--kinds", help="certificate kinds counting: enforcement,work")
    create.add_argument("--locality", choices=["same_county", "scope"])
    create.add_argument("--auxiliary", type=int, help="auxiliary members per team (Art. 18)")
    create.add_argument("--max-load", type=int, help="teams per inspector in this draw")
    create.add_argument("--tags", help="directed draw (Art. 26): industry:火电,scale:大型")
    create.add_argument("--no-avoid-last", action="store_true", help="allow last inspector")
    create.add_argument(
        "--keep-inspected", action="store_true", help="refused (Art. 25: once a year is kept)"
    )
    create.add_argument(
        "--special-once", action="store_true", help="Art. 25: special targets once a year too"
    )
    create.add_argument(
        "--recheck-below", action="store_true", help="Art. 30: re-check the levels below's"
    )
    create.add_argument(
        "--skip-checked-above", action="store_true", help="Art. 30: leave out no-problem ones"
    )
    create.add_argument("--no-construction", action="store_true", help="Art. 25(4) off")
    listing = add_action(tv, "list", "list tasks")
    listing.add_argument("--org")
    listing.add_argument("--year", type=int)
    imp = add_action(tv, "import", "create tasks from an .xlsx (one per row)")
    imp.add_argument("file")
    imp.add_argument("--org", help="drawing organisation when the sheet has no 单位 column")

    d = add_verb(verbs, "draw", "export or verify a task's draw", draw)
    dv = add_actions(d, "draw_verb")
    exp = add_action(dv, "export", "write the draw's self-contained JSON record")
    exp.add_argument("task", help="task code, e.g. T2026-150100-001")
    exp.add_argument("file", nargs="?", help="output file (default: standard output)")
    exp.add_argument("--attempt", type=int, help="an earlier draw of the task")
    exp.add_argument(
        "--public",
        action="store_true",
        help="the public export: pseudonyms, secret checks sealed (once inspections are done)",
    )
    ver = add_action(dv, "verify", "replay a draw: MATCH (exit 0) or the first difference")
    ver.add_argument("source", help="an exported JSON file, or a task code")
    ver.add_argument("--attempt", type=int)
    ver.add_argument(
        "--record",
        action="store_true",
        help="FILE: also compare it with this installation's audit record (version, state, "
        "amendments)",
    )


# --- plan ----------------------------------------------------------------------------------------


async def plan(args: argparse.Namespace, settings: Settings) -> int:
    from inspection.taskspec import SpecError
    from storage import tasks as task_store

    async with database(settings) as db, db.transaction() as session:
        if args.plan_verb == "create":
            try:
                p = await task_store.create_plan(
                    session,
                    org_code=args.org,
                    year=args.year,
                    name=args.name,
                    actor=ACTOR,
                    now=now(),
                    today=today(settings),
                )
            except SpecError as exc:
                raise CliError(exc.en) from None
            print(f"plan {p.id} created: {p.year} {p.org_code} {p.name}")
            return 0
        plans = await task_store.list_plans(session, _orgs(args), args.year)
        for p in plans:
            print(f"{p.id}\t{p.year}\t{p.org_code}\t{p.name}")
        if not plans:
            print("no plans")
    return 0


# --- task ----------------------------------------------------------------------------------------

# CLI flag -> the field name of the chat syntax (one parser for both).
TASK_FLAGS = {
    "name": "名称",
    "scope": "范围",
    "special": "特殊",
    "key": "重点",
    "general": "一般",
    "start": "检查开始",
    "end": "检查结束",
    "draw_date": "抽取日",
    "items": "事项",
    "focus": "检查重点",
    "drawing_dept": "抽取科室",
    "checking_depts": "检查科室",
    "initiating_dept": "发起科室",
    "participating_depts": "参与科室",
    "team_size": "组员",
    "kinds": "证件",
    "locality": "属地",
    "auxiliary": "辅助",
    "max_load": "每人上限",
    "tags": "标签",
    "plan": "计划",
}


def task_fields(args: argparse.Namespace) -> dict[str, str]:
    fields = {
        word: str(getattr(args, flag))
        for flag, word in TASK_FLAGS.items()
        if getattr(args, flag, None) is not None
    }
    if args.no_avoid_last:
        fields["回避上次"] = "否"
    if args.keep_inspected:
        fields["本年已查"] = "否"
    if args.special_once:
        fields["特殊多查"] = "否"
    if args.recheck_below:
        fields["复查下级"] = "是"
    if args.skip_checked_above:
        fields["上级已查"] = "是"
    if args.no_construction:
        fields["建设项目"] = "否"
    return fields


async def task(args: argparse.Namespace, settings: Settings) -> int:
    if args.task_verb == "import":
        return await task_import(args, settings)
    from inspection.pool import quotas_from_json
    from inspection.taskspec import SpecError, spec_from_fields
    from storage import tasks as task_store

    async with database(settings) as db, db.transaction() as session:
        if args.task_verb == "create":
            try:
                spec = spec_from_fields(task_fields(args))
                t = await task_store.create_task(
                    session, spec, org_code=args.org, actor=ACTOR, now=now(), today=today(settings)
                )
            except SpecError as exc:
                raise CliError(exc.en) from None
            print(f"task {t.code} created: {t.name}")
            if t.status == "proposed":
                print(f"{t.code} awaits its league/city bureau's approval (Art. 5)")
            warn_calendar(settings, [t])
            return 0
        found = await task_store.list_tasks(session, _orgs(args), args.year)
        for t in found:
            quotas = ",".join(f"{k}={q.label()}" for k, q in quotas_from_json(t.quotas).items())
            print(f"{t.code}\t{t.status}\t{t.check_start}..{t.check_end}\t{quotas}\t{t.name}")
        if not found:
            print("no tasks")
    return 0


def today(settings: Settings) -> dt.date:
    return now().astimezone(settings.tz).date()


def warn_calendar(settings: Settings, created: Sequence[Task]) -> None:
    """Art. 37: a check period in a year the holiday calendar lacks is accepted, with a word."""
    from inspection.taskdates import calendar_warning, covered_years, uncovered_years

    if not created:
        return
    covered = covered_years(settings.calendar.holidays, settings.calendar.makeup_workdays)
    years = sorted(
        {y for t in created for y in uncovered_years(t.check_start, t.check_end, covered)}
    )
    warning = calendar_warning(years)
    if warning:
        print(warning[1], file=sys.stderr)


def _orgs(args: argparse.Namespace) -> list[str] | None:
    return [args.org] if getattr(args, "org", None) else None


IMPORT_HEADERS = {
    "任务名称": "名称",
    "抽取单位": "单位",
    "单位": "单位",
    **{word: word for word in TASK_FLAGS.values()},
    "检查期": "检查期",
    "特殊监管对象": "特殊",
    "重点监管对象": "重点",
    "一般监管对象": "一般",
    "回避上次": "回避上次",
    "本年已查": "本年已查",
    "特殊多查": "特殊多查",
    "复查下级": "复查下级",
    "上级已查": "上级已查",
    "建设项目": "建设项目",
}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value).strip()


async def task_import(args: argparse.Namespace, settings: Settings) -> int:
    """One task per row; the header row names the fields as the chat syntax does (名称, 单位,
    范围, 特殊, 重点, 一般, 检查开始, 检查结束, 事项, ...). All rows or none."""
    from openpyxl import load_workbook

    from inspection.taskspec import SpecError, spec_from_fields
    from storage import tasks as task_store

    path = Path(args.file)
    if not path.is_file():  # noqa: ASYNC240 - a one-shot CLI verb, nothing else runs
        raise CliError(f"file {path} does not exist")
    try:
        sheet = load_workbook(path, read_only=True, data_only=True).worksheets[0]
    except Exception as exc:
        raise CliError(f"{path} is not a readable .xlsx file: {type(exc).__name__}") from None
    rows = list(sheet.iter_rows(values_only=True))
    if not rows:
        raise CliError(f"{path} is empty")
    headers = [_cell(h) for h in rows[0]]
    unknown = [h for h in headers if h and h not in IMPORT_HEADERS]
    if unknown:
        raise CliError(f"unknown column(s): {', '.join(unknown)}")
    created = []
    async with database(settings) as db, db.transaction() as session:
        for n, row in enumerate(rows[1:], start=2):
            fields = {IMPORT_HEADERS[h]: _cell(v) for h, v in zip(headers, row, strict=False) if h}
            if not any(fields.values()):
                continue
            org = fields.pop("单位", "") or args.org
            if not org:
                raise CliError(f"row {n}: no organisation (column 单位, or --org)")
            try:
                spec = spec_from_fields(fields)
                t = await task_store.create_task(
                    session, spec, org_code=org, actor=ACTOR, now=now(), today=today(settings)
                )
            except SpecError as exc:
                raise CliError(f"row {n}: {exc.en}; nothing was imported") from None
            created.append(t)
    for t in created:
        print(f"task {t.code} created")
    print(f"{len(created)} tasks imported from {path}")
    warn_calendar(settings, created)
    return 0


# --- draw ----------------------------------------------------------------------------------------


async def draw(args: argparse.Namespace, settings: Settings) -> int:
    if args.draw_verb == "export":
        return await draw_export(args, settings)
    return await draw_verify(args, settings)


@contextlib.asynccontextmanager
async def _drawn_task(
    settings: Settings, code: str, unknown: str
) -> AsyncIterator[tuple[AsyncSession, Task]]:
    """The task ``code`` in a transaction; CliError(``unknown``) without it, and a refusal of
    the draw as the user's mistake."""
    from storage import draws
    from storage import tasks as task_store

    async with database(settings) as db, db.transaction() as session:
        t = await task_store.get_task(session, code)
        if t is None:
            raise CliError(unknown)
        try:
            yield session, t
        except draws.DrawRefused as exc:
            raise CliError(refusal_line(exc)) from None


async def draw_export(args: argparse.Namespace, settings: Settings) -> int:
    from storage import draws

    if args.file not in (None, "-"):
        output_file(args.file)
    async with _drawn_task(settings, args.task, f"unknown task {args.task!r}") as (session, t):
        if args.public and args.attempt is not None:
            raise CliError("--public exports the task's last draw; leave out --attempt")
        if args.public:
            doc = await draws.public_export(session, t)
        else:
            doc = await draws.export(session, t, args.attempt)
    text = json.dumps(doc, ensure_ascii=False, indent=1, sort_keys=True)
    if args.file in (None, "-"):
        sys.stdout.write(text + "\n")
    else:
        Path(args.file).write_text(text + "\n", encoding="utf-8")  # noqa: ASYNC240
        what = "public export" if args.public else f"draw {doc['attempt']}"
        print(f"{what} of {t.code} written to {args.file}")
    return 0


async def draw_verify(args: argparse.Namespace, settings: Settings) -> int:
    """FILE: replay the export (with --record, also against the audit record). A task code:
    replay the record and check the database's teams."""
    path = Path(args.source)
    if args.source == "-" or path.is_file():  # noqa: ASYNC240
        from inspection import verify as verifying

        try:
            raw = sys.stdin.buffer.read() if args.source == "-" else path.read_bytes()  # noqa: ASYNC240
        except OSError as exc:
            raise CliError(f"cannot read {args.source}: {exc.strerror}") from None
        problem = verifying.verify_bytes(raw)
        if problem is None and args.record:
            problem = await _against_record(settings, json.loads(raw))
    else:
        from storage import draws

        unknown = f"{args.source!r} is neither a file nor a task code"
        async with _drawn_task(settings, args.source, unknown) as (session, t):
            problem = await draws.verify_task(session, t, args.attempt)
    if problem is None:
        print("MATCH")
        return 0
    print(f"MISMATCH: {problem}".encode("utf-8", "backslashreplace").decode("utf-8"))
    return 1


async def _against_record(settings: Settings, doc: dict[str, Any]) -> str | None:
    """A verified export compared with the audit record of the draw it names."""
    from storage.draws.binding import check_binding

    task = doc.get("task")
    code = task.get("code") if isinstance(task, dict) else None
    if not isinstance(code, str):
        return "record: the export names no task"
    async with _drawn_task(settings, code, f"unknown task {code!r}") as (session, t):
        return await check_binding(session, t, doc)
