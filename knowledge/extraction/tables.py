"""Rows of a table (a sheet, a CSV) as blocks of a few rows, each led by the header row."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from knowledge.extraction.types import Block

ROWS_CHARS = 1200  # about 250 MiniLM tokens of cells per block at most


def row_text(cells: Sequence[object]) -> str:
    values = ["" if cell is None else " ".join(str(cell).split()) for cell in cells]
    while values and not values[-1]:
        values.pop()
    return " | ".join(values).strip() if any(values) else ""


def row_blocks(rows: Iterable[Sequence[object]], *, page: int | None, section: str) -> list[Block]:
    """Non-empty rows grouped into blocks; the first row (the header) leads every block."""
    blocks: list[Block] = []
    header = ""
    group: list[str] = []
    size = 0
    for cells in rows:
        line = row_text(cells)
        if not line:
            continue
        if not header:
            header = line
            continue
        if group and size + len(line) > ROWS_CHARS:
            blocks.append(Block("\n".join([header, *group]), page, section))
            group, size = [], 0
        group.append(line)
        size += len(line) + 1
    if group or header:
        blocks.append(Block("\n".join([header, *group]), page, section))
    return blocks
