"""CLI verb `publish export`: the published results (一公开, Art. 37) as a file for the bureau's
portal or the designated platform: .xlsx, .csv (UTF-8 with BOM, opens in Excel) or .json, chosen
by the file's extension, with stable column names: every published result of the units and
year, on the bot's page or on the portal (column ``published_on``, ``published_url``), with
nothing internal (secret checks only counted: ``withheld`` in the JSON, the xlsx title)."""

from __future__ import annotations

import argparse
from pathlib import Path

from bot.cli._base import CliError, Verbs, add_action, add_actions, add_verb, database
from bot.config import Settings

FORMATS = (".xlsx", ".csv", ".json")


def register(verbs: Verbs) -> None:
    verb = add_verb(verbs, "publish", "the published results (一公开) as a file", cmd_publish)
    actions = add_actions(verb, "publish_verb")
    export = add_action(actions, "export", "write the published results as .xlsx, .csv or .json")
    export.add_argument("--org", required=True, help="organisation code; its units included")
    export.add_argument("--year", required=True, type=int)
    export.add_argument("--task", help="only this task")
    export.add_argument("file", help="FILE.xlsx, FILE.csv or FILE.json")


async def cmd_publish(args: argparse.Namespace, settings: Settings) -> int:
    from storage import public
    from storage.models import Organisation
    from storage.repos import Repositories

    out = Path(args.file)
    if out.suffix.lower() not in FORMATS:
        raise CliError(f"{out.name}: the file must end in {', '.join(FORMATS)}")
    if not out.parent.is_dir():  # noqa: ASYNC240 - before the loop has work to do
        raise CliError(f"folder {out.parent} does not exist")
    async with database(settings) as db, db.transaction() as session:
        org = await session.get(Organisation, args.org)
        if org is None:
            raise CliError(f"no organisation {args.org}")
        units = await Repositories(session).orgs.subtree(org.code)
        task = args.task.strip().upper() if args.task else None
        found = await public.published_lines(session, units, args.year, task, settings.tz)
    lines, columns = found.lines, public.EXPORT_COLUMNS
    match out.suffix.lower():
        case ".json":
            text = public.json_text(org.code, org.name, args.year, lines, found.withheld, columns)
            data = text.encode("utf-8")
        case ".csv":
            data = public.csv_bytes(lines, columns)
        case _:
            title = f"{org.name} {args.year}年双随机抽查结果公示"
            data = public.xlsx_bytes(title, lines, found.withheld, columns)
    try:
        out.write_bytes(data)  # noqa: ASYNC240 - one small file at the end of a CLI verb
    except OSError as exc:
        raise CliError(f"cannot write {out}: {exc.strerror}") from None
    print(f"{len(lines)} published results of {org.code} in {args.year} written to {out}")
    return 0
