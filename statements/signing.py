"""Verification codes and the check of a statement PDF.

A code is the HMAC-SHA256 (keyed like the bot's other secrets) of the statement's canonical JSON
(:func:`statements.data.canonical_json`: the data and the issue time in UTC seconds), cut to 50
bits and written as 10 characters of an alphabet without 0/O and 1/I, so it can be read aloud
and typed. The PDF carries its payload (:mod:`statements.pdf`); :func:`verify_pdf` reads it
back, recomputes the code, and renders the payload again to compare what the pages draw.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from statements.data import (
    StatementData,
    canonical_json,
    data_from_json_dict,
    initials,
    mask_kpj,
    utc_seconds,
)

CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # 32 symbols: no 0, O, 1 or I
CODE_LENGTH = 10
PAYLOAD_NAME = "statement.json"
"""The name of the file embedded in each statement PDF that holds its payload."""


@dataclass(frozen=True)
class VerifiedSummary:
    """What a verifier may show about a statement: no more than its holder already has."""

    code: str
    initials: str
    kpj_masked: str
    period_from: str
    period_to: str
    total: int
    issued_at: datetime


@dataclass(frozen=True)
class Verdict:
    """The outcome of :func:`verify_pdf`. ``reason`` is ``"ok"``, ``"no_payload"`` (not a PDF,
    or no statement payload), ``"bad_code"`` (payload altered or signed with another key) or
    ``"altered"`` (the pages do not draw what the payload says)."""

    genuine: bool
    reason: str
    code: str | None
    summary: VerifiedSummary | None


def statement_code(data: StatementData, issued_at: datetime, key: bytes) -> str:
    """The 10-character verification code of ``data`` issued at ``issued_at`` (aware)."""
    digest = hmac.new(key, canonical_json(data, issued_at), hashlib.sha256).digest()
    number = int.from_bytes(digest[:8], "big") >> (64 - 5 * CODE_LENGTH)
    symbols = []
    for _ in range(CODE_LENGTH):
        number, index = divmod(number, len(CODE_ALPHABET))
        symbols.append(CODE_ALPHABET[index])
    return "".join(reversed(symbols))


def normalize_code(text: str) -> str:
    """A code as typed (``" abcde-fghjk "``) in its canonical form (``"ABCDEFGHJK"``)."""
    return "".join(ch for ch in text.upper() if ch not in " -._")


def summary_of(data: StatementData, issued_at: datetime, code: str) -> VerifiedSummary:
    """The public summary of a statement (initials, masked KPJ, period, total)."""
    return VerifiedSummary(code=code, initials=initials(data.name), kpj_masked=mask_kpj(data.kpj),
                           period_from=data.period_label_from, period_to=data.period_label_to,
                           total=data.balance_total, issued_at=utc_seconds(issued_at))


def verify_pdf(pdf: bytes, key: bytes) -> Verdict:
    """Whether ``pdf`` is a statement issued with ``key`` and left unaltered.

    Reads the embedded payload, recomputes its code (``bad_code`` when it differs), then
    renders the payload again and compares every page's drawing operators with the file's
    (``altered`` when any differ, or when the page count or annotations differ)."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(pdf))
        payload = _payload(reader)
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError,
            RecursionError):
        return Verdict(genuine=False, reason="no_payload", code=None, summary=None)
    if payload is None:
        return Verdict(genuine=False, reason="no_payload", code=None, summary=None)
    data, issued_at, claimed, locale, verify_url = payload
    expected = statement_code(data, issued_at, key)
    if not hmac.compare_digest(expected, claimed):
        return Verdict(genuine=False, reason="bad_code", code=claimed, summary=None)
    summary = summary_of(data, issued_at, expected)
    try:
        same = _pages_match(reader, data, locale=locale, issued_at=issued_at, code=expected,
                            verify_url=verify_url)
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError,
            RecursionError):
        same = False
    if not same:
        return Verdict(genuine=False, reason="altered", code=expected, summary=summary)
    return Verdict(genuine=True, reason="ok", code=expected, summary=summary)


def payload_json(data: StatementData, *, issued_at: datetime, code: str, locale: str,
                 verify_url: str) -> bytes:
    """The JSON a statement PDF embeds: the signed document (:func:`canonical_json`) with the
    code, and the locale and verify URL it was rendered with (needed to render it again)."""
    document: dict[str, Any] = json.loads(canonical_json(data, issued_at))
    document.update(code=code, locale=locale, verify_url=verify_url)
    return json.dumps(document, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def _payload(reader: Any) -> tuple[StatementData, datetime, str, str, str] | None:
    contents = reader.attachments.get(PAYLOAD_NAME)
    if not contents:
        return None
    raw = json.loads(contents[0])
    if not isinstance(raw, dict):
        return None
    issued_at = datetime.strptime(str(raw["issued_at"]), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return (data_from_json_dict(raw["data"]), issued_at, str(raw["code"]), str(raw["locale"]),
            str(raw["verify_url"]))


def _pages_match(reader: Any, data: StatementData, *, locale: str, issued_at: datetime,
                 code: str, verify_url: str) -> bool:
    from pypdf import PdfReader

    from statements.pdf import default_catalog, render_statement

    fresh = render_statement(data, locale=locale, issued_at=issued_at, code=code,
                             verify_url=verify_url, catalog=default_catalog())
    expected = PdfReader(io.BytesIO(fresh))
    if len(expected.pages) != len(reader.pages):
        return False
    return all(_drawing(got) == _drawing(want)
               for got, want in zip(reader.pages, expected.pages, strict=True))


def _drawing(page: Any) -> tuple[bytes, int, str, str]:
    """What a page draws: its decoded content stream, its number of annotations, and digests
    of its resources (the embedded font programs with their glyph widths and text maps) and
    of its boxes, so that a changed glyph or an overlay is seen as well as a changed number."""
    contents = page.get_contents()
    annotations = page.get("/Annots")
    count = len(annotations.get_object()) if annotations is not None else 0
    resources = hashlib.sha256()
    _feed(resources, page.get("/Resources"), set())
    boxes = hashlib.sha256()
    _feed(boxes, [page.get(name) for name in ("/MediaBox", "/CropBox", "/Rotate")], set())
    return ((contents.get_data() if contents is not None else b""), count,
            resources.hexdigest(), boxes.hexdigest())


def _feed(digest: Any, value: Any, seen: set[int]) -> None:
    """Feed a canonical form of a PDF object tree into ``digest``: dictionaries by sorted key,
    streams by their decoded data, indirect objects followed once (object numbers differ
    between two renderings of the same page; contents do not)."""
    from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, StreamObject

    if isinstance(value, IndirectObject):
        if value.idnum in seen:
            digest.update(b"<seen>")
            return
        seen.add(value.idnum)
        value = value.get_object()
    if isinstance(value, StreamObject):
        digest.update(b"<stream>" + hashlib.sha256(value.get_data()).digest())
    if isinstance(value, DictionaryObject):
        digest.update(b"<<")
        for name in sorted(value.keys()):
            if name not in {"/Parent", "/Length", "/Filter", "/DecodeParms"}:
                digest.update(str(name).encode())
                _feed(digest, value.raw_get(name), seen)
        digest.update(b">>")
    elif isinstance(value, ArrayObject | list):  # items stay raw: indirect ones are followed
        digest.update(b"[")
        for item in value:
            _feed(digest, item, seen)
        digest.update(b"]")
    else:
        digest.update(repr(value).encode())
