"""Demo members of the reference balance service, seeded into the embedded default database.

Their NIKs follow the real layout ``PP KK CC DDMMYY SSSS`` (40 added to the day for women), so
registration can be tried end to end without real personal data. The phone numbers and
addresses are fictitious (``example.com``).
"""

from __future__ import annotations

from datetime import date

from storage.models import Member, MemberStatus, Segment

DEMO_MEMBERS: tuple[Member, ...] = (
    Member(kpj="12345678901", nik="3171014501900001", name="Siti Rahayu",
           birth_date=date(1990, 1, 5), phone="+6281234567890", email="siti@example.com",
           segment=Segment.PU, status=MemberStatus.ACTIVE,
           employer_npp="12345678", employer_name="PT Maju Bersama"),
    Member(kpj="23456789012", nik="3273021708850003", name="Budi Santoso",
           birth_date=date(1985, 8, 17), phone="+6285612345678", email="budi@example.com",
           segment=Segment.PU, status=MemberStatus.ACTIVE,
           employer_npp="23456789", employer_name="PT Sinar Terang"),
    Member(kpj="34567890123", nik="3578031212920002", name="Agus Wijaya",
           birth_date=date(1992, 12, 12), phone="+6281398765432", email="",
           segment=Segment.BPU, status=MemberStatus.ACTIVE,
           employer_npp=None, employer_name=None),
    Member(kpj="45678901234", nik="5171046303880004", name="Dewi Lestari",
           birth_date=date(1988, 3, 23), phone="+6287711223344", email="dewi@example.com",
           segment=Segment.PU, status=MemberStatus.INACTIVE,
           employer_npp="34567890", employer_name="CV Karya Mandiri"),
)
"""Four members: two women (NIK day + 40), an own-account worker without employer, and an
inactive member."""
