"""FAQ content and consent notice: structure, limits, key facts, Indonesian catalog."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from flows import consent
from flows.faq_content import (
    ALERT_TOPIC_BY_INTENT,
    FAQ_INTRO,
    TOPIC_BY_INTENT,
    TOPICS,
    FaqTopic,
)
from flows.i18n import Catalog as Translations
from flows.i18n import placeholders
from flows.intents import INTENTS
from flows.types import Text

CATALOG_ID = Path(__file__).resolve().parents[2] / "locales" / "id" / "LC_MESSAGES" / "messages.po"

LABEL_MAX = 20  # WhatsApp list-row / reply-button title limit
ANSWER_MAX = 900

# Facts (from DOMAIN.md) that each English answer must state.
KEY_FACTS: dict[str, tuple[str, ...]] = {
    "faq.claim_jht": (
        "56",
        "1-month",
        "10 years",
        "30%",
        "10%",
        "KTP",
        "paklaring",
        "death certificate",
        "Lapak Asik",
        "check the current limit in JMO",
    ),
    "faq.programs": ("JHT", "JP", "JKK", "JKM", "JKP"),
    "faq.contribution_rates": (
        "3.7%",
        "2%",
        "1%",
        "Rp10,042,300",
        "March 2024",
        "0.24%",
        "1.74%",
        "0.30%",
        "0.36%",
        "Rp148,000",
        "Rp80,000",
        "Rp4,000,000",
        "Rp6,800",
        "BPU",
    ),
    "faq.balance_not_updated": ("once a year", "employer", "KPJ", "withdrawn", "175"),
    "faq.jmo_app": ("JMO", "official app store", "check the current limit in JMO"),
    "faq.forgot_account": ("Lupa akun", "KPJ", "NIK", "SMS", "email", "Never share"),
    "faq.jkp": ("PP 6/2025", "60 percent", "6 months", "Rp5,000,000", "JMO", "175"),
    "faq.office_contact": (
        "175",
        "06:00-22:00 WIB",
        "care@bpjsketenagakerjaan.go.id",
        "Lapak Asik",
        "Branch offices",
    ),
    "faq.security": ("password", "PIN", "OTP", "pencairan cepat", "175"),
    "faq.bpjs_kesehatan": ("different agency", "165", "Mobile JKN", "faskes"),
}

# The same facts in the Indonesian translation (Indonesian number formatting).
KEY_FACTS_ID: dict[str, tuple[str, ...]] = {
    "faq.claim_jht": (
        "56 tahun",
        "1 bulan",
        "10 tahun",
        "30%",
        "10%",
        "ahli waris",
        "cek batas terbaru di JMO",
    ),
    "faq.contribution_rates": (
        "3,7%",
        "Rp10.042.300",
        "Rp148.000",
        "Rp80.000",
        "0,36%",
        "pemberi kerja",
        "Rp6.800",
    ),
    "faq.jkp": ("PP 6/2025", "60%", "6 bulan", "Rp5.000.000"),
    "faq.office_contact": ("175", "06.00-22.00 WIB", "care@bpjsketenagakerjaan.go.id"),
    "faq.security": ("PIN", "OTP", "pencairan cepat", "175"),
    "faq.bpjs_kesehatan": ("165", "Mobile JKN", "faskes", "BPJS Ketenagakerjaan"),
}
_TRANSLATIONS = Translations()


def _rendered(intent: str, locale: str) -> str:
    topic = TOPIC_BY_INTENT[intent]
    return _TRANSLATIONS.render(Text(topic.answer, topic.params), locale)


def _all_msgids() -> list[str]:
    ids = [FAQ_INTRO, consent.CONSENT_NOTICE, consent.CONSENT_AGREE, consent.CONSENT_DECLINE]
    for topic in TOPICS:
        ids.extend((topic.label, topic.answer))
    return ids


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    with CATALOG_ID.open("rb") as handle:
        return read_po(handle)


def _id(catalog: Catalog, msgid: str) -> str:
    message = catalog.get(msgid)
    assert message is not None, f"missing from the Indonesian catalog: {msgid[:60]!r}"
    assert isinstance(message.string, str)
    return message.string


def test_topics_are_the_faq_intents_in_order() -> None:
    alert_topics = set(ALERT_TOPIC_BY_INTENT)  # typed too, answered by the alerts flow
    assert tuple(topic.intent for topic in TOPICS) == tuple(
        name for name in INTENTS if name.startswith("faq.") and name not in alert_topics)
    assert alert_topics <= set(INTENTS)
    assert set(KEY_FACTS) <= set(TOPIC_BY_INTENT), "key facts of a topic that is gone"
    assert all(isinstance(topic, FaqTopic) for topic in TOPICS)
    assert dict(TOPIC_BY_INTENT) == {topic.intent: topic for topic in TOPICS}


def test_labels_fit_whatsapp_limits() -> None:
    for topic in TOPICS:
        assert 0 < len(topic.label) <= LABEL_MAX, topic.label
    for text in (consent.CONSENT_AGREE, consent.CONSENT_DECLINE):
        assert 0 < len(text) <= LABEL_MAX
    assert len({topic.label for topic in TOPICS}) == len(TOPICS)


@pytest.mark.parametrize("topic", TOPICS, ids=lambda topic: topic.intent)
def test_answer_is_short_plain_text(topic: FaqTopic) -> None:
    answer = topic.answer
    assert answer.strip() == answer
    assert 0 < len(answer) < ANSWER_MAX
    for markup in ("**", "__", "`", "<b>", "]("):
        assert markup not in answer
    # Placeholders only for the topic's own parameters (Rupiah amounts).
    assert placeholders(answer) == set(topic.params)


@pytest.mark.parametrize("intent", KEY_FACTS)
def test_answer_states_key_facts(intent: str) -> None:
    answer = _rendered(intent, "en")
    for fact in KEY_FACTS[intent]:
        assert fact in answer, f"{intent}: {fact!r}"


def test_rupiah_figures_are_money_not_hand_written() -> None:
    for topic in TOPICS:
        assert "Rp" not in topic.answer, topic.intent
    english = _rendered("faq.contribution_rates", "en")
    indonesian = _rendered("faq.contribution_rates", "id")
    assert "Rp10,042,300" in english and "Rp10.042.300" in indonesian
    assert "Rp148,000" in english and "Rp148.000" in indonesian


def test_bpjs_kesehatan_quotes_no_number_marked_check() -> None:
    for locale in ("en", "id"):
        answer = _rendered("faq.bpjs_kesehatan", locale)
        assert "165" in answer
        for unsure in ("PANDAWA", "CHIKA", "08"):
            assert unsure not in answer, unsure


def test_unconfirmed_figures_are_not_stated_as_certain() -> None:
    every = " ".join(topic.answer for topic in TOPICS)
    # The online JHT claim limit in JMO is marked "check" in DOMAIN.md.
    for unsure in ("15 million", "Rp15,000,000", "10-15", "Rp10 million"):
        assert unsure not in every
    # Yearly development rates must come from configuration, not from FAQ text.
    for rate in ("7.19%", "6.06%", "5.63%", "5.59%"):
        assert rate not in every


def test_security_never_asks_for_secrets() -> None:
    answer = TOPIC_BY_INTENT["faq.security"].answer
    assert "never asks for your password, PIN or OTP" in answer
    assert "never asks for a PIN" in answer


def test_consent_notice() -> None:
    notice = consent.CONSENT_NOTICE
    assert consent.CONSENT_VERSION == "2026-11-v2"
    for fact in (
        "27/2022",
        "NIK",
        "KPJ",
        "date of birth",
        "phone number",
        "NIK, date of birth and phone number are not stored",
        "masked",
        "90 days",
        "/deletedata",
        "/logout",
        "/mydata",
        "object",
        "copy",
        "corrected",
    ):
        assert fact in notice, fact
    assert notice.rstrip().endswith("?")
    assert "{" not in notice


def test_catalog_translates_every_msgid(catalog: Catalog) -> None:
    msgids = _all_msgids()
    for msgid in msgids:
        assert _id(catalog, msgid).strip(), f"empty msgstr for {msgid[:60]!r}"
    catalog_ids = {message.id for message in catalog if message.id}
    assert set(msgids) <= catalog_ids


def test_indonesian_limits_and_facts(catalog: Catalog) -> None:
    for topic in TOPICS:
        label = _id(catalog, topic.label)
        assert 0 < len(label) <= LABEL_MAX, label
        answer = _id(catalog, topic.answer)
        assert 0 < len(answer) < ANSWER_MAX, topic.intent
        assert answer.count("•") == topic.answer.count("•"), topic.intent
    for text in (consent.CONSENT_AGREE, consent.CONSENT_DECLINE):
        assert 0 < len(_id(catalog, text)) <= LABEL_MAX
    for intent, facts in KEY_FACTS_ID.items():
        answer = _rendered(intent, "id")
        for fact in facts:
            assert fact in answer, f"{intent}: {fact!r}"


def test_indonesian_consent(catalog: Catalog) -> None:
    notice = _id(catalog, consent.CONSENT_NOTICE)
    for fact in (
        "27/2022",
        "NIK",
        "KPJ",
        "tanggal lahir",
        "/hapusdata",
        "/keluar",
        "NIK, tanggal lahir, dan nomor HP Anda tidak disimpan",
        "disamarkan",
        "90 hari",
    ):
        assert fact in notice, fact
    assert notice.rstrip().endswith("?")
    assert "Anda" in notice
