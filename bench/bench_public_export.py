"""Public export benchmark (DRAW_ALGORITHM.md section 18): blinding a drawn version 2 draw and
verifying the public export, against verifying the full export of the same draw (the baseline,
measured in the same run). Pure: no database; 10 % of each pool drawn, teams of two.

    .venv/bin/python bench/bench_public_export.py [--sizes 10000,100000] [--inspectors 2000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

from inspection import reference_verifier
from inspection.draw import (
    DrawInput,
    PoolInspector,
    PoolTarget,
    derive_seed,
    draw,
    export_document,
)
from inspection.public_draw import public_document
from inspection.quotas import Tier
from inspection.verify import verify_export

SECRET = bytes(range(32))


def timed(fn: Callable[[], object], repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--inspectors", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    people = tuple(
        PoolInspector(f"C{i:06d}", f"u{i}", "150102", "enforcement") for i in range(args.inspectors)
    )
    print("targets  full verify (baseline)  blind  public verify (lib)  public verify (ref)  size")
    for size in map(int, args.sizes.split(",")):
        pool = tuple(PoolTarget(f"T{i:07d}", Tier.general, "150102") for i in range(size))
        inp = DrawInput(pool, people, {Tier.general: size // 10})
        result = draw(inp, derive_seed(SECRET, "w"))
        full = json.loads(json.dumps(export_document(inp, SECRET, "w", result)))
        sealed = {s.key for s in result.selected[:10]}
        public = public_document(full, sealed)
        assert verify_export(full) is None and verify_export(public) is None
        assert reference_verifier.verify(public) is None
        base = timed(lambda d=full: verify_export(d), args.repeat)  # type: ignore[misc]
        blind = timed(lambda d=full, s=sealed: public_document(d, s), args.repeat)  # type: ignore[misc]
        lib = timed(lambda d=public: verify_export(d), args.repeat)  # type: ignore[misc]
        ref = timed(lambda d=public: reference_verifier.verify(d), args.repeat)  # type: ignore[misc]
        ratio = len(json.dumps(public)) / len(json.dumps(full))
        print(
            f"{size:>7}  {base:>10.2f} s  {blind:>14.2f} s  {lib:>10.2f} s ({lib / base:.1f}x)"
            f"  {ref:>10.2f} s ({ref / base:.1f}x)  {ratio:.1f}x full"
        )


if __name__ == "__main__":
    main()
