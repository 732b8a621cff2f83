"""Bytes to text: byte-order marks, BOM-less UTF-16, UTF-8, then a charset guess."""

from __future__ import annotations

import codecs
import unicodedata

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_ALLOWED_CONTROLS = frozenset("\t\n\r\f\v\x1b")
_SHORT_SAMPLE = 4096


def bom_encoding(data: bytes) -> tuple[str, int] | None:
    """The encoding a byte-order mark announces, and the mark's length."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding, len(bom)
    return None


def utf16_without_bom(data: bytes) -> str | None:
    """ "utf-16-le"/"utf-16-be" when every other byte is NUL (ASCII-range UTF-16 text)."""
    sample = data[:4096]
    if len(sample) < 4:
        return None
    even_nuls = sample[0::2].count(0) / len(sample[0::2])
    odd_nuls = sample[1::2].count(0) / len(sample[1::2])
    if odd_nuls > 0.6 and even_nuls < 0.1:
        return "utf-16-le"
    if even_nuls > 0.6 and odd_nuls < 0.1:
        return "utf-16-be"
    return None


def text_encoding(data: bytes) -> str | None:
    """The encoding of `data` if it looks like text, else None (binary)."""
    found = bom_encoding(data)
    if found:
        return found[0]
    encoding = utf16_without_bom(data)
    if encoding:
        return encoding
    if b"\x00" in data[:8192]:
        return None
    if _decodes(data[:65536], "utf-8"):
        return "utf-8"
    return _guess(data[:65536])


def decode_text(data: bytes, *, declared: str | None = None) -> str:
    """`data` as text; `declared` (e.g. an HTML meta charset) wins over guessing."""
    found = bom_encoding(data)
    if found:
        return data[found[1] :].decode(found[0], "replace")
    encoding = utf16_without_bom(data) or _known(declared)
    if encoding is None:
        encoding = "utf-8" if _decodes(data, "utf-8") else (_guess(data) or "cp1252")
    return data.decode(encoding, "replace")


def is_mostly_printable(text: str) -> bool:
    """False for decoded binary: more than 1% control characters."""
    if not text:
        return True
    controls = sum(
        1 for c in text if c not in _ALLOWED_CONTROLS and unicodedata.category(c) == "Cc"
    )
    return controls <= len(text) // 100


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        codecs.getincrementaldecoder(encoding)().decode(data, final=False)
    except UnicodeDecodeError:
        return False
    return True


def _known(encoding: str | None) -> str | None:
    if not encoding:
        return None
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        return None


def _guess(data: bytes) -> str | None:
    """A statistical guess; on a short sample that is unreliable, so windows-1252 (what
    browsers assume for unlabelled Western text) is taken instead."""
    if len(data) < _SHORT_SAMPLE and _decodes(data, "cp1252"):
        return "cp1252"
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    return best.encoding if best is not None else None
