"""`shuangsuiji check` (is the installation ready to serve?) and `[wecom] proxy` (the API client
sends through it). Through the CLI in-process, against the WeCom stand-in."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from bot.config import load_settings
from bot.wecom.standin import WeComStandIn
from tests.support.loopback import standin_in_thread


def _config(tmp_path: Path, db_url: str, wecom: WeComStandIn, api_base: str, **more: str) -> str:
    values = {
        "corp_id": wecom.corp_id,
        "agent_id": str(wecom.agent_id),
        "secret": wecom.secret,
        "token": wecom.token,
        "encoding_aes_key": wecom.encoding_aes_key,
        "api_base": api_base,
        **more,
    }
    lines = ["[wecom]"]
    for key, value in values.items():
        if value:
            lines.append(f"{key} = {value}" if key == "agent_id" else f'{key} = "{value}"')
    lines += ["[database]", f'url = "{db_url}"']
    path = tmp_path / "c.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def _problems(err: str) -> list[str]:
    assert "Traceback" not in err, err
    return [line for line in err.splitlines() if line]


def test_check_passes_when_all_is_well(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with standin_in_thread() as (wecom, api_base, _proxy, _url):
        config = _config(tmp_path, db_url, wecom, api_base)
        assert main(["check", "--config", config]) == 0
        assert len(wecom.calls("/cgi-bin/gettoken")) == 1
    captured = capsys.readouterr()
    assert captured.err == "" and wecom.corp_id in captured.out


def test_check_names_a_wrong_secret_by_wecoms_errcode(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with standin_in_thread() as (wecom, api_base, _proxy, _url):
        config = _config(tmp_path, db_url, wecom, api_base, secret="wrong")
        assert main(["check", "--config", config]) == 2
    problems = _problems(capsys.readouterr().err)
    assert len(problems) == 1 and "40001" in problems[0] and "wecom.secret" in problems[0]


def test_check_reports_every_problem_on_a_line_of_its_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing_db = tmp_path / "typo.db"
    with standin_in_thread() as (wecom, _api_base, _proxy, _url):
        config = _config(tmp_path, f"sqlite:///{missing_db}", wecom, "http://127.0.0.1:9", token="")
        assert main(["check", "--config", config]) == 2
    problems = _problems(capsys.readouterr().err)
    assert len(problems) == 3, problems
    assert "wecom.token" in problems[0]
    assert str(missing_db) in problems[1]
    assert "http://127.0.0.1:9" in problems[2] and "unreachable" in problems[2]
    assert not missing_db.exists()


def test_check_names_a_database_that_needs_migrating(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path}/old.db"
    assert main(["migrate", "--database-url", url]) == 0
    import sqlite3

    with sqlite3.connect(tmp_path / "old.db") as raw:
        raw.execute("UPDATE alembic_version SET version_num = '0005_older'")
    with standin_in_thread() as (wecom, api_base, _proxy, _url):
        assert main(["check", "--config", _config(tmp_path, url, wecom, api_base)]) == 2
    problems = _problems(capsys.readouterr().err)
    assert len(problems) == 1 and "0005_older" in problems[0] and "migrate" in problems[0]


def test_the_wecom_client_sends_through_the_configured_proxy(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with standin_in_thread() as (wecom, api_base, proxy, proxy_url):
        config = _config(tmp_path, db_url, wecom, api_base, proxy=proxy_url)
        assert main(["check", "--config", config]) == 0
        assert [r.split("?")[0] for r in proxy.requests] == [f"GET {api_base}/cgi-bin/gettoken"]
        assert len(wecom.calls("/cgi-bin/gettoken")) == 1


def test_a_proxy_that_is_not_an_http_url_is_a_config_error() -> None:
    from bot.config import ConfigError

    with pytest.raises(ConfigError, match="wecom.proxy"):
        load_settings(None, wecom={"proxy": "socks5://127.0.0.1:1080"})
