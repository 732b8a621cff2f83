"""DOCX with python-docx (MIT): paragraphs, tables, text boxes; "Heading N" styles make sections.

Pages are not reported: a DOCX has no pages until a word processor lays it out.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from knowledge.extraction.outline import BlockList
from knowledge.extraction.tables import row_text
from knowledge.extraction.types import Extracted

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
_TEXT_TAGS = (f"{_W}t", f"{_W}tab", f"{_W}br", f"{_W}cr")
_HEADING_STYLE = re.compile(r"^heading\s*(\d)$", re.I)


def docx_extract(path: Path, name: str) -> Extracted:
    import docx

    document = docx.Document(str(path))
    body = document.element.body
    for fallback in list(body.iter(_MC_FALLBACK)):  # VML copies of text boxes: read once
        fallback.getparent().remove(fallback)
    blocks = BlockList()
    styles = _style_names(document)
    _headers_footers(document, blocks, "header")
    for item in document.iter_inner_content():
        if hasattr(item, "rows"):
            _table(item, blocks)
        else:
            _paragraph(item, blocks, styles)
    _headers_footers(document, blocks, "footer")
    title = (document.core_properties.title or "").strip() or blocks.first_heading
    return Extracted(
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        title,
        blocks.finish(),
        None,
    )


def _paragraph(paragraph: Any, blocks: BlockList, styles: dict[str, str]) -> None:
    text = paragraph_text(paragraph._p)
    level = _heading_level(styles.get(paragraph._p.style or "", ""))
    if level is not None:
        blocks.heading(level, text)
    else:
        blocks.add(text)


def paragraph_text(element: Any) -> str:
    """All text under a w:p, text boxes included; tabs and breaks become whitespace."""
    parts = []
    for node in element.iter(_TEXT_TAGS):
        parts.append(node.text or "" if node.tag == _TEXT_TAGS[0] else " ")
    return " ".join("".join(parts).split())


def _heading_level(style: str) -> int | None:
    if style.lower() == "title":
        return 1
    match = _HEADING_STYLE.match(style)
    return int(match.group(1)) if match else None


def _style_names(document: Any) -> dict[str, str]:
    """Style id -> name, read once (python-docx looks a paragraph's style up by a scan)."""
    styles = document.styles.element
    return {s.styleId: (s.name_val or s.styleId) for s in styles.style_lst if s.styleId}


def _table(table: Any, blocks: BlockList) -> None:
    lines = []
    for row in table._tbl.tr_lst:
        cells = [paragraph_text(cell) for cell in row.tc_lst]
        deduplicated = [c for i, c in enumerate(cells) if i == 0 or c != cells[i - 1]]
        lines.append(row_text(deduplicated))
    blocks.add("\n".join(line for line in lines if line))


def _headers_footers(document: Any, blocks: BlockList, kind: str) -> None:
    """Each distinct header (or footer) text once, not once per section."""
    seen: set[str] = set()
    for section in document.sections:
        part = getattr(section, kind)
        if part.is_linked_to_previous:
            continue
        outer = part._element.xpath(".//w:p[not(ancestor::w:p)]")  # tables and boxes too
        text = "\n".join(filter(None, (paragraph_text(p) for p in outer)))
        if text and text not in seen:
            seen.add(text)
            blocks.add(text, section="")
