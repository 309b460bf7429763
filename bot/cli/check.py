"""CLI verb `check`: is this installation ready to serve? The configuration (already validated
when it was loaded), the keys `serve` needs, the database and its schema, and a WeCom access
token fetched with the configured credentials, through the configured proxy. One line per
problem; exit 0 when all is well, 2 otherwise."""

from __future__ import annotations

import argparse
import sys

from bot.cli._base import CliError, Verbs, add_verb, database
from bot.config import Settings

# What WeCom's gettoken answers when the credentials are wrong, and which key to look at.
TOKEN_REFUSALS = {
    40001: "wecom.secret",  # invalid credential
    40013: "wecom.corp_id",  # invalid corpid
    40091: "wecom.secret",  # secret is invalid
}


def register(verbs: Verbs) -> None:
    add_verb(
        verbs,
        "check",
        "check the configuration, the database and the WeCom credentials; one line per problem",
        cmd_check,
    )


async def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    problems = [f"config key {key} is missing" for key in settings.wecom.missing()]
    problems += await _database(settings)
    if settings.wecom.corp_id and settings.wecom.secret.get_secret_value():
        problems += await _wecom_token(settings)
    for problem in problems:
        print(f"shuangsuiji: check: {problem}", file=sys.stderr)
    if problems:
        return 2
    print("ok: configuration, database and WeCom access token")
    return 0


async def _database(settings: Settings) -> list[str]:
    from storage import migrate

    try:
        async with database(settings, upgrade=False) as db:
            revision = await migrate.current_revision(db)
    except CliError as exc:
        return [str(exc)]
    head = migrate.head_revision()
    if revision != head:
        return [f"database is at revision {revision}, this version needs {head}: run migrate"]
    print(f"ok: database at revision {revision}")
    return []


async def _wecom_token(settings: Settings) -> list[str]:
    import aiohttp

    from bot.wecom.api import NETWORK_ERRCODE, WeComClient, WeComError

    w = settings.wecom
    async with aiohttp.ClientSession() as http:
        client = WeComClient(
            http,
            corp_id=w.corp_id,
            secret=w.secret.get_secret_value(),
            agent_id=w.agent_id,
            api_base=w.api_base,
            max_attempts=1,
            timeout=10.0,
            proxy=w.proxy,
        )
        try:
            await client.token()
        except WeComError as exc:
            if exc.errcode == NETWORK_ERRCODE:
                via = f" through proxy {w.proxy}" if w.proxy else ""
                return [f"WeCom API at {w.api_base} is unreachable{via}: {exc.errmsg}"]
            key = TOKEN_REFUSALS.get(exc.errcode)
            blame = f"; check {key}" if key else ""
            return [f"WeCom refused the access token: errcode {exc.errcode} ({exc.errmsg}){blame}"]
    print(f"ok: WeCom access token for {w.corp_id} from {w.api_base}")
    return []
