"""The personal-data consent notice shown before registration (UU PDP No. 27/2022).

The member must agree before the bot asks for a NIK. ``CONSENT_VERSION`` is stored with each
consent record; change it whenever the notice text changes in substance.
"""

from __future__ import annotations

from flows.i18n import N_

CONSENT_VERSION = "2026-11-v2"
# The periods the notice states are the defaults of TRANSCRIPT_RETENTION_DAYS,
# SESSION_TTL_SECONDS and FLOW_TIMEOUT_SECONDS (app/settings.py; a test keeps them in step):
# changing one of them changes the notice, and so its version.
TRANSCRIPT_DAYS = 90
SESSION_DAYS = 30
STEP_MINUTES = 30

CONSENT_NOTICE = N_(
    "Before I link this chat to your membership, please read how your personal data is used "
    "(UU PDP No. 27/2022).\n"
    "\n"
    "What I ask for: your NIK, KPJ number, date of birth and phone number. They are checked "
    "against BPJS Ketenagakerjaan records, and a verification code is sent to the phone "
    "number or email on file.\n"
    "\n"
    "What is kept, and for how long:\n"
    "• the link between this chat and your KPJ, so I can show your balance and contribution "
    "history: until you unlink it or erase your data\n"
    "• the record of your consent (date, language, version of this notice): until you erase "
    "your data\n"
    "• a log of what happened (for example \"code sent\", \"linked\") under a pseudonym, "
    "without your chat ID, NIK or phone number: as long as the law requires\n"
    "• if you talk to an agent: your request and the conversation, with NIK, phone number, "
    "KPJ and email masked; the conversation is deleted after 90 days\n"
    "• this conversation's state (language, the current step): 30 days after your last "
    "message; a step you have not finished, with what you typed in it, after 30 minutes\n"
    "\n"
    "What is not kept: your NIK, date of birth and phone number are not stored after "
    "verification, and the code only as a hash, for 5 minutes.\n"
    "\n"
    "Your rights:\n"
    "• see what is kept and get a copy: /mydata\n"
    "• unlink this chat and withdraw consent: /logout\n"
    "• erase your data, conversations with agents included: /deletedata\n"
    "• have your data corrected: at a BPJS Ketenagakerjaan branch or call 175\n"
    "• object to decisions made only by a machine\n"
    "\n"
    "Do you agree?"
)

CONSENT_AGREE = N_("I agree")
CONSENT_DECLINE = N_("No, thanks")
