"""The public export of a draw (一公开, DRAW_ALGORITHM.md section 18): the same draw with every
person under a per-draw pseudonym and the targets of secret checks under commitments, and its
verification. Pure: the full export in, the public document out."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Collection, Mapping
from typing import Any

from inspection.draw import construction_seed, derive_seed, score

SALT_LABEL = b"pseudonym-salt"
NONCE_LABEL = b"target-nonce"


def _mac(key: bytes, label: str, value: str) -> bytes:
    return hmac.new(key, label.encode() + b"\x00" + value.encode("utf-8"), hashlib.sha256).digest()


class Blinding:
    """Pseudonyms and target commitments of one draw, all derived from its secret."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret
        self.salt = hmac.new(secret, SALT_LABEL, hashlib.sha256).digest()

    def person(self, userid: str) -> str:
        return _mac(self.salt, "person", userid).hex()

    def certificate(self, key: str) -> str:
        return _mac(self.salt, "certificate", key).hex()

    def nonce(self, target_key: str) -> bytes:
        return _mac(self.secret, NONCE_LABEL.decode(), target_key)

    def ref(self, target_key: str) -> str:
        return hashlib.sha256(self.nonce(target_key) + target_key.encode("utf-8")).hexdigest()


def _input(
    inp: Mapping[str, Any], seed: bytes, b: Blinding, sealed: Collection[str]
) -> dict[str, Any]:
    targets = [
        {
            "ref": b.ref(t["key"]),
            "tier": t["tier"],
            "org": t["org"],
            "on_positive_list": t["on_positive_list"],
            "score_hex": score(seed, "target:" + t["tier"], t["key"]).hex(),
            "opening": None
            if t["key"] in sealed
            else {"key": t["key"], "nonce_hex": b.nonce(t["key"]).hex()},
        }
        for t in inp["targets"]
    ]
    inspectors = [
        {
            "key": b.certificate(i["key"]),
            "person": b.person(i["userid"]),
            "org": i["org"],
            "certificate_kind": i["certificate_kind"],
            "auxiliary": i["auxiliary"],
            "conflicts": sorted(b.ref(k) for k in i["conflicts"]),
            "last_inspected": sorted(b.ref(k) for k in i["last_inspected"]),
        }
        for i in inp["inspectors"]
    ]
    return {
        "targets": sorted(targets, key=lambda t: t["ref"]),
        "inspectors": sorted(inspectors, key=lambda i: i["key"]),
        "counts": dict(inp["counts"]),
        "policy": dict(inp["policy"]),
        # Art. 19: which targets are one market entity, by their refs (no credit code shown).
        "entities": sorted(sorted(b.ref(k) for k in group) for group in inp["entities"]),
    }


def _result(result: Mapping[str, Any], b: Blinding) -> dict[str, Any]:
    def certs(keys: list[str]) -> list[str]:
        return [b.certificate(k) for k in keys]

    return {
        **result,
        "selected": [{**s, "key": b.ref(s["key"])} for s in result["selected"]],
        "teams": [
            {
                "target_key": b.ref(t["target_key"]),
                "members": certs(t["members"]),
                "auxiliary": certs(t["auxiliary"]),
                "replaced": certs(t["replaced"]),
                "sites": [b.ref(k) for k in t["sites"]],
            }
            for t in result["teams"]
        ],
        "cycle": certs(result["cycle"]),
        "aux_cycle": certs(result["aux_cycle"]),
    }


def public_document(full: Mapping[str, Any], sealed: Collection[str]) -> dict[str, Any]:
    """The public export of a drawn version 2 draw, from its full export; ``sealed`` are the
    target keys that stay under their commitments (secret checks)."""
    secret = bytes.fromhex(full["secret_hex"])
    b = Blinding(secret)
    seed = derive_seed(secret, full["witness"], full["algorithm_version"])
    construction = full["construction"]
    return {
        "kind": "public",
        "algorithm_version": full["algorithm_version"],
        "commitment": full["commitment"],
        "fingerprint": full["fingerprint"],
        "seed_hex": seed.hex(),
        "witness": full["witness"],
        "witnessed": full["witness"] is not None,
        "status": full["status"],
        "input": _input(full["input"], seed, b, sealed),
        "result": _result(full["result"], b),
        "construction": None
        if construction is None
        else {
            "input": _input(construction["input"], construction_seed(seed), b, sealed),
            "result": _result(construction["result"], b),
        },
        "amendments": [_amendment(a, b) for a in full["amendments"]],
    }


def _amendment(a: Mapping[str, Any], b: Blinding) -> dict[str, Any]:
    """An amendment without its typed text and userids (``reason``, ``approved_by``, ``at``)."""
    head = {"seq": a["seq"], "kind": a["kind"], "part": a["part"]}
    if a["kind"] == "merge":
        return head | {"target_key": b.ref(a["target_key"]), "into": a["into"]}
    return head | {
        "target_key": b.ref(a["target_key"]),
        "leaving": b.certificate(a["leaving"]),
        "excluded": sorted(b.certificate(k) for k in a["excluded"]),
        "replacement": b.certificate(a["replacement"]),
    }
