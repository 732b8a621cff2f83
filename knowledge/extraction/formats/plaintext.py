"""Plain text (and reStructuredText, read as text): one block per paragraph."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from knowledge.extraction.outline import paragraphs
from knowledge.extraction.tables import row_blocks
from knowledge.extraction.textcodec import decode_text
from knowledge.extraction.types import Block, Extracted


def plaintext_extract(path: Path, name: str, media_type: str) -> Extracted:
    text = decode_text(path.read_bytes())
    blocks = [Block(text=part, page=None, section="") for part in paragraphs(text)]
    return Extracted(media_type, "", blocks, None)


def csv_extract(path: Path, name: str) -> Extracted:
    text = decode_text(path.read_bytes())
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(text[:8192], ",;\t|")
    except csv.Error:
        dialect = csv.excel
    rows = [[cell.strip() for cell in row] for row in csv.reader(io.StringIO(text), dialect)]
    return Extracted("text/csv", "", row_blocks(rows, page=None, section=""), None)
