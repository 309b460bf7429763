"""The target pool and the inspector pool of a task, before the seed exists (Art. 5, 25-31).

Pure: the storage layer gathers the facts (directory rows plus what earlier inspections say about
each target) and this module decides, rule by rule, who is in the pool, who is left out and why,
and how many targets each tier draws. Everything it returns is fixed before the secret is
committed, so nothing here can depend on the draw's outcome.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import chain, repeat
from operator import attrgetter
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

from inspection.draw import DrawInput, DrawPolicy, PoolInspector, PoolTarget
from inspection.quotas import TIER_LABELS, Tier, required_count

# Why a target or an inspector is not in the pool. Codes are stable (they go into the record).
TARGET_EXCLUSIONS: dict[str, str] = {
    "deregistered": "已注销",
    "inspected_this_year": "同一市场主体本年度已被随机抽查，原则上每年不超过一次（第25条）",
    "checked_above": "上级本年度已随机抽查且未发现问题（第30条）",
    "construction_due": "建设项目另行全覆盖检查（第25条第4项）",
}
INSPECTOR_EXCLUSIONS: dict[str, str] = {
    "no_userid": "未绑定企业微信账号",
    "inactive": "已停用",
    "on_leave": "检查期内请假",
    "certificate_kind": "证件类型不计入本任务检查组",
    "department": "不属于本任务检查部门",
    "auxiliary_not_wanted": "本任务不配辅助检查人员",
}
EXCLUSION_LABELS = {**TARGET_EXCLUSIONS, **INSPECTOR_EXCLUSIONS}

# Art. 25(4): projects approved by the Ministry or the region need one check.
CONSTRUCTION_APPROVALS = frozenset({"ministry", "region"})


class TargetFact(NamedTuple):
    """A directory target as the pool sees it, with what the record says about its checks.

    A named tuple rather than a dataclass: a pool has 100,000 of them, built in a tight loop."""

    key: str
    tier: Tier  # plain "general" works too, and hashes faster than the enum member
    org: str  # the banner/county
    status: str = "operating"  # operating / suspended / deregistered
    on_positive_list: bool = False
    attributes: Mapping[str, Any] = MappingProxyType({})  # tags (Art. 12), directed draws only
    approval_level: str = ""
    construction_started_on: dt.date | None = None
    operation_started_on: dt.date | None = None
    # Art. 25: its market entity's random checks this year: "" none, "below" only by levels
    # below the drawing organisation (which may re-check them, Art. 30), "level" any other.
    checked_this_year: str = ""
    checked_above_no_problem: bool = False  # level above found no problem this year (Art. 30)
    inspected_since_construction: bool = False  # Art. 25(4) already done


class TargetBatch(NamedTuple):
    """Targets alike in everything but their key: ``like`` with each of ``keys`` in turn.

    How a large directory reaches the pool: most of its targets are ordinary (in business, no
    construction dates, not inspected this year), and a batch of them is a few strings and one
    list of keys instead of a fact per target. ``build_pool`` treats a batch exactly as the
    facts it stands for (``facts()``); for the ordinary ones it does so without making them."""

    like: TargetFact  # its key is ignored
    keys: Sequence[str]

    def facts(self) -> Iterator[TargetFact]:
        return (self.like._replace(key=k) for k in self.keys)


@dataclass(frozen=True)
class InspectorFact:
    key: str  # certificate number
    userid: str | None
    org: str
    certificate_kind: str = "enforcement"
    auxiliary: bool = False
    active: bool = True
    leave_from: dt.date | None = None
    leave_until: dt.date | None = None
    leave_id: str = ""  # the leave record's id (evidence of an on_leave exclusion)
    dept_code: str = ""
    conflicts: frozenset[str] = frozenset()
    last_inspected: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Quota:
    """Per tier: a ratio of the sub-directory (rounded up) or a fixed count."""

    ratio: Fraction | None = None
    count: int | None = None

    def __post_init__(self) -> None:
        if (self.ratio is None) == (self.count is None):
            raise ValueError("抽取要求应为比例或数量之一")
        if self.ratio is not None and not 0 <= self.ratio <= 1:
            raise ValueError(f"抽查比例应在0到100%之间：{self.ratio}")
        if self.count is not None and self.count < 0:
            raise ValueError(f"抽取数量不能为负数：{self.count}")

    def required(self, tier_size: int) -> int:
        if self.ratio is not None:
            return required_count(tier_size, self.ratio)
        assert self.count is not None
        return self.count

    def label(self) -> str:
        if self.ratio is not None:
            return percent(self.ratio)
        return f"{self.count}个"

    def to_json(self) -> dict[str, Any]:
        if self.ratio is not None:
            return {"ratio": str(self.ratio)}
        return {"count": self.count}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Quota:
        if "ratio" in data:
            return cls(ratio=Fraction(str(data["ratio"])))
        return cls(count=int(data["count"]))


def percent(ratio: Fraction) -> str:
    value = ratio * 100
    return f"{value.numerator}%" if value.denominator == 1 else f"{float(value):g}%"


@dataclass(frozen=True)
class PoolRules:
    """What a task says about its pool (Art. 22, 25, 26, 30)."""

    quotas: Mapping[Tier, Quota]
    check_start: dt.date
    check_end: dt.date
    policy: DrawPolicy = DrawPolicy()
    tag_filter: Mapping[str, str] = field(default_factory=dict, hash=False)
    once_a_year: bool = True  # Art. 25: leave out entities randomly checked this year
    special_more_often: bool = True  # Art. 25: ... except the special sub-directory
    recheck_below: bool = False  # Art. 30: ... except what only the levels below checked
    skip_checked_above: bool = False
    construction_projects: bool = True
    checking_depts: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Exclusion:
    kind: Literal["target", "inspector"]
    key: str
    reason: str
    tier: str = ""  # a target's tier (for the counts per tier); not part of the record
    # What shows the reason (DRAW_ALGORITHM.md section 4, exclusions): the check of this year
    # ({"task", "inspection"}) or the leave record ({"leave", "from", "until"}); else empty.
    evidence: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def label(self) -> str:
        return EXCLUSION_LABELS.get(self.reason, self.reason)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "key": self.key,
            "reason": self.reason,
            "label": self.label,
            "evidence": dict(self.evidence),
        }


@dataclass(frozen=True)
class PoolPlan:
    """Everything frozen at commitment: the draw's input, and how it was arrived at."""

    input: DrawInput
    construction: DrawInput | None  # Art. 25(4) projects, all of them, outside the random draw
    tier_sizes: Mapping[Tier, int]  # the sub-directory in scope, before exclusions
    pool_sizes: Mapping[Tier, int]
    counts: Mapping[Tier, int]
    quotas: Mapping[Tier, Quota]
    exclusions: tuple[Exclusion, ...]
    problems: tuple[str, ...]  # why it cannot be drawn at all (Chinese); empty when it can
    warnings: tuple[str, ...]  # what may go wrong depending on the draw (Chinese)

    @property
    def drawable(self) -> bool:
        return not self.problems

    def excluded(self, kind: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for e in self.exclusions:
            if e.kind == kind:
                out[e.reason] = out.get(e.reason, 0) + 1
        return out

    def summary(self) -> dict[str, Any]:
        return {
            "tier_sizes": {t.value: self.tier_sizes.get(t, 0) for t in Tier},
            "pool_sizes": {t.value: self.pool_sizes.get(t, 0) for t in Tier},
            "counts": {t.value: self.counts.get(t, 0) for t in Tier},
            "quotas": {t.value: q.to_json() for t, q in self.quotas.items()},
            "construction": len(self.construction.targets) if self.construction else 0,
            "inspectors": len(self.input.inspectors),
        }


def matches(attributes: Mapping[str, Any], tag_filter: Mapping[str, str]) -> bool:
    """Art. 26 directed draw: every tag asked for has that value (or contains it, for lists)."""
    for name, wanted in tag_filter.items():
        value = attributes.get(name)
        if isinstance(value, list | tuple | set | frozenset):
            if wanted not in {str(v) for v in value}:
                return False
        elif value is None or str(value) != wanted:
            return False
    return True


def construction_due(t: TargetFact, start: dt.date, end: dt.date) -> bool:
    """Art. 25(4): approved by the Ministry or region, construction begun, not checked since,
    and the check window reaches into [start of construction, one year after operation began]."""
    if t.approval_level not in CONSTRUCTION_APPROVALS or t.construction_started_on is None:
        return False
    if t.inspected_since_construction or t.construction_started_on > end:
        return False
    if t.operation_started_on is None:
        return True
    op = t.operation_started_on
    try:
        deadline = op.replace(year=op.year + 1)
    except ValueError:  # 29 February
        deadline = op.replace(year=op.year + 1, day=28)
    return start <= deadline


def on_leave(
    leave_from: dt.date | None, leave_until: dt.date | None, start: dt.date, end: dt.date
) -> bool:
    """Whether a leave (either end may be open, both None: no leave) overlaps [start, end]."""
    if leave_from is None and leave_until is None:
        return False
    return (leave_from or dt.date.min) <= end and (leave_until or dt.date.max) >= start


def leave_evidence(i: InspectorFact) -> dict[str, Any]:
    """The leave record behind an on_leave exclusion: its id and dates."""
    start = i.leave_from.isoformat() if i.leave_from else None
    until = i.leave_until.isoformat() if i.leave_until else None
    return {
        "leave": i.leave_id or f"leave:{i.key}:{start or ''}:{until or ''}",
        "from": start,
        "until": until,
    }


def _inspector_exclusion(i: InspectorFact, rules: PoolRules) -> str | None:
    if not i.active:
        return "inactive"
    if not i.userid:
        return "no_userid"
    if on_leave(i.leave_from, i.leave_until, rules.check_start, rules.check_end):
        return "on_leave"
    if i.auxiliary:
        return None if rules.policy.auxiliary_per_team else "auxiliary_not_wanted"
    if i.certificate_kind not in rules.policy.qualifying_kinds:
        return "certificate_kind"
    if rules.checking_depts and i.dept_code not in rules.checking_depts:
        return "department"
    return None


def _ordinary(like: TargetFact) -> bool:
    """A batch of these only counts toward its tier and enters the pool if its tier is drawn."""
    return (
        like.status != "deregistered"
        and like.construction_started_on is None
        and not like.checked_this_year
        and not like.checked_above_no_problem
    )


def build_pool(
    targets: Iterable[TargetFact],
    inspectors: Iterable[InspectorFact],
    rules: PoolRules,
    batches: Iterable[TargetBatch] = (),
    entity_of: Mapping[str, str] = MappingProxyType({}),
    evidence: Mapping[str, Mapping[str, Any]] = MappingProxyType({}),
) -> PoolPlan:
    """Decide the pool, the exclusions (with reasons) and the count per tier.

    ``batches`` are more targets, each batch exactly as the facts it stands for.
    ``entity_of``: a target's market entity (credit code), for the targets of entities with
    more than one (Art. 19: their drawn targets make one visit). ``evidence``: per target key,
    the check that leaves it out (``{"task", "inspection"}``, Art. 25; under ``above:<key>``
    the level above's, Art. 30)."""
    exclusions: list[Exclusion] = []
    sizes: dict[str, int] = {t.value: 0 for t in Tier}
    pool: list[PoolTarget] = []
    construction: list[PoolTarget] = []
    drawn_tiers = {t.value for t in rules.quotas}
    once, special_ok, recheck = rules.once_a_year, rules.special_more_often, rules.recheck_below
    skip_above = rules.skip_checked_above
    directed = bool(rules.tag_filter)
    construction_on, start, end = rules.construction_projects, rules.check_start, rules.check_end
    special = Tier.special
    unusual: list[Iterable[TargetFact]] = [targets]
    for batch in batches:
        like = batch.like
        if directed or not _ordinary(like):
            unusual.append(batch.facts())
            continue
        sizes[like.tier] += len(batch.keys)
        if like.tier in drawn_tiers:
            # PoolTarget(key, tier, org, positive) for each key, made at C level.
            shared = repeat(like.tier), repeat(like.org), repeat(like.on_positive_list)
            pool.extend(
                map(tuple.__new__, repeat(PoolTarget), zip(batch.keys, *shared, strict=False))
            )  # repeat() is endless
    # One pass over what may be 100,000 targets: the fact unpacked once, cheap tests first,
    # plain-string tiers, a PoolTarget only for what enters the pool or the Art. 25(4) list.
    for t in chain.from_iterable(unusual):
        if directed and not matches(t.attributes, rules.tag_filter):
            continue  # outside a directed draw's scope (Art. 26): not in the sub-directory
        key, tier, org, status, positive, _, approval, _, _, seen, above, _ = t
        if status == "deregistered":
            exclusions.append(Exclusion("target", key, "deregistered", tier))
            continue
        sizes[tier] += 1
        if (
            construction_on
            and approval in CONSTRUCTION_APPROVALS
            and construction_due(t, start, end)
        ):
            # Art. 25(4)'s one mandatory check: never left out by the once-a-year rule.
            construction.append(PoolTarget(key, tier, org, positive))
            exclusions.append(Exclusion("target", key, "construction_due", tier))
        elif (
            once
            and seen
            and not (special_ok and tier == special)
            and not (recheck and seen == "below")
        ):
            exclusions.append(
                Exclusion("target", key, "inspected_this_year", tier, evidence.get(key, {}))
            )
        elif skip_above and above:
            exclusions.append(
                Exclusion("target", key, "checked_above", tier, evidence.get(f"above:{key}", {}))
            )
        elif tier in drawn_tiers:
            pool.append(PoolTarget(key, tier, org, positive))
    tier_sizes = {t: sizes[t.value] for t in Tier}

    kept: list[InspectorFact] = []
    for i in inspectors:
        reason = _inspector_exclusion(i, rules)
        if reason is not None:
            shown = leave_evidence(i) if reason == "on_leave" else {}
            exclusions.append(Exclusion("inspector", i.key, reason, evidence=shown))
            continue
        kept.append(i)
    # Conflicts and last inspections are kept only for targets in play (usually there are
    # none at all, and then the set of 100,000 keys is not worth building).
    wanted: set[str] | frozenset[str] = frozenset()
    if any(i.conflicts or i.last_inspected for i in kept):
        wanted = {t.key for t in pool} | {t.key for t in construction}
    people: list[PoolInspector] = []
    for i in kept:
        assert i.userid is not None
        people.append(
            PoolInspector(
                key=i.key,
                userid=i.userid,
                org=i.org,
                certificate_kind=i.certificate_kind,
                auxiliary=i.auxiliary,
                conflicts=i.conflicts & wanted,
                last_inspected=i.last_inspected & wanted,
            )
        )

    counted = Counter(map(attrgetter("tier"), pool))  # plain strings and Tier members alike
    pool_sizes = {t: counted[t.value] for t in Tier}
    counts = {tier: q.required(tier_sizes[tier]) for tier, q in rules.quotas.items()}
    inp = DrawInput(
        tuple(pool), tuple(people), counts, rules.policy, entity_groups(pool, entity_of)
    )
    extra = None
    if construction:
        per_tier = {tier: sum(1 for c in construction if c.tier == tier) for tier in Tier}
        extra = DrawInput(
            tuple(construction),
            tuple(people),
            per_tier,
            rules.policy,
            entity_groups(construction, entity_of),
        )
    exclusions.sort(key=lambda e: (e.kind, e.reason, e.key))
    problems, warnings = _feasibility(inp, extra, rules, tier_sizes, pool_sizes, counts, exclusions)
    return PoolPlan(
        input=inp,
        construction=extra,
        tier_sizes=tier_sizes,
        pool_sizes=pool_sizes,
        counts=counts,
        quotas=dict(rules.quotas),
        exclusions=tuple(exclusions),
        problems=tuple(problems),
        warnings=tuple(warnings),
    )


def entity_groups(
    targets: Sequence[PoolTarget], entity_of: Mapping[str, str]
) -> tuple[tuple[str, ...], ...]:
    """DrawInput.entities: the targets of one market entity, for entities with two or more."""
    if not entity_of:
        return ()
    groups: dict[str, list[str]] = {}
    for t in targets:
        entity = entity_of.get(t.key)
        if entity:
            groups.setdefault(entity, []).append(t.key)
    return tuple(sorted(tuple(sorted(keys)) for keys in groups.values() if len(keys) > 1))


def _feasibility(
    inp: DrawInput,
    extra: DrawInput | None,
    rules: PoolRules,
    tier_sizes: Mapping[Tier, int],
    pool_sizes: Mapping[Tier, int],
    counts: Mapping[Tier, int],
    exclusions: list[Exclusion],
) -> tuple[list[str], list[str]]:
    """What makes any draw impossible (refused before commitment) and what might fail."""
    problems: list[str] = []
    warnings: list[str] = []
    left_out: dict[str, int] = {tier.value: 0 for tier in Tier}
    for e in exclusions:
        if e.kind == "target" and e.reason != "deregistered" and e.tier in left_out:
            left_out[e.tier] += 1
    for tier, n in counts.items():
        if n > pool_sizes[tier]:
            label = TIER_LABELS[tier]
            how = rules.quotas[tier].label()
            out = left_out[tier.value]
            gone = f"，其中{out}个按规定不参加本次抽取" if out else ""
            problems.append(
                f"{label}监管对象应抽取{n}个（名录内{tier_sizes[tier]}个{gone}；要求{how}），"
                f"可抽取的只有{pool_sizes[tier]}个。请调整抽取比例或数量、任务范围或标签条件。"
            )
    teams = sum(counts.values()) + (len(extra.targets) if extra else 0)
    if teams == 0:
        problems.append("本任务没有需要抽取的检查对象：请检查各类别的比例或数量以及任务范围。")
        return problems, warnings
    policy = rules.policy
    main = {i.userid for i in inp.inspectors if not i.auxiliary}
    aux = {i.userid for i in inp.inspectors if i.auxiliary}
    kinds = "、".join(CERT_LABELS.get(k, k) for k in sorted(policy.qualifying_kinds))
    if len(main) < policy.team_size:
        problems.append(
            f"可选派的检查人员不足：每个检查组需要{policy.team_size}名持{kinds}的检查人员，"
            f"可选派的只有{len(main)}人。请补充检查人员名录或调整检查组人数、证件要求。"
        )
    if len(aux) < policy.auxiliary_per_team:
        problems.append(
            f"辅助检查人员不足：每组需要{policy.auxiliary_per_team}名，可选派的只有{len(aux)}人。"
        )
    if policy.max_load is not None and len(main) * policy.max_load < teams * policy.team_size:
        problems.append(
            f"每人上限{policy.max_load}组时，{len(main)}名检查人员最多能组成"
            f"{len(main) * policy.max_load // max(policy.team_size, 1)}个检查组，"
            f"少于需要的{teams}个。请提高每人上限或补充检查人员。"
        )
    if policy.locality == "same_county":
        per_county: dict[str, set[str]] = {}
        for i in inp.inspectors:
            if not i.auxiliary:
                per_county.setdefault(i.org, set()).add(i.userid)
        counties = {p.org for p in (*inp.targets, *(extra.targets if extra else ()))}
        short = sorted(c for c in counties if len(per_county.get(c, ())) < policy.team_size)
        if short:
            warnings.append(
                f"以下旗县区本地可选派的检查人员不足{policy.team_size}人：{'、'.join(short)}；"
                "若抽中其检查对象，将无法组成检查组。可将属地要求改为「任务范围内」。"
            )
    return problems, warnings


CERT_LABELS = {"enforcement": "执法证", "work": "工作证"}


def quotas_from_json(data: Mapping[str, Any]) -> dict[Tier, Quota]:
    return {Tier(k): Quota.from_json(v) for k, v in data.items()}
