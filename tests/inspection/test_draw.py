import hashlib
import random
from collections import Counter
from dataclasses import replace

import pytest

from inspection import draw as draw_module
from inspection import reference_verifier
from inspection.draw import (
    ALGORITHM_VERSION,
    DrawError,
    DrawInput,
    DrawPolicy,
    PoolInspector,
    PoolTarget,
    canonical_json,
    commitment,
    derive_seed,
    draw,
    fingerprint,
    input_from_json,
    input_to_json,
    next_replacement,
    result_from_json,
    result_to_json,
    score,
    swap_member,
)
from inspection.quotas import Tier
from tests.inspection.factories import COUNTY, SEED, inspectors, make_input, targets

SEEDS = [hashlib.sha256(str(i).encode()).digest() for i in range(2000)]


def chi_square(observed: Counter[str], keys: list[str], expected: float) -> float:
    return sum((observed[k] - expected) ** 2 / expected for k in keys)


# --- primitives ---------------------------------------------------------------------------


def test_art27_score_and_seed_byte_layout() -> None:
    assert score(b"s", "target:key", "K1") == hashlib.sha256(b"s\x00target:key\x00K1").digest()
    secret = bytes(range(32))
    # Version 2: one byte says which form the witness takes, so no value passes for none.
    assert (
        derive_seed(secret, "张三")
        == hashlib.sha256(secret + b"\x00\x01" + "张三".encode()).digest()
    )
    assert derive_seed(secret, None) == hashlib.sha256(secret + b"\x00\x00").digest()
    assert derive_seed(secret, "unwitnessed") != derive_seed(secret, None)
    assert derive_seed(secret, "") != derive_seed(secret, None)
    # Version 1, as its records are replayed.
    assert (
        derive_seed(secret, "张三", 1)
        == hashlib.sha256(secret + b"\x00" + "张三".encode()).digest()
    )
    assert derive_seed(secret, None, 1) == hashlib.sha256(secret + b"\x00unwitnessed").digest()
    assert commitment(secret) == hashlib.sha256(secret).hexdigest()
    assert (
        canonical_json({"b": [1, True, None], "a": "中"}) == '{"a":"中","b":[1,true,null]}'.encode()
    )


# --- Art. 27: targets ---------------------------------------------------------------------


def test_art27_every_target_equally_likely_chi_square() -> None:
    pool = targets(20)
    inp = make_input(pool, inspectors(4), {Tier.general: 2})
    seen: Counter[str] = Counter()
    for seed in SEEDS:
        seen.update(s.key for s in draw(inp, seed).selected)
    keys = [t.key for t in pool]
    # df = 19, alpha = 0.001: critical value 43.82.
    assert chi_square(seen, keys, len(SEEDS) * 2 / 20) < 43.82


def test_art28_every_inspector_equally_likely_chi_square() -> None:
    people = inspectors(10)
    inp = make_input(targets(1), people, {Tier.general: 1})
    seen: Counter[str] = Counter()
    for seed in SEEDS:
        seen.update(draw(inp, seed).teams[0].members)
    # df = 9, alpha = 0.001: critical value 27.88.
    assert chi_square(seen, [p.key for p in people], len(SEEDS) * 2 / 10) < 27.88


def test_art27_draws_per_tier_in_the_plans_counts() -> None:
    pool = targets(8, Tier.special) + targets(10, Tier.key) + targets(30, Tier.general)
    counts = {Tier.special: 2, Tier.key: 2, Tier.general: 3}
    result = draw(make_input(pool, inspectors(6), counts), SEED)
    assert Counter(s.tier for s in result.selected) == counts
    by_tier = {t: [s for s in result.selected if s.tier == t] for t in Tier}
    for tier, picked in by_tier.items():
        assert sorted(s.rank for s in picked) == list(range(1, counts[tier] + 1))
        for s in picked:
            assert s.score_hex == score(SEED, f"target:{tier.value}", s.key).hex()
    # Walk order merges the tiers by score.
    assert [s.score_hex for s in result.selected] == sorted(s.score_hex for s in result.selected)
    assert [t.target_key for t in result.teams] == [s.key for s in result.selected]


def test_art27_draw_takes_the_lowest_scores() -> None:
    pool = targets(30)
    result = draw(make_input(pool, inspectors(4), {Tier.general: 5}), SEED)
    lowest = sorted(pool, key=lambda t: score(SEED, "target:general", t.key))[:5]
    assert [s.key for s in result.selected] == [t.key for t in lowest]


def test_art27_pool_smaller_than_count_is_an_error_never_a_short_draw() -> None:
    inp = make_input(targets(3, Tier.key), inspectors(4), {Tier.key: 4})
    with pytest.raises(DrawError) as e:
        draw(inp, SEED)
    assert (e.value.reason, e.value.tier, e.value.pool_size, e.value.count) == (
        "pool_too_small",
        Tier.key,
        3,
        4,
    )
    assert "重点监管对象只有3个" in str(e.value)


def test_art27_reproducible_from_the_seed() -> None:
    inp = make_input(targets(50), inspectors(9), {Tier.general: 5})
    assert draw(inp, SEED) == draw(inp, SEED)
    assert draw(inp, SEED) != draw(inp, hashlib.sha256(b"other").digest())


def test_art27_input_order_does_not_matter() -> None:
    pool = list(targets(12, Tier.special) + targets(40))
    people = list(inspectors(9) + inspectors(3, prefix="A", auxiliary=True))
    people[0] = replace(people[0], conflicts=frozenset({pool[3].key, pool[20].key, pool[7].key}))
    counts = {Tier.special: 3, Tier.general: 4}
    policy = {"auxiliary_per_team": 1}
    inp = make_input(pool, people, counts, **policy)
    rng = random.Random(7)
    rng.shuffle(pool)
    rng.shuffle(people)
    people = [replace(p, conflicts=frozenset(sorted(p.conflicts, reverse=True))) for p in people]
    shuffled = make_input(pool, people, dict(reversed(list(counts.items()))), **policy)
    assert draw(shuffled, SEED) == draw(inp, SEED)
    assert fingerprint(shuffled) == fingerprint(inp)


def test_art31_positive_list_targets_are_checked_offsite() -> None:
    pool = (
        PoolTarget("on-list", Tier.general, COUNTY, on_positive_list=True),
        PoolTarget("other", Tier.general, COUNTY),
    )
    result = draw(make_input(pool, inspectors(4), {Tier.general: 2}), SEED)
    assert {s.key: s.method for s in result.selected} == {"on-list": "offsite", "other": "onsite"}


def test_draw_rejects_duplicate_keys_and_unknown_tiers() -> None:
    with pytest.raises(DrawError, match="编号重复"):
        draw(make_input(targets(2) + targets(1), inspectors(2)), SEED)
    with pytest.raises(DrawError, match="编号重复"):
        draw(make_input(targets(2), inspectors(2) + inspectors(1)), SEED)
    with pytest.raises(DrawError, match="未知的监管对象类别"):
        draw(make_input(targets(2), inspectors(2), {"vip": 1}), SEED)  # type: ignore[dict-item]
    with pytest.raises(DrawError):
        DrawPolicy(team_size=0)


# --- Art. 28: teams -----------------------------------------------------------------------


def test_art28_team_has_at_least_two_qualified_inspectors() -> None:
    people = (
        inspectors(6)
        + inspectors(6, kind="work", prefix="W")
        + inspectors(4, prefix="A", auxiliary=True)
    )
    inp = make_input(targets(40), people, {Tier.general: 10}, auxiliary_per_team=1)
    result = draw(inp, SEED)
    kinds = {p.key: p for p in people}
    for team in result.teams:
        assert len(team.members) == 2
        assert all(
            kinds[k].certificate_kind == "enforcement" and not kinds[k].auxiliary
            for k in team.members
        )
        assert len(team.auxiliary) == 1 and kinds[team.auxiliary[0]].auxiliary
    assert set(result.cycle) == {p.key for p in people[:6]}
    assert set(result.aux_cycle) == {p.key for p in people[12:]}


def test_art28_qualifying_certificates_are_a_policy() -> None:
    people = inspectors(1) + inspectors(1, kind="work", prefix="W")
    with pytest.raises(DrawError):
        draw(make_input(targets(1), people), SEED)
    result = draw(
        make_input(targets(1), people, qualifying_kinds=frozenset({"enforcement", "work"})), SEED
    )
    assert set(result.teams[0].members) == {"C00000", "W00000"}


def test_art18_auxiliary_never_counts_toward_the_minimum() -> None:
    people = inspectors(1) + inspectors(5, prefix="A", auxiliary=True)
    with pytest.raises(DrawError) as e:
        draw(make_input(targets(3), people, auxiliary_per_team=2), SEED)
    assert (e.value.reason, e.value.role, e.value.needed, e.value.found) == (
        "team_unfilled",
        "member",
        2,
        1,
    )


def test_art28_one_person_with_two_certificates_is_not_two_members() -> None:
    people = (
        PoolInspector("C1", "zhang", COUNTY, "enforcement"),
        PoolInspector("C2", "zhang", COUNTY, "enforcement"),
        PoolInspector("C3", "li", COUNTY, "enforcement"),
    )
    for seed in SEEDS[:50]:
        for team in draw(make_input(targets(10), people, {Tier.general: 3}), seed).teams:
            assert "C3" in team.members
    # Version 2 ranks people: one entry in the cycle, under the smaller certificate key.
    assert draw(make_input(targets(1), people, team_size=2), SEED).cycle in (
        ("C1", "C3"),
        ("C3", "C1"),
    )
    with pytest.raises(DrawError) as e:
        draw(make_input(targets(1), people[:2]), SEED)
    assert (e.value.needed, e.value.found, e.value.pool_size) == (2, 1, 1)
    # Version 1 ranked certificates: the second one was skipped as the same person.
    with pytest.raises(DrawError) as e:
        draw(make_input(targets(1), people[:2]), SEED, 1)
    assert e.value.blocked == {"same_person": 1}


def test_art28_teams_follow_the_cycle_round_robin() -> None:
    result = draw(make_input(targets(10), inspectors(7), {Tier.general: 5}), SEED)
    c = result.cycle
    expected = [(c[(2 * i) % 7], c[(2 * i + 1) % 7]) for i in range(5)]
    assert [t.members for t in result.teams] == expected
    assert result.cursor == 10 % 7


def test_art28_declared_conflict_is_skipped_without_using_anyone_up() -> None:
    pool, people = targets(2), inspectors(4)
    base = draw(make_input(pool, people, {Tier.general: 2}), SEED)
    c, first = base.cycle, base.selected[0].key
    people = tuple(replace(p, conflicts=frozenset({first})) if p.key == c[0] else p for p in people)
    result = draw(make_input(pool, people, {Tier.general: 2}), SEED)
    assert result.cycle == c
    assert [t.members for t in result.teams] == [(c[1], c[2]), (c[3], c[0])]


def test_art28_last_inspector_is_avoided_by_policy() -> None:
    pool = targets(1)
    people = inspectors(3)
    base = draw(make_input(pool, people), SEED)
    last = base.teams[0].members[0]
    people = tuple(
        replace(p, last_inspected=frozenset({pool[0].key})) if p.key == last else p for p in people
    )
    assert last not in draw(make_input(pool, people), SEED).teams[0].members
    assert last in draw(make_input(pool, people, avoid_last_inspector=False), SEED).teams[0].members


def test_art26_same_county_locality() -> None:
    pool = targets(10, org="150102", prefix="X") + targets(10, org="150203", prefix="Y")
    people = inspectors(5, org="150102", prefix="P") + inspectors(5, org="150203", prefix="Q")
    orgs = {p.key: p.org for p in people}
    for seed in SEEDS[:30]:
        result = draw(make_input(pool, people, {Tier.general: 6}, locality="same_county"), seed)
        targets_org = {t.key: t.org for t in pool}
        for team in result.teams:
            assert {orgs[k] for k in team.members} == {targets_org[team.target_key]}


def test_art26_same_county_without_local_inspectors_names_the_blocker() -> None:
    pool = (PoolTarget("far", Tier.general, "152921"),)
    with pytest.raises(DrawError) as e:
        draw(make_input(pool, inspectors(4), locality="same_county"), SEED)
    assert e.value.target_key == "far"
    assert e.value.blocked == {"locality": 4}
    assert "far" in str(e.value) and "不在同一旗县区4人" in str(e.value)
    assert draw(make_input(pool, inspectors(4)), SEED).teams[0].members  # "scope" allows it


def test_max_load_spreads_the_work() -> None:
    people = inspectors(4)
    result = draw(make_input(targets(5), people, {Tier.general: 2}, max_load=1), SEED)
    assert len({k for t in result.teams for k in t.members}) == 4
    with pytest.raises(DrawError) as e:
        draw(make_input(targets(5), people, {Tier.general: 3}, max_load=1), SEED)
    assert e.value.blocked == {"max_load": 4}


def test_art28_unfilled_team_counts_every_blocking_reason() -> None:
    pool = targets(1)
    key = pool[0].key
    people = (
        PoolInspector("C1", "u1", COUNTY, "enforcement", conflicts=frozenset({key})),
        PoolInspector(
            "C2",
            "u2",
            COUNTY,
            "enforcement",
            conflicts=frozenset({key}),
            last_inspected=frozenset({key}),
        ),
        PoolInspector("C3", "u3", COUNTY, "enforcement"),
    )
    with pytest.raises(DrawError) as e:
        draw(make_input(pool, people), SEED)
    assert e.value.blocked == {"conflict": 2, "last_inspected": 1}
    assert (e.value.needed, e.value.found, e.value.pool_size) == (2, 1, 3)


def test_art27_fast_walk_matches_the_plain_walk_of_the_reference() -> None:
    """The indexed walk of draw() must pick exactly what a position-by-position walk picks."""
    compared = failed = 0
    for n in range(150):
        rng = random.Random(n)
        counties = ["150102", "150103", "150104"][: rng.randint(1, 3)]
        pool = [
            PoolTarget(f"T{i}", rng.choice(list(Tier)), rng.choice(counties), rng.random() < 0.2)
            for i in range(rng.randint(5, 40))
        ]
        people = []
        for i in range(rng.randint(3, 25)):
            picks = frozenset(t.key for t in rng.sample(pool, rng.randint(0, 3)))
            people.append(
                PoolInspector(
                    f"C{i}",
                    f"u{rng.randint(0, 20)}",  # some people hold two certificates
                    rng.choice(counties),
                    rng.choice(["enforcement", "enforcement", "work"]),
                    auxiliary=rng.random() < 0.2,
                    conflicts=picks if rng.random() < 0.5 else frozenset(),
                    last_inspected=picks if rng.random() < 0.5 else frozenset(),
                )
            )
        sizes = Counter(t.tier for t in pool)
        counts = {t: rng.randint(0, sizes[t]) for t in Tier}
        inp = make_input(
            pool,
            people,
            counts,
            team_size=rng.choice([1, 2, 2, 3]),
            locality=rng.choice(["scope", "same_county"]),
            auxiliary_per_team=rng.choice([0, 0, 1]),
            avoid_last_inspector=rng.random() < 0.7,
            max_load=rng.choice([None, 1, 2, 3]),
        )
        seed = SEEDS[n]
        reference_input = reference_verifier.canonical_input(input_to_json(inp))
        try:
            result = draw(inp, seed)
        except DrawError:
            failed += 1
            with pytest.raises(reference_verifier.Invalid):
                reference_verifier.run_draw(reference_input, seed)
            continue
        compared += 1
        assert result_to_json(result) == reference_verifier.run_draw(reference_input, seed)
    assert compared > 40 and failed > 10  # both paths were exercised


def test_the_bound_on_scores_never_changes_which_targets_are_drawn() -> None:
    """The draw sorts only the scores below a bound (``_cut``), and all of them when fewer
    than the count fall below it: the reference verifier, which sorts every score, agrees
    either way."""
    pool = targets(300, Tier.special) + targets(3000, Tier.key) + targets(9000)
    counts = {Tier.special: 1, Tier.key: 30, Tier.general: 90}
    inp = make_input(pool, inspectors(50), counts)
    reference_input = reference_verifier.canonical_input(input_to_json(inp))
    for seed in SEEDS[:20]:
        expected = reference_verifier.run_draw(reference_input, seed)["selected"]
        assert result_to_json(draw(inp, seed))["selected"] == expected
        # A bound below nearly every score: too few under it, so every score is sorted.
        starved = [sel for sel, _ in draw_module._select_targets(inp, seed, spread=-1e6)]
        assert [s.score_hex for s in starved] == [s["score_hex"] for s in expected]


def test_art27_ten_thousand_targets_shape() -> None:
    pool = targets(2000, Tier.key) + targets(8000)
    people = inspectors(200) + inspectors(80, prefix="A", auxiliary=True)
    counts = {Tier.key: 400, Tier.general: 800}
    result = draw(make_input(pool, people, counts, auxiliary_per_team=1, max_load=20), SEED)
    assert len(result.selected) == len(result.teams) == 1200
    assert len({s.key for s in result.selected}) == 1200
    assert all(len(t.members) == 2 and len(t.auxiliary) == 1 for t in result.teams)
    loads = Counter(k for t in result.teams for k in (*t.members, *t.auxiliary))
    assert max(loads.values()) <= 20


# --- Art. 29: swaps -----------------------------------------------------------------------


def _walk_from(cycle: tuple[str, ...], cursor: int, skip: set[str]) -> str:
    return next(k for j in range(len(cycle)) if (k := cycle[(cursor + j) % len(cycle)]) not in skip)


def test_art29_replacement_is_the_next_in_the_recorded_cycle_and_replays() -> None:
    inp = make_input(targets(20), inspectors(9), {Tier.general: 3})
    result = draw(inp, SEED)
    team = result.teams[1]
    leaving = team.members[0]
    expected = _walk_from(result.cycle, result.cursor, set(team.members))
    assert next_replacement(result, inp, team.target_key, leaving, frozenset()) == expected

    new, amended = swap_member(result, inp, team.target_key, leaving)
    assert new == expected
    assert amended.team(team.target_key).members == (new, team.members[1])
    assert amended.team(team.target_key).replaced == (leaving,)
    assert amended.cursor == (result.cycle.index(new) + 1) % len(result.cycle)

    # The next swap continues after the first; a replay from the stored JSON agrees.
    other = amended.teams[2]
    second = next_replacement(amended, inp, other.target_key, other.members[1], frozenset())
    stored = result_from_json(result_to_json(amended))
    assert (
        next_replacement(
            stored,
            input_from_json(input_to_json(inp)),
            other.target_key,
            other.members[1],
            frozenset(),
        )
        == second
    )
    skip = set(other.members)
    assert second == _walk_from(amended.cycle, amended.cursor, skip)


def test_art29_replacement_skips_leavers_excluded_and_conflicts() -> None:
    pool, people = targets(1), inspectors(6)
    result = draw(make_input(pool, people), SEED)
    key = pool[0].key
    a, b = result.teams[0].members
    nxt = _walk_from(result.cycle, result.cursor, {a, b})
    people = tuple(replace(p, conflicts=frozenset({key})) if p.key == nxt else p for p in people)
    inp = make_input(pool, people)
    new = next_replacement(result, inp, key, a, frozenset())
    assert new not in (a, b, nxt)
    after_excluding = next_replacement(result, inp, key, a, frozenset({new}))
    assert after_excluding not in (a, b, nxt, new)
    # The one who left cannot come back through a later swap of the same team.
    _, amended = swap_member(result, inp, key, a)
    assert a not in {
        next_replacement(amended, inp, key, b, frozenset({k}))
        for k in result.cycle
        if k not in (a, b)
    }


def test_art29_auxiliary_is_replaced_from_the_auxiliary_cycle() -> None:
    people = inspectors(3) + inspectors(3, prefix="A", auxiliary=True)
    inp = make_input(targets(1), people, auxiliary_per_team=1)
    result = draw(inp, SEED)
    team = result.teams[0]
    new, amended = swap_member(result, inp, team.target_key, team.auxiliary[0])
    assert new in result.aux_cycle and new != team.auxiliary[0]
    assert amended.team(team.target_key).auxiliary == (new,)
    assert amended.cursor == result.cursor


def test_art29_no_replacement_available_is_an_error() -> None:
    inp = make_input(targets(1), inspectors(2))
    result = draw(inp, SEED)
    team = result.teams[0]
    with pytest.raises(DrawError) as e:
        next_replacement(result, inp, team.target_key, team.members[0], frozenset())
    assert e.value.reason == "no_replacement"
    assert e.value.blocked == {"same_person": 1, "leaving": 1}
    with pytest.raises(DrawError):
        next_replacement(result, inp, team.target_key, "nobody", frozenset())
    with pytest.raises(DrawError):
        next_replacement(result, inp, "no-such-target", team.members[0], frozenset())


# --- records ------------------------------------------------------------------------------


def test_art27_records_round_trip() -> None:
    people = inspectors(5) + inspectors(2, prefix="A", auxiliary=True)
    inp = make_input(
        targets(5, Tier.special) + targets(9),
        people,
        {Tier.special: 2, Tier.general: 2},
        auxiliary_per_team=1,
        max_load=3,
    )
    result = draw(inp, SEED)
    assert result.algorithm_version == ALGORITHM_VERSION == 2
    # With no two targets of one market entity, version 1 draws the same teams; version 2
    # teams also name their sites (section 8).
    v1_teams = tuple(replace(t, sites=(t.target_key,)) for t in draw(inp, SEED, 1).teams)
    assert v1_teams == result.teams
    assert result_from_json(result_to_json(result)) == result
    back = input_from_json(input_to_json(inp))
    assert fingerprint(back) == fingerprint(inp)
    assert draw(back, SEED) == result


def test_art27_fingerprint_covers_everything_the_draw_depends_on() -> None:
    inp = make_input(targets(5), inspectors(3))
    fp = fingerprint(inp)
    changed = [
        make_input(targets(6), inspectors(3)),
        make_input(targets(5), inspectors(3), {Tier.general: 2}),
        make_input(targets(5), inspectors(3), team_size=3),
        make_input(targets(5), inspectors(3), locality="same_county"),
        make_input(targets(5), inspectors(3), max_load=2),
        make_input(targets(5), inspectors(3), avoid_last_inspector=False),
        DrawInput(
            inp.targets,
            (replace(inp.inspectors[0], conflicts=frozenset({"x"})), *inp.inspectors[1:]),
            inp.counts,
            inp.policy,
        ),
        DrawInput(
            inp.targets,
            (replace(inp.inspectors[0], userid="other"), *inp.inspectors[1:]),
            inp.counts,
            inp.policy,
        ),
        DrawInput(
            (inp.targets[0]._replace(on_positive_list=True), *inp.targets[1:]),
            inp.inspectors,
            inp.counts,
            inp.policy,
        ),
    ]
    assert len({fp, *(fingerprint(c) for c in changed)}) == len(changed) + 1
