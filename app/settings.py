"""Settings from the environment (or a ``.env`` file), with embedded defaults for everything.

With nothing set, the bot runs on the embedded defaults: in-process session store, SQLite under
``./data/``, the in-process reference balance service with demo members, OTP codes shown in the
console. Setting ``REDIS_URL``, ``DATABASE_URL`` or ``BALANCE_SERVICE_URL`` switches that part to
production.

The settings are grouped by concern, one class each (storage, balance service, OTP, support
desk, Telegram, WhatsApp, process); :class:`Settings` combines them. Every field keeps its flat
environment name (``TELEGRAM_BOT_TOKEN`` is ``telegram_bot_token``), so a group is a view of the
same environment, and code that needs only one concern can say so in its signature
(``def f(settings: TelegramSettings)``).
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from flows.hours import BusinessHours

__all__ = ["BalanceSettings", "OtpSettings", "ProcessSettings", "Settings", "StorageSettings",
           "SupportSettings", "TelegramSettings", "WhatsAppSettings"]

_CONFIG = SettingsConfigDict(env_file=".env", extra="ignore")


class StorageSettings(BaseSettings):
    """Where state lives: sessions (Redis or in-process) and durable data (SQL)."""

    model_config = _CONFIG

    redis_url: str = ""
    database_url: str = ""
    data_dir: Path = Path("data")
    seed_demo_members: bool | None = None
    session_ttl_seconds: float = Field(default=30 * 24 * 3600, gt=0)

    @property
    def database(self) -> str:
        """``DATABASE_URL``, else the SQLite file ``DATA_DIR/bot.db``."""
        return self.database_url or f"sqlite:///{self.data_dir / 'bot.db'}"

    @property
    def shared_deployment(self) -> bool:
        """True when several processes may share state (Redis or PostgreSQL configured)."""
        return bool(self.redis_url) or self.database_url.startswith(("postgres", "postgresql"))

    @property
    def should_seed_demo(self) -> bool:
        """Seed demo members when asked, or by default on the embedded database."""
        if self.seed_demo_members is not None:
            return self.seed_demo_members
        return not self.database_url


class BalanceSettings(BaseSettings):
    """The balance service: the in-process reference (cached) or the HTTP service."""

    model_config = _CONFIG

    balance_service_url: str = ""
    balance_service_token: SecretStr = SecretStr("")
    balance_service_timeout: float = Field(default=3.0, gt=0)
    balance_cache_seconds: float = Field(default=60.0, ge=0)  # in-process service; 0: off
    # Statements and charts: the yearly development rate projections assume (a fraction,
    # 0.06; unset: the average of the configured years) and the public /verify address
    # printed and QR-coded on statements (unset: derived from TELEGRAM_WEBHOOK_URL).
    jht_development_rate: float | None = Field(default=None, gt=0, lt=1)
    statement_verify_url: str = ""
    # Worker processes making statements and charts (0: threads in the bot's own process,
    # which slows every other chat while a PDF is made).
    document_workers: int = Field(default=2, ge=0, le=32)


class OtpSettings(StorageSettings):
    """OTP delivery and the process secret (codes, audit pseudonyms, signed buttons)."""

    otp_outbox: str = ""
    otp_secret: SecretStr = SecretStr("")
    otp_channels: str = ""  # e.g. "whatsapp,sms,email"; empty: every configured sender
    smtp_url: SecretStr = SecretStr("")  # smtp://user:pass@host:587 (STARTTLS), smtps://..:465
    otp_email_from: str = ""
    smtp_timeout: float = 10.0
    sms_gateway: str = ""  # the provider: "twilio"
    sms_gateway_url: str = ""  # the provider's API base (a fake's in tests)
    sms_gateway_token: SecretStr = SecretStr("")  # twilio: "<account sid>:<auth token>"
    sms_sender: str = ""  # the sender id or number the SMS comes from
    sms_timeout: float = 10.0
    whatsapp_otp_template: str = ""  # an approved authentication template with a copy button
    whatsapp_otp_template_languages: str = "id,en"

    def secret(self) -> bytes:
        """``OTP_SECRET``; in the embedded setup a random one kept under ``DATA_DIR``.

        A shared deployment (Redis or PostgreSQL) must set it, or every process would hash
        codes and audit pseudonyms with a different key.
        """
        if self.otp_secret.get_secret_value():
            return self.otp_secret.get_secret_value().encode()
        if self.shared_deployment:
            raise SystemExit("OTP_SECRET must be set when REDIS_URL or a PostgreSQL "
                             "DATABASE_URL is set (the same in every process). Generate one "
                             "with: python -c \"import secrets; print(secrets.token_hex(32))\"")
        return _local_secret(self.data_dir / "otp_secret")


class SupportSettings(BaseSettings):
    """The agent desk: where agents answer, their hours, the ticket timers, retention."""

    model_config = _CONFIG

    agent_chat_id: str = ""
    business_days: str = "mon-fri"
    business_hours: str = "08:00-17:00"
    business_tz: str = "Asia/Jakarta"
    holidays: str = ""
    queue_reminder_seconds: float = Field(default=600, gt=0)
    idle_close_seconds: float = Field(default=1800, gt=0)
    transcript_retention_days: int = Field(default=90, ge=1)

    def hours(self) -> BusinessHours:
        """The agent team's business hours; a malformed setting stops start-up clearly."""
        try:
            return BusinessHours.parse(self.business_days, self.business_hours,
                                       self.business_tz, self.holidays)
        except (ValueError, KeyError) as exc:
            raise SystemExit(f"BUSINESS_DAYS, BUSINESS_HOURS, BUSINESS_TZ or HOLIDAYS is not "
                             f"valid: {exc}") from None

    def agent_chat(self) -> int | None:
        """``AGENT_CHAT_ID`` as a chat id (``None`` when unset: no agent desk)."""
        text = self.agent_chat_id.strip()
        if not text:
            return None
        try:
            return int(text)
        except ValueError:
            raise SystemExit("AGENT_CHAT_ID must be the numeric id of the agents' supergroup "
                             "(it starts with -100).") from None


_WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


class TelegramSettings(BaseSettings):
    """The Telegram bot: token, Bot API server, webhook, and its sending limits."""

    model_config = _CONFIG

    telegram_bot_token: SecretStr = SecretStr("")
    telegram_api_base: str = ""
    telegram_webhook_url: str = ""
    telegram_webhook_secret: SecretStr = SecretStr("")
    telegram_webhook_path: str = Field(default="/telegram/webhook", pattern=r"^/[^\s?#]*$")
    telegram_messages_per_second: float = Field(default=30.0, gt=0)
    telegram_concurrency: int = Field(default=64, ge=1)
    telegram_max_backlog: int = Field(default=10_000, ge=1)

    def telegram_token(self) -> str:
        """``TELEGRAM_BOT_TOKEN``; unset stops start-up clearly."""
        token = self.telegram_bot_token.get_secret_value()
        if not token:
            raise SystemExit("TELEGRAM_BOT_TOKEN must be set (ask @BotFather for one).")
        return token

    def webhook_secret(self) -> str:
        """``TELEGRAM_WEBHOOK_SECRET``, which Telegram accepts only in a narrow alphabet."""
        secret = self.telegram_webhook_secret.get_secret_value()
        if not _WEBHOOK_SECRET.fullmatch(secret):
            raise SystemExit("TELEGRAM_WEBHOOK_SECRET must be set to 1-256 characters A-Z, a-z, "
                             "0-9, _ or - (Telegram sends it back in a header on every update).")
        return secret


class WhatsAppSettings(BaseSettings):
    """The WhatsApp Cloud API number, its webhook credentials and message template."""

    model_config = _CONFIG

    whatsapp_token: SecretStr = SecretStr("")
    whatsapp_phone_number_id: str = ""
    whatsapp_verify_token: SecretStr = SecretStr("")
    whatsapp_app_secret: SecretStr = SecretStr("")
    whatsapp_api_base: str = "https://graph.facebook.com/v21.0"
    whatsapp_rate: float = 80.0
    whatsapp_concurrency: int = Field(default=16, ge=1)
    whatsapp_max_backlog: int = Field(default=10_000, ge=1)
    whatsapp_template_name: str = ""
    whatsapp_template_languages: str = "id,en"
    # An approved utility template with one body parameter, for contribution alerts outside
    # the member's 24-hour window (unset: the reply template, WHATSAPP_TEMPLATE_NAME).
    whatsapp_alert_template: str = ""


class AlertSettings(BaseSettings):
    """Contribution alerts (issue 16): when the daily plan runs, the due date's grace, quiet
    hours, the workers of each ``serve`` process and the platform rates they share."""

    model_config = _CONFIG

    alerts_plan_at: str = Field(default="10:00", pattern=r"^(|off|([01][0-9]|2[0-3]):[0-5][0-9])$")
    alerts_grace_days: int = Field(default=5, ge=0, le=60)
    alerts_quiet_hours: str = Field(
        default="21:00-07:00",
        pattern=r"^(|off|([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9])$")
    alerts_fresh_days: int = Field(default=45, ge=1)
    alerts_workers: int = Field(default=1, ge=0, le=64)
    alerts_claim_seconds: float = Field(default=120.0, gt=0)
    alerts_max_attempts: int = Field(default=5, ge=1)
    # Sends per second across every process (0: no pacing, for benchmarks).
    alerts_telegram_rate: float = Field(default=30.0, ge=0)
    alerts_whatsapp_rate: float = Field(default=80.0, ge=0)


class ProcessSettings(BaseSettings):
    """The process itself: event loop, web listener, logging, conversation timeout."""

    model_config = _CONFIG

    event_loop: Literal["uvloop", "asyncio"] = "uvloop"  # uvloop where installed
    web_host: str = "0.0.0.0"  # behind a load balancer: listen on every interface
    web_port: int = Field(default=8080, ge=1, le=65535)
    log_level: str = "WARNING"
    flow_timeout_seconds: float = Field(default=30 * 60, gt=0)


class Settings(ProcessSettings, AlertSettings, TelegramSettings, WhatsAppSettings,
               SupportSettings, BalanceSettings, OtpSettings):
    """Every setting the bot reads; names are the environment variables (case-insensitive)."""

    model_config = _CONFIG


def _local_secret(path: Path) -> bytes:
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(value)
    return value
