"""Honest draw exports built without a database, in every state and both versions: the bases
the forged and malformed exports of ``tests/test_draw_corpus.py`` are made from."""

from __future__ import annotations

import copy
import json
from typing import Any

from inspection.draw import (
    DrawError,
    DrawInput,
    DrawPolicy,
    PoolInspector,
    PoolTarget,
    amendments_head,
    derive_seed,
    draw,
    draw_parts,
    export_document,
    fingerprint,
    input_to_json,
    result_to_json,
    swap_member,
)
from inspection.quotas import Tier

SECRET = bytes(range(32))
WITNESS = "20261130"
COUNTY, OTHER = "150102", "150103"
Doc = dict[str, Any]

PEOPLE = tuple(PoolInspector(f"C{i:03d}", f"u{i}", COUNTY, "enforcement") for i in range(8))
POOL = tuple(PoolTarget(f"G{i:03d}", Tier.general, COUNTY) for i in range(40))
PROJECTS = tuple(PoolTarget(f"P{i}", Tier.key, COUNTY) for i in range(2))


# What the pool left out, with the evidence of each reason (section 4): a target checked this
# year, an inspector on leave, and the Art. 25(4) projects (the construction part).
EXCLUSIONS: list[dict[str, Any]] = [
    {
        "kind": "inspector",
        "key": "C900",
        "reason": "on_leave",
        "label": "检查期内请假",
        "evidence": {
            "leave": "leave:C900:2026-11-01:2026-12-31",
            "from": "2026-11-01",
            "until": "2026-12-31",
        },
    },
    *(
        {"kind": "target", "key": p.key, "reason": "construction_due", "label": "", "evidence": {}}
        for p in PROJECTS
    ),
    {
        "kind": "target",
        "key": "G900",
        "reason": "inspected_this_year",
        "label": "",
        "evidence": {"task": "T2026-150100-000", "inspection": 17},
    },
]


def rechain(doc: Doc) -> None:
    """What a forger does after changing the amendments: recompute the chain's head."""
    doc["amendments_head"] = amendments_head(doc["commitment"], doc["amendments"])


# Art. 19: the 40 targets as 20 market entities of two permits each.
PAIRS = tuple((f"G{2 * i:03d}", f"G{2 * i + 1:03d}") for i in range(20))


def _drawn(
    witness: str | None,
    version: int,
    swaps: int,
    *,
    general: int = 4,
    entities: tuple[tuple[str, ...], ...] = (),
    max_load: int | None = None,
    merge: bool = False,
) -> Doc:
    policy = DrawPolicy(max_load=max_load)
    inp = DrawInput(POOL, PEOPLE, {Tier.general: general}, policy, entities)
    extra = DrawInput(PROJECTS, PEOPLE, {Tier.key: 2}, policy)
    seed = derive_seed(SECRET, witness, version)
    result, c_result = draw_parts(inp, extra, seed, version)
    assert c_result is not None
    doc = export_document(inp, SECRET, witness, result, version)
    amendments, current = [], result
    for n, team in enumerate(result.teams[:swaps], start=1):
        new, current = swap_member(current, inp, team.target_key, team.members[0])
        amendments.append(
            {
                "seq": n,
                "kind": "swap",
                "part": "random",
                "target_key": team.target_key,
                "leaving": team.members[0],
                "excluded": [],
                "replacement": new,
                "reason": "病假",
                "approved_by": "chief",
                "at": "2026-11-30T02:00:00+00:00",
            }
        )
    doc |= {
        "status": "drawn",
        "witnessed": witness is not None,
        "error": None,
        "amendments": amendments,
        "construction": {
            "input": input_to_json(extra, version),
            "fingerprint": fingerprint(extra, version),
            "result": result_to_json(c_result),
        },
        "task": {"code": "T2026-150100-001"},
        "attempt": 1,
    }
    if merge:  # the last visit is done by another task's visit (section 13)
        doc["amendments"].append(
            {
                "seq": len(amendments) + 1,
                "kind": "merge",
                "part": "random",
                "target_key": result.teams[-1].target_key,
                "into": "T2026-150102-003:1042",
                "reason": "同一市场主体已有其他任务的检查",
                "approved_by": "chief",
                "at": "2026-11-30T03:00:00+00:00",
            }
        )
    if version >= 2:
        doc["exclusions"] = EXCLUSIONS
    if version >= 2:
        rechain(doc)
    return doc


def _failed() -> Doc:
    """Every target in a county without inspectors, drawn with same-county teams: it fails."""
    pool = tuple(PoolTarget(f"G{i:03d}", Tier.general, OTHER) for i in range(5))
    same_county = DrawPolicy(locality="same_county")
    inp = DrawInput(pool, PEOPLE, {Tier.general: 2}, same_county)
    extra = DrawInput(PROJECTS, PEOPLE, {Tier.key: 2}, same_county)
    seed = derive_seed(SECRET, WITNESS)
    try:
        draw(inp, seed)
        raise AssertionError("the draw was meant to fail")
    except DrawError as exc:
        error = {"reason": exc.reason, "target_key": exc.target_key, "tier": None}
    # The document of section 9 around an empty result, then the failure in its place.
    doc = export_document(inp, SECRET, WITNESS, draw(DrawInput((), (), {}), seed))
    doc |= {
        "status": "failed",
        "result": None,
        "error": error,
        "construction": {
            "input": input_to_json(extra),
            "fingerprint": fingerprint(extra),
            "result": None,
        },
        "exclusions": EXCLUSIONS,
    }
    return doc


_BASES: dict[str, str] = {}


def base(kind: str) -> Doc:
    """A fresh copy of an honest export: ``drawn`` (version 2, witnessed, two swaps, Art.
    25(4) part), ``unwitnessed``, ``failed``, ``abandoned``, ``v1`` and ``v1_unwitnessed``;
    ``entities`` (permits paired into market entities, visits of two sites), ``merged`` (a
    visit merged into another task's after the swaps) and ``shared`` (``max_load`` 1: the
    Art. 25(4) teams take only people the random part left free)."""
    if not _BASES:
        drawn = _drawn(WITNESS, 2, 2)
        abandoned = _drawn(None, 2, 0) | {"status": "abandoned", "result": None}
        abandoned["construction"]["result"] = None
        for name, doc in (
            ("drawn", drawn),
            ("unwitnessed", _drawn(None, 2, 1)),
            ("failed", _failed()),
            ("abandoned", abandoned),
            ("v1", _drawn(WITNESS, 1, 2)),
            ("v1_unwitnessed", _drawn(None, 1, 0)),
            ("entities", _drawn(WITNESS, 2, 1, general=16, entities=PAIRS)),
            ("merged", _drawn(WITNESS, 2, 2, merge=True)),
            ("shared", _drawn(WITNESS, 2, 0, general=2, max_load=1)),
        ):
            _BASES[name] = json.dumps(doc, ensure_ascii=False)
    return copy.deepcopy(json.loads(_BASES[kind]))
