"""``run_bot.py verify-statement FILE.pdf``: whether a statement PDF is genuine and unaltered.

The file carries its content and verification code; the code is checked with the key every
process derives from ``OTP_SECRET`` (:func:`app.documents.statement_key`), and the seal, an HMAC
of that content and of what the pages show, with the pages as the file holds them
(:func:`statements.signing.verify_pdf`; nothing is rendered again). One line is printed; the
exit code is 0 for a genuine statement, 1 for anything else.
"""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from app.documents import statement_key
from app.settings import OtpSettings
from statements.signing import Verdict, verify_pdf

__all__ = ["MAX_FILE_BYTES", "run_verify_statement", "verdict_line"]

MAX_FILE_BYTES = 20 * 1024 * 1024  # a statement is a few dozen KiB; refuse to read a huge file


def verdict_line(verdict: Verdict) -> str:
    """The one-line verdict: ``genuine: ...``, ``altered: ...``, ``not genuine: ...`` or
    ``unknown: ...``; only what the verification page shows (initials, masked KPJ)."""
    summary = verdict.summary
    if verdict.genuine and summary is not None:
        issued = summary.issued_at.strftime("%Y-%m-%d %H:%M UTC")
        return (f"genuine: statement {summary.code} of {summary.initials} (KPJ "
                f"{summary.kpj_masked}), {summary.period_from} to {summary.period_to}, total "
                f"Rp{summary.total:,}, issued {issued}")
    if verdict.reason == "altered":
        return (f"altered: statement {verdict.code} was changed after it was issued; its "
                "pages do not show what was signed")
    if verdict.reason == "bad_code":
        return ("not genuine: the verification code does not match the content (changed, "
                "forged, or signed with another OTP_SECRET)")
    return "unknown: this file is not a statement of this service (no verification data)"


def run_verify_statement(settings: OtpSettings, path: Path, out: TextIO) -> int:
    """Check the statement at ``path`` and print the verdict to ``out``; 0 when genuine."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            print(f"unknown: {path.name} is too large to be a statement", file=out)
            return 1
        pdf = path.read_bytes()
    except OSError as exc:
        print(f"unknown: cannot read {path.name} ({exc.strerror or type(exc).__name__})",
              file=out)
        return 1
    verdict = verify_pdf(pdf, statement_key(settings.secret()))
    print(verdict_line(verdict), file=out)
    return 0 if verdict.genuine else 1
