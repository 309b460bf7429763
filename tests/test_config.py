"""Configuration: one TOML file, env overrides, one clear line for a bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, load_settings

GOOD_KEY = "c2h1YW5nc3VpamkgV2VDb20gc3RhbmQtaW4ga2V5ISE"


def test_defaults_need_no_file() -> None:
    settings = load_settings(None)
    assert settings.server.callback_path == "/wecom/callback"
    assert settings.database.url.startswith("sqlite+aiosqlite:///")
    assert settings.timezone == "Asia/Shanghai"


def test_the_example_config_is_valid() -> None:
    example = Path(__file__).parent.parent / "config.example.toml"
    settings = load_settings(example)
    assert settings.wecom.api_base == "https://qyapi.weixin.qq.com"


def test_env_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "c.toml"
    file.write_text('[server]\nport = 9000\n[wecom]\ncorp_id = "file"\n', encoding="utf-8")
    monkeypatch.setenv("SHUANGSUIJI_SERVER__PORT", "9100")
    settings = load_settings(file)
    assert (settings.server.port, settings.wecom.corp_id) == (9100, "file")


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[wecom]\nencoding_aes_key = "short"\n', "wecom.encoding_aes_key: must be 43 characters"),
        ("[server]\nport = 70000\n", "server.port"),
        ('[database]\nurl = "mysql://x"\n', "database.url: must be a sqlite:/// or postgresql://"),
        ('timezone = "Mars/Olympus"\n', "timezone: is not a known IANA time zone"),
        ("[wecom]\ncorpid = 1\n", "wecom.corpid: is not a known key"),
        ("[wecom\n", "is not valid TOML"),
    ],
)
def test_a_bad_value_names_the_key(tmp_path: Path, toml: str, message: str) -> None:
    file = tmp_path / "c.toml"
    file.write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings(file)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_secrets_never_appear_in_repr() -> None:
    settings = load_settings(None, wecom={"secret": "s3cr3t-value", "encoding_aes_key": GOOD_KEY})
    assert "s3cr3t-value" not in repr(settings) and GOOD_KEY not in repr(settings)
