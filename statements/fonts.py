"""The DejaVu Sans fonts shipped inside matplotlib, prepared once per process for fpdf2.

Parsing the full DejaVu Sans (6,000 glyphs) costs fpdf2 about 50 ms per font and document, and
subsetting it on output as much again. So the fonts are cut once per process to the scripts
member names and the two languages use (Latin with its extensions, Greek, Cyrillic,
punctuation, currency and a few symbols): about a third of the glyphs. A document whose text
holds a character outside that set gets the full font instead (slower, same look), so any name
DejaVu can draw renders.
"""

from __future__ import annotations

import io
import threading
from functools import cache
from pathlib import Path

FAMILY = "DejaVu"
_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}
_RANGES = ((0x20, 0x24F), (0x300, 0x36F), (0x370, 0x3FF), (0x400, 0x4FF), (0x1E00, 0x1EFF),
           (0x2000, 0x206F), (0x20A0, 0x20CF), (0x2100, 0x215F), (0x2190, 0x21FF),
           (0x2212, 0x2212), (0x25A0, 0x25FF), (0x2713, 0x2717))
_LOCK = threading.Lock()


def font_path(style: str = "") -> Path:
    """The path of DejaVu Sans (``""``) or DejaVu Sans Bold (``"B"``) inside matplotlib."""
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf" / _FILES[style]


@cache
def covered() -> frozenset[int]:
    """The code points of the reduced fonts."""
    return frozenset(cp for low, high in _RANGES for cp in range(low, high + 1))


def reduced_font(style: str) -> bytes:
    """DejaVu Sans (``style`` ``""`` or ``"B"``) cut to :func:`covered`, as TTF bytes."""
    with _LOCK:  # built once; concurrent first documents wait instead of building twice
        return _reduced(style)


@cache
def _reduced(style: str) -> bytes:
    from fontTools import subset  # type: ignore[import-untyped]
    from fontTools.ttLib import TTFont  # type: ignore[import-untyped]

    font = TTFont(font_path(style), recalcTimestamp=False)
    options = subset.Options()
    options.notdef_outline = True
    options.glyph_names = True
    options.layout_features = []
    options.hinting = False
    options.drop_tables = [*options.drop_tables, "FFTM", "GPOS", "GSUB", "GDEF", "kern"]
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=sorted(covered()))
    subsetter.subset(font)
    buffer = io.BytesIO()
    font.save(buffer)
    return buffer.getvalue()


def add_fonts(pdf: object, text: str) -> None:
    """Add the regular and bold family :data:`FAMILY` to the fpdf2 document ``pdf``: the
    reduced fonts when they cover every character of ``text``, else the full files."""
    from fpdf import FPDF
    from fpdf.fonts import TTFFont

    assert isinstance(pdf, FPDF)
    if all(ord(ch) in covered() for ch in text):
        for style in _FILES:
            key = f"{FAMILY.lower()}{style}"
            # fpdf2's add_font reads only files; its TTFFont also reads a file object.
            pdf.fonts[key] = TTFFont(pdf, io.BytesIO(reduced_font(style)),  # type: ignore[arg-type]
                                     key, style)
        return
    for style in _FILES:
        pdf.add_font(FAMILY, style, font_path(style))
