"""Where each intent, command and menu button leads: the entry steps of the flows."""

from __future__ import annotations

from collections.abc import Mapping

from flows import account, balance, faq, handoff, history, menu, mydata, otp, registration, start
from flows.faq_content import TOPICS
from flows.flow import Flow, Step, step
from flows.menu import MENU

ENTRIES: Mapping[str, Step] = {
    "start": step(start.start, start.CHOOSE, MENU),
    "menu": step(menu.show_menu, MENU),
    "check_balance": balance.ENTRY,
    "history": history.ENTRY,
    "register": registration.BEGIN,
    "handoff": handoff.ENTRY,
    "help": step(menu.show_help, MENU),
    "change_language": step(start.ask_language, start.CHOOSE),
    "greeting": step(menu.greet, MENU),
    "thanks": step(menu.thank, MENU),
    "cancel": step(menu.cancel, MENU),
    "logout": step(account.ask_logout, account.S.CONFIRM_LOGOUT, MENU),
    "delete_data": step(account.ask_erase, account.CONFIRM),
    "my_data": step(mydata.show_my_data, MENU),
    "unknown": step(menu.not_understood, MENU),
    "unknown_command": step(menu.unknown_command, MENU),
    "expired_button": step(menu.expired_button, MENU),
    "faq": step(faq.show_topics, MENU),
    **{topic.intent: step(faq.answer, faq.FEEDBACK) for topic in TOPICS},
}

# Indonesian commands first (PRODUCT.md), English aliases, and the platform's /start.
COMMANDS: Mapping[str, str] = {
    "start": "start", "menu": "menu",
    "batal": "cancel", "cancel": "cancel",
    "bantuan": "help", "help": "help",
    "bahasa": "change_language", "language": "change_language",
    "daftar": "register", "register": "register",
    "saldo": "check_balance", "balance": "check_balance",
    "riwayat": "history", "history": "history",
    "faq": "faq", "tanya": "faq",
    "petugas": "handoff", "agent": "handoff",
    "selesai": "menu", "done": "menu",
    "keluar": "logout", "logout": "logout",
    "hapusdata": "delete_data", "deletedata": "delete_data",
    "datasaya": "my_data", "mydata": "my_data",
}

FLOWS: tuple[Flow, ...] = (start.FLOW, registration.FLOW, otp.FLOW, balance.FLOW, history.FLOW,
                           faq.FLOW, account.FLOW, handoff.FLOW)
AGENT_EVENTS = handoff.AGENT_EVENTS
