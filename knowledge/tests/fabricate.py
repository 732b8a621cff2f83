"""Documents made inside the tests: small PDFs (optionally encrypted), DOCX files, zip bombs."""

from __future__ import annotations

import io
import zipfile

_FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
# A Standard security handler whose /U does not match the empty password: PDFium asks for one.
_ENCRYPT = (
    b"<< /Filter /Standard /V 1 /R 2 /O <" + b"11" * 32 + b"> /U <" + b"22" * 32 + b"> /P -4 >>"
)


def pdf_bytes(pages: list[str], *, encrypted: bool = False) -> bytes:
    """A PDF with one line of Helvetica text per page (ASCII, no parentheses)."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"", _FONT]
    kids = []
    for index, text in enumerate(pages):
        number = 4 + 2 * index
        kids.append(f"{number} 0 R")
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources"
            b" << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (number + 1)
        )
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(pages)} >>".encode()
    if encrypted:
        objects.append(_ENCRYPT)
    return _pdf_file(objects, encrypted)


def _pdf_file(objects: list[bytes], encrypted: bool) -> bytes:
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    encrypt = f" /Encrypt {len(objects)} 0 R /ID [<{'ab' * 16}> <{'ab' * 16}>]" if encrypted else ""
    trailer = f"<< /Size {len(objects) + 1} /Root 1 0 R{encrypt} >>"
    out += f"trailer\n{trailer}\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def docx_bytes(*items: tuple[str, str]) -> bytes:
    """A DOCX of (style, text) paragraphs: style "h1".."h3" for headings, "" for body text."""
    import docx

    document = docx.Document()
    for style, text in items:
        if style.startswith("h"):
            document.add_heading(text, level=int(style[1:]))
        else:
            document.add_paragraph(text)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def zip_replace(data: bytes, member: str, content: bytes) -> bytes:
    """The zip `data` with one member's content replaced (or added)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            if info.filename != member:
                target.writestr(info, source.read(info), compress_type=zipfile.ZIP_DEFLATED)
        target.writestr(member, content, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def docx_bomb(inflated_bytes: int) -> bytes:
    """A real DOCX plus a member of `inflated_bytes` zeros (a few kB compressed)."""
    base = docx_bytes(("", "An innocent paragraph."))
    return zip_replace(base, "word/media/bomb.bin", b"\0" * inflated_bytes)


def understated_zip(data: bytes, member: str, declared: int) -> bytes:
    """`data` with `member`'s uncompressed size rewritten as `declared` in both headers."""
    patched = bytearray(data)
    name = member.encode()
    for signature, size_offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        position = patched.find(signature)
        while position != -1:
            name_offset = 30 if signature == b"PK\x03\x04" else 46
            if patched[position + name_offset : position + name_offset + len(name)] == name:
                start = position + size_offset
                patched[start : start + 4] = declared.to_bytes(4, "little")
            position = patched.find(signature, position + 4)
    return bytes(patched)
