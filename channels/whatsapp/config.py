"""The WhatsApp channel's settings (``WHATSAPP_*``), checked when the channel is built."""

from __future__ import annotations

from dataclasses import dataclass

from channels.whatsapp.graph import DEFAULT_API_BASE, template_language

__all__ = ["CONCURRENCY", "DEFAULT_API_BASE", "WhatsAppConfig", "parse_languages"]

CONCURRENCY = 16


def parse_languages(text: str) -> tuple[str, ...]:
    """``"id, en_US"`` -> ``("id", "en_US")``: template language codes, in order."""
    return tuple(code.strip() for code in text.split(",") if code.strip())


@dataclass(frozen=True, slots=True)
class WhatsAppConfig:
    """One business phone number on the Cloud API.

    ``template_name`` names an approved template with one body parameter (``{{1}}``), used for
    replies outside the 24-hour window in the first of ``template_languages`` whose language
    is the member's (``en_US`` serves ``en``), else in the first one.
    """

    token: str
    phone_number_id: str
    verify_token: str
    app_secret: str
    api_base: str = DEFAULT_API_BASE
    rate: float = 80.0
    template_name: str = ""
    template_languages: tuple[str, ...] = ("id", "en")
    # Messages served at once (and Graph API connections). One event loop gains nothing from
    # more, and more would queue on the database's pool (SQLite: 15 connections) mid-message.
    concurrency: int = CONCURRENCY
    max_backlog: int = 10_000  # messages taken and not finished, beyond which 503

    def __post_init__(self) -> None:
        required = (("WHATSAPP_TOKEN", self.token),
                    ("WHATSAPP_PHONE_NUMBER_ID", self.phone_number_id),
                    ("WHATSAPP_VERIFY_TOKEN", self.verify_token),
                    ("WHATSAPP_APP_SECRET", self.app_secret))
        missing = [name for name, value in required if not value]
        if missing:
            raise ValueError(f"{', '.join(missing)} must be set for the WhatsApp channel")
        if not self.phone_number_id.isdigit():
            raise ValueError("WHATSAPP_PHONE_NUMBER_ID is the numeric id of the phone number "
                             "in the Meta app (not the phone number itself)")
        if self.concurrency < 1 or self.max_backlog < 1:
            raise ValueError("the WhatsApp concurrency and max_backlog must be at least 1")
        if self.rate <= 0:
            raise ValueError("WHATSAPP_RATE must be a positive number of messages per second")
        if not self.api_base.startswith(("http://", "https://")):
            raise ValueError("WHATSAPP_API_BASE must be an http(s) URL")
        for code in self.template_languages:
            try:
                template_language(code)
            except ValueError:
                raise ValueError(f"WHATSAPP_TEMPLATE_LANGUAGES: {code!r} is not a WhatsApp "
                                 "template language code (e.g. id, en, en_US)") from None

    def template_language(self, locale: str, template: str | None = None) -> str | None:
        """The template language for a member's locale; ``None`` when no template is set
        (``template``: the one to send, by default ``template_name``)."""
        if not (template if template is not None else self.template_name) \
                or not self.template_languages:
            return None
        return next((code for code in self.template_languages
                     if code.split("_", 1)[0].lower() == locale), self.template_languages[0])
