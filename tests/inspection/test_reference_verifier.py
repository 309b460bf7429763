import ast
import copy
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from inspection import reference_verifier
from inspection.draw import (
    DrawInput,
    amendments_head,
    canonical_json,
    commitment,
    derive_seed,
    draw,
    export_document,
    fingerprint,
    input_from_json,
    input_to_json,
    result_to_json,
    score,
    swap_member,
)
from inspection.quotas import Tier
from tests.inspection.factories import inspectors, make_input, targets

VERIFIER = Path(reference_verifier.__file__)
SECRET = bytes.fromhex("5d1c" * 16)
WITNESS = "见证人：王五 2026-03-02 09:30"


def _input() -> DrawInput:
    people = inspectors(8) + inspectors(3, prefix="A", auxiliary=True)
    pool = targets(6, Tier.special) + targets(10, Tier.key) + targets(30)
    return make_input(
        pool,
        people,
        {Tier.special: 2, Tier.key: 2, Tier.general: 3},
        auxiliary_per_team=1,
        max_load=3,
    )


def _document(witness: str | None = WITNESS) -> dict[str, Any]:
    inp = _input()
    result = draw(inp, derive_seed(SECRET, witness))
    return export_document(inp, SECRET, witness, result)


def _verify(
    doc: dict[str, Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> tuple[int, str]:
    path = tmp_path / "draw.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    code = reference_verifier.main([str(path)])
    return code, capsys.readouterr().out


def test_art27_export_has_the_documented_format() -> None:
    doc = _document()
    assert set(doc) == {
        "algorithm_version",
        "input",
        "secret_hex",
        "witness",
        "commitment",
        "fingerprint",
        "result",
        "status",
        "witnessed",
        "error",
        "construction",
        "amendments",
        "amendments_head",
        "exclusions",  # read in version 2: what was left out, with its evidence (section 4)
    }
    assert doc["algorithm_version"] == 2 and doc["witness"] == WITNESS
    assert set(doc["input"]) == {"targets", "inspectors", "counts", "policy", "entities"}


@pytest.mark.parametrize("witness", [WITNESS, None])
def test_art27_reference_verifier_matches_the_library(
    witness: str | None, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert _verify(_document(witness), capsys, tmp_path) == (0, "MATCH\n")


def test_art27_reference_verifier_runs_standalone(tmp_path: Path) -> None:
    path = tmp_path / "draw.json"
    path.write_text(json.dumps(_document()), encoding="utf-8")
    # -I: isolated mode, so nothing of the project is importable from the script.
    done = subprocess.run(
        [sys.executable, "-I", str(VERIFIER), str(path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, "MATCH\n")
    tampered = _document()
    tampered["witness"] = "someone else"
    done = subprocess.run(
        [sys.executable, "-I", str(VERIFIER), "-"],
        input=json.dumps(tampered),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1 and done.stdout.startswith("MISMATCH: result.")


def test_art27_reference_verifier_uses_only_the_standard_library() -> None:
    tree = ast.parse(VERIFIER.read_text(encoding="utf-8"))
    modules = {
        a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }
    modules |= {
        n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
    }
    assert modules <= set(sys.stdlib_module_names) | {"__future__"}


def _tamper_pool_key(doc: dict[str, Any]) -> None:
    doc["input"]["targets"][0]["key"] += "X"


def _tamper_witness(doc: dict[str, Any]) -> None:
    doc["witness"] = WITNESS.replace("王五", "王六")


def _tamper_parameter(doc: dict[str, Any]) -> None:
    doc["input"]["policy"]["max_load"] = 4


def _tamper_team_member(doc: dict[str, Any]) -> None:
    team = doc["result"]["teams"][0]
    team["members"][1] = next(k for k in doc["result"]["cycle"] if k not in team["members"])


def _tamper_secret(doc: dict[str, Any]) -> None:
    doc["secret_hex"] = "00" + doc["secret_hex"][2:]


def _tamper_fingerprint_too(doc: dict[str, Any]) -> None:
    # A consistent forgery of the input still fails on the recorded result.
    doc["input"]["counts"]["general"] = 4
    doc["fingerprint"] = fingerprint(input_from_json(doc["input"]))


@pytest.mark.parametrize(
    ("tamper", "where"),
    [
        (_tamper_pool_key, "fingerprint"),
        (_tamper_witness, "result."),
        (_tamper_parameter, "fingerprint"),
        (_tamper_team_member, "result.teams[0].members[1]"),
        (_tamper_secret, "commitment"),
        (_tamper_fingerprint_too, "result."),
    ],
)
def test_art27_reference_verifier_reports_tampering(
    tamper: Any, where: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    doc = copy.deepcopy(_document())
    tamper(doc)
    code, out = _verify(doc, capsys, tmp_path)
    assert code == 1
    assert out.startswith(f"MISMATCH: {where}"), out


def test_reference_verifier_rejects_malformed_documents(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    doc = _document()
    doc["input"]["targets"][0]["on_positive_list"] = 0
    assert _verify(doc, capsys, tmp_path)[0] == 1
    assert reference_verifier.main([str(tmp_path / "missing.json")]) == 1
    assert reference_verifier.main([]) == 1


def test_art27_draw_algorithm_document_test_vector() -> None:
    """The worked example in DRAW_ALGORITHM.md is what the code computes."""
    text = (VERIFIER.parent / "DRAW_ALGORITHM.md").read_text(encoding="utf-8")
    secret = bytes(range(32))
    seed = derive_seed(secret, "王五")
    assert commitment(secret) in text
    assert seed.hex() in text
    assert derive_seed(secret, None).hex() in text
    assert score(seed, "target:general", "91350100M000100Y43").hex() in text
    assert derive_seed(secret, "unwitnessed").hex() in text
    plain = make_input(targets(3), inspectors(3), {Tier.general: 2})
    # Art. 19: Tg00000 and Tg00001 are two permits of one market entity: one visit.
    example = replace(plain, entities=(("Tg00000", "Tg00001"),))
    assert (
        canonical_json({"algorithm_version": 2, "input": input_to_json(example)}).decode() in text
    )
    assert fingerprint(example) in text
    result = draw(example, seed)
    assert canonical_json(result_to_json(result)).decode() in text
    assert [t.sites for t in result.teams] == [("Tg00000", "Tg00001")]
    # The amendment chain of section 13, on the documented swap.
    new, _ = swap_member(result, example, "Tg00000", "C00000")
    amendment = {
        "seq": 1,
        "kind": "swap",
        "part": "random",
        "target_key": "Tg00000",
        "leaving": "C00000",
        "excluded": [],
        "replacement": new,
        "reason": "病假",
        "approved_by": "chief",
        "at": "2026-11-30T02:00:00+00:00",
    }
    assert canonical_json(amendment).decode() in text
    assert amendments_head(commitment(secret), []) in text
    assert amendments_head(commitment(secret), [amendment]) in text
    merge = {
        "seq": 2,
        "kind": "merge",
        "part": "random",
        "target_key": "Tg00000",
        "into": "T2026-150102-003:1042",
        "reason": "同一市场主体已有其他任务的检查",
        "approved_by": "chief",
        "at": "2026-11-30T03:00:00+00:00",
    }
    assert canonical_json(merge).decode() in text
    assert amendments_head(commitment(secret), [amendment, merge]) in text
    # Version 1 (section 17).
    assert derive_seed(secret, None, 1).hex() in text
    assert derive_seed(secret, "王五", 1).hex() in text
    assert fingerprint(plain, 1) in text
