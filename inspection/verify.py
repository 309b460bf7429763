"""Replay an exported draw with the library and name the first difference (`draw verify`).

The reference verifier (``reference_verifier.py``) does the same with the standard library only
and the plain cycle walk; the tests run both on the same exports (and on a corpus of forged
ones) and expect the same verdict. This one reads the document against a schema table; the
reference reads it field by field. Checked, in order (DRAW_ALGORITHM.md section 9): the JSON
dialect, the version and the members, commitment, fingerprint, the final state and what it
allows, the amendment chain (version 2), the Art. 25(4) part's input, the result (or the
recorded failure), the Art. 25(4) result, then every amendment replayed in sequence.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from inspection.draw import (
    PUBLIC_VALUE,
    VERSIONS,
    DrawError,
    DrawInput,
    DrawResult,
    Method,
    SelectedTarget,
    amendments_head,
    commitment,
    construction_seed,
    derive_seed,
    draw_on_ranking,
    draw_parts,
    fingerprint,
    input_from_json,
    merge_visit,
    result_to_json,
    score,
    swap_member,
    team_loads,
)
from inspection.quotas import Tier
from inspection.reference_verifier import first_difference


class Rejected(Exception):
    """The document is not a valid export of the version it names."""


# --- the JSON dialect (section 15) -------------------------------------------------------


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise Rejected(f"json: duplicate member {twice!r}")
    return dict(pairs)


def _constant(name: str) -> Any:
    raise Rejected(f"json: {name} is not JSON")


def read_json(raw: bytes) -> Any:
    """UTF-8 without BOM, no duplicate members, no NaN/Infinity, no lone surrogates."""
    if raw[:3] == b"\xef\xbb\xbf":
        raise Rejected("json: a byte order mark before the document")
    try:
        doc = json.loads(raw.decode("utf-8"), object_pairs_hook=_pairs, parse_constant=_constant)
    except UnicodeDecodeError:
        raise Rejected("json: not UTF-8") from None
    except ValueError as exc:
        raise Rejected(f"json: {exc}") from None
    _encodable(doc)
    return doc


def _encodable(doc: Any) -> None:
    try:
        # The whole document, member names included, must encode: a lone surrogate does not.
        json.dumps(doc, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except UnicodeEncodeError:
        raise Rejected("document: a string with a lone surrogate") from None
    except ValueError as exc:
        raise Rejected(f"document: {exc}") from None


# --- the schema (sections 4, 9, 12, 13, 14) ------------------------------------------------

Check = Callable[[Any, str], None]


def _fail(where: str, value: Any) -> Rejected:
    return Rejected(f"{where}: unexpected value {value!r}")


def exactly(*types: type) -> Check:
    def check(value: Any, where: str) -> None:
        if type(value) not in types:  # bool is not int, float is not int
            raise _fail(where, value)

    return check


def integer(least: int, nullable: bool = False) -> Check:
    def check(value: Any, where: str) -> None:
        if nullable and value is None:
            return
        if type(value) is not int or value < least:
            raise _fail(where, value)

    return check


def one_of(*values: str) -> Check:
    def check(value: Any, where: str) -> None:
        if type(value) is not str or value not in values:
            raise _fail(where, value)

    return check


def distinct_strings(value: Any, where: str) -> None:
    if type(value) is not list or any(type(v) is not str for v in value):
        raise _fail(where, value)
    if len(set(value)) != len(value):
        raise Rejected(f"{where}: a string twice")


_HEX64 = re.compile(r"[0-9a-f]{64}")


def hex64(value: Any, where: str) -> None:
    if type(value) is not str or not _HEX64.fullmatch(value):
        raise Rejected(f"{where}: expected 64 lower-case hexadecimal digits")


def obj(fields: Mapping[str, Check], optional: Mapping[str, Check] | None = None) -> Check:
    def check(value: Any, where: str) -> None:
        if type(value) is not dict:
            raise _fail(where, value)
        extra = optional or {}
        for name, sub in fields.items():
            if name not in value:
                raise Rejected(f"{where}: missing field {name!r}")
            sub(value[name], f"{where}.{name}")
        for name in value:
            if name in extra:
                extra[name](value[name], f"{where}.{name}")
            elif name not in fields:
                raise Rejected(f"{where}.{name}: not a field of this object")

    return check


def array(item: Check) -> Check:
    def check(value: Any, where: str) -> None:
        if type(value) is not list:
            raise _fail(where, value)
        for n, v in enumerate(value):
            item(v, f"{where}[{n}]")

    return check


def nullable(check: Check) -> Check:
    def wrapped(value: Any, where: str) -> None:
        if value is not None:
            check(value, where)

    return wrapped


def anything(value: Any, where: str) -> None:
    return None


TIERS = tuple(t.value for t in Tier)
STRING = exactly(str)
BOOLEAN = exactly(bool)
POLICY = obj(
    {
        "team_size": integer(1),
        "qualifying_kinds": distinct_strings,
        "locality": one_of("same_county", "scope"),
        "auxiliary_per_team": integer(0),
        "avoid_last_inspector": BOOLEAN,
        "max_load": integer(1, nullable=True),
    }
)
TARGET = obj({"key": STRING, "tier": one_of(*TIERS), "org": STRING, "on_positive_list": BOOLEAN})
INSPECTOR = obj(
    {
        "key": STRING,
        "userid": STRING,
        "org": STRING,
        "certificate_kind": STRING,
        "auxiliary": BOOLEAN,
        "conflicts": distinct_strings,
        "last_inspected": distinct_strings,
    }
)
COUNT = integer(0)


def witness_value(value: Any, where: str) -> None:
    """Section 2 (version 2): ``null``, one string, an array of at least two strings (the
    values of several witnesses, in the order fixed at sealing), or a public random source
    ``{"source", "value"}`` with the value written as digits[.digits]."""
    if value is None or type(value) is str:
        return
    if type(value) is dict:
        obj({"source": STRING, "value": STRING})(value, where)
        if not PUBLIC_VALUE.fullmatch(value["value"]):
            raise Rejected(f"{where}.value: a public value is written as digits[.digits]")
        return
    if type(value) is not list or any(type(v) is not str for v in value):
        raise _fail(where, value)
    if len(value) < 2:
        raise Rejected(f"{where}: several witness values are at least two (one is a string)")


def input_schema(version: int) -> Check:
    counts = (
        obj(dict.fromkeys(TIERS, COUNT)) if version >= 2 else obj({}, dict.fromkeys(TIERS, COUNT))
    )
    fields: dict[str, Check] = {
        "targets": array(TARGET),
        "inspectors": array(INSPECTOR),
        "counts": counts,
        "policy": POLICY,
    }
    if version >= 2:
        fields["entities"] = array(distinct_strings)
    return obj(fields)


SWAP = obj(
    {
        "seq": integer(1),
        "kind": one_of("swap"),
        "part": one_of("random", "construction"),
        "target_key": STRING,
        "leaving": STRING,
        "excluded": distinct_strings,
        "replacement": STRING,
        "reason": STRING,
        "approved_by": STRING,
        "at": STRING,
    }
)
# ASCII digits only (``\d`` alone would take other scripts' digits too).
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})", re.ASCII
)


def date_string(value: Any, where: str) -> None:
    if type(value) is not str or not _DATE.fullmatch(value):
        raise Rejected(f"{where}: expected a date YYYY-MM-DD")
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        raise Rejected(f"{where}: not a calendar date {value!r}") from None


def datetime_string(value: Any, where: str) -> None:
    if type(value) is not str or not _DATETIME.fullmatch(value):
        raise Rejected(f"{where}: expected a date-time with its UTC offset")
    try:
        dt.datetime.fromisoformat(value)
    except ValueError:
        raise Rejected(f"{where}: not a calendar date-time {value!r}") from None


_RECORD_ID = re.compile(r"[1-9][0-9]*")


def record_id(value: Any, where: str) -> None:
    if type(value) is not str or not _RECORD_ID.fullmatch(value):
        raise Rejected(f"{where}: expected a record id (decimal digits)")


# A register record as a swap's evidence carries it (section 10.1).
RECORD = obj(
    {
        "id": record_id,
        "version": integer(1),
        "person": STRING,
        "kind": one_of("leave", "conflict"),
        "state": one_of("confirmed", "withdrawn"),
        "from": nullable(date_string),
        "until": nullable(date_string),
        "targets": distinct_strings,
        "effective_at": datetime_string,
    }
)
SWAP_V2 = obj(
    {
        **{
            name: check
            for name, check in (
                ("seq", integer(1)),
                ("kind", one_of("swap")),
                ("part", one_of("random", "construction")),
                ("target_key", STRING),
                ("leaving", STRING),
                ("excluded", distinct_strings),
                ("replacement", STRING),
                ("reason", STRING),
                ("approved_by", STRING),
                ("at", datetime_string),
            )
        },
        "requested_at": datetime_string,
        "check_start": date_string,
        "check_end": date_string,
        "evidence": array(RECORD),
    }
)
MERGE = obj(
    {
        "seq": integer(1),
        "kind": one_of("merge"),
        "part": one_of("random", "construction"),
        "target_key": STRING,
        "into": STRING,
        "reason": STRING,
        "approved_by": STRING,
        "at": STRING,
    }
)


def amendment_schema(version: int, swap: Check = SWAP, merge: Check = MERGE) -> Check:
    """Section 13: the members of each kind; version 1 knows swaps only."""
    kinds = ("swap", "merge") if version >= 2 else ("swap",)

    def check(value: Any, where: str) -> None:
        if type(value) is not dict:
            raise _fail(where, value)
        if "kind" not in value:
            raise Rejected(f"{where}: missing field 'kind'")
        one_of(*kinds)(value["kind"], f"{where}.kind")
        (swap if value["kind"] == "swap" else merge)(value, where)

    return check


TARGET_REASONS = ("deregistered", "inspected_this_year", "checked_above", "construction_due")
INSPECTOR_REASONS = (
    "no_userid",
    "inactive",
    "on_leave",
    "certificate_kind",
    "department",
    "auxiliary_not_wanted",
)
CHECK_EVIDENCE = obj({"task": STRING, "inspection": integer(1)})
LEAVE_EVIDENCE = obj(
    {"leave": STRING, "from": nullable(date_string), "until": nullable(date_string)}
)
NO_EVIDENCE = obj({})
EVIDENCE: dict[str, Check] = {
    "inspected_this_year": CHECK_EVIDENCE,
    "checked_above": CHECK_EVIDENCE,
    "on_leave": LEAVE_EVIDENCE,
}


def exclusion(value: Any, where: str) -> None:
    """Section 4, exclusions: one entry, with the evidence its reason needs."""
    obj(
        {
            "kind": one_of("target", "inspector"),
            "key": STRING,
            "reason": STRING,
            "label": STRING,
            "evidence": exactly(dict),
        }
    )(value, where)
    reasons = TARGET_REASONS if value["kind"] == "target" else INSPECTOR_REASONS
    if value["reason"] not in reasons:
        raise Rejected(f"{where}.reason: {value['reason']!r} is not a reason for a {value['kind']}")
    EVIDENCE.get(value["reason"], NO_EVIDENCE)(value["evidence"], f"{where}.evidence")
    leave = value["evidence"]
    if value["reason"] == "on_leave":
        if leave["from"] is None and leave["until"] is None:
            raise Rejected(f"{where}.evidence: a leave with neither beginning nor end")
        if None not in (leave["from"], leave["until"]) and leave["from"] > leave["until"]:
            raise Rejected(f"{where}.evidence: the leave ends before it begins")


INFORMATIVE = dict.fromkeys(
    (
        "task",
        "attempt",
        "committed_at",
        "drawn_at",
        "redraw_reason",
        "approved_by",
        "summary",
        "exclusions",
        "witnesses",
        "public_source",
        "witness_deadline",
        "unwitnessed_reason",
        "cancellation",
        "replaces",
    ),
    anything,
)


# Section 14: version 2 has no re-draw (a sealed draw is never superseded nor abandoned: it is
# cancelled, with approval); version 1 records keep their states.
STATUSES = {
    1: ("drawn", "superseded", "failed", "abandoned"),
    2: ("drawn", "failed", "cancelled"),
}


def document_schema(version: int) -> Check:
    inp = input_schema(version)
    construction = nullable(
        obj({"input": inp, "fingerprint": hex64, "result": nullable(exactly(dict))})
    )
    error_fields: dict[str, Check] = {
        "reason": one_of("pool_too_small", "team_unfilled"),
        "target_key": nullable(STRING),
    }
    if version >= 2:
        error_fields["tier"] = nullable(one_of(*TIERS))
    error = nullable(
        obj(
            error_fields,
            {
                "message": anything,
                "pool_size": anything,
                "count": anything,
                "role": anything,
                "needed": anything,
                "found": anything,
                "blocked": anything,
                **({} if version >= 2 else {"tier": anything}),
            },
        )
    )
    base = {
        "algorithm_version": anything,
        "input": inp,
        "secret_hex": hex64,
        "witness": witness_value if version >= 2 else nullable(STRING),
        "commitment": hex64,
        "fingerprint": hex64,
        "result": nullable(exactly(dict)),
    }
    later = {
        "status": one_of(*STATUSES[version]),
        "witnessed": BOOLEAN,
        "error": error,
        "construction": construction,
        "amendments": array(amendment_schema(version)),
        "amendments_head": hex64,
    }
    if version >= 2:
        return obj(
            base
            | later
            | {
                "amendments": array(amendment_schema(version, SWAP_V2)),
                "exclusions": array(exclusion),
            },
            INFORMATIVE,
        )
    return obj(base, later | INFORMATIVE)


# --- the verdict -----------------------------------------------------------------------


def verify_bytes(raw: bytes) -> str | None:
    """``verify_export`` on the bytes of a file, read as section 15 says."""
    try:
        doc = read_json(raw)
    except Rejected as exc:
        return str(exc)
    return verify_export(doc)


def verify_export(doc: Any) -> str | None:
    """None when the export replays exactly, else the first difference (English). A public
    export (``"kind": "public"``, section 18) is checked by its own rules."""
    try:
        _encodable(doc)
        if isinstance(doc, dict) and "kind" in doc:
            return _verify_public(doc)
        return _verify(doc)
    except Rejected as exc:
        return str(exc)


def _version(doc: Any) -> int:
    if type(doc) is not dict or "algorithm_version" not in doc:
        raise Rejected("document: missing field 'algorithm_version'")
    version = doc["algorithm_version"]
    if type(version) is not int or version not in VERSIONS:
        raise Rejected(f"algorithm_version: this verifier knows versions 1 and 2, got {version!r}")
    return version


def _state(doc: Mapping[str, Any], version: int) -> str:
    """Section 14: the final state, and what it allows."""
    witness, result, error = doc["witness"], doc["result"], doc.get("error")
    if "witnessed" in doc and doc["witnessed"] != (witness is not None):
        raise Rejected(
            f"witnessed: recorded {doc['witnessed']!r} but the witness value is {witness!r}"
        )
    if version == 1 and witness == "unwitnessed":
        raise Rejected("witness: in version 1 the value 'unwitnessed' cannot be told from none")
    status: str = doc.get("status") or (
        "drawn" if result is not None else "failed" if error is not None else "abandoned"
    )
    # A draw cancelled after it was drawn is checked as drawn; one cancelled before every
    # witness value was in, as an abandoned draw of version 1 (nothing but commitment and
    # fingerprint to check).
    drawn = status in ("drawn", "superseded") or (status == "cancelled" and result is not None)
    part = doc.get("construction")
    # The table of section 14: which of result, construction result and error a state has.
    has = {
        "result": result is not None,
        "construction.result": part is not None and part["result"] is not None,
        "error": error is not None,
    }
    wants = {
        "result": drawn,
        "construction.result": drawn and part is not None,
        "error": status == "failed",
    }
    for name, present in has.items():
        if present != wants[name]:
            needs = "needs" if wants[name] else "has no"
            raise Rejected(f"{name}: a {status} draw {needs} {name.rsplit('.', 1)[-1]}")
    if status in ("abandoned", "cancelled") and not drawn and witness is not None:
        raise Rejected(f"witness: a {status} draw without a result has no witness value")
    if doc.get("amendments") and not drawn:
        raise Rejected(f"amendments: a {status} draw has no result to amend")
    for n, a in enumerate(doc.get("amendments") or []):
        if a["seq"] != n + 1:
            raise Rejected(f"amendments[{n}].seq: recorded {a['seq']!r}, expected {n + 1}")
    return status


def _construction_input(inp: DrawInput, c_inp: DrawInput) -> None:
    for tier in Tier:
        projects = sum(1 for t in c_inp.targets if t.tier == tier)
        if c_inp.count(tier) != projects:
            raise Rejected(
                f"construction.input.counts.{tier.value}: {c_inp.count(tier)} for {projects} projects"
            )
    shared = {t.key for t in inp.targets} & {t.key for t in c_inp.targets}
    if shared:
        raise Rejected(f"construction.input: {min(shared)!r} is also in the random pool")


def _verify(doc: Any) -> str | None:
    version = _version(doc)
    document_schema(version)(doc, "document")
    secret = bytes.fromhex(doc["secret_hex"])
    if commitment(secret) != doc["commitment"]:
        return f"commitment: recorded {doc['commitment']!r}, recomputed {commitment(secret)!r}"
    inp = input_from_json(doc["input"])
    _validated(inp, "input", version)
    if fingerprint(inp, version) != doc["fingerprint"]:
        return f"fingerprint: recorded {doc['fingerprint']!r}, recomputed {fingerprint(inp, version)!r}"
    status = _state(doc, version)
    amendments = doc.get("amendments") or []
    if version >= 2:
        head = amendments_head(doc["commitment"], amendments)
        if head != doc["amendments_head"]:
            return f"amendments_head: recorded {doc['amendments_head']!r}, recomputed {head!r}"
    seed = derive_seed(secret, doc["witness"], version)
    part = doc.get("construction")
    c_inp = None
    if part is not None:
        c_inp = input_from_json(part["input"])
        _validated(c_inp, "construction.input", version)
        _construction_input(inp, c_inp)
        if fingerprint(c_inp, version) != part["fingerprint"]:
            return (
                f"construction.fingerprint: recorded {part['fingerprint']!r}, "
                f"recomputed {fingerprint(c_inp, version)!r}"
            )
    if version >= 2:
        _exclusions(doc["exclusions"], inp, c_inp)
    if status == "abandoned" or (status == "cancelled" and doc["result"] is None):
        return None
    if status == "failed":
        return _failure(doc["error"], inp, c_inp, seed, version)
    try:
        result, c_result = draw_parts(inp, c_inp, seed, version)
    except DrawError as exc:
        return f"result: the draw cannot be made: {exc.reason} at {exc.target_key or exc.tier}"
    found = first_difference(doc["result"], result_to_json(result), "result")
    if found:
        return found
    if part is not None and c_result is not None:
        found = first_difference(part["result"], result_to_json(c_result), "construction.result")
        if found:
            return found
    return _amendments(amendments, inp, result, c_inp, c_result, version, evidence=version >= 2)


def _validated(inp: DrawInput, where: str = "input", version: int = 2) -> None:
    """Input the draw refuses (duplicate keys, entity groups that are not groups of the
    input's targets) makes the document invalid, never a failed draw."""
    for what, keys in (
        ("target", [t.key for t in inp.targets]),
        ("inspector", [i.key for i in inp.inspectors]),
    ):
        if len(set(keys)) != len(keys):
            raise Rejected(f"{where}: duplicate {what} key")
    targets = {t.key for t in inp.targets}
    seen: set[str] = set()
    for n, group in enumerate(inp.entities):
        at = f"{where}.entities[{n}]"
        if len(group) < 2:
            raise Rejected(f"{at}: a group is two or more distinct target keys")
        for k in group:
            if k not in targets:
                raise Rejected(f"{at}: {k!r} is not a target of the input")
            if k in seen:
                raise Rejected(f"{at}: {k!r} is in two groups")
            seen.add(k)


def _exclusions(
    entries: Sequence[Mapping[str, Any]], inp: DrawInput, c_inp: DrawInput | None
) -> None:
    """Section 4, exclusions: nothing left out twice or also in the pool; the Art. 25(4)
    projects left out are exactly the construction part's targets."""
    targets = {t.key for t in inp.targets}
    inspectors = {i.key for i in inp.inspectors}
    seen: set[tuple[str, str]] = set()
    projects: set[str] = set()
    for n, e in enumerate(entries):
        at = f"exclusions[{n}].key"
        kind, key = e["kind"], e["key"]
        if (kind, key) in seen:
            raise Rejected(f"{at}: {key!r} is left out twice")
        seen.add((kind, key))
        if kind == "target" and key in targets:
            raise Rejected(f"{at}: {key!r} is left out and in the pool")
        if kind == "inspector" and key in inspectors:
            raise Rejected(f"{at}: {key!r} is left out and among the inspectors")
        if e["reason"] == "construction_due":
            projects.add(key)
    listed = {t.key for t in c_inp.targets} if c_inp is not None else set()
    if projects != listed:
        odd = sorted(projects ^ listed)[0]
        raise Rejected(f"exclusions: {odd!r} is not both a construction project and left out")


def _failure(
    error: Mapping[str, Any], inp: DrawInput, c_inp: DrawInput | None, seed: bytes, version: int
) -> str | None:
    """A failed draw must fail again: for the same reason at the same target (or tier);
    version 1 binds only the failing target."""
    try:
        draw_parts(inp, c_inp, seed, version)
    except DrawError as exc:
        tier = exc.tier.value if exc.tier is not None else None
        if version == 1:
            same = exc.target_key == error["target_key"]
        elif exc.reason == "pool_too_small":
            same = (error["reason"], error["tier"]) == (exc.reason, tier)
        else:
            same = (error["reason"], error["target_key"]) == (exc.reason, exc.target_key)
        if not same:
            return (
                f"error: recorded {error['reason']!r} at {error['target_key']!r}, "
                f"replayed {exc.reason!r} at {exc.target_key!r}"
            )
        return None
    return "result: recorded as failed, but the draw succeeds"


def _amendments(
    amendments: Sequence[Mapping[str, Any]],
    inp: DrawInput,
    result: DrawResult,
    c_inp: DrawInput | None,
    c_result: DrawResult | None,
    version: int = 2,
    evidence: bool = False,
) -> str | None:
    """Replay each swap (section 10); with ``evidence`` (a version 2 full export) first check
    that every exclusion rests on a register record that was in effect before the request."""
    current = {"random": (inp, result), "construction": (c_inp, c_result)}
    for n, a in enumerate(amendments):
        where = f"amendments[{n}]"
        part_inp, part_result = current[a["part"]]
        if part_inp is None or part_result is None:
            return f"{where}.part: no {a['part']!r} result to amend"
        if evidence and a.get("kind") == "swap":
            found = _evidence(a, part_inp, where)
            if found:
                return found
        other = [
            (o_inp, o_result)
            for name, (o_inp, o_result) in current.items()
            if name != a["part"] and o_inp is not None and o_result is not None
        ]
        try:
            if a.get("kind") == "merge":
                current[a["part"]] = (
                    part_inp,
                    merge_visit(part_result, a["target_key"], a["into"]),
                )
                continue
            new, amended = swap_member(
                part_result,
                part_inp,
                a["target_key"],
                a["leaving"],
                frozenset(a["excluded"]),
                team_loads(other) if version >= 2 else None,
            )
        except DrawError as exc:
            return f"{where}: cannot be replayed: {exc.reason}"
        if new != a["replacement"]:
            return f"{where}.replacement: recorded {a['replacement']!r}, replayed {new!r}"
        current[a["part"]] = (part_inp, amended)
    return None


def _instant(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _evidence(a: Mapping[str, Any], inp: DrawInput, where: str) -> str | None:
    """Section 10, rule 5: each ``excluded[i]`` is justified by ``evidence[i]``."""
    excluded, records = a["excluded"], a["evidence"]
    if len(records) != len(excluded):
        return f"{where}.evidence: {len(records)} records for {len(excluded)} exclusions"
    start, end = dt.date.fromisoformat(a["check_start"]), dt.date.fromisoformat(a["check_end"])
    if end < start:
        return f"{where}.check_end: before check_start"
    requested = _instant(a["requested_at"])
    if requested > _instant(a["at"]):
        return f"{where}.requested_at: after the swap was made"
    userids = {i.key: i.userid for i in inp.inspectors}
    for k, (key, record) in enumerate(zip(excluded, records, strict=True)):
        at = f"{where}.evidence[{k}]"
        if key not in userids:
            return f"{where}.excluded[{k}]: {key!r} is not an inspector of the input"
        if record["person"] != userids[key]:
            return f"{at}.person: {record['person']!r} is not {key!r} ({userids[key]!r})"
        if record["state"] != "confirmed":
            return f"{at}.state: a {record['state']} record excludes nobody"
        if not _instant(record["effective_at"]) < requested:
            return f"{at}.effective_at: not in effect before the swap was requested"
        lo, hi = record["from"], record["until"]
        if record["kind"] == "leave":
            if record["targets"]:
                return f"{at}.targets: a leave names no target"
            if lo is not None and hi is not None and hi < lo:
                return f"{at}.until: before from"
            if (lo or "0000-01-01") > a["check_end"] or (hi or "9999-12-31") < a["check_start"]:
                return f"{at}: the leave does not overlap the check window"
        else:
            if lo is not None or hi is not None:
                return f"{at}: a conflict has no dates"
            if a["target_key"] not in record["targets"]:
                return f"{at}.targets: no declared conflict with {a['target_key']!r}"
    return None


# --- public exports (section 18) -------------------------------------------------------

PUBLIC_TARGET = obj(
    {
        "ref": hex64,
        "tier": one_of(*TIERS),
        "org": STRING,
        "on_positive_list": BOOLEAN,
        "score_hex": hex64,
        "opening": nullable(obj({"key": STRING, "nonce_hex": hex64})),
    }
)
PUBLIC_INSPECTOR = obj(
    {
        "key": hex64,
        "person": hex64,
        "org": STRING,
        "certificate_kind": STRING,
        "auxiliary": BOOLEAN,
        "conflicts": distinct_strings,
        "last_inspected": distinct_strings,
    }
)
PUBLIC_INPUT = obj(
    {
        "targets": array(PUBLIC_TARGET),
        "inspectors": array(PUBLIC_INSPECTOR),
        "counts": obj(dict.fromkeys(TIERS, COUNT)),
        "policy": POLICY,
        "entities": array(distinct_strings),
    }
)
PUBLIC_PART = obj({"input": PUBLIC_INPUT, "result": exactly(dict)})
PUBLIC_DOCUMENT = obj(
    {
        "kind": one_of("public"),
        "algorithm_version": integer(2),
        "commitment": hex64,
        "fingerprint": hex64,
        "seed_hex": hex64,
        "witness": witness_value,
        "witnessed": BOOLEAN,
        "status": one_of("drawn"),
        "input": PUBLIC_INPUT,
        "result": exactly(dict),
        "construction": nullable(PUBLIC_PART),
        "amendments": array(
            amendment_schema(
                2,
                obj(
                    {
                        "seq": integer(1),
                        "kind": one_of("swap"),
                        "part": one_of("random", "construction"),
                        "target_key": STRING,
                        "leaving": STRING,
                        "excluded": distinct_strings,
                        "replacement": STRING,
                    }
                ),
                obj(
                    {
                        "seq": integer(1),
                        "kind": one_of("merge"),
                        "part": one_of("random", "construction"),
                        "target_key": STRING,
                        "into": STRING,
                    }
                ),
            )
        ),
    }
)


def _public_part(
    part: Mapping[str, Any], seed: bytes, where: str, loads: Mapping[str, int] | None = None
) -> tuple[DrawInput, DrawResult] | str:
    """One part of a public export replayed: openings and scores of the opened targets, the
    selection by the recorded scores, the teams on the recorded cycles."""
    raw = part["input"]
    scores: dict[str, str] = {}
    for n, t in enumerate(raw["targets"]):
        at = f"{where}input.targets[{n}]"
        opening = t["opening"]
        if opening is not None:
            key = opening["key"]
            ref = hashlib.sha256(bytes.fromhex(opening["nonce_hex"]) + key.encode()).hexdigest()
            if ref != t["ref"]:
                return f"{at}.opening: does not open the commitment {t['ref']!r}"
            if score(seed, "target:" + t["tier"], key).hex() != t["score_hex"]:
                return f"{at}.score_hex: not the score of {key!r}"
        scores[t["ref"]] = t["score_hex"]
    if len(scores) != len(raw["targets"]):
        return f"{where}input.targets: duplicate target"
    inp = input_from_json(
        {
            **raw,
            "targets": [dict(t, key=t["ref"]) for t in raw["targets"]],
            "inspectors": [dict(i, userid=i["person"]) for i in raw["inspectors"]],
        }
    )
    _validated(inp, where + "input")
    walk: list[tuple[str, str, SelectedTarget]] = []
    for tier in Tier:
        pool = sorted((scores[t.key], t.key, t) for t in inp.targets if t.tier == tier.value)
        if inp.count(tier) > len(pool):
            return f"{where}input.counts.{tier.value}: larger than the pool"
        for rank, (digest, key, t) in enumerate(pool[: inp.count(tier)], start=1):
            method: Method = "offsite" if t.on_positive_list else "onsite"
            walk.append((digest, key, SelectedTarget(key, tier, rank, digest, method)))
    walk.sort(key=lambda w: (w[0], w[1]))
    recorded = part["result"]
    found = _cycles(inp, recorded, where)
    if found:
        return found
    result = draw_on_ranking(
        inp, [w[2] for w in walk], recorded["cycle"], recorded["aux_cycle"], loads
    )
    return first_difference(recorded, result_to_json(result), where + "result") or (inp, result)


def _cycles(inp: DrawInput, recorded: Mapping[str, Any], where: str) -> str | None:
    """Each recorded cycle holds exactly one entry of each person eligible for it."""
    entries = {i.key: i for i in inp.inspectors}
    for name, auxiliary in (("cycle", False), ("aux_cycle", True)):
        keys = recorded.get(name)
        if not isinstance(keys, list) or any(k not in entries for k in keys):
            return f"{where}result.{name}: not a list of the input's inspectors"
        chosen = [entries[k] for k in keys]
        eligible = {
            i.userid
            for i in inp.inspectors
            if i.auxiliary is auxiliary
            and (auxiliary or i.certificate_kind in inp.policy.qualifying_kinds)
        }
        people = [i.userid for i in chosen]
        wrong = any(
            i.auxiliary is not auxiliary
            or (not auxiliary and i.certificate_kind not in inp.policy.qualifying_kinds)
            for i in chosen
        )
        if wrong or len(set(people)) != len(people) or set(people) != eligible:
            return f"{where}result.{name}: not one entry per eligible person"
    return None


def _verify_public(doc: Any) -> str | None:
    PUBLIC_DOCUMENT(doc, "document")
    if doc["witnessed"] is not (doc["witness"] is not None):
        return "witnessed: does not match the witness value"
    seed = bytes.fromhex(doc["seed_hex"])
    try:
        random = _public_part(doc, seed, "")
        if isinstance(random, str):
            return random
        parts: dict[str, tuple[DrawInput | None, DrawResult | None]] = {
            "random": random,
            "construction": (None, None),
        }
        if doc["construction"] is not None:
            built = _public_part(
                doc["construction"],
                construction_seed(seed),
                "construction.",
                team_loads((random,)),  # section 12: loads are shared
            )
            if isinstance(built, str):
                return built
            _construction_input(random[0], built[0])
            parts["construction"] = built
    except DrawError as exc:
        return f"result: the draw cannot be made: {exc.reason} at {exc.target_key or exc.tier}"
    for n, a in enumerate(doc["amendments"]):
        if a["seq"] != n + 1:
            return f"amendments[{n}].seq: expected {n + 1}"
    return _amendments(doc["amendments"], *parts["random"], *parts["construction"])  # type: ignore[arg-type]
