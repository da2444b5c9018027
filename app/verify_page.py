"""The page of ``GET /verify/<code>``: whether a contribution statement is genuine.

Anyone holding a statement (an employer, a bank, HR) can check its code here. The page shows no
more than the holder already has: the name's initials, the masked KPJ, the period, the total
and the issue time. It speaks Indonesian unless ``?lang=en`` or the browser prefers English
(``Accept-Language``); every value is HTML-escaped; it loads nothing (no script, no image, no
external style) and asks not to be indexed or cached.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote
from zoneinfo import ZoneInfo

from flows.i18n import N_, Catalog
from flows.ports import StatementRecord
from flows.types import Money, Month, Text

__all__ = ["HEADERS", "Page", "normalized_code", "page_for", "pick_page_locale"]

JAKARTA = ZoneInfo("Asia/Jakarta")
LOCALES = ("id", "en")
_CODE = re.compile(r"[2-9A-HJ-NP-Z]{10}")  # the alphabet of statements.signing, 10 symbols
_SEPARATORS = re.compile(r"[\s.\-_]")
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Robots-Tag": "noindex, nofollow",
}
_STYLE = ("body{font-family:sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;"
          "color:#222}h1{font-size:1.4rem}.ok{color:#0a6b2e}.no{color:#a11}"
          "th{text-align:left;padding:.2rem 1rem .2rem 0;font-weight:normal;color:#555}"
          "td{padding:.2rem 0}footer{margin-top:2rem;font-size:.85rem;color:#555}")


@dataclass(frozen=True, slots=True)
class Page:
    """A rendered page: its HTTP status and HTML."""

    status: int
    html: str


def normalized_code(raw: str) -> str | None:
    """A code as typed or read from a QR code (any case, spaces or dashes) in its canonical
    form; ``None`` when it cannot be a code (nothing is looked up then)."""
    code = _SEPARATORS.sub("", raw[:64]).upper()
    return code if _CODE.fullmatch(code) else None


def pick_page_locale(query_lang: str | None, accept_language: str | None) -> str:
    """``?lang=`` when it names a language of the page, else the first of ``id``/``en`` the
    browser prefers (``Accept-Language`` with its q-values), else Indonesian."""
    if query_lang and query_lang.lower()[:2] in LOCALES:
        return query_lang.lower()[:2]
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept_language or "").split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        quality = 1.0
        match = re.search(r"q=([0-9.]+)", params)
        if match:
            try:
                quality = float(match[1])
            except ValueError:
                quality = 0.0
        if primary == "in":  # the old code of Indonesian
            primary = "id"
        if primary in LOCALES and quality > 0:
            ranked.append((-quality, index, primary))
    return min(ranked)[2] if ranked else "id"


def page_for(record: StatementRecord | None, code: str, locale: str, catalog: Catalog) -> Page:
    """The page for ``code``: the statement's summary (200), or not found (404)."""
    def t(msgid: str, **params: object) -> str:
        return html.escape(catalog.render(Text(msgid, params), locale))

    if record is None:
        unknown = t(N_("No statement was issued with the code {code}. Check the code, or ask "
                       "for the original PDF."), code=code)
        body = f'<h1 class="no">{t(N_("Statement not found"))}</h1><p>{unknown}</p>'

        return Page(404, _document(locale, t(N_("Statement verification")), body, code))
    rows = (
        (N_("Verification code"), record.code),
        (N_("Name (initials)"), record.initials),
        (N_("KPJ"), record.kpj_masked),
        (N_("Period"), catalog.render(Text(N_("{start} to {end}"), {
            "start": Month.parse(record.period_from), "end": Month.parse(record.period_to)}),
            locale)),
        (N_("JHT balance total"), catalog.format_value(Money(record.total), locale)),
        (N_("Issued"), _issued(record.issued_at.astimezone(JAKARTA), catalog, locale)),
    )
    table = "".join(f"<tr><th>{t(label)}</th><td>{html.escape(value)}</td></tr>"
                    for label, value in rows)
    issued = t(N_("This contribution statement was issued by the BPJS Ketenagakerjaan balance "
                  "assistant. Check that the document shows the same figures: the code does "
                  "not match a changed document."))
    body = (f'<h1 class="ok">{t(N_("Genuine statement"))}</h1><p>{issued}</p>'
            f"<table>{table}</table>")
    return Page(200, _document(locale, t(N_("Statement verification")), body, record.code))


def _document(locale: str, title: str, body: str, code: str) -> str:
    other = "en" if locale == "id" else "id"
    label = "English" if other == "en" else "Bahasa Indonesia"
    link = html.escape(f"{quote(code, safe='')}?lang={other}")
    return (f'<!doctype html><html lang="{locale}"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width,initial-scale=1">'
            f"<title>{title}</title><style>{_STYLE}</style></head><body>{body}"
            f'<footer><a href="{link}" hreflang="{other}">{label}</a></footer>'
            "</body></html>")


def _issued(at: datetime, catalog: Catalog, locale: str) -> str:
    """The issue time as the statement prints it ("4 Desember 2026, pukul 02:28 WIB")."""
    return catalog.render(Text(N_("{date}, {time} WIB"), {
        "date": at.date(), "time": f"{at.hour:02d}:{at.minute:02d}"}), locale)
