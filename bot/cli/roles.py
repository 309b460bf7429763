"""CLI verb `role`: grant, revoke or list role bindings."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from bot.cli._base import CliError, Verbs, add_action, add_actions, add_verb, database, now
from bot.config import Settings

if TYPE_CHECKING:
    from bot.chat.context import Role
    from storage.repos import Repositories


def register(verbs: Verbs) -> None:
    role = add_verb(verbs, "role", "grant, revoke or list role bindings", cmd_role)
    actions = add_actions(role, "role_verb")
    for action in ("grant", "revoke"):
        sub = add_action(actions, action, f"{action} a role")
        sub.add_argument("userid")
        sub.add_argument("role", help="admin, chief, publisher or enforcement")
        sub.add_argument("org", help="organisation code (GB/T 2260), e.g. 150100")
        sub.add_argument("--dept", default="", help="department code inside the organisation")
        if action == "grant":
            sub.add_argument("--name", default="", help="the person's name, shown in messages")
    listing = add_action(actions, "list", "list role bindings")
    listing.add_argument("--org", help="only this organisation")


def _role(word: str) -> Role:
    from bot.chat.context import GRANTABLE

    role = next((r for r in GRANTABLE if r.value == word), None)
    if role is None:
        raise CliError(
            f"unknown role {word!r}; choose one of {', '.join(r.value for r in GRANTABLE)}"
        )
    return role


def _userid(text: str) -> None:
    """The same check as the inspector directory's 企业微信账号 column."""
    from storage.directory.values import wecom_userid

    try:
        if wecom_userid(text) is not None:
            return
    except ValueError:
        pass
    raise CliError(f"{text!r} is not a WeCom userid (letters, digits, _ . @ -, at most 64)")


async def _department(repos: Repositories, org: str, given: str) -> str:
    """A department of the organisation, by code or name (as the import reads it): its code."""
    if not given:
        return ""
    code, known = await repos.orgs.department(org, given)
    if code is None:
        listed = ", ".join(known) or "none yet"
        raise CliError(f"unknown department {given!r} at {org} (its departments: {listed})")
    return code


async def cmd_role(args: argparse.Namespace, settings: Settings) -> int:
    from storage import audit
    from storage.repos import Repositories

    async with database(settings) as db, db.transaction() as session:
        repos = Repositories(session)
        if args.role_verb == "list":
            bindings = await repos.roles.all([args.org] if args.org else None)
            for b in bindings:
                dept = f" dept={b.dept_code}" if b.dept_code else ""
                name = f" ({b.name})" if b.name else ""
                print(f"{b.userid}{name}\t{b.role}\t{b.org_code}{dept}\tgranted by {b.granted_by}")
            if not bindings:
                print("no role bindings")
            return 0
        role = _role(args.role)
        if await repos.orgs.get(args.org) is None:
            raise CliError(f"unknown organisation code {args.org!r} (e.g. 150000, 150100)")
        at = now()
        if args.role_verb == "grant":
            _userid(args.userid)
            args.dept = await _department(repos, args.org, args.dept)
            if len(args.name) > 40:
                raise CliError("--name is at most 40 characters")
            changed = await repos.roles.grant(
                args.userid, role, args.org, args.dept, "cli", at, name=args.name
            )
            verb = "granted" if changed else "already had"
        else:
            changed = await repos.roles.revoke(args.userid, role, args.org, args.dept)
            if not changed:
                raise CliError(f"{args.userid} has no {role.value} role at {args.org}")
            verb = "revoked"
        if changed:
            await audit.append(
                session,
                at=at,
                actor="cli",
                action=f"role.{args.role_verb}",
                subject=f"user:{args.userid}",
                payload={"role": role.value, "org": args.org, "dept": args.dept},
            )
        print(f"{verb}: {args.userid} {role.value} at {args.org}")
    return 0
