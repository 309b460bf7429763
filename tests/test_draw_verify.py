"""`draw export` / `draw verify`: the record alone proves the draw (Art. 27-29).

Both verifiers (the library's and the standard-library reference) run on the same exports and
must agree, on the honest record and on every kind of tampering."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, update

from bot.cli import main as cli_main
from inspection import reference_verifier
from inspection.draw import (
    amendments_head,
    derive_seed,
    draw_parts,
    input_from_json,
    result_to_json,
)
from inspection.verify import verify_export
from storage import draws
from storage.db import Database
from storage.draws.binding import bound
from storage.models import Inspection, TeamMember
from storage.tasks import get_task
from tests.factories import (
    COUNTY2,
    NOW,
    add_inspectors,
    add_targets,
    make_task,
)
from tests.support.draw_exports import base, rechain
from tests.support.draws import seal, witnessed

SECRET = bytes(range(32))
Doc = dict[str, Any]


async def drawn_task(
    db: Database, *, witness: str | None = "20261130", swaps: int = 0, **fields: str
) -> tuple[str, Doc]:
    """A drawn task (with construction projects and ``swaps`` amendments) and its export."""
    async with db.transaction() as s:
        await add_targets(s, 40, tier="general")
        await add_targets(s, 10, tier="key", start=100, org=COUNTY2)
        await add_targets(
            s,
            2,
            tier="key",
            start=300,
            approval_level="region",
            construction_started_on=NOW.date().replace(year=2025),
        )
        await add_inspectors(s, 8)
        await add_inspectors(s, 4, org=COUNTY2)
        task = await make_task(s, 重点="20%", **fields)
        row, plan = await seal(s, task, SECRET, actor="admin", unwitnessed=witness is None)
        outcome = await witnessed(s, task, row, witness, plan=plan)
        assert outcome.error is None and outcome.construction is not None
        inspections = (await s.execute(select(Inspection).order_by(Inspection.number))).scalars()
        for inspection in list(inspections)[:swaps]:
            leaving = (
                await s.execute(
                    select(TeamMember.certificate_no).where(
                        TeamMember.inspection_id == inspection.id, TeamMember.position == 0
                    )
                )
            ).scalar_one()
            await draws.amend_swap(
                s,
                inspection,
                leaving=leaving,
                reason="病假",
                approved_by="chief",
                actor="chief",
                now=NOW,
                requested_at=NOW,
            )
        doc = await draws.export(s, task)
        return task.code, json.loads(json.dumps(doc))


async def cli(*args: str) -> int:
    """The real CLI (it runs its own event loop, so in a thread)."""
    return await asyncio.to_thread(cli_main, list(args))


def both(doc: Doc) -> tuple[str | None, str | None]:
    return verify_export(doc), reference_verifier.verify(doc)


async def test_art29_an_honest_record_with_swaps_matches_in_both_verifiers(db: Database) -> None:
    _, doc = await drawn_task(db, witness=None, swaps=2)
    assert len(doc["amendments"]) == 2 and doc["construction"]["result"]["teams"]
    assert doc["witnessed"] is False and doc["exclusions"]
    assert both(doc) == (None, None)
    # A swap takes the first person of the recorded cycle, from the cursor, who may serve.
    swap = doc["amendments"][0]
    cycle, cursor = doc["result"]["cycle"], doc["result"]["cursor"]
    team = next(t for t in doc["result"]["teams"] if t["target_key"] == swap["target_key"])
    expected = next(
        cycle[(cursor + i) % len(cycle)]
        for i in range(len(cycle))
        if cycle[(cursor + i) % len(cycle)] not in team["members"]
    )
    assert swap["replacement"] == expected and swap["leaving"] == team["members"][0]


def tamper_pool(doc: Doc) -> None:
    doc["input"]["targets"].pop()


def tamper_seed(doc: Doc) -> None:
    doc["witness"] = "20261131"


def tamper_parameter(doc: Doc) -> None:
    doc["input"]["policy"]["avoid_last_inspector"] = False


def tamper_result(doc: Doc) -> None:
    team = doc["result"]["teams"][0]
    team["members"].reverse()


def tamper_amendment(doc: Doc) -> None:
    a = doc["amendments"][0]
    a["replacement"] = next(k for k in doc["result"]["cycle"] if k != a["replacement"])
    rechain(doc)


def tamper_amendment_order(doc: Doc) -> None:
    doc["amendments"].reverse()


def tamper_witnessed_marker(doc: Doc) -> None:
    doc["witnessed"] = False


def tamper_construction(doc: Doc) -> None:
    doc["construction"]["result"]["teams"][0]["members"].reverse()


def pure_export() -> str:
    """The same shape of record as ``draws.export`` (construction part, two swaps), built
    without a database so that each kind of tampering is checked in microseconds."""
    return json.dumps(base("drawn"))


@pytest.mark.parametrize(
    ("tamper", "where"),
    [
        (tamper_pool, "fingerprint"),
        (tamper_seed, "result."),
        (tamper_parameter, "fingerprint"),
        (tamper_result, "result.teams[0].members[0]"),
        (tamper_amendment, "amendments[0].replacement"),
        (tamper_amendment_order, "amendments[0].seq"),
        (tamper_witnessed_marker, "witnessed"),
        (tamper_construction, "construction.result.teams[0]"),
    ],
)
def test_art27_verify_catches_a_changed_pool_seed_parameter_result_or_amendment(
    tamper: Callable[[Doc], None], where: str
) -> None:
    doc = json.loads(pure_export())
    assert both(doc) == (None, None)
    tamper(doc)
    ours, reference = both(doc)
    assert ours is not None and ours.startswith(where), ours
    assert reference is not None and reference.startswith(where), reference


async def test_art27_verify_from_the_task_checks_the_teams_in_the_database(
    db: Database, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = await drawn_task(db, swaps=1)
    out = tmp_path / "draw.json"
    assert await cli("draw", "export", code, str(out), "--database-url", db_url) == 0
    assert await cli("draw", "verify", str(out), "--database-url", db_url) == 0
    assert await cli("draw", "verify", code, "--database-url", db_url) == 0
    assert reference_verifier.main([str(out)]) == 0
    assert capsys.readouterr().out.count("MATCH") == 3
    # Someone edits a team in the database behind the record's back.
    async with db.transaction() as s:
        await s.execute(
            update(TeamMember)
            .where(
                TeamMember.id
                == select(TeamMember.id)
                .where(TeamMember.active.is_(True))
                .limit(1)
                .scalar_subquery()
            )
            .values(certificate_no="C1501029999")
        )
    assert await cli("draw", "verify", code, "--database-url", db_url) == 1
    assert "MISMATCH: database: inspection" in capsys.readouterr().out
    doc = json.loads(out.read_text(encoding="utf-8"))
    # Claiming afterwards that the replacement had been unavailable does not replay either.
    doc["amendments"][0]["excluded"] = [doc["amendments"][0]["replacement"]]
    out.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    assert await cli("draw", "verify", str(out), "--database-url", db_url) == 1
    assert reference_verifier.main([str(out)]) == 1


async def test_art28_a_failed_draw_replays_as_the_same_failure(
    db: Database, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    async with db.transaction() as s:
        await add_targets(s, 10)
        await add_targets(s, 10, org=COUNTY2, start=50)
        await add_inspectors(s, 3)  # none in COUNTY2
        task = await make_task(s, 一般="100%", 属地="本旗县区")
        row, plan = await seal(s, task, SECRET, actor="admin")
        outcome = await witnessed(s, task, row, "1", plan=plan)
        assert outcome.error is not None and outcome.error.reason == "team_unfilled"
        doc = json.loads(json.dumps(await draws.export(s, task)))
    assert doc["result"] is None and doc["error"]["reason"] == "team_unfilled"
    assert both(doc) == (None, None)
    doc["error"]["target_key"] = "somewhere else"
    ours, reference = both(doc)
    assert ours is not None and reference is not None and ours.startswith("error")
    # While the witness is awaited the record holds the secret: no export.
    async with db.transaction() as s:
        task = await make_task(s, 检查期="2027-01-04~2027-01-29")
        await seal(s, task, SECRET, actor="admin")
    assert await cli("draw", "export", task.code, "--database-url", db_url) == 2
    assert "awaits its witness value" in capsys.readouterr().err


async def test_art27_verify_checks_the_commitment_and_fingerprint_as_recorded(
    db: Database,
) -> None:
    """The export carries the commitment and the fingerprint as they were recorded before the
    draw, not values recomputed from the record: changing either in the database shows."""
    code, _ = await drawn_task(db)
    for column, forged in (("commitment", "0" * 64), ("fingerprint", "f" * 64)):
        async with db.transaction() as s:
            task = await get_task(s, code)
            assert task is not None
            row = await draws.pick_draw(s, task)
            honest = getattr(row, column)
            assert await draws.verify_task(s, task) is None
            setattr(row, column, forged)
            await s.flush()
            problem = await draws.verify_task(s, task)
            assert problem is not None and column in problem, problem
            setattr(row, column, honest)


async def test_art27_new_draws_are_version_2_and_the_audit_record_binds_the_version(
    db: Database,
) -> None:
    code, doc = await drawn_task(db, swaps=1)
    assert doc["algorithm_version"] == 2 and doc["result"]["algorithm_version"] == 2
    async with db.transaction() as s:
        task = await get_task(s, code)
        assert task is not None
        facts = await bound(s, task, doc["attempt"])
        assert (facts.version, facts.status, facts.amendments) == (2, "drawn", 1)
        assert facts.head == doc["amendments_head"]
        # Passing the draw off as version 1 in the database shows.
        row = await draws.pick_draw(s, task)
        row.algorithm_version = 1
        await s.flush()
        problem = await draws.verify_task(s, task)
        # A version 2 input has market-entity groups, which version 1 does not know (Art. 19).
        assert problem is not None and any(
            w in problem for w in ("fingerprint", "version", "entities")
        )


async def test_art29_a_deleted_amendment_is_caught_by_the_record(db: Database) -> None:
    code, _ = await drawn_task(db, swaps=2)
    async with db.transaction() as s:
        task = await get_task(s, code)
        assert task is not None
        assert await draws.verify_task(s, task) is None
        row = await draws.pick_draw(s, task)
        last = (await draws.amendments_of(s, row.id))[-1]
        await s.execute(delete(TeamMember).where(TeamMember.amendment_id == last.id))
        await s.delete(last)
        await s.flush()
        problem = await draws.verify_task(s, task)
    assert problem is not None and problem.startswith("record: amendments"), problem


async def test_art27_an_export_relabelled_or_cut_short_verifies_alone_but_not_against_the_record(
    db: Database, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Section 16: a consistent forgery passes the file check; --record compares it with the
    audit record and names what was changed: the amendments cut short, the state relabelled,
    the Art. 25(4) part dropped or the exclusions edited (both sealed with the commitment)."""
    _, doc = await drawn_task(db, swaps=2)
    cut = json.loads(json.dumps(doc))
    cut["amendments"].pop()
    cut["amendments_head"] = amendments_head(cut["commitment"], cut["amendments"])
    # A drawn result shown as cancelled before the witness values were in (section 14).
    relabelled = json.loads(json.dumps(doc))
    relabelled |= {"status": "cancelled", "result": None, "witness": None, "witnessed": False}
    relabelled |= {"amendments": [], "drawn_at": None}
    relabelled["construction"]["result"] = None
    relabelled["amendments_head"] = amendments_head(relabelled["commitment"], [])
    # Passed off as the replacement of another task's cancelled draw, or the reverse.
    replacing = json.loads(json.dumps(doc))
    replacing["replaces"] = {"task": "T2026-150100-009", "attempt": 1, "commitment": "0" * 64}
    no_projects = json.loads(json.dumps(doc)) | {"construction": None}
    # The exclusions name the Art. 25(4) projects (section 4): dropping only the part is
    # caught by the file alone; a forger drops their exclusions too, and the record tells.
    assert "construction project" in (verify_export(no_projects) or "")
    no_projects["exclusions"] = [
        e for e in no_projects["exclusions"] if e["reason"] != "construction_due"
    ]
    fewer_exclusions = json.loads(json.dumps(doc))
    # Here only Art. 25(4) projects are left out, and dropping one the file alone tells (see
    # above): what passes the file is an edit of what it cannot check, such as the label.
    fewer_exclusions["exclusions"][0]["label"] = "已注销"
    for forged, what in (
        (cut, "amendments"),
        (relabelled, "status"),
        (replacing, "replaces"),
        (no_projects, "construction"),  # Art. 25(4): the projects were sealed with the pool
        (fewer_exclusions, "exclusions"),
    ):
        out = tmp_path / f"{what}.json"
        out.write_text(json.dumps(forged, ensure_ascii=False), encoding="utf-8")
        assert both(forged) == (None, None)
        assert await cli("draw", "verify", str(out), "--database-url", db_url) == 0
        capsys.readouterr()
        assert await cli("draw", "verify", str(out), "--record", "--database-url", db_url) == 1
        assert f"MISMATCH: record: {what}" in capsys.readouterr().out
    honest = tmp_path / "honest.json"
    honest.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    assert await cli("draw", "verify", str(honest), "--record", "--database-url", db_url) == 0


async def test_art27_another_witness_value_with_the_result_recomputed_is_caught_by_the_record(
    db: Database, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Section 16: whoever holds the full export (and so the secret) can recompute a result for
    any witness value; the file then verifies alone, but the record holds the value the draw
    ran on."""
    _, doc = await drawn_task(db)
    seed = derive_seed(bytes.fromhex(doc["secret_hex"]), "99999999", doc["algorithm_version"])
    result, c_result = draw_parts(
        input_from_json(doc["input"]), input_from_json(doc["construction"]["input"]), seed
    )
    assert c_result is not None
    forged = json.loads(json.dumps(doc)) | {"witness": "99999999", "result": result_to_json(result)}
    forged["construction"]["result"] = result_to_json(c_result)
    assert forged["result"] != doc["result"]  # other teams
    assert both(forged) == (None, None)
    out = tmp_path / "witness.json"
    out.write_text(json.dumps(forged, ensure_ascii=False), encoding="utf-8")
    assert await cli("draw", "verify", str(out), "--record", "--database-url", db_url) == 1
    assert "MISMATCH: record: witness" in capsys.readouterr().out


async def test_art27_cli_verify_rejects_a_malformed_file_in_one_line(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "draw.json"
    raw = pure_export().replace('"witness": "20261130"', '"witness": "\\ud800"', 1)
    out.write_text(raw, encoding="utf-8")
    assert await cli("draw", "verify", str(out), "--database-url", db_url) == 1
    captured = capsys.readouterr()
    assert "surrogate" in captured.out and "Traceback" not in captured.err
