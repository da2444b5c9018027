"""``run_bot.py verify-statement FILE.pdf``: one line, exit 0 for a genuine statement and 1 for
anything else (signed with another secret, altered, not a statement, unreadable)."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from app.cli import main, parse_args
from app.documents import PooledDocumentMaker, statement_key
from app.settings import OtpSettings
from app.verify_cli import run_verify_statement, verdict_line
from flows.i18n import Catalog
from statements.data import StatementData, StatementMonth
from statements.signing import Verdict, verify_pdf

SECRET = "cli-test-secret-0123456789"
ISSUED_AT = datetime(2026, 11, 20, 9, 30, 15, 250_000, tzinfo=UTC)


def data() -> StatementData:
    months = tuple(StatementMonth(period=f"2025-{m:02d}", wage=4_000_000, employer_part=148_000,
                                  employee_part=80_000,
                                  paid_on=None if m == 9 else date(2025, m, 28))
                   for m in range(1, 13))
    return StatementData(name="Siti Rahayu", nik_masked="", kpj="12345678901", segment="PU",
                         employer="PT Maju Bersama", period_label_from="2025-01",
                         period_label_to="2025-12", months=months,
                         balance_as_of=date(2026, 11, 20), employer_total=1_628_000,
                         employee_total=880_000, development=12_345, balance_total=2_520_345)


async def statement(secret: str) -> bytes:
    maker = PooledDocumentMaker(secret=secret.encode(), verify_url="https://bot.example/verify",
                                  catalog=Catalog())
    try:
        issued = await maker.statement(data(), locale="id", issued_at=ISSUED_AT)
    finally:
        maker.close()
    assert issued.summary.issued_at == ISSUED_AT.replace(microsecond=0)
    return issued.pdf


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> OtpSettings:
    monkeypatch.setenv("OTP_SECRET", SECRET)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    return OtpSettings()


async def test_a_genuine_statement_exits_0_with_one_line(
        settings: OtpSettings, tmp_path: Path) -> None:
    path = tmp_path / "statement.pdf"
    path.write_bytes(await statement(SECRET))
    out = io.StringIO()
    assert run_verify_statement(settings, path, out) == 0
    line = out.getvalue()
    assert line.count("\n") == 1
    assert line.startswith("genuine: statement ")
    assert "S.R." in line and "*******8901" in line and "2025-01 to 2025-12" in line
    assert "Rp2,520,345" in line and "2026-11-20 09:30 UTC" in line
    assert "Siti" not in line and "12345678901" not in line


async def test_a_statement_signed_with_another_secret_is_not_genuine(
        settings: OtpSettings, tmp_path: Path) -> None:
    path = tmp_path / "other.pdf"
    path.write_bytes(await statement("another-secret"))
    out = io.StringIO()
    assert run_verify_statement(settings, path, out) == 1
    assert out.getvalue().startswith("not genuine: ")


@pytest.mark.parametrize("content", [b"", b"%PDF-1.4\nnot really", b"hello"])
def test_a_file_that_is_no_statement_is_unknown(
        settings: OtpSettings, tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.pdf"
    path.write_bytes(content)
    out = io.StringIO()
    assert run_verify_statement(settings, path, out) == 1
    assert out.getvalue().startswith("unknown: ")


def test_a_missing_file_is_unknown(settings: OtpSettings, tmp_path: Path) -> None:
    out = io.StringIO()
    assert run_verify_statement(settings, tmp_path / "missing.pdf", out) == 1
    assert out.getvalue().startswith("unknown: cannot read missing.pdf")


def test_an_altered_statement_is_said_so() -> None:
    line = verdict_line(Verdict(genuine=False, reason="altered", code="ABCD2345EF",
                                summary=None))
    assert line.startswith("altered: statement ABCD2345EF")


async def test_the_command_line(settings: OtpSettings, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "statement.pdf"
    pdf = await statement(SECRET)
    path.write_bytes(pdf)
    assert verify_pdf(pdf, statement_key(SECRET.encode())).genuine
    assert parse_args(["verify-statement", str(path)]).file == path
    assert main(["verify-statement", str(path)]) == 0
    assert capsys.readouterr().out.startswith("genuine: ")
    assert main(["verify-statement", str(tmp_path / "nothing.pdf")]) == 1


def test_the_file_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        parse_args(["verify-statement"])
    assert stopped.value.code == 2
    assert "FILE.pdf" in capsys.readouterr().err
