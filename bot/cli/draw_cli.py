"""Argument parsers of the CLI verbs `plan`, `task` and `draw` (kept light: no storage imports,
so `--help` stays fast); the verbs themselves are in ``bot.cli.draw_commands``."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from bot.cli import Parser, _common
from inspection.quotas import Tier


def add_parsers(verb: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """`plan`, `task` and `draw` sub-commands (``verb`` is build_parser's helper)."""
    p = verb("plan", "annual random-inspection plans (Art. 20, 22)")
    pv = p.add_subparsers(dest="plan_verb", metavar="ACTION", parser_class=Parser)
    pv.required = True
    create = pv.add_parser("create", help="create a plan")
    _common(create)
    create.add_argument("--org", required=True, help="organisation code, e.g. 150100")
    create.add_argument("--year", type=int, required=True)
    create.add_argument("--name", required=True)
    listing = pv.add_parser("list", help="list plans")
    _common(listing)
    listing.add_argument("--org")
    listing.add_argument("--year", type=int)

    t = verb("task", "random-inspection tasks (Art. 22)")
    tv = t.add_subparsers(dest="task_verb", metavar="ACTION", parser_class=Parser)
    tv.required = True
    create = tv.add_parser("create", help="create a task")
    _common(create)
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
        "--keep-inspected-general", action="store_true", help="Art. 25: do not skip them"
    )
    create.add_argument(
        "--skip-checked-above", action="store_true", help="Art. 30: leave out no-problem ones"
    )
    create.add_argument("--no-construction", action="store_true", help="Art. 25(4) off")
    listing = tv.add_parser("list", help="list tasks")
    _common(listing)
    listing.add_argument("--org")
    listing.add_argument("--year", type=int)
    imp = tv.add_parser("import", help="create tasks from an .xlsx (one per row)")
    _common(imp)
    imp.add_argument("file")
    imp.add_argument("--org", help="drawing organisation when the sheet has no 单位 column")

    d = verb("draw", "export or verify a task's draw")
    dv = d.add_subparsers(dest="draw_verb", metavar="ACTION", parser_class=Parser)
    dv.required = True
    exp = dv.add_parser("export", help="write the draw's self-contained JSON record")
    _common(exp)
    exp.add_argument("task", help="task code, e.g. T2026-150100-001")
    exp.add_argument("file", nargs="?", help="output file (default: standard output)")
    exp.add_argument("--attempt", type=int, help="an earlier draw of the task")
    ver = dv.add_parser("verify", help="replay a draw: MATCH (exit 0) or the first difference")
    _common(ver)
    ver.add_argument("source", help="an exported JSON file, or a task code")
    ver.add_argument("--attempt", type=int)
