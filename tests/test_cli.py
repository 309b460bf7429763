"""The command line: exit 0 on success, 2 with one clear line on a user's mistake, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main
from storage import migrate


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
    assert capsys.readouterr().out.count(f"database at revision {migrate.head_revision()}") == 2


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


def _serve_env(tmp_path: Path) -> dict[str, str]:
    import os

    from bot.wecom.standin import DEFAULT_AES_KEY

    return {
        **os.environ,
        "SHUANGSUIJI_WECOM__CORP_ID": "ww_test",
        "SHUANGSUIJI_WECOM__AGENT_ID": "1000002",
        "SHUANGSUIJI_WECOM__SECRET": "s",
        "SHUANGSUIJI_WECOM__TOKEN": "t",
        "SHUANGSUIJI_WECOM__ENCODING_AES_KEY": DEFAULT_AES_KEY,
        "SHUANGSUIJI_WECOM__API_BASE": "http://127.0.0.1:9",
        "SHUANGSUIJI_DATABASE__URL": f"sqlite:///{tmp_path}/serve.db",
        "SHUANGSUIJI_SERVER__HOST": "127.0.0.1",
        "SHUANGSUIJI_SERVER__PORT": "0",
    }


def test_a_second_serve_on_the_same_sqlite_file_is_refused(tmp_path: Path) -> None:
    import signal
    import time

    env = _serve_env(tmp_path)
    first = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert first.stdout is not None
        line = first.stdout.readline()
        assert "serving (all): /wecom/callback" in line, first.stderr.read() if first.stderr else ""
        second = run("serve", env=env)
        assert second.returncode == 2
        assert "another `serve` is already using" in second.stderr
        assert "PostgreSQL" in second.stderr and "Traceback" not in second.stderr
        assert run("serve", "--role", "worker", env=env).returncode == 2
        # The CLI works beside the running server.
        assert run("role", "grant", "boss", "admin", "150000", env=env).returncode == 0
    finally:
        first.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        while first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0


def test_ingress_and_worker_roles_split_one_sqlite_file(tmp_path: Path) -> None:
    """One process acknowledges callbacks, another handles them; each role runs once."""
    import signal
    import time

    env = _serve_env(tmp_path)
    procs = []
    try:
        for role in ("ingress", "worker"):
            p = subprocess.Popen(
                [sys.executable, "-m", "bot", "serve", "--role", role],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            procs.append(p)
            assert p.stdout is not None
            assert f"serving ({role})" in p.stdout.readline()
        again = run("serve", "--role", "ingress", env=env)
        assert again.returncode == 2 and "as ingress" in again.stderr
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for p in procs:
            while p.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0, 0]
