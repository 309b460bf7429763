"""The fast canonical document (what a draw freezes and fingerprints) is, byte for byte, the
generic ``canonical_json`` of DRAW_ALGORITHM.md section 5, and so what the stdlib-only
reference verifier computes."""

from __future__ import annotations

import hashlib
import random

import pytest

from inspection import reference_verifier
from inspection.draw import (
    ALGORITHM_VERSION,
    DrawInput,
    DrawPolicy,
    PoolInspector,
    PoolTarget,
    canonical_document,
    canonical_json,
    fingerprint,
    fingerprinted,
    input_from_json,
    input_to_json,
)
from inspection.quotas import Tier

# Everything section 5 escapes or leaves alone, and characters beyond the BMP.
ALPHABET = [
    "a", "Z", "0", '"', "\\", "/", "\x00", "\x08", "\x0c", "\n", "\r", "\t", "\x1f", "\x7f",
    "\u2028", "\u2029", "中", "呼", "😀", "\ud7ff", "\ue000", " ", "é",
]  # fmt: skip


def generic(inp: DrawInput) -> bytes:
    return canonical_json({"algorithm_version": ALGORITHM_VERSION, "input": input_to_json(inp)})


def odd_string(rng: random.Random) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 6)))


def odd_input(rng: random.Random) -> DrawInput:
    targets = {}
    for i in range(rng.randint(0, 40)):
        key = odd_string(rng) + str(i)
        tier = rng.choice([Tier.special, Tier.key, Tier.general, "general", "key", "special"])
        targets[key] = PoolTarget(key, tier, odd_string(rng), rng.random() < 0.5)  # type: ignore[arg-type]
    people = tuple(
        PoolInspector(
            odd_string(rng) + str(i),
            odd_string(rng),
            odd_string(rng),
            rng.choice(["enforcement", odd_string(rng)]),
            rng.random() < 0.3,
            frozenset({odd_string(rng), odd_string(rng)}),
            frozenset({odd_string(rng)}),
        )
        for i in range(rng.randint(0, 5))
    )
    order = list(targets.values())
    rng.shuffle(order)
    policy = DrawPolicy(
        team_size=rng.randint(1, 3),
        qualifying_kinds=frozenset({odd_string(rng), "enforcement"}),
        max_load=rng.choice([None, 2]),
    )
    return DrawInput(tuple(order), people, {Tier.general: rng.randint(0, 3)}, policy)


def test_the_fast_document_is_the_generic_canonical_json_byte_for_byte() -> None:
    rng = random.Random(4)
    for _ in range(400):
        inp = odd_input(rng)
        doc = canonical_document(inp)
        assert doc == generic(inp)
        fp, frozen = fingerprinted(inp)
        assert frozen == doc and fp == hashlib.sha256(doc).hexdigest() == fingerprint(inp)
        # The stdlib-only reference verifier canonicalises the same input to the same bytes.
        reference = reference_verifier.canonical_input(input_to_json(inp))
        assert reference_verifier.fingerprint_of(reference) == fp
        assert fingerprint(input_from_json(input_to_json(inp))) == fp


@pytest.mark.parametrize(
    "odd",
    [
        PoolTarget("a", Tier.general, "x", 1),  # type: ignore[arg-type]  # json writes 1
        PoolTarget(1, Tier.general, "x", True),  # type: ignore[arg-type]
        PoolTarget("a", Tier.general, 5, True),  # type: ignore[arg-type]
        PoolTarget("a", Tier.general, None, False),  # type: ignore[arg-type]
        PoolTarget("a", "vip", "x", False),  # type: ignore[arg-type]
    ],
)
def test_what_the_fast_path_does_not_expect_is_encoded_or_refused_as_before(
    odd: PoolTarget,
) -> None:
    inp = DrawInput((odd, PoolTarget("b", Tier.key, "y")), (), {}, DrawPolicy())
    try:
        expected: bytes | type[Exception] = generic(inp)
    except Exception as exc:
        expected = type(exc)
    try:
        got: bytes | type[Exception] = canonical_document(inp)
    except Exception as exc:
        got = type(exc)
    assert got == expected


def test_pool_targets_are_immutable_records() -> None:
    t = PoolTarget("K", Tier.key, "150102")
    assert t == PoolTarget(key="K", tier=Tier.key, org="150102", on_positive_list=False)
    assert hash(t) == hash(PoolTarget("K", Tier.key, "150102", False))
    assert t._replace(on_positive_list=True).on_positive_list is True
    assert (
        repr(t)
        == "PoolTarget(key='K', tier=<Tier.key: 'key'>, org='150102', on_positive_list=False)"
    )
    with pytest.raises(AttributeError):
        t.key = "other"  # type: ignore[misc]
    # As build_pool makes them in bulk: the same record.
    assert tuple.__new__(PoolTarget, ("K", Tier.key, "150102", False)) == t
