"""Developer aid while nothing is deployed: rewrite migration 0001 from the models.

    .venv/bin/python -m storage.regen_initial

Once a release is out, schema changes get a new revision instead (`migrate.autogenerate`).
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from storage import migrate
from storage.db import Database

VERSIONS = migrate.MIGRATIONS / "versions"
INITIAL = VERSIONS / "0001_initial_schema.py"


async def regenerate() -> Path:
    INITIAL.unlink(missing_ok=True)
    seed = VERSIONS / "0002_seed_organisations.py"
    parked = seed.with_suffix(".parked")
    seed.rename(parked)  # autogenerate against an empty database needs a single head
    try:
        with tempfile.TemporaryDirectory() as tmp:
            db = Database(f"sqlite+aiosqlite:///{tmp}/empty.db")
            await migrate.autogenerate(db, "initial schema")
            await db.dispose()
    finally:
        parked.rename(seed)
    (generated,) = [p for p in VERSIONS.glob("*_initial_schema.py") if p != INITIAL]
    text = generated.read_text(encoding="utf-8")
    text = re.sub(r"^revision: str = .*$", 'revision: str = "0001"', text, flags=re.M)
    text = re.sub(r"^Revision ID: .*$", "Revision ID: 0001", text, flags=re.M)
    text = re.sub(r"^Revises: *$", "Revises:", text, flags=re.M)
    text = re.sub(r"^Create Date: .*\n", "", text, flags=re.M)
    generated.unlink()
    INITIAL.write_text(text, encoding="utf-8")
    return INITIAL


def main() -> None:
    path = asyncio.run(regenerate())
    ruff = Path(sys.executable).parent / "ruff"
    subprocess.run([str(ruff), "format", "-q", str(path)], check=False)
    subprocess.run([str(ruff), "check", "-q", "--fix", str(path)], check=False)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
