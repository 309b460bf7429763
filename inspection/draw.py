"""The random draw, algorithm version 1 (Art. 2, 26-29, 31).

Fair and reproducible from the record alone: every ranking is a SHA-256 score of a seed and a
key, so the result depends only on the seed and the *set* of inputs, never on Python's
``random``, dict order or input order. ``DRAW_ALGORITHM.md`` specifies it byte for byte and
``reference_verifier.py`` re-implements it with the standard library only.
One cohesive thing, kept in one module (~800 lines): the algorithm its spec describes, section
by section, so that a reader can hold the two side by side.

Protocol: the secret's ``commitment`` is recorded before the draw; at the draw an optional
witness string (e.g. typed by a witness present) is mixed in by ``derive_seed``; afterwards
``export_document`` publishes secret, witness, input and result for anyone to verify.
"""

from __future__ import annotations

import bisect
import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import chain, compress, repeat
from operator import attrgetter, itemgetter
from typing import Any, Literal, NamedTuple

from inspection.quotas import TIER_LABELS, Tier

ALGORITHM_VERSION = 2  # new draws; version 1 records are replayed by version 1 rules
VERSIONS = (1, 2)

Locality = Literal["same_county", "scope"]
Method = Literal["onsite", "offsite"]
MemberRole = Literal["member", "auxiliary"]

LOCALITIES: tuple[Locality, ...] = ("same_county", "scope")

# Why an inspector could not serve a target; keys of ``DrawError.blocked``.
BLOCK_REASONS: dict[str, str] = {
    "conflict": "申报利益冲突",
    "last_inspected": "上次检查过该对象",
    "locality": "不在同一旗县区",
    "max_load": "已达本次任务上限",
    "same_person": "已在本检查组",
    "leaving": "被替换人员",
    "excluded": "不可选派",
}


# --- primitives -------------------------------------------------------------------------


def score(seed: bytes, label: str, key: str) -> bytes:
    """SHA-256(seed || 0x00 || label || 0x00 || key): the lower, the earlier drawn."""
    return hashlib.sha256(seed + b"\x00" + label.encode() + b"\x00" + key.encode()).digest()


def derive_seed(secret: bytes, witness: str | None, version: int = ALGORITHM_VERSION) -> bytes:
    """Mix the committed secret with the witness value. Version 2 marks the form with one byte
    (0x01 then the value, or 0x00 for none), so no typed value gives the seed of "no witness";
    version 1 used the word "unwitnessed" for none."""
    if version == 1:
        tail = witness.encode("utf-8") if witness is not None else b"unwitnessed"
    else:
        tail = b"\x01" + witness.encode("utf-8") if witness is not None else b"\x00"
    return hashlib.sha256(secret + b"\x00" + tail).digest()


def construction_seed(seed: bytes) -> bytes:
    """The seed of the Art. 25(4) part of a draw (construction projects, teamed outside the
    random selection): the draw's seed mixed with the word "construction"."""
    return hashlib.sha256(seed + b"\x00construction").digest()


def amendments_head(commitment_hex: str, amendments: Sequence[Mapping[str, Any]]) -> str:
    """The hash chain over a draw's amendments (version 2): it starts from the commitment and
    takes in each amendment's canonical JSON in order, so none can be dropped or changed
    without the head, which the audit record keeps, changing too."""
    head = hashlib.sha256(b"amendments\x00" + commitment_hex.encode("ascii")).digest()
    for amendment in amendments:
        head = hashlib.sha256(head + canonical_json(dict(amendment))).digest()
    return head.hex()


def commitment(secret: bytes) -> str:
    """Published before the draw so the secret cannot be chosen after seeing the pool."""
    return hashlib.sha256(secret).hexdigest()


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


# --- inputs -----------------------------------------------------------------------------


class PoolTarget(NamedTuple):
    """A target in the pool. A named tuple: a pool holds 100,000 of them, made in bulk (at C
    level, by ``map``) and read in bulk; being tuples of strings and a flag, the garbage
    collector stops tracking them, so a large pool costs it nothing. Immutable like the
    other records here; ``_replace`` makes a changed copy."""

    key: str
    tier: Tier
    org: str  # GB/T 2260 code of the target's banner/county
    on_positive_list: bool = False  # Art. 31: checked off-site


@dataclass(frozen=True)
class PoolInspector:
    key: str  # enforcement (or work) certificate number
    userid: str  # WeCom userid: one person may hold several certificates
    org: str  # GB/T 2260 code of the inspector's unit
    certificate_kind: str
    auxiliary: bool = False  # Art. 18: joins on top of the minimum, never counts toward it
    conflicts: frozenset[str] = frozenset()  # target keys with a declared conflict of interest
    last_inspected: frozenset[str] = frozenset()  # target keys inspected last time


@dataclass(frozen=True)
class DrawPolicy:
    team_size: int = 2  # Art. 28: qualified inspectors per team
    qualifying_kinds: frozenset[str] = frozenset({"enforcement"})
    locality: Locality = "scope"
    auxiliary_per_team: int = 0
    avoid_last_inspector: bool = True
    max_load: int | None = None  # teams per person in this draw

    def __post_init__(self) -> None:
        if self.team_size < 1:
            raise DrawError(f"检查组人数至少为1：{self.team_size}", reason="invalid_input")
        if self.auxiliary_per_team < 0:
            raise DrawError("辅助检查人员人数不能为负数", reason="invalid_input")
        if self.locality not in LOCALITIES:
            raise DrawError(f"未知的属地要求：{self.locality}", reason="invalid_input")
        if self.max_load is not None and self.max_load < 1:
            raise DrawError(f"每人任务上限至少为1：{self.max_load}", reason="invalid_input")


@dataclass(frozen=True)
class DrawInput:
    targets: tuple[PoolTarget, ...]
    inspectors: tuple[PoolInspector, ...]
    counts: Mapping[Tier, int] = field(hash=False)
    policy: DrawPolicy = DrawPolicy()
    # Version 2 (Art. 19): groups of target keys that are one market entity (one credit code,
    # several permits or sites); each group sorted, two keys or more. Drawn targets of one
    # group make one visit with one team. A target in no group is an entity of its own.
    entities: tuple[tuple[str, ...], ...] = ()

    def count(self, tier: Tier) -> int:
        return self.counts.get(tier, 0)


# --- outputs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SelectedTarget:
    key: str
    tier: Tier
    rank: int  # 1 = lowest score within its tier
    score_hex: str
    method: Method


@dataclass(frozen=True)
class TeamAssignment:
    target_key: str  # the visit's first site in walk order (names the visit)
    members: tuple[str, ...]  # inspector keys, in the order taken from the cycle
    auxiliary: tuple[str, ...] = ()
    replaced: tuple[str, ...] = ()  # keys swapped out (Art. 29), oldest first
    # Version 2: every drawn site of the visit's market entity, in walk order (target_key
    # first); empty in version 1 (one visit per target).
    sites: tuple[str, ...] = ()
    # Set by a merge amendment (section 13): the other task's visit that carries this one's
    # items; the team is released (it counts toward no load). Never part of a drawn result.
    merged_into: str | None = None

    @property
    def site_keys(self) -> tuple[str, ...]:
        return self.sites or (self.target_key,)


@dataclass(frozen=True)
class DrawResult:
    algorithm_version: int
    selected: tuple[SelectedTarget, ...]  # in walk order (score across tiers)
    teams: tuple[TeamAssignment, ...]  # same order as ``selected``
    cycle: tuple[str, ...]  # qualified inspectors by "inspector" score
    aux_cycle: tuple[str, ...]  # auxiliary inspectors by "auxiliary" score
    cursor: int = 0  # next position of ``cycle`` to consider (moves with swaps)
    aux_cursor: int = 0

    def team(self, target_key: str) -> TeamAssignment:
        for t in self.teams:
            if t.target_key == target_key:
                return t
        raise DrawError(f"本次抽取没有检查对象 {target_key}", reason="unknown_target")


class DrawError(ValueError):
    """A draw that cannot be made as asked: never a short or partial draw.

    ``reason``: "invalid_input", "pool_too_small", "team_unfilled", "no_replacement",
    "unknown_target" or "not_on_team"; the other fields say where and why.
    """

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        tier: Tier | None = None,
        pool_size: int | None = None,
        count: int | None = None,
        target_key: str | None = None,
        role: MemberRole | None = None,
        needed: int | None = None,
        found: int | None = None,
        blocked: Mapping[str, int] | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.tier = tier
        self.pool_size = pool_size
        self.count = count
        self.target_key = target_key
        self.role = role
        self.needed = needed
        self.found = found
        self.blocked: dict[str, int] = dict(blocked or {})


# --- the draw ---------------------------------------------------------------------------


def draw(
    inp: DrawInput,
    seed: bytes,
    version: int = ALGORITHM_VERSION,
    loads: Mapping[str, int] | None = None,
) -> DrawResult:
    """Draw targets per tier, then walk them in score order assigning teams from the cycles.

    ``loads``: teams per person already taken (version 2: the Art. 25(4) part starts from the
    random part's, section 12)."""
    _validate(inp, version)
    walk = _select_targets(inp, seed)
    policy = inp.policy
    everyone = _persons(inp.inspectors) if version >= 2 else inp.inspectors
    qualified = [
        i for i in everyone if not i.auxiliary and i.certificate_kind in policy.qualifying_kinds
    ]
    helpers_all = [i for i in everyone if i.auxiliary]
    if version >= 2:  # people are ranked, not certificates
        qualified, helpers_all = _one_each(qualified), _one_each(helpers_all)
    main = _Cycle.ranked(seed, "inspector", qualified, policy)
    aux = _Cycle.ranked(seed, "auxiliary", helpers_all, policy)
    return _teams(walk, _visits(walk, inp, version), main, aux, policy, version, loads)


def draw_parts(
    inp: DrawInput, construction: DrawInput | None, seed: bytes, version: int = ALGORITHM_VERSION
) -> tuple[DrawResult, DrawResult | None]:
    """The random part, then the Art. 25(4) part on ``construction_seed``. Version 2 shares
    the loads: the second part starts from the teams the first one formed (section 12)."""
    result = draw(inp, seed, version)
    if construction is None:
        return result, None
    start = team_loads(((inp, result),)) if version >= 2 else None
    return result, draw(construction, construction_seed(seed), version, start)


def team_loads(parts: Iterable[tuple[DrawInput, DrawResult]]) -> Counter[str]:
    """Teams per person (userid) over the results as they stand; a merged visit's team is
    released and counts for nobody."""
    loads: Counter[str] = Counter()
    for inp, result in parts:
        userid = {i.key: i.userid for i in inp.inspectors}
        for t in result.teams:
            if t.merged_into is None:
                loads.update({userid[k] for k in (*t.members, *t.auxiliary) if k in userid})
    return loads


def _visits(
    walk: Sequence[tuple[SelectedTarget, PoolTarget]], inp: DrawInput, version: int
) -> list[list[tuple[SelectedTarget, PoolTarget]]]:
    """Version 2, section 8: the drawn targets of one market entity make one visit, placed at
    its first site in walk order, its sites in walk order. Version 1: a visit per target."""
    if version < 2 or not inp.entities:
        return [[w] for w in walk]
    group = {k: n for n, keys in enumerate(inp.entities) for k in keys}
    visits: dict[object, list[tuple[SelectedTarget, PoolTarget]]] = {}
    for w in walk:
        key = w[0].key
        visits.setdefault(group.get(key, ("own", key)), []).append(w)
    return list(visits.values())


def draw_on_ranking(
    inp: DrawInput,
    walk: Sequence[SelectedTarget],
    cycle: Sequence[str],
    aux_cycle: Sequence[str],
    loads: Mapping[str, int] | None = None,
) -> DrawResult:
    """Section 8 alone, on a walk order and cycles given (a public export, section 18, whose
    scores cannot be recomputed without the keys they blind). Version 2."""
    _validate(inp)
    targets = {t.key: t for t in inp.targets}
    people = {i.key: i for i in _persons(inp.inspectors)}
    main = _Cycle([people[k] for k in cycle], inp.policy)
    aux = _Cycle([people[k] for k in aux_cycle], inp.policy)
    pairs = [(sel, targets[sel.key]) for sel in walk]
    visits = _visits(pairs, inp, ALGORITHM_VERSION)
    return _teams(pairs, visits, main, aux, inp.policy, ALGORITHM_VERSION, loads)


def _teams(
    walk: Sequence[tuple[SelectedTarget, PoolTarget]],
    visits: Sequence[Sequence[tuple[SelectedTarget, PoolTarget]]],
    main: _Cycle,
    aux: _Cycle,
    policy: DrawPolicy,
    version: int,
    start: Mapping[str, int] | None = None,
) -> DrawResult:
    loads: Counter[str] = Counter(start or {})
    teams = []
    team_size, helpers_wanted, max_load = (
        policy.team_size,
        policy.auxiliary_per_team,
        policy.max_load,
    )
    if max_load is not None:
        for userid, load in loads.items():
            if load >= max_load:
                main.retire(userid)
                aux.retire(userid)
    for visit in visits:
        sel, target = visit[0]
        sites = tuple(s.key for s, _ in visit)
        on_team: set[str] = set()
        members = main.fill(target, team_size, on_team, loads, policy, "member", sites)
        helpers = (
            aux.fill(target, helpers_wanted, on_team, loads, policy, "auxiliary", sites)
            if helpers_wanted
            else ()
        )
        for userid in on_team:
            loads[userid] += 1
            if max_load is not None and loads[userid] >= max_load:
                main.retire(userid)
                aux.retire(userid)
        teams.append(TeamAssignment(sel.key, members, helpers, sites=sites if version >= 2 else ()))
    return DrawResult(
        algorithm_version=version,
        selected=tuple(sel for sel, _ in walk),
        teams=tuple(teams),
        cycle=main.keys(),
        aux_cycle=aux.keys(),
        cursor=main.cursor,
        aux_cursor=aux.cursor,
    )


def _persons(inspectors: Sequence[PoolInspector]) -> tuple[PoolInspector, ...]:
    """Version 2, section 7: a declared conflict or a last inspection is the person's, whichever
    certificate it was recorded under: every entry of a userid carries the union of them all."""
    conflicts: dict[str, frozenset[str]] = {}
    last: dict[str, frozenset[str]] = {}
    for i in inspectors:
        conflicts[i.userid] = conflicts.get(i.userid, frozenset()) | i.conflicts
        last[i.userid] = last.get(i.userid, frozenset()) | i.last_inspected
    return tuple(
        i
        if (i.conflicts, i.last_inspected) == (conflicts[i.userid], last[i.userid])
        else replace(i, conflicts=conflicts[i.userid], last_inspected=last[i.userid])
        for i in inspectors
    )


def _one_each(entries: list[PoolInspector]) -> list[PoolInspector]:
    """Version 2, section 7: one entry per person in a cycle, under the smallest of the
    person's certificate keys that qualify for it (a person holding two certificates is not
    drawn twice as often)."""
    chosen: dict[str, PoolInspector] = {}
    for i in entries:
        if i.userid not in chosen or i.key < chosen[i.userid].key:
            chosen[i.userid] = i
    return list(chosen.values())


_KEY = attrgetter("key")
_TIER = attrgetter("tier")
# The same on a PoolTarget, by position (a named tuple): the fastest way to read a pool.
_TARGET_KEY, _TARGET_TIER = itemgetter(0), itemgetter(1)


def _select_targets(
    inp: DrawInput, seed: bytes, spread: float = 6.0
) -> list[tuple[SelectedTarget, PoolTarget]]:
    # A pass per tier at C level; plain-string tiers and Tier members compare alike (and
    # _validate has refused any other tier).
    tiers = list(map(_TARGET_TIER, inp.targets))
    by_tier = {t: list(compress(inp.targets, map(t.value.__eq__, tiers))) for t in Tier}
    picked: list[tuple[bytes, SelectedTarget, PoolTarget]] = []
    sha256 = hashlib.sha256
    for tier in Tier:
        n = inp.count(tier)
        pool = by_tier[tier]
        if n > len(pool):
            raise DrawError(
                f"{TIER_LABELS[tier]}监管对象只有{len(pool)}个，不足抽取数量{n}个",
                reason="pool_too_small",
                tier=tier,
                pool_size=len(pool),
                count=n,
            )
        if n == 0:
            continue
        # score() inlined: this runs once per target of the directory. Digests are all 32 bytes
        # and UTF-8 keeps code-point order, so digest+key sorts exactly as (score, key).
        prefix = seed + b"\x00" + ("target:" + tier.value).encode() + b"\x00"

        def below(cut: bytes, pool: list[PoolTarget] = pool, prefix: bytes = prefix) -> list[Any]:
            keys = map(str.encode, map(_TARGET_KEY, pool))
            return [
                (digest + kb, t)
                for t, kb in zip(pool, keys, strict=True)
                if (digest := sha256(prefix + kb).digest()) < cut
            ]

        # Only scores below the cut are sorted (with their targets): if at least n are, the n
        # lowest of the whole tier are among them; otherwise all of them are, after all.
        kept = below(_cut(n, len(pool), spread))
        if len(kept) < n:
            kept = below(_ABOVE_ALL)
        kept.sort(key=itemgetter(0))
        for rank, (entry, t) in enumerate(kept[:n], start=1):
            method: Method = "offsite" if t.on_positive_list else "onsite"
            picked.append((entry, SelectedTarget(t.key, tier, rank, entry[:32].hex(), method), t))
    picked.sort(key=itemgetter(0))
    return [(sel, t) for _, sel, t in picked]


def _cut(n: int, size: int, spread: float) -> bytes:
    """A bound on the lowest ``n`` of ``size`` scores, to leave most scores out of the sort.

    Scores are SHA-256 digests, uniform over 256 bits, so about ``size * p`` fall below
    ``p * 2**256``; the bound is set to keep n plus ``spread`` standard deviations plus a few:
    with 6, fewer than n fall below it about once in a billion draws (and then every score is
    sorted: the result never depends on the bound, only the time does)."""
    p = max(0.0, (n + spread * n**0.5 + 16) / size)
    return int(p * 2**64).to_bytes(8, "big") if p < 0.5 else _ABOVE_ALL


_ABOVE_ALL = b"\xff" * 33  # above every digest+key: keeps every score


class _Cycle:
    """One ranking of inspectors walked round-robin from a cursor.

    To stay fast with ``same_county`` or ``max_load``, it keeps, per county (or one list for
    ``scope``), the sorted cycle positions of people still under their load. Walking that list
    from the cursor visits exactly the candidates a plain walk of the whole cycle would accept,
    in the same order; the plain walk (``_diagnose``) only runs to explain a failure.
    """

    def __init__(self, members: list[PoolInspector], policy: DrawPolicy) -> None:
        self.members = members
        self.cursor = 0
        self.by_county = policy.locality == "same_county"
        self.open: dict[str | None, list[int]] = {}
        self.positions: dict[str, list[int]] = {}
        for p, insp in enumerate(members):
            self.open.setdefault(self._bucket(insp.org), []).append(p)
            self.positions.setdefault(insp.userid, []).append(p)
        # Per position, what fill() tests (rules 1-5 of _blocking, inlined): the target keys
        # this person may not serve (conflicts, and last inspected when that rule is on).
        self.userids = [i.userid for i in members]
        self.orgs = [i.org for i in members]
        self.avoid = [
            i.conflicts | i.last_inspected if policy.avoid_last_inspector else i.conflicts
            for i in members
        ]

    @classmethod
    def ranked(
        cls, seed: bytes, label: str, people: list[PoolInspector], policy: DrawPolicy
    ) -> _Cycle:
        people.sort(key=lambda i: (score(seed, label, i.key), i.key))
        return cls(people, policy)

    def keys(self) -> tuple[str, ...]:
        return tuple(i.key for i in self.members)

    def _bucket(self, org: str) -> str | None:
        return org if self.by_county else None

    def retire(self, userid: str) -> None:
        """``userid`` reached the maximum load: never a candidate again in this draw."""
        for p in self.positions.get(userid, ()):
            bucket = self.open[self._bucket(self.members[p].org)]
            i = bisect.bisect_left(bucket, p)
            if i < len(bucket) and bucket[i] == p:
                del bucket[i]

    def fill(
        self,
        target: PoolTarget,
        need: int,
        on_team: set[str],
        loads: Counter[str],
        policy: DrawPolicy,
        role: MemberRole,
        sites: tuple[str, ...] = (),
    ) -> tuple[str, ...]:
        if need == 0:
            return ()
        several = len(sites) > 1
        bucket = self.open.get(self._bucket(target.org), [])
        start = bisect.bisect_left(bucket, self.cursor)
        taken: list[str] = []
        last = -1
        key, org, by_county, max_load = target.key, target.org, self.by_county, policy.max_load
        userids, orgs, avoid = self.userids, self.orgs, self.avoid
        for j in chain(range(start, len(bucket)), range(start)):
            p = bucket[j]
            userid = userids[p]
            # Exactly ``_blocking(...)`` being empty, without building the list of reasons.
            if (
                userid in on_team
                or (not avoid[p].isdisjoint(sites) if several else key in avoid[p])
                or (by_county and orgs[p] != org)
                or (max_load is not None and loads.get(userid, 0) >= max_load)
            ):
                continue
            taken.append(self.members[p].key)
            on_team.add(userid)
            last = p
            if len(taken) == need:
                break
        if len(taken) < need:
            raise _diagnose(
                self.members, self.cursor, target, need, taken, on_team, loads, policy, role, sites
            )
        self.cursor = (last + 1) % len(self.members)
        return tuple(taken)


def _blocking(
    insp: PoolInspector,
    target: PoolTarget,
    policy: DrawPolicy,
    on_team: set[str],
    loads: Mapping[str, int],
    sites: Sequence[str] = (),
) -> list[str]:
    """Reasons ``insp`` may not serve the visit of ``target`` (and its other ``sites``) now;
    empty when they may (Art. 28-29). Locality is of the visit's first site, ``target``."""
    keys = sites or (target.key,)
    reasons = []
    if not insp.conflicts.isdisjoint(keys):
        reasons.append("conflict")
    if policy.avoid_last_inspector and not insp.last_inspected.isdisjoint(keys):
        reasons.append("last_inspected")
    if policy.locality == "same_county" and insp.org != target.org:
        reasons.append("locality")
    if policy.max_load is not None and loads.get(insp.userid, 0) >= policy.max_load:
        reasons.append("max_load")
    if insp.userid in on_team:
        reasons.append("same_person")
    return reasons


def _diagnose(
    members: list[PoolInspector],
    cursor: int,
    target: PoolTarget,
    need: int,
    taken: list[str],
    on_team: set[str],
    loads: Mapping[str, int],
    policy: DrawPolicy,
    role: MemberRole,
    sites: tuple[str, ...] = (),
) -> DrawError:
    """A full turn of the cycle from the cursor, counting what blocked each person."""
    taken_set = set(taken)
    blocked: Counter[str] = Counter()
    for j in range(len(members)):
        insp = members[(cursor + j) % len(members)]
        if insp.key not in taken_set:
            blocked.update(_blocking(insp, target, policy, on_team, loads, sites))
    return _unfilled_error(
        target.key, role, need, len(taken), len(members), blocked, "team_unfilled"
    )


def _unfilled_error(
    target_key: str,
    role: MemberRole,
    need: int,
    found: int,
    cycle_size: int,
    blocked: Mapping[str, int],
    reason: str,
) -> DrawError:
    who = "检查人员" if role == "member" else "辅助检查人员"
    why = "，".join(
        f"{label}{blocked[r]}人" for r, label in BLOCK_REASONS.items() if blocked.get(r)
    )
    message = (
        f"检查对象 {target_key} 的{who}无法配齐：需要{need}人，仅有{found}人可选派"
        f"（轮转名单共{cycle_size}人）" + (f"；受限：{why}" if why else "")
    )
    return DrawError(
        message,
        reason=reason,
        target_key=target_key,
        role=role,
        needed=need,
        found=found,
        pool_size=cycle_size,
        blocked=blocked,
    )


def _validate(inp: DrawInput, version: int = ALGORITHM_VERSION) -> None:
    def invalid(message: str) -> DrawError:
        return DrawError(message, reason="invalid_input")

    if inp.entities:
        if version < 2:
            raise invalid("第1版抽取没有市场主体分组")
        keys = set(map(_KEY, inp.targets))
        grouped = [k for group in inp.entities for k in group]
        if (
            any(len(set(group)) < 2 for group in inp.entities)
            or len(set(grouped)) != len(grouped)
            or not keys.issuperset(grouped)
        ):
            raise invalid("市场主体分组应为本次检查对象中至少两个、互不重复的编号")

    for kind, items in (("检查对象", inp.targets), ("检查人员", inp.inspectors)):
        if len(set(map(_KEY, items))) != len(items):
            dupes = sorted(k for k, n in Counter(map(_KEY, items)).items() if n > 1)
            raise invalid(f"{kind}编号重复：{'、'.join(dupes[:5])}")
    tiers = set(Tier)
    unknown = (set(map(_TIER, inp.targets)) - tiers) | (set(inp.counts) - tiers)
    if unknown:
        raise invalid(f"未知的监管对象类别：{'、'.join(sorted(unknown))}")
    for tier, n in inp.counts.items():
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise invalid(f"{tier} 的抽取数量应为非负整数：{n!r}")


# --- swaps (Art. 29) --------------------------------------------------------------------


def next_replacement(
    result: DrawResult,
    inp: DrawInput,
    target_key: str,
    leaving: str,
    excluded: frozenset[str] = frozenset(),
    other_loads: Mapping[str, int] | None = None,
) -> str:
    """The replacement for ``leaving`` on the team of ``target_key`` (Art. 29).

    How it replays: the recorded cycle of ``leaving``'s role (``cycle`` for a member,
    ``aux_cycle`` for an auxiliary) is walked once round from the recorded cursor
    (``result.cursor`` / ``result.aux_cursor``: the position after the last person the draw,
    and every swap since, took from that cycle). The first person who may serve the target is
    the replacement: same rules as the draw (conflict, last inspected, locality, max load counted
    on the teams as amended), not the same person as anyone on the team now, as ``leaving`` or
    as anyone who already left this team (``TeamAssignment.replaced``), and not in ``excluded``.
    Apply it with ``swap_member`` so that the next swap continues after it.
    """
    team = result.team(target_key)
    if team.merged_into is not None:
        raise DrawError(f"检查对象 {target_key} 已并入 {team.merged_into}", reason="merged")
    if leaving in team.members:
        role: MemberRole = "member"
        cycle, cursor = result.cycle, result.cursor
    elif leaving in team.auxiliary:
        role = "auxiliary"
        cycle, cursor = result.aux_cycle, result.aux_cursor
    else:
        raise DrawError(f"{leaving} 不在检查对象 {target_key} 的检查组中", reason="not_on_team")
    everyone = _persons(inp.inspectors) if result.algorithm_version >= 2 else inp.inspectors
    people = {i.key: i for i in everyone}
    targets = {t.key: t for t in inp.targets}
    if target_key not in targets or any(
        k not in people for k in (*result.cycle, *result.aux_cycle)
    ):
        raise DrawError("抽取记录与名录不一致", reason="invalid_input")
    target = targets[target_key]
    loads: Counter[str] = Counter(other_loads or {})
    for t in result.teams:
        if t.merged_into is None:
            loads.update({people[k].userid for k in (*t.members, *t.auxiliary)})
    # Whoever left (by any of their certificates) is blocked as a leaver, not as a member.
    gone = {people[k].userid for k in (leaving, *team.replaced) if k in people}
    on_team = {people[k].userid for k in (*team.members, *team.auxiliary)} - gone
    blocked: Counter[str] = Counter()
    for j in range(len(cycle)):
        insp = people[cycle[(cursor + j) % len(cycle)]]
        reasons = _blocking(insp, target, inp.policy, on_team, loads, team.site_keys)
        if insp.userid in gone:
            reasons.append("leaving")
        if insp.key in excluded:
            reasons.append("excluded")
        if not reasons:
            return insp.key
        blocked.update(reasons)
    raise _unfilled_error(target_key, role, 1, 0, len(cycle), blocked, "no_replacement")


def swap_member(
    result: DrawResult,
    inp: DrawInput,
    target_key: str,
    leaving: str,
    excluded: frozenset[str] = frozenset(),
    other_loads: Mapping[str, int] | None = None,
) -> tuple[str, DrawResult]:
    """Draw the replacement (``next_replacement``) and return it with the amended result.

    The replacement takes the leaver's place in the team, the leaver is added to
    ``replaced`` and the cycle's cursor moves past the replacement. ``other_loads``: the
    teams per person of the draw's other part as it stands (version 2 shares loads).
    """
    new = next_replacement(result, inp, target_key, leaving, excluded, other_loads)
    teams = []
    for t in result.teams:
        if t.target_key == target_key:
            t = replace(
                t,
                members=tuple(new if k == leaving else k for k in t.members),
                auxiliary=tuple(new if k == leaving else k for k in t.auxiliary),
                replaced=(*t.replaced, leaving),
            )
        teams.append(t)
    if leaving in result.team(target_key).members:
        amended = replace(result, cursor=(result.cycle.index(new) + 1) % len(result.cycle))
    else:
        amended = replace(
            result, aux_cursor=(result.aux_cycle.index(new) + 1) % len(result.aux_cycle)
        )
    return new, replace(amended, teams=tuple(teams))


def merge_visit(result: DrawResult, target_key: str, into: str) -> DrawResult:
    """A merge amendment (section 13, Art. 19): the visit of ``target_key`` is done by
    another task's visit ``into``, which takes its items; its drawn team is released."""
    team = result.team(target_key)
    if team.merged_into is not None:
        raise DrawError(f"检查对象 {target_key} 已并入 {team.merged_into}", reason="merged")
    return replace(
        result,
        teams=tuple(
            replace(t, merged_into=into) if t.target_key == target_key else t for t in result.teams
        ),
    )


# --- records ----------------------------------------------------------------------------


# A dict lookup instead of the enum's constructor: this runs once per target of the pool.
_TIER_VALUES: dict[str, str] = {t.value: t.value for t in Tier}
_TIER_MEMBERS: dict[str, Tier] = {t.value: t for t in Tier}


def input_to_json(inp: DrawInput, version: int = ALGORITHM_VERSION) -> dict[str, Any]:
    """Canonical form of everything the draw depends on: sorted, so input order is irrelevant.
    Version 2 has ``entities`` (section 4); version 1 has none."""
    p = inp.policy
    out: dict[str, Any] = {
        "targets": [
            {
                "key": t.key,
                "tier": _TIER_VALUES.get(t.tier) or Tier(t.tier).value,
                "org": t.org,
                "on_positive_list": t.on_positive_list,
            }
            for t in sorted(inp.targets, key=attrgetter("key"))
        ],
        "inspectors": [
            {
                "key": i.key,
                "userid": i.userid,
                "org": i.org,
                "certificate_kind": i.certificate_kind,
                "auxiliary": i.auxiliary,
                "conflicts": sorted(i.conflicts),
                "last_inspected": sorted(i.last_inspected),
            }
            for i in sorted(inp.inspectors, key=lambda i: i.key)
        ],
        "counts": {tier.value: inp.count(tier) for tier in Tier},
        "policy": {
            "team_size": p.team_size,
            "qualifying_kinds": sorted(p.qualifying_kinds),
            "locality": p.locality,
            "auxiliary_per_team": p.auxiliary_per_team,
            "avoid_last_inspector": p.avoid_last_inspector,
            "max_load": p.max_load,
        },
    }
    if version >= 2:
        out["entities"] = sorted(sorted(group) for group in inp.entities)
    elif inp.entities:
        raise DrawError("第1版抽取没有市场主体分组", reason="invalid_input")
    return out


_TARGET_FIELDS = itemgetter("key", "tier", "org", "on_positive_list")


def _targets_from_json(targets: list[dict[str, Any]]) -> tuple[PoolTarget, ...]:
    """PoolTarget(key, tier, org, on_positive_list) for each, made at C level (a frozen pool
    of 100,000 is decoded this way when another process draws it). Tiers stay plain strings,
    which work wherever a Tier does; an unknown one is refused as ``Tier()`` refuses it."""
    out = tuple(map(tuple.__new__, repeat(PoolTarget), map(_TARGET_FIELDS, targets)))
    for tier in set(map(_TARGET_TIER, out)) - _TIER_MEMBERS.keys():
        Tier(tier)  # raises ValueError
    return out


def input_from_json(data: Mapping[str, Any]) -> DrawInput:
    p = data["policy"]
    return DrawInput(
        entities=tuple(tuple(sorted(group)) for group in data.get("entities", ())),
        targets=_targets_from_json(data["targets"]),
        inspectors=tuple(
            PoolInspector(
                key=i["key"],
                userid=i["userid"],
                org=i["org"],
                certificate_kind=i["certificate_kind"],
                auxiliary=i["auxiliary"],
                conflicts=frozenset(i["conflicts"]),
                last_inspected=frozenset(i["last_inspected"]),
            )
            for i in data["inspectors"]
        ),
        counts={Tier(k): n for k, n in data["counts"].items()},
        policy=DrawPolicy(
            team_size=p["team_size"],
            qualifying_kinds=frozenset(p["qualifying_kinds"]),
            locality=p["locality"],
            auxiliary_per_team=p["auxiliary_per_team"],
            avoid_last_inspector=p["avoid_last_inspector"],
            max_load=p["max_load"],
        ),
    )


def fingerprint(inp: DrawInput, version: int = ALGORITHM_VERSION) -> str:
    """SHA-256 hex of the canonical JSON of {"algorithm_version", "input"}."""
    return fingerprinted(inp, version)[0]


def fingerprinted(inp: DrawInput, version: int = ALGORITHM_VERSION) -> tuple[str, bytes]:
    """The fingerprint and the canonical bytes it hashes: what a draw record keeps as the
    frozen pool (serialised once, since at 100,000 targets this is a good part of a draw)."""
    doc = canonical_document(inp, version)
    return hashlib.sha256(doc).hexdigest(), doc


# What json.dumps(..., ensure_ascii=False) writes for a string (the C encoder when there is one).
_quote = json.encoder.encode_basestring
# Between a target's key and its org, by on_positive_list: members in canonical order.
_AFTER_KEY = {True: ',"on_positive_list":true,"org":', False: ',"on_positive_list":false,"org":'}
_SUFFIX = ',"targets":[]}}'


def canonical_document(inp: DrawInput, version: int = ALGORITHM_VERSION) -> bytes:
    """``canonical_json({"algorithm_version": version, "input": input_to_json(inp)})``, byte
    for byte.

    At 100,000 targets most of the cost is the targets' dicts going through the generic
    encoder. Here each target is written as four pieces, ``{"key":`` (``,{"key":`` after the
    first), the key, the flag with the org's member name, and the org with the tier and
    ``}``; the pieces are laid into one list by slice assignment and joined, all at C level.
    Every string goes through the encoder's own ``encode_basestring``; everything else
    (inspectors, counts, policy, the order of members) comes from ``canonical_json`` itself.
    Any value the fast path does not expect (a non-string key or org, an unknown tier, a
    non-boolean flag) falls back to the generic encoding, which encodes or raises as before.
    """
    targets = sorted(inp.targets, key=_TARGET_KEY)
    rest = input_to_json(replace(inp, targets=()), version)
    head = canonical_json({"algorithm_version": version, "input": rest}).decode()
    body: str | None = None
    try:
        # The columns, at C level: keys, tiers, orgs and flags in key order.
        keys, tiers, orgs, positives = zip(*targets, strict=True) if targets else ((),) * 4
        if not set(map(type, positives)) <= {bool}:
            raise TypeError("on_positive_list")
        org_tiers = list(zip(orgs, tiers, strict=True))
        tails = {
            (org, tier): f'{_quote(org)},"tier":{_quote(_TIER_VALUES[tier])}}}'
            for org, tier in set(org_tiers)
        }
        parts = [',{"key":'] * (4 * len(targets))
        parts[1::4] = map(_quote, keys)
        parts[2::4] = map(_AFTER_KEY.__getitem__, positives)
        parts[3::4] = map(tails.__getitem__, org_tiers)
        if parts:
            parts[0] = '{"key":'
        body = "".join(parts)
    except (KeyError, TypeError, ValueError):
        pass
    # "targets" sorts last in "input", and "input" last at the top: splice the array in.
    if body is None or not head.endswith(_SUFFIX):
        return canonical_json({"algorithm_version": version, "input": input_to_json(inp, version)})
    return (head[: -len(_SUFFIX)] + ',"targets":[' + body + "]}}").encode("utf-8")


def result_to_json(result: DrawResult) -> dict[str, Any]:
    """A drawn result (section 9); version 2 teams name their ``sites``."""
    v2 = result.algorithm_version >= 2
    return {
        "algorithm_version": result.algorithm_version,
        "selected": [
            {
                "key": s.key,
                "tier": Tier(s.tier).value,
                "rank": s.rank,
                "score_hex": s.score_hex,
                "method": s.method,
            }
            for s in result.selected
        ],
        "teams": [
            {
                "target_key": t.target_key,
                "members": list(t.members),
                "auxiliary": list(t.auxiliary),
                "replaced": list(t.replaced),
                **({"sites": list(t.site_keys)} if v2 else {}),
            }
            for t in result.teams
        ],
        "cycle": list(result.cycle),
        "aux_cycle": list(result.aux_cycle),
        "cursor": result.cursor,
        "aux_cursor": result.aux_cursor,
    }


def result_from_json(data: Mapping[str, Any]) -> DrawResult:
    return DrawResult(
        algorithm_version=data["algorithm_version"],
        selected=tuple(
            SelectedTarget(s["key"], Tier(s["tier"]), s["rank"], s["score_hex"], s["method"])
            for s in data["selected"]
        ),
        teams=tuple(
            TeamAssignment(
                t["target_key"],
                tuple(t["members"]),
                tuple(t["auxiliary"]),
                tuple(t["replaced"]),
                tuple(t.get("sites", ())),
            )
            for t in data["teams"]
        ),
        cycle=tuple(data["cycle"]),
        aux_cycle=tuple(data["aux_cycle"]),
        cursor=data["cursor"],
        aux_cursor=data["aux_cursor"],
    )


def export_document(
    inp: DrawInput,
    secret: bytes,
    witness: str | None,
    result: DrawResult,
    version: int = ALGORITHM_VERSION,
) -> dict[str, Any]:
    """Everything needed to check the draw: the input of ``reference_verifier.py``. Version 2
    documents are complete (sections 9, 13, 14 of DRAW_ALGORITHM.md): state, witness form,
    failure, Art. 25(4) part and amendments, all present even when empty."""
    doc = {
        "algorithm_version": version,
        "input": input_to_json(inp, version),
        "secret_hex": secret.hex(),
        "witness": witness,
        "commitment": commitment(secret),
        "fingerprint": fingerprint(inp, version),
        "result": result_to_json(result),
    }
    if version >= 2:
        doc |= {
            "status": "drawn",
            "witnessed": witness is not None,
            "error": None,
            "construction": None,
            "amendments": [],
            "amendments_head": amendments_head(commitment(secret), []),
            "exclusions": [],
        }
    return doc
