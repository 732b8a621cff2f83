"""XLSX with openpyxl (MIT), read-only and with cached values: one page per sheet."""

from __future__ import annotations

from pathlib import Path

from knowledge.extraction.tables import row_blocks
from knowledge.extraction.types import Extracted, ExtractionError, ExtractionLimits

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def xlsx_extract(path: Path, name: str, limits: ExtractionLimits) -> Extracted:
    import openpyxl

    workbook = openpyxl.load_workbook(str(path), read_only=True, data_only=True)
    try:
        sheets = workbook.worksheets
        if len(sheets) > limits.max_pages:
            raise ExtractionError(
                "too_many_pages",
                f"The workbook has {len(sheets)} sheets; at most {limits.max_pages} are accepted.",
            )
        blocks = []
        for number, sheet in enumerate(sheets, start=1):
            rows = sheet.iter_rows(values_only=True)
            blocks += row_blocks(rows, page=number, section=sheet.title)
        title = (workbook.properties.title or "").strip()
    finally:
        workbook.close()
    return Extracted(XLSX, title, blocks, len(sheets))
