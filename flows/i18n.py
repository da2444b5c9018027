"""Translation of message ids into the member's language (gettext catalogs via Babel)."""

from __future__ import annotations


def N_(msgid: str) -> str:  # noqa: N802 - the gettext convention for a no-op marker
    """Mark ``msgid`` for extraction by ``pybabel extract`` without translating it now."""
    return msgid
