"""Forged and malformed draw exports: both verifiers reject every one, for the same reason
(DRAW_ALGORITHM.md version 2, sections 4, 9, 12–15, 17; Art. 2, 27–29).

Each case starts from an honest export (``tests/support/draw_exports.py``), changes one thing
and hands the bytes to the library's verifier (``inspection.verify``, what ``shuangsuiji draw
verify`` runs) and to the standard-library reference verifier. Both must say MISMATCH and name
the same member."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from inspection import reference_verifier, verify
from inspection.draw import (
    amendments_head,
    construction_seed,
    derive_seed,
    draw,
    fingerprint,
    input_from_json,
    result_to_json,
)
from tests.support.draw_exports import Doc, base, rechain

Forgery = Callable[[], Doc | bytes]


def both(data: Doc | bytes) -> tuple[str | None, str | None]:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode("utf-8")
    return verify.verify_bytes(raw), reference_verifier.verify_bytes(raw)


def edit(kind: str, change: Callable[[Doc], object]) -> Forgery:
    def forge() -> Doc:
        doc = base(kind)
        change(doc)
        return doc

    return forge


def text(kind: str, old: str, new: str) -> Forgery:
    """A change made to the file's text (what a dict cannot hold: duplicates, NaN, 1.0)."""

    def forge() -> bytes:
        raw = json.dumps(base(kind), ensure_ascii=False)
        assert old in raw, old
        return raw.replace(old, new, 1).encode("utf-8")

    return forge


def policy(name: str, value: object) -> Forgery:
    def change(doc: Doc) -> None:
        doc["input"]["policy"][name] = value
        # A consistent forgery: the fingerprint recomputed would not pass either (no draw).

    return edit("drawn", change)


def first_target(name: str, value: object) -> Forgery:
    return edit("drawn", lambda d: d["input"]["targets"][0].__setitem__(name, value))


def first_amendment(change: Callable[[dict[str, object]], object]) -> Forgery:
    def forge(doc: Doc) -> None:
        change(doc["amendments"][0])
        rechain(doc)

    return edit("drawn", forge)


def short_secret(doc: Doc) -> None:
    import hashlib

    secret = bytes(16)
    doc["secret_hex"] = secret.hex()
    doc["commitment"] = hashlib.sha256(secret).hexdigest()


def upper_secret(doc: Doc) -> None:
    doc["secret_hex"] = doc["secret_hex"].upper()


def amend_failed(doc: Doc) -> None:
    doc["amendments"] = base("drawn")["amendments"][:1]
    rechain(doc)


def construction_on_failure(doc: Doc) -> None:
    doc["construction"]["result"] = base("drawn")["construction"]["result"]


def fewer_projects_drawn(doc: Doc) -> None:
    part = doc["construction"]
    part["input"]["counts"]["key"] = 1
    part["fingerprint"] = fingerprint(input_from_json(part["input"]))


def project_in_random_pool(doc: Doc) -> None:
    project = doc["construction"]["input"]["targets"][0]
    doc["input"]["targets"].append(dict(project))
    doc["fingerprint"] = fingerprint(input_from_json(doc["input"]))


def other_failure_reason(doc: Doc) -> None:
    doc["error"]["reason"] = "pool_too_small"


def invalid_input_as_failure(doc: Doc) -> None:
    doc["input"]["targets"].append(dict(doc["input"]["targets"][0]))


def drop_last_amendment(doc: Doc) -> None:
    doc["amendments"].pop()


def relabel_as_abandoned(doc: Doc) -> None:
    doc["status"] = "abandoned"


def witnessed_as_unwitnessed_word(doc: Doc) -> None:
    doc["witness"], doc["witnessed"] = "unwitnessed", True


def v2_passed_off_as_v1(doc: Doc) -> None:
    """Version 1 has no market-entity groups: a forger drops them too (else the input itself
    gives the version away), and the fingerprint, which binds the version, still tells."""
    doc["algorithm_version"] = 1
    del doc["input"]["entities"], doc["construction"]["input"]["entities"]


def split_visit(doc: Doc) -> None:
    """Art. 19: a visit of two permits of one company recorded as two visits."""
    teams = doc["result"]["teams"]
    n, team = next((n, t) for n, t in enumerate(teams) if len(t["sites"]) == 2)
    lead, other = team["sites"]
    teams[n] = dict(team, sites=[lead])
    teams.insert(n + 1, dict(team, target_key=other, sites=[other]))


def construction_with_own_loads(doc: Doc) -> None:
    """Art. 25(4) teams drawn as if the random part had given nobody a team (version 1 style)."""
    seed = derive_seed(bytes.fromhex(doc["secret_hex"]), doc["witness"])
    extra = input_from_json(doc["construction"]["input"])
    separate = result_to_json(draw(extra, construction_seed(seed)))
    assert separate != doc["construction"]["result"]
    doc["construction"]["result"] = separate


def merged_amendment(change: Callable[[Doc, dict[str, object]], object]) -> Forgery:
    def forge(doc: Doc) -> None:
        change(doc, doc["amendments"][-1])
        rechain(doc)

    return edit("merged", forge)


def swap_after_merge(doc: Doc, merge: dict[str, object]) -> None:
    team = next(t for t in doc["result"]["teams"] if t["target_key"] == merge["target_key"])
    doc["amendments"].append(
        dict(doc["amendments"][0], seq=len(doc["amendments"]) + 1, target_key=team["target_key"])
        | {"leaving": team["members"][0], "replacement": "C007"}
    )


def merge_in_v1(doc: Doc) -> None:
    doc["amendments"].append(dict(base("merged")["amendments"][-1], seq=3))


def exclusion(reason: str, change: Callable[[dict[str, object]], object]) -> Forgery:
    def forge(doc: Doc) -> None:
        change(next(e for e in doc["exclusions"] if e["reason"] == reason))

    return edit("drawn", forge)


def exclusion_twice(doc: Doc) -> None:
    doc["exclusions"].append(dict(doc["exclusions"][0]))


def project_not_left_out(doc: Doc) -> None:
    doc["exclusions"] = [e for e in doc["exclusions"] if e["reason"] != "construction_due"][:]
    doc["exclusions"] += [e for e in base("drawn")["exclusions"] if e["key"] == "P0"]


CASES: dict[str, tuple[Forgery, str]] = {
    # Wrong JSON types (sections 1, 4, 9).
    "version_true": (
        edit("drawn", lambda d: d.__setitem__("algorithm_version", True)),
        "algorithm_version",
    ),
    "version_float": (
        text("drawn", '"algorithm_version": 2', '"algorithm_version": 2.0'),
        "algorithm_version",
    ),
    "team_size_float": (policy("team_size", 2.0), "team_size"),
    "team_size_true": (policy("team_size", True), "team_size"),
    "max_load_true": (policy("max_load", True), "max_load"),
    "avoid_last_as_integer": (policy("avoid_last_inspector", 1), "avoid_last_inspector"),
    "positive_list_as_integer": (first_target("on_positive_list", 0), "on_positive_list"),
    "auxiliary_as_integer": (
        edit("drawn", lambda d: d["input"]["inspectors"][0].__setitem__("auxiliary", 0)),
        "auxiliary",
    ),
    "integer_org": (first_target("org", 150102), "org"),
    "witnessed_zero": (edit("unwitnessed", lambda d: d.__setitem__("witnessed", 0)), "witnessed"),
    "secret_16_bytes": (edit("drawn", short_secret), "secret_hex"),
    "secret_upper_case": (edit("drawn", upper_secret), "secret_hex"),
    "count_missing_tier": (edit("drawn", lambda d: d["input"]["counts"].pop("special")), "special"),
    "conflict_listed_twice": (
        edit(
            "drawn",
            lambda d: d["input"]["inspectors"][0].__setitem__("conflicts", ["G001", "G001"]),
        ),
        "conflicts",
    ),
    "unknown_member": (edit("drawn", lambda d: d.__setitem__("seed_hex", "00")), "seed_hex"),
    "unknown_policy_member": (policy("team_size_min", 2), "team_size_min"),
    "missing_status": (edit("drawn", lambda d: d.pop("status")), "status"),
    "missing_chain_head": (edit("drawn", lambda d: d.pop("amendments_head")), "amendments_head"),
    # The JSON dialect (section 15).
    "duplicate_witness": (
        text("drawn", '"witness": "20261130"', '"witness": "20261130", "witness": "20261131"'),
        "duplicate",
    ),
    "nan": (text("drawn", '"team_size": 2', '"team_size": NaN'), "NaN"),
    "byte_order_mark": (
        lambda: b"\xef\xbb\xbf" + json.dumps(base("drawn")).encode(),
        "byte order mark",
    ),
    "lone_surrogate": (text("drawn", '"witness": "20261130"', '"witness": "\\ud800"'), "surrogate"),
    "not_utf8": (
        lambda: json.dumps(base("drawn")).encode().replace(b"20261130", b"\xff", 1),
        "UTF-8",
    ),
    "top_level_array": (lambda: b"[]", "algorithm_version"),
    "empty_file": (lambda: b"", "json"),
    # States (section 14).
    "amendments_on_failed": (edit("failed", amend_failed), "amendments"),
    "amendments_on_abandoned": (edit("abandoned", amend_failed), "amendments"),
    "construction_result_on_failed": (
        edit("failed", construction_on_failure),
        "construction.result",
    ),
    "error_on_drawn": (
        edit("drawn", lambda d: d.__setitem__("error", base("failed")["error"])),
        "error",
    ),
    "failure_reason_changed": (edit("failed", other_failure_reason), "error"),
    "unknown_failure_reason": (
        edit("failed", lambda d: d["error"].__setitem__("reason", "bad_luck")),
        "reason",
    ),
    "invalid_input_recorded_as_failure": (
        edit("failed", invalid_input_as_failure),
        "duplicate target key",
    ),
    "drawn_relabelled_abandoned": (edit("drawn", relabel_as_abandoned), "result"),
    "unwitnessed_relabelled_witnessed": (
        edit("unwitnessed", witnessed_as_unwitnessed_word),
        "result",
    ),
    # The Art. 25(4) part (section 12).
    "fewer_projects_than_listed": (
        edit("drawn", fewer_projects_drawn),
        "construction.input.counts.key",
    ),
    "project_also_in_random_pool": (
        edit("drawn", project_in_random_pool),
        "also in the random pool",
    ),
    # Amendments (section 13).
    "seq_true": (first_amendment(lambda a: a.__setitem__("seq", True)), "seq"),
    "seq_missing": (first_amendment(lambda a: a.pop("seq")), "seq"),
    "kind_missing": (first_amendment(lambda a: a.pop("kind")), "kind"),
    "part_missing": (first_amendment(lambda a: a.pop("part")), "part"),
    "excluded_free_text": (
        first_amendment(lambda a: a.__setitem__("excluded", "病假")),
        "excluded",
    ),
    "last_amendment_deleted": (edit("drawn", drop_last_amendment), "amendments_head"),
    "amendment_reason_rewritten": (
        edit("drawn", lambda d: d["amendments"][0].__setitem__("reason", "本人申请")),
        "amendments_head",
    ),
    # One visit per market entity (sections 4, 8; Art. 19).
    "entity_group_of_one": (
        edit("entities", lambda d: d["input"]["entities"].append(["G039"])),
        "entities",
    ),
    "entity_key_not_a_target": (
        edit("entities", lambda d: d["input"]["entities"].append(["G900", "G901"])),
        "entities",
    ),
    "entity_key_in_two_groups": (
        edit("entities", lambda d: d["input"]["entities"].append(["G000", "G002"])),
        "two groups",
    ),
    "entity_key_twice_in_a_group": (
        edit("entities", lambda d: d["input"]["entities"].append(["G900", "G900"])),
        "entities",
    ),
    "entities_missing": (edit("entities", lambda d: d["input"].pop("entities")), "entities"),
    "visit_split_in_two": (edit("entities", split_visit), "result.teams"),
    "entities_in_v1": (edit("v1", lambda d: d["input"].__setitem__("entities", [])), "entities"),
    "v1_team_with_sites": (
        edit("v1", lambda d: d["result"]["teams"][0].__setitem__("sites", ["G000"])),
        "sites",
    ),
    # Loads shared with the Art. 25(4) part (section 12).
    "construction_teamed_with_its_own_loads": (
        edit("shared", construction_with_own_loads),
        "construction.result",
    ),
    # Merges as amendments (section 13).
    "swap_on_a_merged_visit": (merged_amendment(swap_after_merge), "amendments[3]"),
    "merge_of_no_visit": (
        merged_amendment(lambda d, m: m.__setitem__("target_key", "G900")),
        "amendments[2]",
    ),
    "merged_twice": (
        merged_amendment(lambda d, m: d["amendments"].append(dict(m, seq=4))),
        "amendments[3]",
    ),
    "merge_without_into": (merged_amendment(lambda d, m: m.pop("into")), "into"),
    "merge_with_a_leaver": (
        merged_amendment(lambda d, m: m.__setitem__("leaving", "C000")),
        "leaving",
    ),
    "merge_dropped": (edit("merged", drop_last_amendment), "amendments_head"),
    "merge_in_v1": (edit("v1", merge_in_v1), "kind"),
    # Exclusions and their evidence (section 4).
    "exclusions_missing": (edit("drawn", lambda d: d.pop("exclusions")), "exclusions"),
    "checked_this_year_without_evidence": (
        exclusion("inspected_this_year", lambda e: e.__setitem__("evidence", {})),
        "evidence",
    ),
    "checked_this_year_inspection_zero": (
        exclusion(
            "inspected_this_year",
            lambda e: e.__setitem__("evidence", {"task": "T2026-150100-000", "inspection": 0}),
        ),
        "inspection",
    ),
    "leave_with_a_bad_date": (
        exclusion("on_leave", lambda e: e["evidence"].__setitem__("from", "2026-13-01")),
        "from",
    ),
    "leave_ending_before_it_begins": (
        exclusion("on_leave", lambda e: e["evidence"].__setitem__("until", "2026-10-01")),
        "evidence",
    ),
    "leave_without_record_id": (
        exclusion("on_leave", lambda e: e["evidence"].pop("leave")),
        "leave",
    ),
    "excluded_target_in_the_pool": (
        exclusion("inspected_this_year", lambda e: e.__setitem__("key", "G000")),
        "in the pool",
    ),
    "excluded_inspector_on_a_team": (
        exclusion("on_leave", lambda e: e.__setitem__("key", "C000")),
        "among the inspectors",
    ),
    "exclusion_for_an_unknown_reason": (
        exclusion("inspected_this_year", lambda e: e.__setitem__("reason", "disliked")),
        "reason",
    ),
    "exclusion_listed_twice": (edit("drawn", exclusion_twice), "twice"),
    "project_not_left_out": (edit("drawn", project_not_left_out), "construction project"),
    # Versions (section 17).
    "v2_passed_off_as_v1": (edit("drawn", v2_passed_off_as_v1), "fingerprint"),
    "v1_unwitnessed_relabelled_witnessed": (
        edit("v1_unwitnessed", witnessed_as_unwitnessed_word),
        "unwitnessed",
    ),
    "v1_team_size_float": (text("v1", '"team_size": 2', '"team_size": 2.0'), "team_size"),
    "v1_seq_true": (edit("v1", lambda d: d["amendments"][0].__setitem__("seq", True)), "seq"),
    "v1_version_3": (
        edit("v1", lambda d: d.__setitem__("algorithm_version", 3)),
        "algorithm_version",
    ),
}


@pytest.mark.parametrize(
    "kind",
    [
        "drawn",
        "unwitnessed",
        "failed",
        "abandoned",
        "v1",
        "v1_unwitnessed",
        "entities",
        "merged",
        "shared",
    ],
)
def test_art27_honest_exports_of_every_state_and_version_match_in_both_verifiers(kind: str) -> None:
    assert both(base(kind)) == (None, None)


@pytest.mark.parametrize("case", sorted(CASES))
def test_art27_both_verifiers_reject_each_forged_or_malformed_export_for_the_same_reason(
    case: str,
) -> None:
    forge, where = CASES[case]
    ours, reference = both(forge())
    assert ours is not None and where in ours, ours
    assert reference is not None and where in reference, reference


def test_art27_a_forger_who_recomputes_the_chain_is_caught_only_by_the_record() -> None:
    """Section 16: an export alone cannot show it is complete. Dropping the last amendment and
    recomputing the head gives a self-consistent export; the audit record (tests of
    ``storage.draws.binding``) is what tells."""
    doc = base("drawn")
    doc["amendments"].pop()
    doc["amendments_head"] = amendments_head(doc["commitment"], doc["amendments"])
    assert both(doc) == (None, None)


def test_art27_reference_verifier_says_why_it_rejects_a_lone_surrogate(tmp_path: Path) -> None:
    """Run as a program, as an outside checker would: no traceback, one MISMATCH line."""
    path = tmp_path / "draw.json"
    path.write_bytes(CASES["lone_surrogate"][0]())  # type: ignore[arg-type]
    name = json.dumps(base("drawn")).replace('"witness"', '"\\udc00"', 1)
    odd = tmp_path / "odd.json"
    odd.write_text(name, encoding="utf-8")
    for file in (path, odd):
        run = subprocess.run(
            [sys.executable, reference_verifier.__file__, str(file)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert run.returncode == 1 and run.stderr == "", run.stderr
        assert run.stdout.startswith("MISMATCH:") and "surrogate" in run.stdout, run.stdout
