"""E-mail (RFC 822/MIME) with the standard library: headers, then the text (or HTML) body."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage, Message
from pathlib import Path

from knowledge.extraction.formats.html import html_blocks
from knowledge.extraction.outline import paragraphs
from knowledge.extraction.textcodec import bom_encoding, utf16_without_bom
from knowledge.extraction.types import Block, Extracted, ExtractionError

_HEADERS = ("From", "To", "Cc", "Date", "Subject")
_ENCRYPTED = frozenset({"multipart/encrypted", "application/pkcs7-mime"})


def mail_extract(path: Path, name: str) -> Extracted:
    message = _parse(path.read_bytes())
    if message.get_content_type() in _ENCRYPTED:
        raise ExtractionError(
            "encrypted", "This e-mail is encrypted; only its sender and recipients can read it."
        )
    subject = " ".join(str(message.get("Subject", "")).split())
    header = "\n".join(f"{h}: {message[h]}" for h in _HEADERS if message.get(h))
    blocks = [Block(header, None, "")] if header else []
    blocks += _body_blocks(message)
    attachments = [part.get_filename() for part in message.iter_attachments()]
    names = ", ".join(str(n) for n in attachments if n)
    if names:
        blocks.append(Block(f"Attachments: {names}", None, ""))
    return Extracted("message/rfc822", subject, blocks, None)


def _parse(data: bytes) -> EmailMessage:
    """UTF-16/32 files (whole message re-encoded) are turned back into bytes as UTF-8."""
    found = bom_encoding(data)
    encoding = found[0] if found else utf16_without_bom(data)
    if encoding and encoding != "utf-8":
        data = data.decode(encoding, "replace").lstrip("\ufeff").encode("utf-8")
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def _body_blocks(message: EmailMessage) -> list[Block]:
    body = message.get_body(preferencelist=("plain", "html"))
    if body is None:
        return []
    text = _content(body)
    if body.get_content_type() == "text/html":
        return html_blocks(text)[0]
    return [Block(part, None, "") for part in paragraphs(text)]


def _content(part: Message) -> str:
    try:
        content = part.get_content()  # type: ignore[attr-defined]
    except (LookupError, ValueError, AssertionError):  # unknown charset, broken encoding
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    return content if isinstance(content, str) else ""
