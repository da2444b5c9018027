"""The consent notice says exactly what is kept and for how long, in both languages."""

from __future__ import annotations

import pytest

from app.settings import Settings
from flows import consent
from flows.engine import FLOW_TIMEOUT
from flows.i18n import Catalog
from flows.types import Text
from tests.flows.conftest import Chat, World


def test_the_stated_periods_are_the_configured_defaults() -> None:
    defaults = Settings.model_fields
    assert defaults["transcript_retention_days"].default == consent.TRANSCRIPT_DAYS
    assert defaults["session_ttl_seconds"].default == consent.SESSION_DAYS * 24 * 3600
    assert defaults["flow_timeout_seconds"].default == consent.STEP_MINUTES * 60
    assert FLOW_TIMEOUT == consent.STEP_MINUTES * 60


@pytest.mark.parametrize(("locale", "facts"), [
    ("en", ("90 days", "30 days", "30 minutes", "5 minutes", "masked", "pseudonym",
            "/mydata", "/logout", "/deletedata")),
    ("id", ("90 hari", "30 hari", "30 menit", "5 menit", "disamarkan", "/datasaya",
            "/keluar", "/hapusdata")),
])
def test_what_is_kept_and_for_how_long(locale: str, facts: tuple[str, ...]) -> None:
    text = Catalog(strict=True).render(Text(consent.CONSENT_NOTICE), locale)
    for fact in facts:
        assert fact in text, (locale, fact)
    assert "mohon baca cara data pribadi" not in text


async def test_the_new_version_is_recorded_and_asked_again(chat: Chat, world: World) -> None:
    await world.accounts.record_consent(chat.key, "2026-11-v1", "id", world.clock.now())
    assert "reg:agree" in (await chat.say("/daftar") and chat.buttons), \
        "consent to the old notice does not cover the new one"
    await chat.press("reg:agree")
    assert await world.accounts.has_consent(chat.key, consent.CONSENT_VERSION)
