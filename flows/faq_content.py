"""FAQ topics shown to members: button labels and answers (English msgids, see DOMAIN.md).

Every string is an English message id marked with :func:`N_`; the engine translates it. Answers
are plain text (no Markdown) with "•" bullets, short enough for one phone screen. Rupiah
figures are :class:`~flows.types.Money` parameters, written as each language writes amounts.
Figures that DOMAIN.md marks "check" (such as the online JHT claim limit, or the WhatsApp
numbers of BPJS Kesehatan) are never stated as certain.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from flows.i18n import N_
from flows.types import Money


@dataclass(frozen=True)
class FaqTopic:
    """One FAQ topic: its intent name, a short list/button label, the full answer and the
    answer's parameters (Rupiah amounts)."""

    intent: str
    label: str
    answer: str
    params: Mapping[str, Money] = field(default_factory=dict)


JP_WAGE_CAP = Money(10_042_300)  # from March 2024 (DOMAIN.md)
JKP_WAGE_CAP = Money(5_000_000)  # PP 6/2025
BPU_JKM = Money(6_800)
EXAMPLE_WAGE = 4_000_000


def _share(wage: int, per_mille: int) -> Money:
    return Money(wage * per_mille // 1000)


FAQ_INTRO = N_("Choose a topic:")

TOPICS: tuple[FaqTopic, ...] = (
    FaqTopic(
        intent="faq.claim_jht",
        label=N_("Claim JHT"),
        answer=N_(
            "You can claim JHT (Jaminan Hari Tua) when:\n"
            "• you reach age 56\n"
            "• you resign or are laid off: in full, after a 1-month waiting period\n"
            "• permanent total disability\n"
            "• death (claimed by the heirs)\n"
            "• you leave Indonesia permanently\n"
            "• partly, once, after 10 years of membership: housing up to 30%, or other "
            "needs up to 10%\n"
            "\n"
            "Documents: KPJ card, KTP, KK (family card), proof of leaving work (paklaring or "
            "layoff letter), savings book. A death claim also needs the death certificate and "
            "proof of heirs.\n"
            "\n"
            "How to claim:\n"
            "• online in the JMO app, for smaller balances (check the current limit in JMO)\n"
            "• Lapak Asik (online, or by video at a branch)\n"
            "• at a BPJS Ketenagakerjaan branch office"
        ),
    ),
    FaqTopic(
        intent="faq.programs",
        label=N_("BPJS programs"),
        answer=N_(
            "BPJS Ketenagakerjaan programs:\n"
            "• JHT (Jaminan Hari Tua): old-age savings, the balance you can check here\n"
            "• JP (Jaminan Pensiun): pension\n"
            "• JKK (Jaminan Kecelakaan Kerja): work accident protection\n"
            "• JKM (Jaminan Kematian): death benefit\n"
            "• JKP (Jaminan Kehilangan Pekerjaan): job-loss benefit"
        ),
    ),
    FaqTopic(
        intent="faq.contribution_rates",
        label=N_("Contribution rates"),
        answer=N_(
            "Monthly contributions for wage earners (PU), based on the reported wage:\n"
            "• JHT: employer 3.7% + employee 2%\n"
            "• JP: employer 2% + employee 1%, wage capped at {jp_wage_cap} (from March 2024)\n"
            "• JKK: employer 0.24% to 1.74%, by risk class\n"
            "• JKM: employer 0.30%\n"
            "• JKP: 0.36%, covered by the government (0.22%) and 0.14% moved from JKK\n"
            "JKK, JKM and JKP are not deducted from your wage.\n"
            "\n"
            "Example, wage {wage}: JHT employer {jht_employer} + employee {jht_employee}; "
            "JP employer {jp_employer} + employee {jp_employee}.\n"
            "\n"
            "Non-wage earners (BPU), based on declared income: JHT 2%, JKK 1%; "
            "JKM {bpu_jkm} a month."
        ),
        params={"jp_wage_cap": JP_WAGE_CAP, "wage": Money(EXAMPLE_WAGE),
                "jht_employer": _share(EXAMPLE_WAGE, 37), "jht_employee": _share(EXAMPLE_WAGE, 20),
                "jp_employer": _share(EXAMPLE_WAGE, 20), "jp_employee": _share(EXAMPLE_WAGE, 10),
                "bpu_jkm": BPU_JKM},
    ),
    FaqTopic(
        intent="faq.balance_not_updated",
        label=N_("Balance not updated"),
        answer=N_(
            "Common reasons your JHT balance has not changed:\n"
            "• Investment returns (hasil pengembangan) are added once a year, not every month\n"
            "• Your employer deducted your share but has not paid it yet, or paid late\n"
            "• After a job change you have a new KPJ that is not merged with the old one yet\n"
            "• The JHT was already withdrawn\n"
            "\n"
            "What to do:\n"
            "• Check your contribution history here or in JMO\n"
            "• If a month is missing, ask your employer's HR\n"
            "• Still wrong? Call 175 or ask to talk to an officer here"
        ),
    ),
    FaqTopic(
        intent="faq.jmo_app",
        label=N_("JMO app"),
        answer=N_(
            "JMO (Jamsostek Mobile) is the official BPJS Ketenagakerjaan app. In JMO you can:\n"
            "• see your JHT balance and membership status\n"
            "• show your digital membership card\n"
            "• check your contribution history\n"
            "• claim JHT online, up to a balance limit (check the current limit in JMO)\n"
            "• simulate your benefits\n"
            "• update your data\n"
            "\n"
            "Install JMO only from your phone's official app store (Google Play or App Store), "
            "never from a link sent by chat or SMS."
        ),
    ),
    FaqTopic(
        intent="faq.forgot_account",
        label=N_("Forgot JMO account"),
        answer=N_(
            'Forgot your JMO account? Use "Lupa akun" in JMO:\n'
            '1. Open JMO and tap "Lupa akun".\n'
            "2. Enter your KPJ number and NIK.\n"
            "3. Enter the code sent to you by SMS or email.\n"
            "4. Follow the steps in the app.\n"
            "\n"
            "Never share this code with anyone, not even someone who says they are from BPJS. "
            "If your phone number or email has changed, contact 175 or a branch office."
        ),
    ),
    FaqTopic(
        intent="faq.jkp",
        label=N_("Job loss (JKP)"),
        answer=N_(
            "JKP (Jaminan Kehilangan Pekerjaan) is the job-loss benefit for members who lose "
            "their job.\n"
            "Under PP 6/2025 (from 7 February 2025):\n"
            "• a benefit of 60 percent of your wage, for up to 6 months\n"
            "• the wage used is capped at {wage_cap}\n"
            "• you pay no contribution for it from your wage\n"
            "\n"
            "JKP has eligibility conditions that this bot cannot check. Please check yours in "
            "JMO, at a branch office or by calling 175."
        ),
        params={"wage_cap": JKP_WAGE_CAP},
    ),
    FaqTopic(
        intent="faq.office_contact",
        label=N_("Contact & offices"),
        answer=N_(
            "Contact BPJS Ketenagakerjaan:\n"
            "• Call centre 175 (TanyaBPJAMSOSTEK), 06:00-22:00 WIB\n"
            "• Email: care@bpjsketenagakerjaan.go.id\n"
            "• Lapak Asik: no-contact service, online, by video booth at branches, or as a "
            "collective service\n"
            "• Branch offices, for claims and data corrections\n"
            "• The JMO app and the official BPJS Ketenagakerjaan website\n"
            "\n"
            "Use only these official channels."
        ),
    ),
    FaqTopic(
        intent="faq.security",
        label=N_("Account safety"),
        answer=N_(
            "Keep your account safe:\n"
            "• BPJS Ketenagakerjaan never asks for your password, PIN or OTP code.\n"
            "• This bot never asks for a PIN or password.\n"
            "• Type an OTP code into this chat only if you started registration here yourself. "
            "Never give a code to anyone.\n"
            '• Beware of fake links and apps, and of brokers offering "pencairan cepat" '
            "(fast payout) of your JHT.\n"
            "• Use only JMO, branch offices and 175.\n"
            "\n"
            "If someone tried to trick you, report it to 175."
        ),
    ),
    FaqTopic(
        intent="faq.bpjs_kesehatan",
        label=N_("BPJS Kesehatan"),
        answer=N_(
            "BPJS Kesehatan (JKN-KIS health insurance) is a different agency from BPJS "
            "Ketenagakerjaan; this bot cannot see or change its data. For registration, the "
            "JKN-KIS card, contributions, your faskes (health facility) or treatment:\n"
            "• Care centre 165\n"
            "• The Mobile JKN app, from your phone's official app store\n"
            "• A BPJS Kesehatan branch office\n"
            "\n"
            "Here I can help with BPJS Ketenagakerjaan: JHT balance, contributions and claims."
        ),
    ),
)

TOPIC_BY_INTENT: Mapping[str, FaqTopic] = MappingProxyType(
    {topic.intent: topic for topic in TOPICS}
)

# Topics reached from the contribution alerts' buttons (issue 16) and from typed text (their
# intents: flows/intent_phrases.py, nlu/corpus/train/alert_topics.tsv), answered by the alerts
# flow (flows/alerts.py). They are not in the FAQ list, which WhatsApp shows as one list of at
# most 10 rows.
ALERT_TOPICS: tuple[FaqTopic, ...] = (
    FaqTopic(
        intent="faq.report_employer",
        label=N_("Report an employer"),
        answer=N_(
            "If your employer deducted contributions from your salary but they are not in "
            "your contribution history:\n"
            "1. Ask your company's HR department first: the payment may be late, or made "
            "under another KPJ.\n"
            "2. If it is still missing, report it to BPJS Ketenagakerjaan:\n"
            "• call centre 175\n"
            "• Lapak Asik (online, or by video call at a branch)\n"
            "• the nearest branch office\n"
            "\n"
            "Bring your KPJ number and, if you can, payslips showing the deduction. Employers "
            "must pay each month's contributions by the 15th of the following month. "
            "Deducting without paying is the employer's offence, not yours."
        ),
    ),
    FaqTopic(
        intent="faq.pay_contribution",
        label=N_("How to pay"),
        answer=N_(
            "If you pay your own contributions (non-wage earners, BPU, and migrant workers, "
            "PMI):\n"
            "• pay each month's contribution by the 15th of the following month; you can "
            "also pay several months in advance\n"
            "• pay only through the official channels: the JMO app, banks, and retail "
            "partners listed by BPJS Ketenagakerjaan\n"
            "\n"
            "BPJS Ketenagakerjaan never collects contributions by transfer to a personal "
            "account. If someone asks you to transfer to a personal account, do not pay and "
            "report it to 175."
        ),
    ),
)
ALERT_TOPIC_BY_INTENT: Mapping[str, FaqTopic] = MappingProxyType(
    {topic.intent: topic for topic in ALERT_TOPICS}
)
REPORT_EMPLOYER = ALERT_TOPIC_BY_INTENT["faq.report_employer"]
"""How to report an employer who deducted but did not pay (offered on a missing alert)."""
PAY_CONTRIBUTION = ALERT_TOPIC_BY_INTENT["faq.pay_contribution"]
"""How a member who pays their own contributions pays them (offered on a BPU/PMI reminder)."""
