"""Configuration: one TOML file, every key overridable by SHUANGSUIJI_* environment variables.

Validated once at start-up; a bad value stops start-up with one line naming the key.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import ipaddress
import os
import tomllib
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

ENV_PREFIX = "SHUANGSUIJI_"
DEFAULT_API_BASE = "https://qyapi.weixin.qq.com"


def aes_key_from(encoding_aes_key: str) -> bytes:
    """Decode the 43-character EncodingAESKey into the 32-byte AES key (raises ValueError)."""
    if len(encoding_aes_key) != 43:
        raise ValueError("must be 43 characters")
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("is not valid base64") from exc
    if len(key) != 32:
        raise ValueError("does not decode to 32 bytes")
    return key


class ConfigError(Exception):
    """A configuration value is missing or wrong; the message names the key."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WeComSettings(Section):
    corp_id: str = ""
    agent_id: int = 0
    secret: SecretStr = SecretStr("")
    token: SecretStr = SecretStr("")
    encoding_aes_key: SecretStr = SecretStr("")
    api_base: str = DEFAULT_API_BASE
    # An outbound HTTP proxy for the WeCom API (e.g. "http://proxy.internal:3128"); empty: none.
    proxy: str = ""

    @field_validator("encoding_aes_key")
    @classmethod
    def _aes_key(cls, value: SecretStr) -> SecretStr:
        raw = value.get_secret_value()
        if raw:
            aes_key_from(raw)  # raises ValueError naming what is wrong
        return value

    @field_validator("api_base")
    @classmethod
    def _api_base(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("proxy")
    @classmethod
    def _proxy(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https:// (or be empty)")
        return value

    def missing(self) -> list[str]:
        """Keys that `serve` needs but the demo and CLI do not."""
        names = []
        for key in ("corp_id", "secret", "token", "encoding_aes_key"):
            value = getattr(self, key)
            if not (value.get_secret_value() if isinstance(value, SecretStr) else value):
                names.append(f"wecom.{key}")
        if not self.agent_id:
            names.append("wecom.agent_id")
        return names


class ServerSettings(Section):
    host: str = "0.0.0.0"
    port: int = Field(default=8080, ge=0, le=65535)
    callback_path: str = "/wecom/callback"
    public_url: str = ""
    link_secret: SecretStr = SecretStr("")
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    timestamp_tolerance_s: int = Field(default=300, ge=1)
    # WeCom gives up on a callback after 5 s: the acknowledgement (and /healthz) answers 503
    # after this long without the database, and beyond `max_inflight` concurrent callbacks.
    ack_timeout_s: float = Field(default=0.5, gt=0, le=4)
    max_inflight: int = Field(default=512, ge=1)

    @field_validator("callback_path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must start with /")
        return value


class DatabaseSettings(Section):
    url: str = "sqlite+aiosqlite:///./data/shuangsuiji.db"
    echo: bool = False

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value.startswith("sqlite:"):
            value = "sqlite+aiosqlite:" + value[len("sqlite:") :]
        if value.startswith(("postgresql:", "postgres:")):
            value = "postgresql+asyncpg:" + value.split(":", 1)[1]
        if not value.startswith(("sqlite+aiosqlite:", "postgresql+asyncpg:")):
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        return value


class WorkerSettings(Section):
    lease_seconds: int = Field(default=60, ge=1)
    max_attempts: int = Field(default=5, ge=1)
    poll_seconds: float = Field(default=1.0, gt=0)
    # Running instances beat this often; one silent for three beats is dead and what it had
    # claimed is retried at once (instead of after lease_seconds).
    heartbeat_seconds: int = Field(default=5, ge=1)
    per_minute: int = Field(
        default=30, ge=1, description="WeCom: messages per recipient per minute"
    )
    per_hour: int = Field(default=1000, ge=1, description="WeCom: messages per recipient per hour")
    budget_margin_seconds: float = Field(default=2.0, ge=0)
    send_concurrency: int = Field(default=16, ge=1)


class ResultSettings(Section):
    # How long a member's tap on a problem phrase (2, 3, 5, 7) holds the inspection while the
    # description is written.
    description_minutes: int = Field(default=30, ge=1)


class SwapSettings(Section):
    # An undecided swap request reminds the head after remind_hours and lapses after lapse_hours,
    # counted in working time: the hours of weekends and holidays do not count.
    remind_hours: float = Field(default=24, gt=0)
    lapse_hours: float = Field(default=72, gt=0)


class CalendarSettings(Section):
    # Days the packaged State Council schedule does not know yet (e.g. 2027's, once published).
    # Any year named here counts as covered; deadlines in an uncovered year are not guessed.
    holidays: list[dt.date] = Field(default_factory=list)
    makeup_workdays: list[dt.date] = Field(default_factory=list)


class PublicSettings(Section):
    """一公开: the public page of published results and draws (Art. 37), served by `serve`."""

    enabled: bool = False
    path_prefix: str = "/public"
    # The address the public reaches (behind the reverse proxy), used in replies and links.
    base_url: str = ""
    # Who may embed the page (CSP frame-ancestors), e.g. ["'self'", "https://sthjt.nmg.gov.cn"].
    frame_ancestors: list[str] = Field(default_factory=lambda: ["'self'"])
    # Reverse proxies whose X-Forwarded-For is believed (addresses or networks).
    trusted_proxies: list[str] = Field(default_factory=list)
    requests_per_minute: int = Field(default=120, ge=1, description="per client address")
    page_size: int = Field(default=50, ge=1, le=200)

    @field_validator("path_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not value.startswith("/") or value == "/":
            raise ValueError("must start with / and name a path, e.g. /public")
        return value.rstrip("/")

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: list[str]) -> list[str]:
        for item in value:
            ipaddress.ip_network(item, strict=False)  # raises ValueError naming the item
        return value

    def url(self, path: str) -> str:
        """An absolute address of a public page, for replies (``base_url`` + prefix + path)."""
        return f"{self.base_url.rstrip('/')}{self.path_prefix}{path}"


class ClockSettings(Section):
    """A drill clock for demos, rehearsals and acceptance tests: simulated time runs from
    ``start`` at ``speed`` simulated seconds per real second (off when ``start`` is unset)."""

    start: dt.datetime | None = None
    speed: float = Field(default=1.0, gt=0, le=100_000)
    # Real seconds between evaluations of what is due (due actions, reminders, pace warnings).
    tick_seconds: float = Field(default=15.0, gt=0, le=15)

    @field_validator("start")
    @classmethod
    def _aware(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("must carry a UTC offset, e.g. 2026-12-20T08:00:00+08:00")
        return value


class ReminderSettings(Section):
    # Reminders (Art. 37, 40, 43) go out on working days from `start`, none from `end` on
    # (local time); kinds listed in `urgent` go out at any hour. What is due is evaluated every
    # `[clock] tick_seconds`.
    start: dt.time = dt.time(9, 0)
    end: dt.time = dt.time(18, 0)
    urgent: list[str] = Field(default_factory=list)


class LogSettings(Section):
    """What `serve` logs and how: "text" lines for a terminal or journald, "json" (one object a
    line) for a log collector. Logs go to standard error."""

    level: str = "INFO"
    format: str = "text"

    @field_validator("level")
    @classmethod
    def _level(cls, value: str) -> str:
        upper = value.upper()
        if upper not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return upper

    @field_validator("format")
    @classmethod
    def _format(cls, value: str) -> str:
        if value not in ("text", "json"):
            raise ValueError('must be "text" or "json"')
        return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid"
    )

    timezone: str = "Asia/Shanghai"
    wecom: WeComSettings = WeComSettings()
    server: ServerSettings = ServerSettings()
    database: DatabaseSettings = DatabaseSettings()
    worker: WorkerSettings = WorkerSettings()
    results: ResultSettings = ResultSettings()
    swaps: SwapSettings = SwapSettings()
    calendar: CalendarSettings = CalendarSettings()
    public: PublicSettings = PublicSettings()
    clock: ClockSettings = ClockSettings()
    reminders: ReminderSettings = ReminderSettings()
    log: LogSettings = LogSettings()

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("is not a known IANA time zone") from exc
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment beats the file (passed as init kwargs): env first.
        return (env_settings, init_settings)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Read the TOML file (or $SHUANGSUIJI_CONFIG), apply env, validate; raise ConfigError."""
    path = path or os.environ.get(ENV_PREFIX + "CONFIG")
    data: dict[str, Any] = {}
    if path:
        file = Path(path)
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"config file {file} does not exist") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {file} cannot be read: {exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {file} is not valid TOML: {exc}") from exc
    data = _merge(data, overrides)
    try:
        return Settings(**data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "config"
        msg = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            msg = "is not a known key"
        raise ConfigError(f"config key {key}: {msg}") from None
