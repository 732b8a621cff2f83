"""PDF with pypdfium2 (PDFium, BSD/Apache): one block per page, sections from the bookmarks."""

from __future__ import annotations

import bisect
import re
from pathlib import Path

from knowledge.extraction.outline import Outline, paragraphs
from knowledge.extraction.types import Block, Extracted, ExtractionError, ExtractionLimits

_HYPHENATED = re.compile(r"(\w)-\n(\w)")
_LINE_BREAK = re.compile(r"(?<!\n)\n(?!\n)")


def pdf_extract(path: Path, name: str, limits: ExtractionLimits) -> Extracted:
    import pypdfium2 as pdfium

    try:
        document = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        raise _open_error(exc) from exc
    try:
        page_count = len(document)
        if page_count > limits.max_pages:
            raise ExtractionError(
                "too_many_pages",
                f"The PDF has {page_count} pages; at most {limits.max_pages} are accepted.",
            )
        sections = _page_sections(document, page_count)
        blocks = [
            Block(text=text, page=number, section=sections(number))
            for number, text in _page_texts(document, page_count)
        ]
        title = str(document.get_metadata_dict(skip_empty=True).get("Title", "")).strip()
    finally:
        document.close()
    return Extracted("application/pdf", title, blocks, page_count)


def _open_error(exc: Exception) -> ExtractionError:
    if "password" in str(exc).lower():
        return ExtractionError(
            "encrypted",
            "This PDF is password-protected. Remove the password and upload it again.",
        )
    return ExtractionError("corrupt", "The PDF is damaged and cannot be opened.")


def _page_texts(document: object, page_count: int) -> list[tuple[int, str]]:
    texts = []
    for index in range(page_count):
        page = document[index]  # type: ignore[index]
        textpage = page.get_textpage()
        try:
            raw = textpage.get_text_bounded()
        finally:
            textpage.close()
            page.close()
        text = "\n\n".join(_join_lines(part) for part in paragraphs(raw.replace("\r\n", "\n")))
        if text:
            texts.append((index + 1, text))
    return texts


def _join_lines(paragraph: str) -> str:
    """PDF lines end where the layout wrapped them: join them, undoing hyphenation."""
    return _LINE_BREAK.sub(" ", _HYPHENATED.sub(r"\1\2", paragraph))


def _page_sections(document: object, page_count: int) -> _SectionOfPage:
    """The bookmark path in force on each page (the last bookmark at or before it)."""
    starts: list[int] = []
    paths: list[str] = []
    outline = Outline()
    try:
        toc = list(document.get_toc(max_depth=6))  # type: ignore[attr-defined]
    except Exception:  # a damaged outline only costs the section names
        toc = []
    for item in toc:
        outline.heading(item.level + 1, item.get_title() or "")
        dest = item.get_dest()
        page = dest.get_index() if dest is not None else None
        if page is not None and 0 <= page < page_count and (not starts or page >= starts[-1]):
            starts.append(page + 1)
            paths.append(outline.path)
    return _SectionOfPage(starts, paths)


class _SectionOfPage:
    def __init__(self, starts: list[int], paths: list[str]) -> None:
        self._starts = starts
        self._paths = paths

    def __call__(self, page: int) -> str:
        index = bisect.bisect_right(self._starts, page) - 1
        return self._paths[index] if index >= 0 else ""
