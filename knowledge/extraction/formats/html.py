"""HTML with lxml (BSD): paragraphs, list items and table rows under their heading path.

Nothing is fetched: lxml's HTML parser has no network access, and scripts, styles,
embedded objects and navigation are skipped. Whitespace collapses except inside <pre>.
"""

from __future__ import annotations

import re
from pathlib import Path

from knowledge.extraction.outline import BlockList, clean_inline
from knowledge.extraction.textcodec import decode_text
from knowledge.extraction.types import Block, Extracted

_SKIP = frozenset(
    {"script", "style", "noscript", "template", "head", "nav", "svg", "math", "object",
     "embed", "iframe", "canvas", "select", "button", "audio", "video", "map"}
)  # fmt: skip
_BLOCK = frozenset(
    {"p", "div", "li", "dd", "dt", "blockquote", "pre", "tr", "table", "ul", "ol", "dl",
     "section", "article", "main", "header", "footer", "aside", "figure", "figcaption",
     "caption", "address", "form", "fieldset", "details", "summary", "hr", "body", "center",
     "h1", "h2", "h3", "h4", "h5", "h6", "thead", "tbody", "tfoot", "legend"}
)  # fmt: skip
_HEADINGS = {f"h{level}": level for level in range(1, 7)}
_CELLS = frozenset({"td", "th"})
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([\w.:-]+)""", re.I)
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")


def html_extract(path: Path, name: str) -> Extracted:
    text = html_decode(path.read_bytes())
    blocks, title = html_blocks(text)
    return Extracted("text/html", title, blocks, None)


def html_decode(data: bytes) -> str:
    declared = _META_CHARSET.search(data[:4096])
    charset = declared.group(1).decode("ascii", "ignore") if declared else None
    return _XML_DECLARATION.sub("", decode_text(data, declared=charset), count=1)


def html_blocks(text: str, *, page: int | None = None) -> tuple[list[Block], str]:
    """The blocks of an HTML document and its <title> (or first heading)."""
    from lxml import etree, html

    parser = html.HTMLParser(
        no_network=True, remove_comments=True, remove_pis=True, default_doctype=False
    )
    root = html.document_fromstring(text, parser=parser) if text.strip() else None
    blocks = BlockList()
    if root is None:
        return [], ""
    _Walker(blocks, page).walk(root, etree)
    title_element = root.find(".//title")
    title = " ".join((title_element.text_content() if title_element is not None else "").split())
    return blocks.finish(), title or blocks.first_heading


class _Walker:
    """Collects text into a buffer, flushed as a block at every block-level boundary."""

    def __init__(self, blocks: BlockList, page: int | None) -> None:
        self.blocks = blocks
        self.page = page
        self.buffer: list[str] = []
        self.skip_depth = 0
        self.pre_depth = 0

    def walk(self, root: object, etree: object) -> None:
        for event, element in etree.iterwalk(root, events=("start", "end")):  # type: ignore[attr-defined]
            tag = element.tag if isinstance(element.tag, str) else ""
            if event == "start":
                self._start(element, tag.lower())
            else:
                self._end(element, tag.lower())
        self._flush()

    def _start(self, element: object, tag: str) -> None:
        if self.skip_depth or tag in _SKIP or _hidden(element):
            self.skip_depth += 1
            return
        if tag in _BLOCK:
            self._flush()
        if tag == "pre":
            self.pre_depth += 1
        if tag == "br":
            self.buffer.append("\n")
        elif tag in _CELLS and any(part.strip() for part in self.buffer):
            self.buffer.append(" | ")
        elif tag == "img":
            self.buffer.append(element.get("alt", ""))  # type: ignore[attr-defined]
        self.buffer.append(element.text or "")  # type: ignore[attr-defined]

    def _end(self, element: object, tag: str) -> None:
        if self.skip_depth:
            self.skip_depth -= 1
        elif tag in _HEADINGS:
            self.blocks.heading(_HEADINGS[tag], "".join(self.buffer))
            self.buffer.clear()
        elif tag in _BLOCK:
            self._flush()
        if tag == "pre" and self.pre_depth:
            self.pre_depth -= 1
        if not self.skip_depth:
            self.buffer.append(element.tail or "")  # type: ignore[attr-defined]

    def _flush(self) -> None:
        raw = "".join(self.buffer)
        self.buffer.clear()
        text = clean_inline(raw) if self.pre_depth else " ".join(raw.split())
        self.blocks.add(text, page=self.page)


def _hidden(element: object) -> bool:
    get = element.get  # type: ignore[attr-defined]
    return bool(
        get("hidden") is not None
        or get("aria-hidden") == "true"
        or get("role") in ("navigation", "search")
    )
