"""Verification codes, the seal of a statement PDF and its check.

A code is the HMAC-SHA256 (keyed like the bot's other secrets) of the statement's canonical JSON
(:func:`statements.data.canonical_json`: the data and the issue time in UTC seconds), cut to 50
bits and written as 10 characters of an alphabet without 0/O and 1/I, so it can be read aloud
and typed. The PDF carries its payload (:mod:`statements.pdf`) and, once issued
(:func:`sign_statement`), a seal: an HMAC over the payload and a digest of what its pages draw
(:func:`pages_digest`). :func:`verify_pdf` reads the payload back, recomputes the code, computes
the digest of the file as it is and checks the seal. It renders nothing, so a genuine statement
stays genuine when the catalogs' texts, fpdf2 or the fonts change after it was issued.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flows.ports import StatementRecord
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
SEAL_ENTRY = "/StatementSeal"
"""The document information entry that holds the seal (:func:`sign_statement`)."""
_SEAL_LABEL = b"statement-seal-v1\x00"
_INHERITABLE = ("/Resources", "/MediaBox", "/CropBox", "/Rotate")
_READ_ERRORS = (ValueError, KeyError, TypeError, AttributeError, IndexError, OSError,
                RecursionError)


VerifiedSummary = StatementRecord
"""What a verifier may show about a statement: no more than its holder already has; the same
record the bot keeps of each statement it issues (:class:`flows.ports.StatementRecord`)."""


@dataclass(frozen=True)
class Verdict:
    """The outcome of :func:`verify_pdf`. ``reason`` is ``"ok"``, ``"no_payload"`` (not a PDF,
    or no statement payload), ``"bad_code"`` (payload altered or signed with another key) or
    ``"altered"`` (the seal is missing, or the pages or payload are not what was sealed)."""

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

    Reads the embedded payload and recomputes its code (``bad_code`` when it differs), then
    computes the digest of what the pages draw, as the file holds them now, and checks the seal
    over payload and digest (``altered`` when it is missing or differs). Nothing is rendered:
    a statement stays genuine after the texts of the catalogs, fpdf2 or the fonts change."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(pdf))
        payload = _payload(reader)
    except (*_READ_ERRORS, PyPdfError):
        return Verdict(genuine=False, reason="no_payload", code=None, summary=None)
    if payload is None:
        return Verdict(genuine=False, reason="no_payload", code=None, summary=None)
    data, issued_at, claimed = payload
    expected = statement_code(data, issued_at, key)
    if not _same(expected, claimed):
        return Verdict(genuine=False, reason="bad_code", code=claimed, summary=None)
    summary = summary_of(data, issued_at, expected)
    try:
        sealed = _seal_in(reader)
        digest = None if _acts_on_opening(reader) else pages_digest(reader)
    except (*_READ_ERRORS, PyPdfError):
        sealed = digest = None
    if sealed is None or digest is None or not _same(
            sealed, _seal(key, canonical_json(data, issued_at), digest)):
        return Verdict(genuine=False, reason="altered", code=expected, summary=summary)
    return Verdict(genuine=True, reason="ok", code=expected, summary=summary)


_ACTIVE_ENTRIES = ("/AA", "/AcroForm", "/OCProperties")
"""Document catalog entries that can change what a reader shows without touching the pages
(actions, form fields or XFA drawn over them, layers hiding parts): a statement never has
them, so one added later makes the file ``altered``; so does an ``/OpenAction`` that is an
action (a script) rather than the page to open at, which is all fpdf2 writes there."""


def _acts_on_opening(reader: Any) -> bool:
    catalog = reader.trailer["/Root"].get_object()
    names = catalog.get("/Names")
    names = names.get_object() if names is not None else {}
    opening = catalog.get("/OpenAction")
    opening = opening.get_object() if opening is not None else None
    return (any(entry in catalog for entry in _ACTIVE_ENTRIES) or "/JavaScript" in names
            or (opening is not None and not isinstance(opening, list)))


def _same(expected: str, claimed: object) -> bool:
    """A constant-time comparison that also answers (no) for a claimed value that is not a
    string or not ASCII (``hmac.compare_digest`` raises for those)."""
    if not isinstance(claimed, str):
        return False
    return hmac.compare_digest(expected.encode("utf-8"),
                               claimed.encode("utf-8", "surrogatepass"))


def sign_statement(pdf: bytes, key: bytes) -> bytes:
    """``pdf`` (as :func:`statements.pdf.render_statement` made it) sealed with ``key``: the
    seal, an HMAC of the payload's canonical JSON and of :func:`pages_digest`, is written as
    the document information entry ``/StatementSeal`` in an incremental update appended to
    the file (the rendered bytes stay as they are; a file whose last cross-reference is a
    stream, which fpdf2 does not write, is written again whole instead). Raises
    :class:`ValueError` for a PDF without statement payload."""
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(pdf))
    payload = _payload(reader)
    if payload is None:
        raise ValueError("not a statement: no payload")
    data, issued_at, _ = payload
    seal = _seal(key, canonical_json(data, issued_at), pages_digest(reader))
    return _append_info_entry(pdf, reader, SEAL_ENTRY, seal)


def pages_digest(reader: Any) -> bytes:
    """SHA-256 of what the pages of ``reader`` draw: their number, then for each page its
    decoded content, its inheritable attributes (resources with the embedded font programs,
    their glyph widths and text maps, boxes, rotation) and the rest of its dictionary
    (annotations included), in a canonical form that does not depend on object numbers or
    stream compression. So a changed glyph, colour or overlay changes it; re-saving the file
    with another tool does not."""
    digest = hashlib.sha256(b"pages:%d" % len(reader.pages))
    streams: dict[int, bytes] = {}
    for page in reader.pages:
        seen = {page.indirect_reference.idnum} if page.indirect_reference is not None else set()
        contents = page.get_contents()
        digest.update(b"<page><contents>" + hashlib.sha256(
            contents.get_data() if contents is not None else b"").digest())
        for name in _INHERITABLE:
            digest.update(name.encode())
            _feed(digest, _inherited(page, name), seen, streams)
        digest.update(b"<dict>")
        for name in sorted(page.keys()):
            if name not in {"/Parent", "/Contents", *_INHERITABLE}:
                digest.update(str(name).encode())
                _feed(digest, page.raw_get(name), seen, streams)
        digest.update(b"</page>")
    return digest.digest()


def payload_json(data: StatementData, *, issued_at: datetime, code: str, locale: str,
                 verify_url: str) -> bytes:
    """The JSON a statement PDF embeds: the signed document (:func:`canonical_json`) with the
    code, and the locale and verify URL it was rendered with (for the record: verifying needs
    neither)."""
    document: dict[str, Any] = json.loads(canonical_json(data, issued_at))
    document.update(code=code, locale=locale, verify_url=verify_url)
    return json.dumps(document, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def _payload(reader: Any) -> tuple[StatementData, datetime, str] | None:
    contents = reader.attachments.get(PAYLOAD_NAME)
    if not contents:
        return None
    raw = json.loads(contents[0])
    if not isinstance(raw, dict):
        return None
    issued_at = datetime.strptime(str(raw["issued_at"]), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return data_from_json_dict(raw["data"]), issued_at, str(raw["code"])


def _seal(key: bytes, canonical: bytes, digest: bytes) -> str:
    """The seal of a statement: ``v1:`` and the HMAC-SHA256 in hex of a label (so that a seal
    is never a code), the payload's canonical JSON and the pages' digest."""
    mac = hmac.new(key, _SEAL_LABEL + len(canonical).to_bytes(8, "big") + canonical + digest,
                   hashlib.sha256)
    return "v1:" + mac.hexdigest()


def _seal_in(reader: Any) -> str | None:
    info = reader.trailer.get("/Info")
    if info is None:
        return None
    value = info.get_object().get(SEAL_ENTRY)
    return str(value) if value is not None else None


def _append_info_entry(pdf: bytes, reader: Any, name: str, value: str) -> bytes:
    """``pdf`` with an incremental update that sets ``name`` to ``value`` in the document
    information dictionary (a new revision of that one object, a cross-reference section for
    it and a trailer pointing back to the previous one, as PDF viewers read any edited file)."""
    from pypdf.generic import DictionaryObject, NameObject, NumberObject, TextStringObject

    previous = _last_xref_offset(pdf)
    if not pdf.startswith(b"xref", previous):
        return _rewritten_with_info_entry(reader, name, value)
    trailer = reader.trailer
    size = int(trailer["/Size"])
    info_ref = trailer.raw_get("/Info") if "/Info" in trailer else None
    number, generation = ((info_ref.idnum, info_ref.generation) if info_ref is not None
                          else (size, 0))
    info = DictionaryObject(info_ref.get_object() if info_ref is not None else {})
    info[NameObject(name)] = TextStringObject(value)
    out = io.BytesIO()
    out.write(pdf if pdf.endswith(b"\n") else pdf + b"\n")
    offset = out.tell()
    out.write(b"%d %d obj\n" % (number, generation))
    info.write_to_stream(out)
    out.write(b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n%d 1\n%010d %05d n\r\n" % (number, offset, generation))
    new_trailer = DictionaryObject({
        NameObject(k): v for k, v in trailer.items() if k in {"/Root", "/ID", "/Encrypt"}})
    new_trailer[NameObject("/Root")] = trailer.raw_get("/Root")
    new_trailer[NameObject("/Size")] = NumberObject(max(size, number + 1))
    new_trailer[NameObject("/Info")] = info_ref if info_ref is not None else _reference(
        number, generation, reader)
    new_trailer[NameObject("/Prev")] = NumberObject(previous)
    out.write(b"trailer\n")
    new_trailer.write_to_stream(out)
    out.write(b"\nstartxref\n%d\n%%%%EOF\n" % xref)
    return out.getvalue()


def _rewritten_with_info_entry(reader: Any, name: str, value: str) -> bytes:
    """The whole file written again by pypdf, with ``name`` set in its information dictionary
    (object numbers change; :func:`pages_digest` does not depend on them)."""
    from pypdf import PdfWriter
    from pypdf.generic import TextStringObject

    writer = PdfWriter(clone_from=reader)
    writer.add_metadata({name: TextStringObject(value)})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _reference(number: int, generation: int, reader: Any) -> Any:
    from pypdf.generic import IndirectObject

    return IndirectObject(number, generation, reader)


def _last_xref_offset(pdf: bytes) -> int:
    """The offset the last ``startxref`` of ``pdf`` names (-1 when there is none)."""
    at = pdf.rfind(b"startxref", max(0, len(pdf) - 1024))
    if at < 0:
        return -1
    return int(pdf[at + len(b"startxref"):].split()[0])


def _inherited(page: Any, name: str) -> Any:
    """The attribute ``name`` of ``page``, or of the nearest page tree node above it."""
    node = page
    for _ in range(64):  # a page tree is shallow; a cycle ends here
        if name in node:
            return node.raw_get(name)
        parent = node.get("/Parent")
        if parent is None:
            return None
        node = parent.get_object()
    return None


def _feed(digest: Any, value: Any, seen: set[int], streams: dict[int, bytes]) -> None:
    """Feed a canonical form of a PDF object tree into ``digest``: dictionaries by sorted key,
    streams by their decoded data, indirect objects followed once (their numbers do not
    count: another tool may renumber them). ``streams`` keeps the digest of each stream's data
    read so far (the font programs are shared by every page)."""
    from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, StreamObject

    number = None
    if isinstance(value, IndirectObject):
        if value.idnum in seen:
            digest.update(b"<seen>")
            return
        number = value.idnum
        seen.add(number)
        value = value.get_object()
    if isinstance(value, StreamObject):
        data = streams.get(number) if number is not None else None
        if data is None:
            data = hashlib.sha256(value.get_data()).digest()
            if number is not None:
                streams[number] = data
        digest.update(b"<stream>" + data)
    if isinstance(value, DictionaryObject):
        digest.update(b"<<")
        for name in sorted(value.keys()):
            if name not in {"/Parent", "/Length", "/Filter", "/DecodeParms"}:
                digest.update(str(name).encode())
                _feed(digest, value.raw_get(name), seen, streams)
        digest.update(b">>")
    elif isinstance(value, ArrayObject | list):  # items stay raw: indirect ones are followed
        digest.update(b"[")
        for item in value:
            _feed(digest, item, seen, streams)
        digest.update(b"]")
    else:
        digest.update(repr(value).encode())
