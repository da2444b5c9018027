"""Settings: grouped by concern, read from the same flat environment names, validated with
clear messages."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.settings import (
    AlertSettings,
    BalanceSettings,
    OtpSettings,
    ProcessSettings,
    Settings,
    StorageSettings,
    SupportSettings,
    TelegramSettings,
    WhatsAppSettings,
)

GROUPS = (StorageSettings, BalanceSettings, OtpSettings, SupportSettings, TelegramSettings,
          WhatsAppSettings, AlertSettings, ProcessSettings)
# The names ARCHITECTURE.md's CLI contract fixes (tools and deployments depend on them).
CONTRACT = ("REDIS_URL", "DATABASE_URL", "BALANCE_SERVICE_URL", "BALANCE_SERVICE_TOKEN",
            "TELEGRAM_BOT_TOKEN", "TELEGRAM_API_BASE", "TELEGRAM_WEBHOOK_URL",
            "TELEGRAM_WEBHOOK_SECRET", "AGENT_CHAT_ID", "OTP_OUTBOX", "OTP_SECRET",
            "WHATSAPP_TOKEN", "WHATSAPP_PHONE_NUMBER_ID", "WHATSAPP_VERIFY_TOKEN",
            "WHATSAPP_APP_SECRET", "WHATSAPP_API_BASE", "WHATSAPP_RATE",
            "WHATSAPP_TEMPLATE_NAME", "WHATSAPP_TEMPLATE_LANGUAGES")
# Every other name the README documents.
DOCUMENTED = ("BALANCE_SERVICE_TIMEOUT", "BALANCE_CACHE_SECONDS", "TELEGRAM_WEBHOOK_PATH",
              "TELEGRAM_MESSAGES_PER_SECOND", "TELEGRAM_CONCURRENCY", "TELEGRAM_MAX_BACKLOG",
              "WHATSAPP_CONCURRENCY", "WHATSAPP_MAX_BACKLOG",
              "EVENT_LOOP", "WEB_HOST", "WEB_PORT", "DATA_DIR", "SEED_DEMO_MEMBERS",
              "SESSION_TTL_SECONDS", "FLOW_TIMEOUT_SECONDS", "LOG_LEVEL", "BUSINESS_DAYS",
              "BUSINESS_HOURS", "BUSINESS_TZ", "HOLIDAYS", "QUEUE_REMINDER_SECONDS",
              "IDLE_CLOSE_SECONDS", "TRANSCRIPT_RETENTION_DAYS", "OTP_CHANNELS", "SMTP_URL",
              "OTP_EMAIL_FROM", "SMTP_TIMEOUT", "SMS_GATEWAY", "SMS_GATEWAY_URL",
              "SMS_GATEWAY_TOKEN", "SMS_SENDER", "SMS_TIMEOUT", "WHATSAPP_OTP_TEMPLATE",
              "WHATSAPP_OTP_TEMPLATE_LANGUAGES", "WHATSAPP_ALERT_TEMPLATE", "ALERTS_PLAN_AT",
              "ALERTS_GRACE_DAYS", "ALERTS_QUIET_HOURS", "ALERTS_FRESH_DAYS", "ALERTS_WORKERS",
              "ALERTS_CLAIM_SECONDS", "ALERTS_MAX_ATTEMPTS", "ALERTS_TELEGRAM_RATE",
              "ALERTS_WHATSAPP_RATE")


def _settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_every_field_belongs_to_exactly_one_group() -> None:
    owners: dict[str, list[str]] = {}
    for group in GROUPS:
        own = set(group.model_fields)
        for base in group.__mro__[1:]:
            if base in GROUPS:
                own -= set(base.model_fields)  # OtpSettings builds on StorageSettings
        for name in own:
            owners.setdefault(name, []).append(group.__name__)
    assert set(owners) == set(Settings.model_fields)
    assert {name: groups for name, groups in owners.items() if len(groups) > 1} == {}


@pytest.mark.parametrize("name", CONTRACT + DOCUMENTED)
def test_each_environment_name_is_read(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    field = name.lower()
    assert field in Settings.model_fields, f"{name} is not a setting"
    samples = {"SEED_DEMO_MEMBERS": ("false", False), "EVENT_LOOP": ("asyncio", "asyncio"),
               "DATA_DIR": ("/srv/bot", Path("/srv/bot")), "TELEGRAM_WEBHOOK_PATH": ("/tg", "/tg"),
               "ALERTS_PLAN_AT": ("09:30", "09:30"),
               "ALERTS_QUIET_HOURS": ("22:00-06:00", "22:00-06:00")}
    annotation = str(Settings.model_fields[field].annotation)
    raw, expected = samples.get(name, ("7", 7 if "int" in annotation else
                                       7.0 if "float" in annotation else "7"))
    monkeypatch.setenv(name, raw)
    value = getattr(_settings(), field)
    value = value.get_secret_value() if hasattr(value, "get_secret_value") else value
    assert value == expected


def test_a_group_reads_its_own_names_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "1:abc")
    monkeypatch.setenv("REDIS_URL", "redis://x")
    telegram = TelegramSettings(_env_file=None)  # type: ignore[call-arg]
    assert telegram.telegram_token() == "1:abc"
    assert not hasattr(telegram, "redis_url")
    settings = _settings()
    assert all(isinstance(settings, group) for group in GROUPS)


def test_the_embedded_defaults(tmp_path: Path) -> None:
    settings = _settings(data_dir=tmp_path)
    assert settings.database == f"sqlite:///{tmp_path / 'bot.db'}"
    assert settings.should_seed_demo and not settings.shared_deployment
    assert settings.secret() == (tmp_path / "otp_secret").read_bytes().strip()
    assert settings.secret() == settings.secret(), "kept under DATA_DIR"
    assert (settings.web_host, settings.web_port, settings.event_loop) == ("0.0.0.0", 8080,
                                                                           "uvloop")
    assert settings.agent_chat() is None


def test_a_shared_deployment_needs_the_secret() -> None:
    for values in ({"redis_url": "redis://h"}, {"database_url": "postgresql://h/db"}):
        with pytest.raises(SystemExit) as stopped:
            _settings(**values).secret()
        assert "OTP_SECRET must be set when REDIS_URL or a PostgreSQL" in str(stopped.value)
    assert _settings(redis_url="redis://h", otp_secret="s").secret() == b"s"
    assert not _settings(database_url="postgresql://h/db").should_seed_demo


@pytest.mark.parametrize(("values", "call", "message"), [
    ({"business_hours": "8-late"}, "hours", "BUSINESS_DAYS, BUSINESS_HOURS, BUSINESS_TZ or "
                                            "HOLIDAYS is not valid"),
    ({"business_tz": "Mars/Olympus"}, "hours", "is not valid"),
    ({"agent_chat_id": "agents"}, "agent_chat", "AGENT_CHAT_ID must be the numeric id"),
    ({}, "telegram_token", "TELEGRAM_BOT_TOKEN must be set"),
    ({}, "webhook_secret", "TELEGRAM_WEBHOOK_SECRET must be set to 1-256 characters"),
    ({"telegram_webhook_secret": "with space"}, "webhook_secret", "TELEGRAM_WEBHOOK_SECRET"),
])
def test_a_bad_value_stops_start_up_with_its_message(values: dict[str, str], call: str,
                                                     message: str) -> None:
    with pytest.raises(SystemExit) as stopped:
        getattr(_settings(**values), call)()
    assert message in str(stopped.value)


def test_good_values_pass() -> None:
    settings = _settings(agent_chat_id=" -1001234 ", telegram_webhook_secret="ok_secret-1",
                         business_days="mon-sun", business_hours="00:00-23:59")
    assert settings.agent_chat() == -1001234
    assert settings.webhook_secret() == "ok_secret-1"
    assert settings.hours() is not None


@pytest.mark.parametrize("values", [{"web_port": 0}, {"telegram_concurrency": 0},
                                    {"telegram_webhook_path": "no-slash"},
                                    {"balance_cache_seconds": -1}, {"event_loop": "trio"}])
def test_out_of_range_values_are_refused(values: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        _settings(**values)


def test_whatsapp_concurrency_and_backlog_reach_the_channel(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from app.serve import whatsapp_config

    monkeypatch.setenv("WHATSAPP_CONCURRENCY", "8")
    monkeypatch.setenv("WHATSAPP_MAX_BACKLOG", "500")
    settings = _settings(whatsapp_token="t", whatsapp_phone_number_id="1",
                         whatsapp_verify_token="v", whatsapp_app_secret="s")
    config = whatsapp_config(settings)
    assert (config.concurrency, config.max_backlog) == (8, 500)
    defaults = whatsapp_config(_settings(whatsapp_token="t", whatsapp_phone_number_id="1",
                                         whatsapp_verify_token="v", whatsapp_app_secret="s",
                                         whatsapp_concurrency=16, whatsapp_max_backlog=10_000))
    assert (defaults.concurrency, defaults.max_backlog) == (16, 10_000)
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        _settings(whatsapp_concurrency=0)


def test_every_setting_is_in_the_readmes_configuration_table() -> None:
    """Each environment name the settings read is a row (or part of one) of the README's
    configuration table, so an operator finds every knob."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    missing = [name.upper() for name in Settings.model_fields
               if not any(f"`{name.upper()}`" in row.split(" | ")[0] for row in rows)]
    assert missing == []
