"""Replay an exported draw with the library and name the first difference (`draw verify`).

The reference verifier (``reference_verifier.py``) does the same with the standard library only
and the plain cycle walk; the tests run both on the same exports and expect the same verdict.
Checked, in order: version, commitment, fingerprint, the witnessed marker, the result (or the
recorded failure), the Art. 25(4) part, then every amendment replayed in sequence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from inspection.draw import (
    ALGORITHM_VERSION,
    DrawError,
    DrawInput,
    DrawResult,
    commitment,
    construction_seed,
    derive_seed,
    draw,
    fingerprint,
    input_from_json,
    result_to_json,
    swap_member,
)
from inspection.reference_verifier import first_difference


def verify_export(doc: Any) -> str | None:
    """None when the export replays exactly, else the first difference (English)."""
    try:
        return _verify(doc)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        return f"malformed document: {type(exc).__name__}: {exc}"


def _verify(doc: Mapping[str, Any]) -> str | None:
    if doc["algorithm_version"] != ALGORITHM_VERSION:
        return f"algorithm_version: this verifier knows version {ALGORITHM_VERSION}"
    secret = bytes.fromhex(doc["secret_hex"])
    if commitment(secret) != doc["commitment"]:
        return f"commitment: recorded {doc['commitment']!r}, recomputed {commitment(secret)!r}"
    inp = input_from_json(doc["input"])
    if fingerprint(inp) != doc["fingerprint"]:
        return f"fingerprint: recorded {doc['fingerprint']!r}, recomputed {fingerprint(inp)!r}"
    witness = doc["witness"]
    if "witnessed" in doc and doc["witnessed"] != (witness is not None):
        return f"witnessed: recorded {doc['witnessed']!r} but the witness value is {witness!r}"
    seed = derive_seed(secret, witness)
    part = doc.get("construction")
    c_inp = None
    if part is not None:
        c_inp = input_from_json(part["input"])
        if fingerprint(c_inp) != part["fingerprint"]:
            return f"construction.fingerprint: recorded {part['fingerprint']!r}, recomputed {fingerprint(c_inp)!r}"
    if doc["result"] is None:
        return _without_result(doc, inp, c_inp, seed)
    result = draw(inp, seed)
    found = first_difference(doc["result"], result_to_json(result), "result")
    if found:
        return found
    c_result = None
    if part is not None and c_inp is not None:
        c_result = draw(c_inp, construction_seed(seed))
        found = first_difference(part["result"], result_to_json(c_result), "construction.result")
        if found:
            return found
    return _amendments(doc.get("amendments") or [], inp, result, c_inp, c_result)


def _without_result(
    doc: Mapping[str, Any], inp: DrawInput, c_inp: DrawInput | None, seed: bytes
) -> str | None:
    """A failed draw must fail again the same way; an abandoned one has nothing to replay."""
    error = doc.get("error")
    if error is None:
        return None if doc["witness"] is None else "result: missing although a witness was given"
    try:
        draw(inp, seed)
        if c_inp is not None:
            draw(c_inp, construction_seed(seed))
    except DrawError as exc:
        if exc.reason != error.get("reason") or exc.target_key != error.get("target_key"):
            return (
                f"error: recorded {error.get('reason')!r} at {error.get('target_key')!r}, "
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
) -> str | None:
    current = {"random": (inp, result), "construction": (c_inp, c_result)}
    for n, a in enumerate(amendments):
        where = f"amendments[{n}]"
        if a.get("seq", n + 1) != n + 1:
            return f"{where}.seq: recorded {a.get('seq')!r}, expected {n + 1}"
        if a.get("kind", "swap") != "swap":
            return f"{where}.kind: unknown amendment {a.get('kind')!r}"
        part = a.get("part", "random")
        if part not in current or current[part][1] is None:
            return f"{where}.part: no {part!r} result to amend"
        part_inp, part_result = current[part]
        assert part_inp is not None and part_result is not None
        try:
            new, amended = swap_member(
                part_result, part_inp, a["target_key"], a["leaving"], frozenset(a["excluded"])
            )
        except DrawError as exc:
            return f"{where}: cannot be replayed: {exc}"
        if new != a["replacement"]:
            return f"{where}.replacement: recorded {a['replacement']!r}, replayed {new!r}"
        current[part] = (part_inp, amended)
    return None
