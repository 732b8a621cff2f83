"""The media type of a file from its first bytes; the file name only tells text flavours apart."""

from __future__ import annotations

import re

from knowledge.extraction.textcodec import is_mostly_printable, text_encoding

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HTML = "text/html"
MARKDOWN = "text/markdown"
PLAIN = "text/plain"
CSV = "text/csv"
RST = "text/x-rst"
EML = "message/rfc822"
ZIP = "application/zip"
OLE = "application/x-ole-storage"  # legacy .doc/.xls/.ppt, and encrypted OOXML files
EMPTY = "application/x-empty"
BINARY = "application/octet-stream"

SUPPORTED_MEDIA_TYPES: frozenset[str] = frozenset(
    {PDF, DOCX, PPTX, XLSX, HTML, MARKDOWN, PLAIN, CSV, RST, EML}
)
HEAD_BYTES = 65536  # how much of a file media_type_detect wants to see

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", OLE),
    (b"{\\rtf", "application/rtf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"\x1f\x8b", "application/gzip"),
    (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (b"Rar!", "application/vnd.rar"),
    (b"\x7fELF", "application/x-executable"),
)
_ZIP_MIMETYPE = re.compile(rb"^PK\x03\x04.{26}mimetype([\x20-\x7e]{1,80}?)(?:PK|\x00|$)", re.S)
_ZIP_PARTS = ((b"word/", DOCX), (b"ppt/", PPTX), (b"xl/", XLSX))
_HTML_START = re.compile(
    rb"^(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body|title|meta|div|p|h[1-6]|table|ul"
    rb"|ol|section|article|span|a|br|main|header|footer|form|img|link|script|style)[\s>/]",
    re.I | re.S,
)
_EMAIL_HEADER = re.compile(
    r"^(from|to|cc|subject|date|message-id|mime-version|received|return-path|reply-to"
    r"|content-type|delivered-to|x-[\w-]+):[ \t]",
    re.I | re.M,
)
_TEXT_FLAVOURS = {
    ".md": MARKDOWN,
    ".markdown": MARKDOWN,
    ".csv": CSV,
    ".rst": RST,
    ".json": "application/json",
}


def media_type_detect(head: bytes, *, name: str = "") -> str:
    """The media type of a file whose first bytes (ideally HEAD_BYTES of them) are `head`."""
    if not head:
        return EMPTY
    if b"%PDF-" in head[:1024]:
        return PDF
    if head.startswith(b"PK\x03\x04"):
        return zip_media_type(head)
    for magic, media_type in _MAGIC:
        if head.startswith(magic):
            return media_type
    return _text_media_type(head, name)


def zip_media_type(head: bytes, names: list[str] | None = None) -> str:
    """An OOXML type from member names (the central directory's when given, else the head's)."""
    mimetype = _ZIP_MIMETYPE.match(head)
    if mimetype:  # OpenDocument and EPUB store their type first, uncompressed
        return mimetype.group(1).decode("ascii")
    for marker, media_type in _ZIP_PARTS:
        if names is None and marker in head:
            return media_type
        if names is not None and any(n.encode().startswith(marker) for n in names):
            return media_type
    return ZIP


def _text_media_type(head: bytes, name: str) -> str:
    encoding = text_encoding(head)
    if encoding is None:
        return BINARY
    text = head.decode(encoding, "ignore")
    if not is_mostly_printable(text):
        return BINARY
    stripped = text.lstrip("\ufeff \t\r\n")
    if not stripped:
        return PLAIN  # whitespace only: extraction says it is empty
    if _looks_like_html(stripped):
        return HTML
    if stripped.startswith("<?xml"):
        return "application/xml"
    if _looks_like_email(stripped):
        return EML
    suffix = name.lower().rpartition(".")[2] if "." in name else ""
    return _TEXT_FLAVOURS.get(f".{suffix}", PLAIN)


def _looks_like_html(text: str) -> bool:
    start = text[:2048].encode("utf-8", "ignore")
    if start.startswith(b"<?xml"):
        return b"<html" in start.lower()
    return bool(_HTML_START.match(start))


def _looks_like_email(text: str) -> bool:
    """At least two well-known header lines before the first blank line, one on line 1."""
    if text.startswith("From "):  # an mbox separator line before the headers
        text = text.partition("\n")[2]
    header = re.split(r"\r?\n\r?\n", text[:8192], maxsplit=1)[0]
    return bool(_EMAIL_HEADER.match(header)) and len(_EMAIL_HEADER.findall(header)) >= 2
