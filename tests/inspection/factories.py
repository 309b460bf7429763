"""Small builders for draw inputs."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from inspection.draw import DrawInput, DrawPolicy, PoolInspector, PoolTarget
from inspection.quotas import Tier

SEED = hashlib.sha256(b"test seed").digest()
COUNTY = "150102"  # 呼和浩特市新城区


def targets(
    n: int, tier: Tier = Tier.general, org: str = COUNTY, prefix: str = "T"
) -> tuple[PoolTarget, ...]:
    return tuple(PoolTarget(f"{prefix}{tier.value[0]}{i:05d}", tier, org) for i in range(n))


def inspectors(
    n: int,
    org: str = COUNTY,
    kind: str = "enforcement",
    prefix: str = "C",
    auxiliary: bool = False,
) -> tuple[PoolInspector, ...]:
    return tuple(
        PoolInspector(f"{prefix}{i:05d}", f"{prefix.lower()}user{i}", org, kind, auxiliary)
        for i in range(n)
    )


def make_input(
    pool: Iterable[PoolTarget],
    people: Iterable[PoolInspector],
    counts: dict[Tier, int] | None = None,
    **policy: object,
) -> DrawInput:
    pool = tuple(pool)
    if counts is None:
        counts = {Tier.general: 1}
    return DrawInput(pool, tuple(people), counts, DrawPolicy(**policy))  # type: ignore[arg-type]
