"""The personal-data consent notice shown before registration (UU PDP No. 27/2022).

The member must agree before the bot asks for a NIK. ``CONSENT_VERSION`` is stored with each
consent record; change it whenever the notice text changes in substance.
"""

from __future__ import annotations

from flows.i18n import N_

CONSENT_VERSION = "2026-11-v1"

CONSENT_NOTICE = N_(
    "Before linking this chat to your membership, please read how your personal data is "
    "used (UU PDP No. 27/2022).\n"
    "\n"
    "What: your NIK, KPJ number, date of birth, phone number, this chat's ID and the "
    "messages you send while registering.\n"
    "\n"
    "Why: to verify your membership and link this chat to it, so the bot can show your "
    "balance and contribution history.\n"
    "\n"
    "Where: your details are checked against BPJS Ketenagakerjaan records. After "
    "verification the bot does not store your NIK; it keeps only the link between this chat "
    "and your KPJ, and a record of your consent.\n"
    "\n"
    "How long: the link stays until you unlink or erase it. The consent record and a "
    "pseudonymous audit log are kept as long as the law requires.\n"
    "\n"
    "Your rights:\n"
    "• see and get a copy of your data\n"
    "• correct it\n"
    "• erase it: /hapusdata\n"
    "• withdraw consent and unlink this chat: /keluar\n"
    "• object to automated decisions\n"
    "\n"
    "Do you agree to this use of your data?"
)

CONSENT_AGREE = N_("I agree")
CONSENT_DECLINE = N_("No, thanks")
