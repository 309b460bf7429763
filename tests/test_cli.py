"""The command line: exit 0 on success, 2 with one clear line on a user's mistake, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_every_verb_has_help() -> None:
    for verb in (
        "serve",
        "migrate",
        "console",
        "demo",
        "role",
        "import",
        "template",
        "export",
        "audit",
    ):
        with pytest.raises(SystemExit) as exit_:
            main([verb, "--help"])
        assert exit_.value.code == 0


def test_config_before_or_after_the_verb(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path}/x.db"\n', encoding="utf-8")
    assert main(["--config", str(config), "migrate"]) == 0
    assert main(["migrate", "--config", str(config)]) == 0
    assert capsys.readouterr().out.count("database at revision 0002") == 2


def test_role_grant_list_revoke_and_audit(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--database-url", db_url]
    assert main(["role", "grant", "boss", "admin", "150000", *base]) == 0
    assert main(["role", "grant", "boss", "admin", "150000", *base]) == 0  # idempotent
    assert main(["role", "list", *base]) == 0
    assert "boss\tadmin\t150000" in capsys.readouterr().out
    assert main(["role", "revoke", "boss", "admin", "150000", *base]) == 0
    assert main(["audit", "verify", *base]) == 0
    assert "2 entries" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["role", "grant", "u", "king", "150000"], "unknown role 'king'"),
        (["role", "grant", "u", "admin", "999999"], "unknown organisation code '999999'"),
        (["role", "revoke", "u", "admin", "150000"], "u has no admin role at 150000"),
        (["import", "targets", "/no/such/file.xlsx"], "file /no/such/file.xlsx does not exist"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(
    db_url: str, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*args, "--database-url", db_url]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_a_bad_config_exits_2_in_a_fresh_process(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[wecom]\nencoding_aes_key = "tooshort"\n', encoding="utf-8")
    result = run("migrate", "--config", str(config))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "shuangsuiji: error: config key wecom.encoding_aes_key: must be 43 characters"
    )


def test_unreachable_database_exits_2_without_traceback() -> None:
    result = run("migrate", "--database-url", "postgresql://nobody@127.0.0.1:1/none")
    assert result.returncode == 2
    assert "is unreachable" in result.stderr and "Traceback" not in result.stderr


def test_serve_without_wecom_credentials_names_the_key(tmp_path: Path) -> None:
    result = run("serve", "--database-url", f"sqlite:///{tmp_path}/s.db")
    assert result.returncode == 2
    assert "config key wecom.corp_id is required" in result.stderr


def test_unknown_verb_exits_2() -> None:
    result = run("frobnicate")
    assert result.returncode == 2 and "Traceback" not in result.stderr
