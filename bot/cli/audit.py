"""CLI verb `audit`: verify the hash chain of the record, or show its entries."""

from __future__ import annotations

import argparse

from bot.cli._base import Verbs, add_action, add_actions, add_verb, database
from bot.config import Settings


def register(verbs: Verbs) -> None:
    aud = add_verb(verbs, "audit", "the audit record", cmd_audit)
    actions = add_actions(aud, "audit_verb")
    add_action(actions, "verify", "walk the hash chain; name the first bad entry")
    show = add_action(actions, "show", "print entries in order")
    show.add_argument("--subject", default="", help="only entries whose subject starts so")
    show.add_argument("--task", help="a task's history")


async def cmd_audit(args: argparse.Namespace, settings: Settings) -> int:
    from storage import audit

    async with database(settings) as db, db.transaction() as session:
        if args.audit_verb == "verify":
            report = await audit.verify(session)
            if report.ok:
                print(f"audit chain intact: {report.entries} entries")
                return 0
            print(f"audit chain BROKEN at entry {report.first_bad_id}: {report.problem}")
            return 1
        prefix = f"task:{args.task}" if args.task else args.subject
        entries = await audit.history(session, prefix)
        from bot.tools.audit_view import render  # Chinese action names, local times, names

        for line in await render(session, entries, settings.tz):
            print(line)
        if not entries:
            print("no entries" + (f" for {prefix}" if prefix else ""))
    return 0
