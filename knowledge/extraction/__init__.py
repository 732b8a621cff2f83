"""Stored files to text blocks: type detection by content, limits, isolated parsing.

extracted = document_extract(path=path, name="manual.pdf")
for block in extracted.blocks: ...  # Block(text, page, section)
"""

from knowledge.extraction.detect import SUPPORTED_MEDIA_TYPES, media_type_detect
from knowledge.extraction.extract import document_extract
from knowledge.extraction.types import Block, Extracted, ExtractionError, ExtractionLimits

__all__ = [
    "SUPPORTED_MEDIA_TYPES",
    "Block",
    "Extracted",
    "ExtractionError",
    "ExtractionLimits",
    "document_extract",
    "media_type_detect",
]
