"""People, not certificates, are ranked (DRAW_ALGORITHM.md version 2, section 7; Art. 2, 28).

A person holding two qualifying certificates used to be in the inspector cycle twice and landed
on teams about twice as often as a colleague with one."""

from __future__ import annotations

import hashlib
from collections import Counter

from inspection import reference_verifier
from inspection.draw import (
    PoolInspector,
    derive_seed,
    draw,
    export_document,
    swap_member,
)
from inspection.quotas import Tier
from tests.inspection.factories import COUNTY, make_input, targets

KINDS = frozenset({"enforcement", "work"})
CRITICAL_CHI2_DF9_P001 = 27.877  # chi-square, 9 degrees of freedom, p = 0.001


def staff() -> tuple[PoolInspector, ...]:
    """Ten people; the first four hold two qualifying certificates each."""
    people = []
    for n in range(10):
        people.append(PoolInspector(f"E{n:02d}", f"user{n}", COUNTY, "enforcement"))
        if n < 4:
            people.append(PoolInspector(f"W{n:02d}", f"user{n}", COUNTY, "work"))
    return tuple(people)


def appearances(version: int, draws: int = 2000) -> Counter[str]:
    """How often each person sits on the one team of a one-target draw, over fixed seeds."""
    people = {i.key: i.userid for i in staff()}
    inp = make_input(targets(1), staff(), {Tier.general: 1}, qualifying_kinds=KINDS)
    seen: Counter[str] = Counter()
    for n in range(draws):
        seed = hashlib.sha256(b"chi-square %d" % n).digest()
        team = draw(inp, seed, version).teams[0]
        seen.update(people[k] for k in team.members)
    return seen


def chi_square(seen: Counter[str]) -> float:
    expected = sum(seen.values()) / 10
    return sum((seen[f"user{n}"] - expected) ** 2 / expected for n in range(10))


def test_art28_a_person_with_two_certificates_is_drawn_as_often_as_one_with_one() -> None:
    seen = appearances(2)
    assert chi_square(seen) < CRITICAL_CHI2_DF9_P001, seen
    two = sum(seen[f"user{n}"] for n in range(4)) / 4
    one = sum(seen[f"user{n}"] for n in range(4, 10)) / 6
    assert abs(two - one) / one < 0.1, (two, one)
    # The same test catches version 1, which ranked certificates.
    old = appearances(1)
    assert chi_square(old) > CRITICAL_CHI2_DF9_P001
    assert sum(old[f"user{n}"] for n in range(4)) / 4 > 1.5 * (
        sum(old[f"user{n}"] for n in range(4, 10)) / 6
    )


def test_art28_a_conflict_declared_under_either_certificate_keeps_the_person_off_the_team() -> None:
    """The person's cycle entry is the smaller key (E00); the conflict is recorded under the
    other certificate (W00): it counts all the same, in the draw and in a swap, and the
    reference verifier agrees."""
    pool = targets(3)
    people = (
        PoolInspector("E00", "zhang", COUNTY, "enforcement"),
        PoolInspector("W00", "zhang", COUNTY, "work", conflicts=frozenset(t.key for t in pool)),
        *(PoolInspector(f"E{n:02d}", f"user{n}", COUNTY, "enforcement") for n in range(1, 5)),
    )
    inp = make_input(pool, people, {Tier.general: 3}, qualifying_kinds=KINDS)
    secret = bytes(range(32))
    for witness in ("1", "2", "3", "4", "5"):
        result = draw(inp, derive_seed(secret, witness))
        assert "E00" in result.cycle and "W00" not in result.cycle
        assert all("E00" not in t.members for t in result.teams)
        team = result.teams[0]
        new, _ = swap_member(result, inp, team.target_key, team.members[0])
        assert new != "E00"
        doc = export_document(inp, secret, witness, result)
        assert reference_verifier.verify(doc) is None
