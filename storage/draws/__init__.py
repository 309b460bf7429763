"""A task's draw, from commitment to inspections (Art. 27-29), and its record.

- ``record``: what every step shares (the refusal, result shapes, the per-organisation lock,
  the packed documents, finding a task's draws);
- ``drawing``: step 0 the pool (``preview``), step 1 the commitment and the witnesses
  (``commit``), the witness values (``give_witness``), step 2 the draw (``run``), and the
  cancellation of a draw that cannot be used (never a re-draw);
- ``amendments``: swaps appended to a drawn result (Art. 29), replayed by the verifier;
- ``export``: the self-contained record and its verification.

Callers use ``from storage import draws`` and the names below.
"""

from storage.draws.amendments import Swap, amend_swap, amendments_of, replay
from storage.draws.drawing import (
    WITNESS_DAYS,
    Cancelled,
    approve_cancel,
    commit,
    confirm_source_value,
    error_record,
    give_witness,
    pending_cancel,
    preview,
    reject_cancel,
    request_cancel,
    run,
    type_source_value,
    witness_of,
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
    "approve_cancel",
    "give_witness",
    "confirm_source_value",
    "type_source_value",
    "pending_cancel",
    "reject_cancel",
    "request_cancel",
    "witness_of",
    "WITNESS_DAYS",
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
