#!/usr/bin/env python3
"""Reference verifier for random draws (双随机抽取), algorithm version 1.

Standalone on purpose: Python 3.11 standard library only, nothing from the project, so anyone
can check a published draw with this one file. It reads an export document (JSON), recomputes
the commitment, the pool fingerprint, the seed and the whole draw, and prints MATCH or the
first difference.

    python reference_verifier.py draw.json      # or "-" to read standard input

Exit status 0 on MATCH, 1 otherwise. Written for clarity, not speed: the inspector cycle is
walked one position at a time, exactly as DRAW_ALGORITHM.md states it.
"""

from __future__ import annotations

import hashlib
import json
import sys
from typing import Any

VERSION = 1
TIERS = ("special", "key", "general")
LOCALITIES = ("same_county", "scope")


class Invalid(Exception):
    """The document is malformed, or the draw it describes cannot be made."""


class Unfilled(Invalid):
    """A team cannot be filled: the draw fails at ``target_key``."""

    def __init__(self, message: str, target_key: str) -> None:
        super().__init__(message)
        self.target_key = target_key


# --- hashing ------------------------------------------------------------------------------


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def score(seed: bytes, label: str, key: str) -> bytes:
    return sha256(seed + b"\x00" + label.encode("utf-8") + b"\x00" + key.encode("utf-8"))


def seed_of(secret: bytes, witness: str | None) -> bytes:
    tail = b"unwitnessed" if witness is None else witness.encode("utf-8")
    return sha256(secret + b"\x00" + tail)


# --- reading the input --------------------------------------------------------------------


def field(obj: Any, name: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(obj, dict) or name not in obj:
        raise Invalid(f"{where}: missing field {name!r}")
    value = obj[name]
    # bool is a subclass of int in Python; JSON true must not pass for a number.
    is_bool = isinstance(value, bool)
    wants_bool = kind is bool or (isinstance(kind, tuple) and bool in kind)
    if not isinstance(value, kind) or (is_bool and not wants_bool):
        raise Invalid(f"{where}.{name}: unexpected value {value!r}")
    return value


def string_list(obj: Any, name: str, where: str) -> list[str]:
    values = field(obj, name, list, where)
    if not all(isinstance(v, str) for v in values):
        raise Invalid(f"{where}.{name}: expected a list of strings")
    return sorted(set(values))


def canonical_input(raw: Any) -> dict[str, Any]:
    """The input as the fingerprint sees it: checked, sorted, every field explicit."""
    targets = []
    for n, t in enumerate(field(raw, "targets", list, "input")):
        where = f"input.targets[{n}]"
        tier = field(t, "tier", str, where)
        if tier not in TIERS:
            raise Invalid(f"{where}.tier: unknown tier {tier!r}")
        targets.append(
            {
                "key": field(t, "key", str, where),
                "tier": tier,
                "org": field(t, "org", str, where),
                "on_positive_list": field(t, "on_positive_list", bool, where),
            }
        )
    inspectors = []
    for n, i in enumerate(field(raw, "inspectors", list, "input")):
        where = f"input.inspectors[{n}]"
        inspectors.append(
            {
                "key": field(i, "key", str, where),
                "userid": field(i, "userid", str, where),
                "org": field(i, "org", str, where),
                "certificate_kind": field(i, "certificate_kind", str, where),
                "auxiliary": field(i, "auxiliary", bool, where),
                "conflicts": string_list(i, "conflicts", where),
                "last_inspected": string_list(i, "last_inspected", where),
            }
        )
    for what, items in (("target", targets), ("inspector", inspectors)):
        keys = [x["key"] for x in items]
        if len(set(keys)) != len(keys):
            raise Invalid(f"input: duplicate {what} key")
    raw_counts = field(raw, "counts", dict, "input")
    for tier in raw_counts:
        if tier not in TIERS:
            raise Invalid(f"input.counts: unknown tier {tier!r}")
    counts = {}
    for tier in TIERS:
        n = field(raw_counts, tier, int, "input.counts") if tier in raw_counts else 0
        if n < 0:
            raise Invalid(f"input.counts.{tier}: negative")
        counts[tier] = n
    p = field(raw, "policy", dict, "input")
    policy = {
        "team_size": field(p, "team_size", int, "input.policy"),
        "qualifying_kinds": string_list(p, "qualifying_kinds", "input.policy"),
        "locality": field(p, "locality", str, "input.policy"),
        "auxiliary_per_team": field(p, "auxiliary_per_team", int, "input.policy"),
        "avoid_last_inspector": field(p, "avoid_last_inspector", bool, "input.policy"),
        "max_load": field(p, "max_load", (int, type(None)), "input.policy"),
    }
    if policy["team_size"] < 1 or policy["auxiliary_per_team"] < 0:
        raise Invalid("input.policy: team sizes out of range")
    if policy["locality"] not in LOCALITIES:
        raise Invalid(f"input.policy.locality: unknown value {policy['locality']!r}")
    if policy["max_load"] is not None and policy["max_load"] < 1:
        raise Invalid("input.policy.max_load: must be at least 1")
    return {
        "targets": sorted(targets, key=lambda x: x["key"]),
        "inspectors": sorted(inspectors, key=lambda x: x["key"]),
        "counts": counts,
        "policy": policy,
    }


# --- the draw -----------------------------------------------------------------------------


def may_serve(
    person: dict[str, Any],
    target: dict[str, Any],
    policy: dict[str, Any],
    on_team: set[str],
    loads: dict[str, int],
) -> bool:
    if target["key"] in person["conflicts"]:
        return False
    if policy["avoid_last_inspector"] and target["key"] in person["last_inspected"]:
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
) -> tuple[list[str], int]:
    """Take ``need`` people walking one full turn from ``cursor``; return them and the new cursor."""
    if need == 0:
        return [], cursor
    chosen: list[str] = []
    for step in range(len(cycle)):
        position = (cursor + step) % len(cycle)
        person = cycle[position]
        if may_serve(person, target, policy, on_team, loads):
            chosen.append(person["key"])
            on_team.add(person["userid"])
            if len(chosen) == need:
                return chosen, (position + 1) % len(cycle)
    raise Unfilled(f"the team of target {target['key']!r} cannot be filled", target["key"])


def run_draw(inp: dict[str, Any], seed: bytes) -> dict[str, Any]:
    policy = inp["policy"]
    drawn = []
    for tier in TIERS:
        label = "target:" + tier
        pool = [t for t in inp["targets"] if t["tier"] == tier]
        count = inp["counts"][tier]
        if count > len(pool):
            raise Invalid(f"tier {tier}: pool of {len(pool)} is smaller than the count {count}")
        ranked = sorted(pool, key=lambda t: (score(seed, label, t["key"]), t["key"]))
        for rank, t in enumerate(ranked[:count], start=1):
            drawn.append((score(seed, label, t["key"]), t, rank))
    drawn.sort(key=lambda d: (d[0], d[1]["key"]))

    def ranking(label: str, people: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(people, key=lambda i: (score(seed, label, i["key"]), i["key"]))

    qualifying = set(policy["qualifying_kinds"])
    main = ranking(
        "inspector",
        [
            i
            for i in inp["inspectors"]
            if not i["auxiliary"] and i["certificate_kind"] in qualifying
        ],
    )
    aux = ranking("auxiliary", [i for i in inp["inspectors"] if i["auxiliary"]])
    cursor = aux_cursor = 0
    loads: dict[str, int] = {}
    selected = []
    teams = []
    for digest, target, rank in drawn:
        on_team: set[str] = set()
        members, cursor = take(main, cursor, policy["team_size"], target, policy, on_team, loads)
        helpers, aux_cursor = take(
            aux, aux_cursor, policy["auxiliary_per_team"], target, policy, on_team, loads
        )
        for userid in on_team:
            loads[userid] = loads.get(userid, 0) + 1
        selected.append(
            {
                "key": target["key"],
                "tier": target["tier"],
                "rank": rank,
                "score_hex": digest.hex(),
                "method": "offsite" if target["on_positive_list"] else "onsite",
            }
        )
        teams.append(
            {"target_key": target["key"], "members": members, "auxiliary": helpers, "replaced": []}
        )
    return {
        "algorithm_version": VERSION,
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
    inp: dict[str, Any], result: dict[str, Any], amendment: Any, where: str
) -> tuple[str, dict[str, Any]]:
    """The replacement for one swap, walking the recorded cycle one position at a time."""
    target_key = field(amendment, "target_key", str, where)
    leaving = field(amendment, "leaving", str, where)
    excluded = set(string_list(amendment, "excluded", where))
    people = {i["key"]: i for i in inp["inspectors"]}
    targets = {t["key"]: t for t in inp["targets"]}
    teams = {t["target_key"]: t for t in result["teams"]}
    if target_key not in teams or target_key not in targets:
        raise Invalid(f"{where}: no team for target {target_key!r}")
    team = teams[target_key]
    if leaving in team["members"]:
        role, cycle_name, cursor_name = "members", "cycle", "cursor"
    elif leaving in team["auxiliary"]:
        role, cycle_name, cursor_name = "auxiliary", "aux_cycle", "aux_cursor"
    else:
        raise Invalid(f"{where}: {leaving!r} is not on the team of {target_key!r}")
    cycle = result[cycle_name]
    loads: dict[str, int] = {}
    for t in result["teams"]:
        for userid in {people[k]["userid"] for k in t["members"] + t["auxiliary"]}:
            loads[userid] = loads.get(userid, 0) + 1
    gone = {people[k]["userid"] for k in [leaving, *team["replaced"]] if k in people}
    on_team = {people[k]["userid"] for k in team["members"] + team["auxiliary"]} - gone
    for step in range(len(cycle)):
        position = (result[cursor_name] + step) % len(cycle)
        person = people[cycle[position]]
        if (
            may_serve(person, targets[target_key], inp["policy"], on_team, loads)
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


def check_amendments(
    doc: Any, parts: dict[str, tuple[dict[str, Any], dict[str, Any]]]
) -> str | None:
    amendments = doc.get("amendments") or []
    if not isinstance(amendments, list):
        raise Invalid("amendments: expected a list")
    for n, amendment in enumerate(amendments):
        where = f"amendments[{n}]"
        if amendment.get("seq", n + 1) != n + 1:
            return f"{where}.seq: recorded {amendment.get('seq')!r}, expected {n + 1}"
        if amendment.get("kind", "swap") != "swap":
            return f"{where}.kind: unknown amendment {amendment.get('kind')!r}"
        part = amendment.get("part", "random")
        if part not in parts:
            return f"{where}.part: no {part!r} result to amend"
        inp, result = parts[part]
        new, amended = replay_swap(inp, result, amendment, where)
        if new != field(amendment, "replacement", str, where):
            return f"{where}.replacement: recorded {amendment['replacement']!r}, replayed {new!r}"
        parts[part] = (inp, amended)
    return None


# --- the whole document -------------------------------------------------------------------


def fingerprint_of(inp: dict[str, Any]) -> str:
    return hashlib.sha256(canonical({"algorithm_version": VERSION, "input": inp})).hexdigest()


def verify(doc: Any) -> str | None:
    """None when the document checks out, else a description of the first difference."""
    try:
        version = field(doc, "algorithm_version", int, "document")
        if version != VERSION:
            return f"algorithm_version: this verifier knows version {VERSION}, got {version!r}"
        secret_hex = field(doc, "secret_hex", str, "document")
        try:
            secret = bytes.fromhex(secret_hex)
        except ValueError:
            return "secret_hex: not hexadecimal"
        commitment = hashlib.sha256(secret).hexdigest()
        if commitment != field(doc, "commitment", str, "document"):
            return f"commitment: recorded {doc['commitment']!r}, recomputed {commitment!r}"
        inp = canonical_input(field(doc, "input", dict, "document"))
        fingerprint = fingerprint_of(inp)
        if fingerprint != field(doc, "fingerprint", str, "document"):
            return f"fingerprint: recorded {doc['fingerprint']!r}, recomputed {fingerprint!r}"
        witness = field(doc, "witness", (str, type(None)), "document")
        if "witnessed" in doc and doc["witnessed"] is not (witness is not None):
            return f"witnessed: recorded {doc['witnessed']!r} but the witness value is {witness!r}"
        seed = seed_of(secret, witness)
        # Section 12: construction projects (Art. 25(4)), teamed with their own seed.
        part = doc.get("construction")
        c_inp = None
        if part is not None:
            c_inp = canonical_input(field(part, "input", dict, "construction"))
            c_fingerprint = fingerprint_of(c_inp)
            if c_fingerprint != field(part, "fingerprint", str, "construction"):
                return (
                    f"construction.fingerprint: recorded {part['fingerprint']!r}, "
                    f"recomputed {c_fingerprint!r}"
                )
        if field(doc, "result", (dict, type(None)), "document") is None:
            return check_without_result(doc, inp, c_inp, seed)
        result = run_draw(inp, seed)
        found = first_difference(doc["result"], result, "result")
        if found:
            return found
        parts = {"random": (inp, result)}
        if part is not None and c_inp is not None:
            c_result = run_draw(c_inp, seed_of(seed, "construction"))
            found = first_difference(
                field(part, "result", dict, "construction"), c_result, "construction.result"
            )
            if found:
                return found
            parts["construction"] = (c_inp, c_result)
        return check_amendments(doc, parts)
    except Invalid as e:
        return str(e)


def check_without_result(
    doc: Any, inp: dict[str, Any], c_inp: dict[str, Any] | None, seed: bytes
) -> str | None:
    """Section 14: a failed draw must fail again; an abandoned one (no witness) has no draw."""
    if doc.get("error") is None:
        if doc["witness"] is not None:
            return "result: missing although a witness value was given"
        return None
    recorded = doc["error"].get("target_key") if isinstance(doc["error"], dict) else None
    try:
        run_draw(inp, seed)
        if c_inp is not None:
            run_draw(c_inp, seed_of(seed, "construction"))
    except Unfilled as e:
        if e.target_key != recorded:
            return f"error: recorded a failure at {recorded!r}, replayed at {e.target_key!r}"
        return None
    except Invalid:
        return None if recorded is None else f"error: recorded a failure at {recorded!r}"
    return "result: recorded as failed, but the draw succeeds"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: reference_verifier.py DRAW.json  (or - for standard input)")
        return 1
    try:
        if args[0] == "-":
            doc = json.load(sys.stdin)
        else:
            with open(args[0], encoding="utf-8") as f:
                doc = json.load(f)
    except (OSError, ValueError) as e:
        print(f"MISMATCH: cannot read the document: {e}")
        return 1
    problem = verify(doc)
    if problem is None:
        print("MATCH")
        return 0
    print(f"MISMATCH: {problem}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
