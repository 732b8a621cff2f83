"""Checks on containers before a parser opens them: zip bombs, encrypted Office files."""

from __future__ import annotations

import zipfile
from pathlib import Path

from knowledge.extraction.types import ExtractionError

MAX_ZIP_MEMBERS = 10_000
_READ_CHUNK = 1 << 20
_ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")


def zip_check(path: Path, *, max_decompressed_bytes: int) -> list[str]:
    """The member names, once the declared and the real uncompressed sizes are within limits.

    The declared sizes are checked first (cheap); then every member is inflated and counted
    without keeping it, because a crafted header can understate what a member inflates to.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            _declared_sizes_check(members, max_decompressed_bytes)
            _real_sizes_check(archive, members, max_decompressed_bytes)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as exc:
        raise ExtractionError("corrupt", f"The file is a damaged archive ({exc}).") from exc
    return [member.filename for member in members]


def ole_check(path: Path) -> None:
    """An OLE compound file is an encrypted Office document or a legacy .doc/.xls/.ppt."""
    if _ENCRYPTED_PACKAGE in path.read_bytes():
        raise ExtractionError(
            "encrypted",
            "This Office document is password-protected. Remove the password and upload it again.",
        )
    raise ExtractionError(
        "unsupported_type",
        "This is a legacy Office file (.doc, .xls or .ppt). Save it as .docx, .xlsx or .pptx.",
    )


def _declared_sizes_check(members: list[zipfile.ZipInfo], limit: int) -> None:
    if len(members) > MAX_ZIP_MEMBERS:
        raise _bomb(f"it has {len(members)} parts (at most {MAX_ZIP_MEMBERS})")
    if any(member.flag_bits & 0x1 for member in members):
        raise ExtractionError("encrypted", "The document's archive is encrypted.")
    declared = sum(member.file_size for member in members)
    if declared > limit:
        raise _bomb(f"it unpacks to {declared:,} bytes (at most {limit:,})")


def _real_sizes_check(archive: zipfile.ZipFile, members: list[zipfile.ZipInfo], limit: int) -> None:
    total = 0
    for member in members:
        with archive.open(member) as stream:
            while chunk := stream.read(_READ_CHUNK):
                total += len(chunk)
                if total > limit:
                    raise _bomb(f"it unpacks to more than {limit:,} bytes")


def _bomb(detail: str) -> ExtractionError:
    return ExtractionError(
        "decompression_bomb", f"The document was refused because {detail}: a possible zip bomb."
    )
