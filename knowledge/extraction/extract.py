"""document_extract: size and type checks here, the parse itself in an isolated child."""

from __future__ import annotations

import functools
from pathlib import Path, PurePath

from knowledge.extraction import detect
from knowledge.extraction.containers import ole_check, zip_check
from knowledge.extraction.isolation import run_isolated
from knowledge.extraction.types import Extracted, ExtractionError, ExtractionLimits

_NAMES_OF = {
    detect.PDF: "PDF",
    detect.DOCX: "Word document (DOCX)",
    detect.PPTX: "PowerPoint presentation (PPTX)",
    detect.XLSX: "Excel workbook (XLSX)",
    detect.HTML: "HTML",
    detect.EML: "e-mail",
    detect.OLE: "legacy Office document",
    detect.ZIP: "zip archive",
    detect.BINARY: "binary data",
}
# A name with one of these extensions must hold that format: an HTML page named .pdf is
# refused rather than read, because someone made it look like what it is not.
_BINARY_EXTENSIONS = {".pdf": detect.PDF, ".docx": detect.DOCX, ".pptx": detect.PPTX,
                      ".xlsx": detect.XLSX}  # fmt: skip


def document_extract(
    *, path: Path, name: str = "", limits: ExtractionLimits | None = None
) -> Extracted:
    """The text blocks of the file at `path` (`name` is what the uploader called it).

    Raises ExtractionError with a code and a reason a person understands.
    """
    limits = limits or ExtractionLimits.from_settings()
    name = name or path.name
    media_type = _checked_media_type(path, name, limits)
    _parsers_import()
    extracted = run_isolated(
        lambda: _parse(media_type, path, name, limits),
        max_seconds=limits.max_seconds,
        max_memory_bytes=limits.max_memory_bytes,
    )
    if not extracted.blocks:
        raise _nothing_to_read(media_type)
    return Extracted(
        media_type=extracted.media_type,
        title=extracted.title or PurePath(name).stem or name,
        blocks=extracted.blocks,
        page_count=extracted.page_count,
    )


def _checked_media_type(path: Path, name: str, limits: ExtractionLimits) -> str:
    size = path.stat().st_size
    if size == 0:
        raise ExtractionError("empty", "The file is empty.")
    if size > limits.max_bytes:
        raise ExtractionError(
            "too_large",
            f"The file is {_mb(size)}; at most {_mb(limits.max_bytes)} are accepted.",
        )
    with path.open("rb") as file:
        head = file.read(detect.HEAD_BYTES)
    media_type = detect.media_type_detect(head, name=name)
    if media_type == detect.OLE:
        ole_check(path)
    if media_type in (detect.ZIP, detect.DOCX, detect.PPTX, detect.XLSX):
        names = zip_check(path, max_decompressed_bytes=limits.max_decompressed_bytes)
        media_type = detect.zip_media_type(head, names)
    _name_matches(name, media_type)
    if media_type not in detect.SUPPORTED_MEDIA_TYPES:
        raise ExtractionError(
            "unsupported_type",
            f"This file type ({_describe(media_type)}) is not supported. Supported: PDF, DOCX, "
            "PPTX, XLSX, HTML, Markdown, plain text, CSV and e-mail (.eml).",
        )
    return media_type


def _name_matches(name: str, media_type: str) -> None:
    expected = _BINARY_EXTENSIONS.get(PurePath(name).suffix.lower())
    if expected is not None and media_type != expected:
        raise ExtractionError(
            "unsupported_type",
            f"The file is named {PurePath(name).name!r} but its content is "
            f"{_describe(media_type)}, not {_describe(expected)}; it was not read.",
        )


def _parse(media_type: str, path: Path, name: str, limits: ExtractionLimits) -> Extracted:
    from knowledge.extraction.formats import docx, html, mail, markdown, pdf, plaintext, pptx, xlsx

    if media_type == detect.PDF:
        return pdf.pdf_extract(path, name, limits)
    if media_type == detect.DOCX:
        return docx.docx_extract(path, name)
    if media_type == detect.PPTX:
        return pptx.pptx_extract(path, name, limits)
    if media_type == detect.XLSX:
        return xlsx.xlsx_extract(path, name, limits)
    if media_type == detect.HTML:
        return html.html_extract(path, name)
    if media_type == detect.MARKDOWN:
        return markdown.markdown_extract(path, name)
    if media_type == detect.EML:
        return mail.mail_extract(path, name)
    if media_type == detect.CSV:
        return plaintext.csv_extract(path, name)
    return plaintext.plaintext_extract(path, name, media_type)


@functools.cache
def _parsers_import() -> None:
    """Import the parsers once in this process, so each forked child has them already."""
    import docx  # noqa: F401
    import lxml.html  # noqa: F401
    import markdown_it  # noqa: F401
    import openpyxl  # noqa: F401
    import pptx  # noqa: F401
    import pypdfium2  # noqa: F401

    from knowledge.extraction import formats  # noqa: F401


def _nothing_to_read(media_type: str) -> ExtractionError:
    if media_type == detect.PDF:
        return ExtractionError(
            "no_text",
            "This PDF has no text layer (it is probably scanned images); OCR is not supported.",
        )
    if media_type in (detect.PLAIN, detect.MARKDOWN, detect.CSV, detect.RST):
        return ExtractionError("empty", "The file contains only whitespace.")
    return ExtractionError("no_text", f"No text was found in this {_describe(media_type)}.")


def _describe(media_type: str) -> str:
    return _NAMES_OF.get(media_type, media_type)


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"
