"""A task's draw, from commitment to inspections (Art. 27-29), and its record.

- ``record``: what every step shares (the refusal, result shapes, the per-organisation lock,
  the packed documents, finding a task's draws);
- ``drawing``: step 0 the pool (``preview``), step 1 the commitment (``commit``), step 2 the
  draw (``run``), and re-draws;
- ``amendments``: swaps appended to a drawn result (Art. 29), replayed by the verifier;
- ``export``: the self-contained record and its verification.

Callers use ``from storage import draws`` and the names below.
"""

from storage.draws.amendments import Swap, amend_swap, amendments_of, replay
from storage.draws.drawing import (
    Cancelled,
    approve_redraw,
    commit,
    error_record,
    preview,
    run,
)
from storage.draws.export import (
    export,
    pick_draw,
    public_draw_of,
    public_export,
    served_public_export,
    verify_task,
)
from storage.draws.record import (
    CLOSED,
    FROZEN_KEEP,
    Assignment,
    DrawRefused,
    Member,
    Outcome,
    draws_of,
    forget_frozen,
    frozen_input,
    latest_draw,
    load_input,
    lock_key,
    lock_scope,
    pack,
    unpack,
)

__all__ = [
    "CLOSED",
    "FROZEN_KEEP",
    "Assignment",
    "Cancelled",
    "DrawRefused",
    "Member",
    "Outcome",
    "Swap",
    "amend_swap",
    "amendments_of",
    "approve_redraw",
    "commit",
    "draws_of",
    "forget_frozen",
    "error_record",
    "export",
    "public_draw_of",
    "public_export",
    "served_public_export",
    "frozen_input",
    "latest_draw",
    "load_input",
    "lock_key",
    "lock_scope",
    "pack",
    "preview",
    "pick_draw",
    "replay",
    "run",
    "unpack",
    "verify_task",
]
