"""CLI verb `params`: the region's rule parameters by effective date (Art. 24, 25, 45)."""

from __future__ import annotations

import argparse
import datetime as dt

from bot.cli._base import CliError, Verbs, add_action, add_actions, add_verb, database, now
from bot.config import Settings

REFUSALS = {
    "no_reason": "a reason is required (--reason)",
    "not_region_admin": "{by} does not hold the admin role at the region (150000)",
    "in_the_past": "{date} is in the past: figures already computed would change; "
    "add --force to set it anyway",
    "already_set": "{key} is already set from {date}",
}


def register(verbs: Verbs) -> None:
    params = add_verb(verbs, "params", "rule parameters by effective date (Art. 45)", cmd_params)
    actions = add_actions(params, "params_verb")
    setting = add_action(actions, "set", "set a parameter from a date, with a reason (audited)")
    setting.add_argument(
        "key",
        help="ratio_special, ratio_key, ratio_general (e.g. 25%%, 1/4), team_size, "
        "publication_working_days, statistics_table_day (Art. 43: day of the quarter's first "
        "month, 1-28), self_inspection_report_by (Art. 43: MM-DD), or result.<code> to add a "
        "result phrase",
    )
    setting.add_argument("value")
    setting.add_argument("--from", dest="effective_from", required=True, help="YYYY-MM-DD")
    setting.add_argument("--reason", required=True, help="why (the rule that changed)")
    setting.add_argument("--by", required=True, help="USERID holding admin at 150000")
    setting.add_argument(
        "--force", action="store_true", help="allow a date in the past (changes past figures)"
    )
    listing = add_action(actions, "list", "every entry, or the values in force on a date")
    listing.add_argument("--on", help="YYYY-MM-DD: the values in force that day")


def _date(word: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(word)
    except ValueError:
        raise CliError(f"{option} {word!r} is not a date (YYYY-MM-DD)") from None


async def cmd_params(args: argparse.Namespace, settings: Settings) -> int:
    from inspection.params import COUNT_KEYS, DAY_KEY, MONTH_DAY_KEY, stored_value
    from storage import params as store

    async with database(settings) as db, db.transaction() as session:
        if args.params_verb == "list":
            if args.on:
                p = store.rule_params(_date(args.on, "--on"))
                print(f"in force on {args.on} (since {p.effective_from.isoformat()}):")
                for tier, ratio in p.ratios().items():
                    print(f"ratio_{tier.value}\t{ratio}")
                for key in (*COUNT_KEYS, DAY_KEY, MONTH_DAY_KEY):
                    print(f"{key}\t{stored_value(p, key)}")
                for code, phrase in p.extra_result_phrases.items():
                    print(f"result.{code}\t{phrase}")
                return 0
            for e in await store.entries(session):
                print(f"{e.effective_from.isoformat()}\t{e.key}\t{e.value}\t{e.set_by}\t{e.reason}")
            return 0
        at = now()
        try:
            row = await store.set_param(
                session,
                key=args.key,
                value=args.value,
                effective_from=_date(args.effective_from, "--from"),
                reason=args.reason,
                by=args.by,
                now=at,
                today=at.astimezone(settings.tz).date(),
                force=args.force,
            )
        except store.ParamRefused as exc:
            if exc.reason == "bad_value":
                raise CliError(exc.facts["english"]) from None
            raise CliError(REFUSALS[exc.reason].format(**exc.facts)) from None
        print(f"set: {row.key} = {row.value} from {row.effective_from.isoformat()}")
    return 0
