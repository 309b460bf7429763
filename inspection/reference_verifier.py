#!/usr/bin/env python3
"""Reference verifier for random draws (双随机抽取), algorithm versions 1 and 2.

Standalone on purpose: Python 3.11 standard library only, nothing from the project, so anyone
can check a published draw with this one file. It reads an export document (JSON), recomputes
the commitment, the pool fingerprint, the seed and the whole draw, and prints MATCH or the
first difference.

    python reference_verifier.py draw.json      # or "-" to read standard input

A public export (``"kind": "public"``, section 18: people under pseudonyms, secret checks
sealed) is checked by its own rules. Exit status 0 on MATCH, 1 otherwise. Written for clarity, not speed: the inspector cycle is
walked one position at a time, exactly as DRAW_ALGORITHM.md states it.
"""

from __future__ import annotations

import hashlib
import json
import sys
from typing import Any

VERSION = 2
VERSIONS = (1, 2)
TIERS = ("special", "key", "general")
LOCALITIES = ("same_county", "scope")
STATUSES = ("drawn", "superseded", "failed", "abandoned")
ERROR_REASONS = ("pool_too_small", "team_unfilled")
PARTS = ("random", "construction")
HEX64 = frozenset("0123456789abcdef")
# Members of the export a verifier reads (section 9, 13, 14) and the informative ones it skips.
REQUIRED_V2 = (
    "algorithm_version",
    "input",
    "secret_hex",
    "witness",
    "commitment",
    "fingerprint",
    "result",
    "status",
    "witnessed",
    "error",
    "construction",
    "amendments",
    "amendments_head",
    "exclusions",
)
REQUIRED_V1 = (
    "algorithm_version",
    "input",
    "secret_hex",
    "witness",
    "commitment",
    "fingerprint",
    "result",
)
INFORMATIVE = (
    "task",
    "attempt",
    "committed_at",
    "drawn_at",
    "redraw_reason",
    "approved_by",
    "summary",
    "exclusions",
)
AMENDMENT_FIELDS = (
    "seq",
    "kind",
    "part",
    "target_key",
    "leaving",
    "excluded",
    "replacement",
    "reason",
    "approved_by",
    "at",
)
# Section 13: a merge (Art. 19) names the other task's visit that takes this one's items.
MERGE_FIELDS = ("seq", "kind", "part", "target_key", "into", "reason", "approved_by", "at")
# Section 4, exclusions: the reasons of each kind, and the evidence each reason carries.
TARGET_REASONS = ("deregistered", "inspected_this_year", "checked_above", "construction_due")
INSPECTOR_REASONS = (
    "no_userid",
    "inactive",
    "on_leave",
    "certificate_kind",
    "department",
    "auxiliary_not_wanted",
)


class Invalid(Exception):
    """The document is malformed, or the draw it describes cannot be made."""


class Failed(Invalid):
    """The draw itself fails (section 14): ``reason`` and where."""

    def __init__(self, message: str, reason: str, target_key: str | None, tier: str | None):
        super().__init__(message)
        self.reason = reason
        self.target_key = target_key
        self.tier = tier


# --- the JSON dialect (section 15) --------------------------------------------------------


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for name, value in pairs:
        if name in obj:
            raise Invalid(f"json: duplicate member {name!r}")
        obj[name] = value
    return obj


def _no_constant(name: str) -> Any:
    raise Invalid(f"json: {name} is not JSON")


def check_strings(value: Any, path: str = "document") -> None:
    """Every string (member names too) must be encodable as UTF-8: no lone surrogates."""
    stack = [(value, path)]
    while stack:
        v, where = stack.pop()
        if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))):
            raise Invalid(f"{where}: not a number")
        if isinstance(v, str):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                raise Invalid(f"{where}: a string with a lone surrogate") from None
        elif isinstance(v, dict):
            for name, item in v.items():
                stack.append((name, where))
                stack.append((item, f"{where}.{name}"))
        elif isinstance(v, list):
            stack.extend((item, f"{where}[{n}]") for n, item in enumerate(v))


def parse(raw: bytes) -> Any:
    """Read an export: UTF-8 without BOM, no duplicate members, no NaN or Infinity."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raise Invalid("json: a byte order mark before the document")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid("json: not UTF-8") from None
    try:
        doc = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except ValueError as e:
        raise Invalid(f"json: {e}") from None
    check_strings(doc)
    return doc


# --- hashing ------------------------------------------------------------------------------


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def score(seed: bytes, label: str, key: str) -> bytes:
    return sha256(seed + b"\x00" + label.encode("utf-8") + b"\x00" + key.encode("utf-8"))


def seed_of(secret: bytes, witness: str | None, version: int = VERSION) -> bytes:
    """Section 2: version 2 marks the witness form with one byte (0x01 and the value, or 0x00
    alone), so no value can pass for its absence; version 1 used the word "unwitnessed"."""
    if version == 1:
        tail = b"unwitnessed" if witness is None else witness.encode("utf-8")
    else:
        tail = b"\x00" if witness is None else b"\x01" + witness.encode("utf-8")
    return sha256(secret + b"\x00" + tail)


def construction_seed_of(seed: bytes) -> bytes:
    return sha256(seed + b"\x00" + b"construction")


def chain_start(commitment: str) -> str:
    return sha256(b"amendments\x00" + commitment.encode("ascii")).hex()


def chain_next(head: str, amendment: dict[str, Any]) -> str:
    return sha256(bytes.fromhex(head) + canonical(amendment)).hex()


# --- reading the input --------------------------------------------------------------------


def field(obj: Any, name: str, kind: type | tuple[type, ...], where: str) -> Any:
    """``obj[name]``, of exactly the JSON type asked: true is not a number, 1 is not true,
    2.0 is not an integer."""
    if not isinstance(obj, dict) or name not in obj:
        raise Invalid(f"{where}: missing field {name!r}")
    value = obj[name]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if type(value) not in kinds:
        raise Invalid(f"{where}.{name}: unexpected value {value!r}")
    return value


def exact_members(obj: Any, names: tuple[str, ...], where: str, optional: tuple[str, ...] = ()):
    if not isinstance(obj, dict):
        raise Invalid(f"{where}: expected an object")
    for name in names:
        if name not in obj:
            raise Invalid(f"{where}: missing field {name!r}")
    for name in obj:
        if name not in names and name not in optional:
            raise Invalid(f"{where}.{name}: not a field of this object")


def hex64(obj: Any, name: str, where: str) -> str:
    value = field(obj, name, str, where)
    if len(value) != 64 or not set(value) <= HEX64:
        raise Invalid(f"{where}.{name}: expected 64 lower-case hexadecimal digits")
    return value


def natural(obj: Any, name: str, where: str, least: int) -> int:
    value = field(obj, name, int, where)
    if value < least:
        raise Invalid(f"{where}.{name}: must be at least {least}")
    return value


def string_list(obj: Any, name: str, where: str) -> list[str]:
    values = field(obj, name, list, where)
    if not all(type(v) is str for v in values):
        raise Invalid(f"{where}.{name}: expected a list of strings")
    if len(set(values)) != len(values):
        raise Invalid(f"{where}.{name}: a string twice")
    return sorted(values)


TARGET_FIELDS = ("key", "tier", "org", "on_positive_list")
INSPECTOR_FIELDS = (
    "key",
    "userid",
    "org",
    "certificate_kind",
    "auxiliary",
    "conflicts",
    "last_inspected",
)
POLICY_FIELDS = (
    "team_size",
    "qualifying_kinds",
    "locality",
    "auxiliary_per_team",
    "avoid_last_inspector",
    "max_load",
)


def canonical_input(raw: Any, version: int = VERSION, where: str = "input") -> dict[str, Any]:
    """Section 4: the input checked member by member, sorted, every field explicit."""
    members = ("targets", "inspectors", "counts", "policy")
    exact_members(raw, members + (("entities",) if version >= 2 else ()), where)
    targets = []
    for n, t in enumerate(field(raw, "targets", list, where)):
        at = f"{where}.targets[{n}]"
        exact_members(t, TARGET_FIELDS, at)
        tier = field(t, "tier", str, at)
        if tier not in TIERS:
            raise Invalid(f"{at}.tier: unknown tier {tier!r}")
        targets.append(
            {
                "key": field(t, "key", str, at),
                "tier": tier,
                "org": field(t, "org", str, at),
                "on_positive_list": field(t, "on_positive_list", bool, at),
            }
        )
    inspectors = []
    for n, i in enumerate(field(raw, "inspectors", list, where)):
        at = f"{where}.inspectors[{n}]"
        exact_members(i, INSPECTOR_FIELDS, at)
        inspectors.append(
            {
                "key": field(i, "key", str, at),
                "userid": field(i, "userid", str, at),
                "org": field(i, "org", str, at),
                "certificate_kind": field(i, "certificate_kind", str, at),
                "auxiliary": field(i, "auxiliary", bool, at),
                "conflicts": string_list(i, "conflicts", at),
                "last_inspected": string_list(i, "last_inspected", at),
            }
        )
    for what, items in (("target", targets), ("inspector", inspectors)):
        keys = [x["key"] for x in items]
        if len(set(keys)) != len(keys):
            raise Invalid(f"{where}: duplicate {what} key")
    raw_counts = field(raw, "counts", dict, where)
    exact_members(raw_counts, TIERS if version >= 2 else (), f"{where}.counts", TIERS)
    counts = {
        tier: natural(raw_counts, tier, f"{where}.counts", 0) if tier in raw_counts else 0
        for tier in TIERS
    }
    p = field(raw, "policy", dict, where)
    at = f"{where}.policy"
    exact_members(p, POLICY_FIELDS, at)
    policy = {
        "team_size": natural(p, "team_size", at, 1),
        "qualifying_kinds": string_list(p, "qualifying_kinds", at),
        "locality": field(p, "locality", str, at),
        "auxiliary_per_team": natural(p, "auxiliary_per_team", at, 0),
        "avoid_last_inspector": field(p, "avoid_last_inspector", bool, at),
        "max_load": field(p, "max_load", (int, type(None)), at),
    }
    if policy["locality"] not in LOCALITIES:
        raise Invalid(f"{at}.locality: unknown value {policy['locality']!r}")
    if policy["max_load"] is not None and policy["max_load"] < 1:
        raise Invalid(f"{at}.max_load: must be at least 1")
    out = {
        "targets": sorted(targets, key=lambda x: x["key"]),
        "inspectors": sorted(inspectors, key=lambda x: x["key"]),
        "counts": counts,
        "policy": policy,
    }
    if version >= 2:
        out["entities"] = read_entities(raw, {t["key"] for t in targets}, where)
    return out


def read_entities(raw: dict[str, Any], keys: set[str], where: str) -> list[list[str]]:
    """Section 4: groups of two or more target keys of one market entity, no key twice."""
    groups = field(raw, "entities", list, where)
    seen: set[str] = set()
    out = []
    for n, group in enumerate(groups):
        at = f"{where}.entities[{n}]"
        if type(group) is not list or not all(type(k) is str for k in group):
            raise Invalid(f"{at}: expected a list of target keys")
        if len(set(group)) != len(group) or len(group) < 2:
            raise Invalid(f"{at}: a group is two or more distinct target keys")
        for k in group:
            if k not in keys:
                raise Invalid(f"{at}: {k!r} is not a target of the input")
            if k in seen:
                raise Invalid(f"{at}: {k!r} is in two groups")
            seen.add(k)
        out.append(sorted(group))
    return sorted(out)


# --- the draw -----------------------------------------------------------------------------


def may_serve(
    person: dict[str, Any],
    target: dict[str, Any],
    policy: dict[str, Any],
    on_team: set[str],
    loads: dict[str, int],
    sites: list[str] | None = None,
) -> bool:
    """Section 8, rules 1-5, for the visit whose first site is ``target`` (rules 1 and 2 look
    at every site of the visit, rule 3 at the first)."""
    keys = sites or [target["key"]]
    if any(k in person["conflicts"] for k in keys):
        return False
    if policy["avoid_last_inspector"] and any(k in person["last_inspected"] for k in keys):
        return False
    if policy["locality"] == "same_county" and person["org"] != target["org"]:
        return False
    max_load = policy["max_load"]
    if max_load is not None and loads.get(person["userid"], 0) >= max_load:
        return False
    return person["userid"] not in on_team


def take(
    cycle: list[dict[str, Any]],
    cursor: int,
    need: int,
    target: dict[str, Any],
    policy: dict[str, Any],
    on_team: set[str],
    loads: dict[str, int],
    sites: list[str],
) -> tuple[list[str], int]:
    """Take ``need`` people walking one full turn from ``cursor``; return them and the new cursor."""
    if need == 0:
        return [], cursor
    chosen: list[str] = []
    for step in range(len(cycle)):
        position = (cursor + step) % len(cycle)
        person = cycle[position]
        if may_serve(person, target, policy, on_team, loads, sites):
            chosen.append(person["key"])
            on_team.add(person["userid"])
            if len(chosen) == need:
                return chosen, (position + 1) % len(cycle)
    raise Failed(
        f"the team of target {target['key']!r} cannot be filled",
        "team_unfilled",
        target["key"],
        None,
    )


def persons(inspectors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Version 2, section 7: each entry of a person carries the union of the conflicts and of
    the last inspections of all that person's entries."""
    conflicts: dict[str, set[str]] = {}
    last: dict[str, set[str]] = {}
    for i in inspectors:
        conflicts.setdefault(i["userid"], set()).update(i["conflicts"])
        last.setdefault(i["userid"], set()).update(i["last_inspected"])
    return [
        {
            **i,
            "conflicts": sorted(conflicts[i["userid"]]),
            "last_inspected": sorted(last[i["userid"]]),
        }
        for i in inspectors
    ]


def one_each(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Version 2, section 7: per person, the entry with the smallest key."""
    best: dict[str, dict[str, Any]] = {}
    for i in entries:
        if i["userid"] not in best or i["key"] < best[i["userid"]]["key"]:
            best[i["userid"]] = i
    return list(best.values())


def run_draw(
    inp: dict[str, Any],
    seed: bytes,
    version: int = VERSION,
    loads: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Sections 6-8; ``loads`` are the teams per person the draw starts from (section 12)."""
    policy = inp["policy"]
    drawn = []
    for tier in TIERS:
        label = "target:" + tier
        pool = [t for t in inp["targets"] if t["tier"] == tier]
        count = inp["counts"][tier]
        if count > len(pool):
            raise Failed(
                f"tier {tier}: pool of {len(pool)} is smaller than the count {count}",
                "pool_too_small",
                None,
                tier,
            )
        ranked = sorted(pool, key=lambda t: (score(seed, label, t["key"]), t["key"]))
        for rank, t in enumerate(ranked[:count], start=1):
            drawn.append((score(seed, label, t["key"]), t, rank))
    drawn.sort(key=lambda d: (d[0], d[1]["key"]))

    def ranking(label: str, people: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(people, key=lambda i: (score(seed, label, i["key"]), i["key"]))

    qualifying = set(policy["qualifying_kinds"])
    everyone = persons(inp["inspectors"]) if version >= 2 else inp["inspectors"]
    main_entries = [
        i for i in everyone if not i["auxiliary"] and i["certificate_kind"] in qualifying
    ]
    aux_entries = [i for i in everyone if i["auxiliary"]]
    if version >= 2:
        main_entries, aux_entries = one_each(main_entries), one_each(aux_entries)
    main = ranking("inspector", main_entries)
    aux = ranking("auxiliary", aux_entries)
    return walk_teams(drawn, main, aux, policy, version, inp.get("entities", []), loads)


def visits_of(
    drawn: list[tuple[bytes, dict[str, Any], int]], entities: list[list[str]]
) -> list[list[dict[str, Any]]]:
    """Section 8: the drawn targets of one market entity (one group of ``entities``, or the
    target alone) make one visit, at the place of its first site in walk order."""
    group = {}
    for n, keys in enumerate(entities):
        for k in keys:
            group[k] = f"group {n}"
    visits: dict[str, list[dict[str, Any]]] = {}
    for _, target, _ in drawn:
        visits.setdefault(group.get(target["key"], "key " + target["key"]), []).append(target)
    return list(visits.values())


def loads_of(inp: dict[str, Any], result: dict[str, Any]) -> dict[str, int]:
    """Teams per person in a result as it stands; a merged visit's team counts for nobody."""
    userid = {i["key"]: i["userid"] for i in inp["inspectors"]}
    loads: dict[str, int] = {}
    for t in result["teams"]:
        if t.get("merged_into") is None:
            for u in {userid[k] for k in t["members"] + t["auxiliary"]}:
                loads[u] = loads.get(u, 0) + 1
    return loads


def walk_teams(
    drawn: list[tuple[bytes, dict[str, Any], int]],
    main: list[dict[str, Any]],
    aux: list[dict[str, Any]],
    policy: dict[str, Any],
    version: int,
    entities: list[list[str]] | None = None,
    start: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Section 8: the visits in walk order, each given its team from the cycles."""
    cursor = aux_cursor = 0
    loads: dict[str, int] = dict(start or {})
    selected = []
    teams = []
    visits = visits_of(drawn, entities or []) if version >= 2 else [[t] for _, t, _ in drawn]
    for visit in visits:
        target = visit[0]
        sites = [t["key"] for t in visit]
        on_team: set[str] = set()
        members, cursor = take(
            main, cursor, policy["team_size"], target, policy, on_team, loads, sites
        )
        helpers, aux_cursor = take(
            aux, aux_cursor, policy["auxiliary_per_team"], target, policy, on_team, loads, sites
        )
        for userid in on_team:
            loads[userid] = loads.get(userid, 0) + 1
        team = {"target_key": target["key"], "members": members, "auxiliary": helpers}
        team["replaced"] = []
        if version >= 2:
            team["sites"] = sites
        teams.append(team)
    for digest, target, rank in drawn:
        selected.append(
            {
                "key": target["key"],
                "tier": target["tier"],
                "rank": rank,
                "score_hex": digest.hex(),
                "method": "offsite" if target["on_positive_list"] else "onsite",
            }
        )
    return {
        "algorithm_version": version,
        "selected": selected,
        "teams": teams,
        "cycle": [i["key"] for i in main],
        "aux_cycle": [i["key"] for i in aux],
        "cursor": cursor,
        "aux_cursor": aux_cursor,
    }


# --- comparing ----------------------------------------------------------------------------


def first_difference(recorded: Any, recomputed: Any, path: str) -> str | None:
    if type(recorded) is not type(recomputed):
        return f"{path}: recorded {recorded!r}, recomputed {recomputed!r}"
    if isinstance(recorded, dict):
        for name in sorted(set(recorded) | set(recomputed)):
            if name not in recorded:
                return f"{path}.{name}: missing from the record"
            if name not in recomputed:
                return f"{path}.{name}: not part of the draw"
            found = first_difference(recorded[name], recomputed[name], f"{path}.{name}")
            if found:
                return found
        return None
    if isinstance(recorded, list):
        for n, (a, b) in enumerate(zip(recorded, recomputed, strict=False)):
            found = first_difference(a, b, f"{path}[{n}]")
            if found:
                return found
        if len(recorded) != len(recomputed):
            return f"{path}: recorded {len(recorded)} entries, recomputed {len(recomputed)}"
        return None
    if recorded != recomputed:
        return f"{path}: recorded {recorded!r}, recomputed {recomputed!r}"
    return None


# --- amendments (swaps, DRAW_ALGORITHM.md sections 10 and 13) ------------------------------


def replay_swap(
    inp: dict[str, Any],
    result: dict[str, Any],
    amendment: dict[str, Any],
    where: str,
    other_loads: dict[str, int] | None = None,
) -> tuple[str, dict[str, Any]]:
    """The replacement for one swap, walking the recorded cycle one position at a time.
    ``other_loads``: the teams per person of the draw's other part as it stands (version 2)."""
    target_key = amendment["target_key"]
    leaving = amendment["leaving"]
    excluded = set(amendment["excluded"])
    everyone = persons(inp["inspectors"]) if result["algorithm_version"] >= 2 else inp["inspectors"]
    people = {i["key"]: i for i in everyone}
    targets = {t["key"]: t for t in inp["targets"]}
    teams = {t["target_key"]: t for t in result["teams"]}
    if target_key not in teams or target_key not in targets:
        raise Invalid(f"{where}: no team for target {target_key!r}")
    team = teams[target_key]
    if team.get("merged_into") is not None:
        raise Invalid(f"{where}: the visit of {target_key!r} was merged into another")
    if leaving in team["members"]:
        role, cycle_name, cursor_name = "members", "cycle", "cursor"
    elif leaving in team["auxiliary"]:
        role, cycle_name, cursor_name = "auxiliary", "aux_cycle", "aux_cursor"
    else:
        raise Invalid(f"{where}: {leaving!r} is not on the team of {target_key!r}")
    cycle = result[cycle_name]
    loads = dict(other_loads or {})
    for t in result["teams"]:
        if t.get("merged_into") is not None:
            continue
        for userid in {people[k]["userid"] for k in t["members"] + t["auxiliary"]}:
            loads[userid] = loads.get(userid, 0) + 1
    gone = {people[k]["userid"] for k in [leaving, *team["replaced"]] if k in people}
    on_team = {people[k]["userid"] for k in team["members"] + team["auxiliary"]} - gone
    for step in range(len(cycle)):
        position = (result[cursor_name] + step) % len(cycle)
        person = people[cycle[position]]
        if (
            may_serve(person, targets[target_key], inp["policy"], on_team, loads, team.get("sites"))
            and person["userid"] not in gone
            and person["key"] not in excluded
        ):
            new = person["key"]
            break
    else:
        raise Invalid(f"{where}: no replacement can be drawn")
    amended = dict(result)
    amended["teams"] = [
        {
            **t,
            role: [new if k == leaving else k for k in t[role]],
            "replaced": t["replaced"] + [leaving],
        }
        if t["target_key"] == target_key
        else t
        for t in result["teams"]
    ]
    amended[cursor_name] = (position + 1) % len(cycle)
    return new, amended


def read_amendment(amendment: Any, n: int, version: int = VERSION) -> dict[str, Any]:
    """Section 13: every member present, of its type; ``seq`` is the position, from 1."""
    where = f"amendments[{n}]"
    kind = field(amendment, "kind", str, where)
    if kind not in (("swap", "merge") if version >= 2 else ("swap",)):
        raise Invalid(f"{where}.kind: unknown amendment {kind!r}")
    exact_members(amendment, AMENDMENT_FIELDS if kind == "swap" else MERGE_FIELDS, where)
    seq = field(amendment, "seq", int, where)
    if seq != n + 1:
        raise Invalid(f"{where}.seq: recorded {seq!r}, expected {n + 1}")
    if field(amendment, "part", str, where) not in PARTS:
        raise Invalid(f"{where}.part: unknown part {amendment['part']!r}")
    names = ("leaving", "replacement") if kind == "swap" else ("into",)
    for name in ("target_key", *names, "reason", "approved_by", "at"):
        field(amendment, name, str, where)
    if kind == "swap":
        string_list(amendment, "excluded", where)
    return amendment


def replay_merge(result: dict[str, Any], amendment: dict[str, Any], where: str) -> dict[str, Any]:
    """Section 13: the visit is done by another task's visit; its team is released."""
    teams = {t["target_key"]: t for t in result["teams"]}
    target_key = amendment["target_key"]
    if target_key not in teams:
        raise Invalid(f"{where}: no visit of target {target_key!r}")
    if teams[target_key].get("merged_into") is not None:
        raise Invalid(f"{where}: the visit of {target_key!r} was merged already")
    amended = dict(result)
    amended["teams"] = [
        dict(t, merged_into=amendment["into"]) if t["target_key"] == target_key else t
        for t in result["teams"]
    ]
    return amended


def check_amendments(
    amendments: list[dict[str, Any]],
    parts: dict[str, tuple[dict[str, Any], dict[str, Any]]],
    version: int = VERSION,
) -> str | None:
    for n, amendment in enumerate(amendments):
        where = f"amendments[{n}]"
        part = amendment["part"]
        if part not in parts:
            return f"{where}.part: no {part!r} result to amend"
        inp, result = parts[part]
        if amendment.get("kind") == "merge":
            parts[part] = (inp, replay_merge(result, amendment, where))
            continue
        other: dict[str, int] = {}
        if version >= 2:  # section 10: loads are shared between the parts
            for name, (o_inp, o_result) in parts.items():
                if name != part:
                    for u, k in loads_of(o_inp, o_result).items():
                        other[u] = other.get(u, 0) + k
        new, amended = replay_swap(inp, result, amendment, where, other)
        if new != amendment["replacement"]:
            return f"{where}.replacement: recorded {amendment['replacement']!r}, replayed {new!r}"
        parts[part] = (inp, amended)
    return None


def check_exclusions(doc: dict[str, Any], inp: dict[str, Any], c_inp: Any) -> None:
    """Section 4, exclusions (version 2): each entry names what was left out, why, and the
    evidence its reason needs; nothing left out is in the pool, and the Art. 25(4) projects are
    exactly the construction part's targets."""
    entries = field(doc, "exclusions", list, "document")
    seen = set()
    projects = set()
    targets = {t["key"] for t in inp["targets"]}
    inspectors = {i["key"] for i in inp["inspectors"]}
    for n, e in enumerate(entries):
        at = f"exclusions[{n}]"
        exact_members(e, ("kind", "key", "reason", "label", "evidence"), at)
        kind = field(e, "kind", str, at)
        key = field(e, "key", str, at)
        reason = field(e, "reason", str, at)
        field(e, "label", str, at)
        evidence = field(e, "evidence", dict, at)
        reasons = {"target": TARGET_REASONS, "inspector": INSPECTOR_REASONS}.get(kind)
        if reasons is None:
            raise Invalid(f"{at}.kind: unknown kind {kind!r}")
        if reason not in reasons:
            raise Invalid(f"{at}.reason: {reason!r} is not a reason for a {kind}")
        if (kind, key) in seen:
            raise Invalid(f"{at}.key: {key!r} is left out twice")
        seen.add((kind, key))
        where = at + ".evidence"
        if reason in ("inspected_this_year", "checked_above"):
            exact_members(evidence, ("task", "inspection"), where)
            field(evidence, "task", str, where)
            natural(evidence, "inspection", where, 1)
        elif reason == "on_leave":
            exact_members(evidence, ("leave", "from", "until"), where)
            field(evidence, "leave", str, where)
            dates = [field(evidence, name, (str, type(None)), where) for name in ("from", "until")]
            for name, value in zip(("from", "until"), dates, strict=True):
                if value is not None and not iso_date(value):
                    raise Invalid(f"{where}.{name}: not a date YYYY-MM-DD")
            if None not in dates and dates[0] > dates[1]:
                raise Invalid(f"{where}: the leave ends before it begins")
            if dates == [None, None]:
                raise Invalid(f"{where}: a leave with neither beginning nor end")
        else:
            exact_members(evidence, (), where)
        if kind == "target" and key in targets:
            raise Invalid(f"{at}.key: {key!r} is left out and in the pool")
        if kind == "inspector" and key in inspectors:
            raise Invalid(f"{at}.key: {key!r} is left out and among the inspectors")
        if reason == "construction_due":
            projects.add(key)
    listed = {t["key"] for t in c_inp["targets"]} if c_inp is not None else set()
    if projects != listed:
        odd = sorted(projects ^ listed)[0]
        raise Invalid(f"exclusions: {odd!r} is not both a construction project and left out")


def iso_date(text: str) -> bool:
    parts = text.split("-")
    if len(text) != 10 or len(parts) != 3 or not all(p.isascii() and p.isdigit() for p in parts):
        return False
    year, month, day = (int(p) for p in parts)
    days = [31, 29 if year % 4 == 0 and (year % 100 or year % 400 == 0) else 28, 31, 30, 31]
    days += [30, 31, 31, 30, 31, 30, 31]
    return 1 <= month <= 12 and 1 <= day <= days[month - 1] and len(parts[0]) == 4


# --- the whole document -------------------------------------------------------------------


def fingerprint_of(inp: dict[str, Any], version: int = VERSION) -> str:
    return hashlib.sha256(canonical({"algorithm_version": version, "input": inp})).hexdigest()


def read_header(doc: Any) -> int:
    """The version, and the document's members: required ones present, no unknown ones."""
    version = field(doc, "algorithm_version", int, "document")
    if version not in VERSIONS:
        raise Invalid(f"algorithm_version: this verifier knows versions 1 and 2, got {version!r}")
    required = REQUIRED_V2 if version >= 2 else REQUIRED_V1
    exact_members(doc, required, "document", REQUIRED_V2 + INFORMATIVE)
    return version


def read_state(doc: dict[str, Any], version: int) -> tuple[str, list[dict[str, Any]]]:
    """Section 14: the final state and what each state allows; the amendments, checked."""
    witness = field(doc, "witness", (str, type(None)), "document")
    result = field(doc, "result", (dict, type(None)), "document")
    error = field(doc, "error", (dict, type(None)), "document") if "error" in doc else None
    if "witnessed" in doc and field(doc, "witnessed", bool, "document") is not (
        witness is not None
    ):
        raise Invalid(
            f"witnessed: recorded {doc['witnessed']!r} but the witness value is {witness!r}"
        )
    if version == 1 and witness == "unwitnessed":
        raise Invalid("witness: in version 1 the value 'unwitnessed' cannot be told from none")
    if "status" in doc:
        status = field(doc, "status", str, "document")
        if status not in STATUSES:
            raise Invalid(f"status: unknown state {status!r}")
    else:
        status = "drawn" if result is not None else ("failed" if error else "abandoned")
    construction = doc.get("construction")
    if construction is not None:
        field(doc, "construction", dict, "document")
        exact_members(construction, ("input", "fingerprint", "result"), "construction")
        field(construction, "result", (dict, type(None)), "construction")
    amendments = field(doc, "amendments", list, "document") if "amendments" in doc else []
    drawn = status in ("drawn", "superseded")
    if drawn != (result is not None):
        raise Invalid(f"result: a {status} draw {'needs' if drawn else 'has no'} result")
    if construction is not None and drawn != (construction["result"] is not None):
        raise Invalid(
            f"construction.result: a {status} draw {'needs' if drawn else 'has no'} result"
        )
    if (status == "failed") != (error is not None):
        raise Invalid(f"error: a {status} draw {'needs' if status == 'failed' else 'has no'} error")
    if status == "abandoned" and witness is not None:
        raise Invalid("witness: an abandoned draw has no witness value")
    if amendments and not drawn:
        raise Invalid(f"amendments: a {status} draw has no result to amend")
    if error is not None:
        reason = field(error, "reason", str, "error")
        if reason not in ERROR_REASONS:
            raise Invalid(f"error.reason: unknown reason {reason!r}")
        field(error, "target_key", (str, type(None)), "error")
        if version >= 2:
            field(error, "tier", (str, type(None)), "error")
    return status, [read_amendment(a, n, version) for n, a in enumerate(amendments)]


def verify(doc: Any) -> str | None:
    """None when the document checks out, else a description of the first difference. A
    public export (``"kind": "public"``) is checked by ``verify_public``."""
    if isinstance(doc, dict) and "kind" in doc:
        return verify_public(doc)
    try:
        check_strings(doc)
        version = read_header(doc)
        secret_hex = hex64(doc, "secret_hex", "document")
        recorded_commitment = hex64(doc, "commitment", "document")
        commitment = hashlib.sha256(bytes.fromhex(secret_hex)).hexdigest()
        if commitment != recorded_commitment:
            return f"commitment: recorded {recorded_commitment!r}, recomputed {commitment!r}"
        inp = canonical_input(doc["input"], version)
        fingerprint = fingerprint_of(inp, version)
        recorded_fingerprint = hex64(doc, "fingerprint", "document")
        if fingerprint != recorded_fingerprint:
            return f"fingerprint: recorded {recorded_fingerprint!r}, recomputed {fingerprint!r}"
        status, amendments = read_state(doc, version)
        if version >= 2:
            head = chain_start(commitment)
            for amendment in amendments:
                head = chain_next(head, amendment)
            recorded_head = hex64(doc, "amendments_head", "document")
            if head != recorded_head:
                return f"amendments_head: recorded {recorded_head!r}, recomputed {head!r}"
        seed = seed_of(bytes.fromhex(secret_hex), doc["witness"], version)
        # Section 12: construction projects (Art. 25(4)), teamed with their own seed.
        part = doc.get("construction")
        c_inp = None
        if part is not None:
            c_inp = canonical_input(part["input"], version, "construction.input")
            check_construction(inp, c_inp)
            c_fingerprint = fingerprint_of(c_inp, version)
            recorded = hex64(part, "fingerprint", "construction")
            if c_fingerprint != recorded:
                return (
                    f"construction.fingerprint: recorded {recorded!r}, recomputed {c_fingerprint!r}"
                )
        if version >= 2:
            check_exclusions(doc, inp, c_inp)
        if status == "abandoned":
            return None
        if status == "failed":
            return check_failure(doc["error"], inp, c_inp, seed, version)
        result = run_draw(inp, seed, version)
        found = first_difference(doc["result"], result, "result")
        if found:
            return found
        parts = {"random": (inp, result)}
        if part is not None and c_inp is not None:
            # Version 2, section 12: the projects' teams start from the random part's loads.
            start = loads_of(inp, result) if version >= 2 else None
            c_result = run_draw(c_inp, construction_seed_of(seed), version, start)
            found = first_difference(part["result"], c_result, "construction.result")
            if found:
                return found
            parts["construction"] = (c_inp, c_result)
        return check_amendments(amendments, parts, version)
    except Failed as e:
        return f"result: the draw cannot be made: {e}"
    except Invalid as e:
        return str(e)


def check_construction(inp: dict[str, Any], c_inp: dict[str, Any]) -> None:
    """Section 12: every project is drawn, and none sits in the random pool as well."""
    for tier in TIERS:
        projects = sum(1 for t in c_inp["targets"] if t["tier"] == tier)
        if c_inp["counts"][tier] != projects:
            raise Invalid(
                f"construction.input.counts.{tier}: {c_inp['counts'][tier]} for {projects} projects"
            )
    both = {t["key"] for t in inp["targets"]} & {t["key"] for t in c_inp["targets"]}
    if both:
        raise Invalid(f"construction.input: {sorted(both)[0]!r} is also in the random pool")


def check_failure(
    error: dict[str, Any],
    inp: dict[str, Any],
    c_inp: dict[str, Any] | None,
    seed: bytes,
    version: int,
) -> str | None:
    """Section 14: a failed draw must fail again, for the same reason at the same place."""
    try:
        result = run_draw(inp, seed, version)
        if c_inp is not None:
            start = loads_of(inp, result) if version >= 2 else None
            run_draw(c_inp, construction_seed_of(seed), version, start)
    except Failed as e:
        if version == 1:  # version 1 binds only the failing target
            same = e.target_key == error["target_key"]
        elif e.reason == "pool_too_small":
            same = error["reason"] == e.reason and error["tier"] == e.tier
        else:
            same = error["reason"] == e.reason and error["target_key"] == e.target_key
        if not same:
            return (
                f"error: recorded {error['reason']!r} at {error['target_key']!r}, "
                f"replayed {e.reason!r} at {e.target_key!r}"
            )
        return None
    return "result: recorded as failed, but the draw succeeds"


# --- public exports (section 18) ------------------------------------------------------------

PUBLIC_MEMBERS = (
    "kind",
    "algorithm_version",
    "commitment",
    "fingerprint",
    "seed_hex",
    "witness",
    "witnessed",
    "status",
    "input",
    "result",
    "construction",
    "amendments",
)
PUBLIC_TARGET = ("ref", "tier", "org", "on_positive_list", "score_hex", "opening")
PUBLIC_INSPECTOR = (
    "key",
    "person",
    "org",
    "certificate_kind",
    "auxiliary",
    "conflicts",
    "last_inspected",
)
PUBLIC_AMENDMENT = ("seq", "kind", "part", "target_key", "leaving", "excluded", "replacement")
PUBLIC_MERGE = ("seq", "kind", "part", "target_key", "into")


def public_input(raw: Any, seed: bytes, where: str) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Section 18: the blinded input, read strictly; every opened target checked against its
    commitment and its score. Returns the input (targets keyed by ref, inspectors' ``userid``
    the person's pseudonym) and each target's score."""
    exact_members(raw, ("targets", "inspectors", "counts", "policy", "entities"), where)
    targets, scores = [], {}
    for n, t in enumerate(field(raw, "targets", list, where)):
        at = f"{where}.targets[{n}]"
        exact_members(t, PUBLIC_TARGET, at)
        ref = hex64(t, "ref", at)
        tier = field(t, "tier", str, at)
        if tier not in TIERS:
            raise Invalid(f"{at}.tier: unknown tier {tier!r}")
        digest = bytes.fromhex(hex64(t, "score_hex", at))
        opening = field(t, "opening", (dict, type(None)), at)
        if opening is not None:
            exact_members(opening, ("key", "nonce_hex"), at + ".opening")
            key = field(opening, "key", str, at + ".opening")
            nonce = bytes.fromhex(hex64(opening, "nonce_hex", at + ".opening"))
            if sha256(nonce + key.encode("utf-8")).hex() != ref:
                raise Invalid(f"{at}.opening: does not open the commitment {ref!r}")
            if score(seed, "target:" + tier, key) != digest:
                raise Invalid(f"{at}.score_hex: not the score of {key!r}")
        if ref in scores:
            raise Invalid(f"{at}.ref: duplicate target {ref!r}")
        scores[ref] = digest
        targets.append(
            {
                "key": ref,
                "tier": tier,
                "org": field(t, "org", str, at),
                "on_positive_list": field(t, "on_positive_list", bool, at),
            }
        )
    inspectors = []
    for n, i in enumerate(field(raw, "inspectors", list, where)):
        at = f"{where}.inspectors[{n}]"
        exact_members(i, PUBLIC_INSPECTOR, at)
        inspectors.append(
            {
                "key": hex64(i, "key", at),
                "userid": hex64(i, "person", at),
                "org": field(i, "org", str, at),
                "certificate_kind": field(i, "certificate_kind", str, at),
                "auxiliary": field(i, "auxiliary", bool, at),
                "conflicts": string_list(i, "conflicts", at),
                "last_inspected": string_list(i, "last_inspected", at),
            }
        )
    # Counts and policy as in section 4; targets and inspectors were read above.
    plain = dict(raw, targets=[], inspectors=[], entities=[])
    checked = canonical_input(plain, VERSION, where)
    if len({i["key"] for i in inspectors}) != len(inspectors):
        raise Invalid(f"{where}.inspectors: duplicate pseudonym")
    entities = read_entities(raw, set(scores), where)
    return dict(checked, targets=targets, inspectors=inspectors, entities=entities), scores


def public_draw(
    inp: dict[str, Any],
    scores: dict[str, bytes],
    recorded: dict[str, Any],
    start: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Sections 6 and 8 on the blinded input: targets ranked by their scores, teams walked on
    the recorded cycles (which hold exactly one qualifying entry per person)."""
    policy = inp["policy"]
    drawn = []
    for tier in TIERS:
        pool = [t for t in inp["targets"] if t["tier"] == tier]
        count = inp["counts"][tier]
        if count > len(pool):
            raise Invalid(f"input.counts.{tier}: larger than the pool")
        ranked = sorted(pool, key=lambda t: (scores[t["key"]], t["key"]))
        drawn += [(scores[t["key"]], t, r) for r, t in enumerate(ranked[:count], start=1)]
    drawn.sort(key=lambda d: (d[0], d[1]["key"]))
    everyone = persons(inp["inspectors"])
    by_key = {i["key"]: i for i in everyone}
    qualifying = set(policy["qualifying_kinds"])

    def cycle(name: str, auxiliary: bool) -> list[dict[str, Any]]:
        keys = recorded.get(name)
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise Invalid(f"result.{name}: an array of strings")
        if any(k not in by_key for k in keys):
            raise Invalid(f"result.{name}: an unknown inspector")
        entries = [by_key[k] for k in keys]
        eligible = {
            i["userid"]
            for i in everyone
            if i["auxiliary"] is auxiliary and (auxiliary or i["certificate_kind"] in qualifying)
        }
        people = [i["userid"] for i in entries]
        if len(set(people)) != len(people) or set(people) != eligible:
            raise Invalid(f"result.{name}: not one entry per eligible person")
        if any(i["auxiliary"] is not auxiliary for i in entries):
            raise Invalid(f"result.{name}: an entry of the wrong kind")
        if not auxiliary and any(i["certificate_kind"] not in qualifying for i in entries):
            raise Invalid(f"result.{name}: an entry that does not qualify")
        return entries

    main, aux = cycle("cycle", False), cycle("aux_cycle", True)
    return walk_teams(drawn, main, aux, policy, VERSION, inp["entities"], start)


def verify_public(doc: Any) -> str | None:
    """Section 18: None when a public export checks out, else the first difference."""
    try:
        check_strings(doc)
        exact_members(doc, PUBLIC_MEMBERS, "document")
        if field(doc, "kind", str, "document") != "public":
            raise Invalid("kind: a public export says 'public'")
        if field(doc, "algorithm_version", int, "document") != VERSION:
            raise Invalid("algorithm_version: public exports are of version 2")
        for name in ("commitment", "fingerprint"):
            hex64(doc, name, "document")
        seed = bytes.fromhex(hex64(doc, "seed_hex", "document"))
        witness = field(doc, "witness", (str, type(None)), "document")
        if field(doc, "witnessed", bool, "document") is not (witness is not None):
            raise Invalid("witnessed: does not match the witness value")
        if field(doc, "status", str, "document") != "drawn":
            raise Invalid("status: a public export is of a drawn draw")
        parts: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        for name, part, part_seed in (
            ("random", doc, seed),
            ("construction", doc["construction"], construction_seed_of(seed)),
        ):
            if part is None and name == "construction":
                continue
            where = "document" if name == "random" else "construction"
            if name == "construction":
                field(doc, "construction", dict, "document")
                exact_members(part, ("input", "result"), where)
            prefix = "" if name == "random" else "construction."
            inp, scores = public_input(part["input"], part_seed, prefix + "input")
            recorded = field(part, "result", dict, where)
            # Section 12: the projects' teams start from the random part's loads.
            start = loads_of(*parts["random"]) if name == "construction" else None
            found = first_difference(
                recorded, public_draw(inp, scores, recorded, start), prefix + "result"
            )
            if found:
                return found
            parts[name] = (inp, recorded)
        if "construction" in parts:
            check_construction(parts["random"][0], parts["construction"][0])
        amendments = []
        for n, a in enumerate(field(doc, "amendments", list, "document")):
            at = f"amendments[{n}]"
            kind = field(a, "kind", str, at)
            if kind not in ("swap", "merge"):
                raise Invalid(f"{at}.kind: unknown amendment {kind!r}")
            exact_members(a, PUBLIC_AMENDMENT if kind == "swap" else PUBLIC_MERGE, at)
            if field(a, "seq", int, at) != n + 1:
                raise Invalid(f"{at}.seq: expected {n + 1}")
            if field(a, "part", str, at) not in parts:
                raise Invalid(f"{at}.part: no such part")
            names = ("leaving", "replacement") if kind == "swap" else ("into",)
            for name in ("target_key", *names):
                field(a, name, str, at)
            if kind == "swap":
                string_list(a, "excluded", at)
            amendments.append(a)
        return check_amendments(amendments, parts)
    except Failed as e:
        return f"result: the draw cannot be made: {e}"
    except Invalid as e:
        return str(e)


def verify_bytes(raw: bytes) -> str | None:
    """``verify`` on the bytes of an export, read as section 15 says."""
    try:
        doc = parse(raw)
    except Invalid as e:
        return str(e)
    return verify(doc)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: reference_verifier.py DRAW.json  (or - for standard input)")
        return 1
    try:
        if args[0] == "-":
            raw = sys.stdin.buffer.read()
        else:
            with open(args[0], "rb") as f:
                raw = f.read()
    except OSError as e:
        print(f"MISMATCH: cannot read the document: {e}")
        return 1
    problem = verify_bytes(raw)
    if problem is None:
        print("MATCH")
        return 0
    # A name with a lone surrogate is shown escaped, never a traceback.
    print(f"MISMATCH: {problem}".encode("utf-8", "backslashreplace").decode("utf-8"))
    return 1


if __name__ == "__main__":
    sys.exit(main())
