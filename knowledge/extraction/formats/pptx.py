"""PPTX with python-pptx (MIT): one page per slide, its title as the section."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from knowledge.extraction.outline import BlockList
from knowledge.extraction.tables import row_text
from knowledge.extraction.types import Extracted, ExtractionError, ExtractionLimits

PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"


def pptx_extract(path: Path, name: str, limits: ExtractionLimits) -> Extracted:
    import pptx

    presentation = pptx.Presentation(str(path))
    slides = list(presentation.slides)
    if len(slides) > limits.max_pages:
        raise ExtractionError(
            "too_many_pages",
            f"The presentation has {len(slides)} slides; at most {limits.max_pages} are accepted.",
        )
    blocks = BlockList()
    first_title = ""
    for number, slide in enumerate(slides, start=1):
        title = _slide_title(slide)
        first_title = first_title or title
        if title:
            blocks.heading(1, title, page=number)
        for text in _shape_texts(slide.shapes, skip=_title_shape(slide)):
            blocks.add(text, page=number, section=title)
        if slide.has_notes_slide:
            notes = slide.notes_slide.notes_text_frame
            blocks.add(notes.text if notes is not None else "", page=number, section=title)
    document_title = (presentation.core_properties.title or "").strip() or first_title
    return Extracted(PPTX, document_title, blocks.finish(), len(slides))


def _title_shape(slide: Any) -> Any:
    try:
        return slide.shapes.title
    except (KeyError, ValueError):
        return None


def _slide_title(slide: Any) -> str:
    shape = _title_shape(slide)
    return " ".join(shape.text_frame.text.split()) if shape is not None else ""


def _shape_texts(shapes: Any, *, skip: Any = None) -> list[str]:
    """The text of every shape, in order, group shapes and tables included."""
    texts: list[str] = []
    for shape in shapes:
        if skip is not None and shape.shape_id == skip.shape_id:
            continue
        if shape.shape_type is not None and hasattr(shape, "shapes"):  # a group
            texts.extend(_shape_texts(shape.shapes))
        elif getattr(shape, "has_table", False):
            rows = (row_text([cell.text for cell in row.cells]) for row in shape.table.rows)
            texts.append("\n".join(row for row in rows if row))
        elif getattr(shape, "has_text_frame", False):
            texts.append(shape.text_frame.text)
    return texts
