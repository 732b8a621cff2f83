"""Extraction: pages and sections per format, type detection, and every kind of bad input."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from knowledge.extraction import (
    SUPPORTED_MEDIA_TYPES,
    ExtractionError,
    ExtractionLimits,
    detect,
    document_extract,
    media_type_detect,
)
from knowledge.extraction.isolation import run_isolated
from knowledge.tests.fabricate import (
    docx_bomb,
    docx_bytes,
    pdf_bytes,
    understated_zip,
    zip_replace,
)


def write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def limits(**changes: Any) -> ExtractionLimits:
    return dataclasses.replace(ExtractionLimits.from_settings(), **changes)


def failure(path: Path, name: str = "", **limit_changes: Any) -> ExtractionError:
    with pytest.raises(ExtractionError) as error:
        document_extract(path=path, name=name, limits=limits(**limit_changes))
    return error.value


# --- pages and sections -------------------------------------------------------------------


def test_pdf_blocks_carry_their_page_numbers(tmp_path: Path) -> None:
    path = write(tmp_path, "two.pdf", pdf_bytes(["Hello page one.", "Second page text."]))
    extracted = document_extract(path=path)
    assert extracted.media_type == "application/pdf"
    assert extracted.page_count == 2
    assert [(b.page, b.text) for b in extracted.blocks] == [
        (1, "Hello page one."),
        (2, "Second page text."),
    ]
    assert extracted.title == "two"  # no metadata title: the file name


def test_pdf_empty_pages_are_skipped_but_counted(docs_formats: Path) -> None:
    extracted = document_extract(path=docs_formats / "pdf/layout-parser-paper-with-empty-pages.pdf")
    assert extracted.page_count == 4
    assert len({b.page for b in extracted.blocks}) == 2


def test_pdf_sections_come_from_its_bookmarks(docs_formats: Path) -> None:
    extracted = document_extract(path=docs_formats / "pdf/layout-parser-paper-fast.pdf")
    assert {b.section for b in extracted.blocks} == {
        "LayoutParser: A Unified Toolkit for Deep Learning Based Document Image Analysis"
    }


def test_docx_headings_make_the_section_path(tmp_path: Path) -> None:
    data = docx_bytes(
        ("h1", "Install"),
        ("", "Intro text."),
        ("h2", "Linux"),
        ("", "Use apt."),
        ("h2", "Windows"),
        ("", "Use the installer."),
        ("h1", "Usage"),
        ("", "Run it."),
    )
    extracted = document_extract(path=write(tmp_path, "guide.docx", data))
    assert [(b.section, b.text) for b in extracted.blocks] == [
        ("Install", "Intro text."),
        ("Install > Linux", "Use apt."),
        ("Install > Windows", "Use the installer."),
        ("Usage", "Run it."),
    ]
    assert extracted.page_count is None
    assert extracted.title == "Install"


def test_docx_text_boxes_tables_headers_and_footers_are_read(docs_formats: Path) -> None:
    shapes = document_extract(path=docs_formats / "docx-shapes.docx")
    shapes_text = " ".join(b.text for b in shapes.blocks)
    assert "<floating-shape>" in shapes_text
    assert shapes_text.count("<inline-image1>") == 1  # not again from the VML fallback
    tables = document_extract(path=docs_formats / "docx-tables.docx")
    assert any("Header Col 2" in b.text and " | " in b.text for b in tables.blocks)
    header_footer = document_extract(path=docs_formats / "docx-hdrftr.docx")
    assert [b.text.split("\n")[0] for b in header_footer.blocks] == [
        "First header para",  # the header, once, before the body
        "Main document",
        "para1",  # the footer, after it
    ]


def test_pptx_slides_are_pages_and_titles_are_sections(docs_formats: Path) -> None:
    extracted = document_extract(path=docs_formats / "sample-presentation.pptx")
    assert extracted.page_count == 4
    assert [b.page for b in extracted.blocks] == sorted(b.page or 0 for b in extracted.blocks)
    sections = {b.page: b.section for b in extracted.blocks}
    assert sections == {
        1: "Title Slide",
        2: "This is the first content slide",
        3: "This is the second content slide",
        4: "This is kinda backwards, huh?",
    }
    assert extracted.blocks[-1].text.startswith("Table | A | B | C\n1 | A1 | B1 | C1")


def test_pptx_nested_group_shapes_are_read(docs_formats: Path) -> None:
    extracted = document_extract(path=docs_formats / "group-shapes-nested.pptx")
    assert len(extracted.blocks) >= 5


def test_xlsx_sheets_are_pages_named_by_their_sheet(docs_formats: Path) -> None:
    extracted = document_extract(path=docs_formats / "stanley-cups.xlsx")
    assert extracted.page_count == 2
    assert [(b.page, b.section) for b in extracted.blocks] == [
        (1, "Stanley Cups"),
        (2, "Stanley Cups Since 67"),
    ]
    assert "Team | Location | Stanley Cups" in extracted.blocks[0].text


def test_markdown_headings_make_sections_and_markup_is_dropped(tmp_path: Path) -> None:
    text = (
        "# Guide\n\nSee **bold** and [a link](http://example.com).\n\n"
        "## Setup\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
    )
    extracted = document_extract(path=write(tmp_path, "guide.md", text))
    assert extracted.media_type == "text/markdown"
    assert [(b.section, b.text) for b in extracted.blocks] == [
        ("Guide", "See bold and a link."),
        ("Guide > Setup", "a | b"),
        ("Guide > Setup", "1 | 2"),
    ]
    assert extracted.title == "Guide"


def test_html_skips_scripts_styles_and_navigation(tmp_path: Path) -> None:
    page = (
        "<html><head><title>T</title><style>p{}</style></head><body>"
        "<nav>Home | About</nav><h1>Title</h1><script>var secret = 1;</script>"
        "<p>Visible   text.</p><div role='navigation'>menu</div><h2>Part</h2><p>More.</p>"
        "</body></html>"
    )
    extracted = document_extract(path=write(tmp_path, "page.html", page))
    assert [(b.section, b.text) for b in extracted.blocks] == [
        ("Title", "Visible text."),
        ("Title > Part", "More."),
    ]
    assert extracted.title == "T"


def test_html_with_external_resources_is_read_without_fetching_them(tmp_path: Path) -> None:
    # pytest-socket refuses any non-loopback connection: a fetch would fail the extraction.
    page = (
        '<html><head><link rel="stylesheet" href="http://example.com/s.css">'
        '<script src="http://example.com/x.js"></script></head><body>'
        '<img src="http://example.com/i.png" alt="A chart"><iframe src="http://example.com/"></iframe>'
        "<p>Body text.</p></body></html>"
    )
    extracted = document_extract(path=write(tmp_path, "page.html", page))
    assert [b.text for b in extracted.blocks] == ["A chart", "Body text."]


def test_docx_external_entities_are_not_resolved(tmp_path: Path) -> None:
    base = docx_bytes(("", "placeholder"))
    with zipfile.ZipFile(write(tmp_path, "base.docx", base)) as archive:
        xml = archive.read("word/document.xml").decode()
    doctype = '<?xml version="1.0"?><!DOCTYPE w [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    xml = doctype + xml.split("?>", 1)[1].replace("placeholder", "before &xxe; after")
    path = write(tmp_path, "xxe.docx", zip_replace(base, "word/document.xml", xml.encode()))
    try:
        text = " ".join(b.text for b in document_extract(path=path).blocks)
    except ExtractionError as error:  # refusing the file is as good as ignoring the entity
        assert error.code == "corrupt"
        return
    assert "root:" not in text


def test_email_headers_and_body_are_blocks_and_the_subject_is_the_title(tmp_path: Path) -> None:
    message = (
        "From: Ann <ann@example.com>\nTo: Bob <bob@example.com>\nSubject: Quarterly plan\n"
        "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\nHello Bob.\n\nThe plan.\n"
    )
    extracted = document_extract(path=write(tmp_path, "mail.eml", message))
    assert extracted.media_type == "message/rfc822"
    assert extracted.title == "Quarterly plan"
    assert [b.text for b in extracted.blocks][1:] == ["Hello Bob.", "The plan."]
    assert "From: Ann <ann@example.com>" in extracted.blocks[0].text


def test_utf16_and_latin1_text_is_decoded(tmp_path: Path) -> None:
    text = "Grüße aus Köln.\n\nZweiter Absatz."
    for encoding in ("utf-16", "utf-16-le", "utf-16-be", "utf-32", "latin-1"):
        path = write(tmp_path, f"{encoding}.txt", text.encode(encoding))
        blocks = document_extract(path=path).blocks
        assert [b.text for b in blocks] == ["Grüße aus Köln.", "Zweiter Absatz."], encoding


# --- type detection -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "name", "expected"),
    [
        (b"%PDF-1.7\n...", "x.txt", detect.PDF),
        (b"PK\x03\x04" + b"\0" * 26 + b"word/document.xml", "", detect.DOCX),
        (b"PK\x03\x04" + b"\0" * 26 + b"ppt/slides/slide1.xml", "", detect.PPTX),
        (b"PK\x03\x04" + b"\0" * 26 + b"xl/workbook.xml", "", detect.XLSX),
        (
            b"PK\x03\x04" + b"\0" * 26 + b"mimetypeapplication/epub+zipPK",
            "",
            "application/epub+zip",
        ),
        (b"<!DOCTYPE html><html><p>x", "report.pdf", detect.HTML),
        (b"  <div>hi</div>", "", detect.HTML),
        (b"# Title\n\ntext", "notes.md", detect.MARKDOWN),
        (b"# Title\n\ntext", "notes.txt", detect.PLAIN),
        (b"a,b\n1,2\n", "t.csv", detect.CSV),
        (b"From: a@b.c\nSubject: x\n\nbody", "", detect.EML),
        ("héllo wörld".encode("utf-16"), "", detect.PLAIN),
        (b"\x89PNG\r\n\x1a\n\0\0", "photo.pdf", "image/png"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "", detect.OLE),
        (bytes(range(256)), "", detect.BINARY),
        (b"", "", detect.EMPTY),
    ],
)
def test_media_type_is_detected_from_content(head: bytes, name: str, expected: str) -> None:
    assert media_type_detect(head, name=name) == expected


def test_supported_media_types_include_the_issue_formats() -> None:
    assert {
        detect.PDF,
        detect.DOCX,
        detect.HTML,
        detect.MARKDOWN,
        detect.PLAIN,
    } <= SUPPORTED_MEDIA_TYPES


# --- bad inputs ---------------------------------------------------------------------------


def test_an_encrypted_pdf_fails_as_encrypted(tmp_path: Path) -> None:
    error = failure(write(tmp_path, "secret.pdf", pdf_bytes(["Secret."], encrypted=True)))
    assert error.code == "encrypted"
    assert "password" in error.reason


def test_an_empty_file_fails_as_empty(tmp_path: Path) -> None:
    assert failure(write(tmp_path, "empty.pdf", b"")).code == "empty"
    assert failure(write(tmp_path, "blank.txt", b" \n\t\n")).code == "empty"


def test_html_named_pdf_is_refused_with_a_reason_naming_both(tmp_path: Path) -> None:
    error = failure(write(tmp_path, "invoice.pdf", "<html><body><p>Pay now</p></body></html>"))
    assert error.code == "unsupported_type"
    assert "invoice.pdf" in error.reason
    assert "HTML" in error.reason


def test_a_docx_bomb_is_refused_before_parsing(tmp_path: Path) -> None:
    path = write(tmp_path, "bomb.docx", docx_bomb(20_000_000))
    assert path.stat().st_size < 100_000
    error = failure(path, max_decompressed_bytes=5_000_000)
    assert error.code == "decompression_bomb"
    assert "zip bomb" in error.reason


def test_a_zip_member_larger_than_its_declared_size_is_refused(tmp_path: Path) -> None:
    lying = understated_zip(docx_bomb(20_000_000), "word/media/bomb.bin", 1000)
    error = failure(write(tmp_path, "lying.docx", lying), max_decompressed_bytes=5_000_000)
    assert error.code in {"decompression_bomb", "corrupt"}


def test_an_oversize_file_fails_as_too_large(tmp_path: Path) -> None:
    error = failure(write(tmp_path, "big.txt", "word " * 1000), max_bytes=1000)
    assert error.code == "too_large"
    assert "at most" in error.reason


def test_a_pdf_over_the_page_limit_fails_as_too_many_pages(tmp_path: Path) -> None:
    path = write(tmp_path, "long.pdf", pdf_bytes(["a", "b", "c"]))
    assert failure(path, max_pages=2).code == "too_many_pages"


def test_a_corrupt_pdf_fails_as_corrupt(tmp_path: Path) -> None:
    good = pdf_bytes(["Hello."])
    assert failure(write(tmp_path, "bad.pdf", b"%PDF-1.4\n" + os.urandom(2000))).code in {
        "corrupt",
        "no_text",
    }
    error = failure(write(tmp_path, "garbage.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog"))
    assert error.code == "corrupt"
    assert len(good) > 100


def test_a_corrupt_docx_fails_as_corrupt(tmp_path: Path) -> None:
    data = docx_bytes(("", "text"))
    assert failure(write(tmp_path, "cut.docx", data[: len(data) // 2])).code == "corrupt"


def test_a_legacy_or_unknown_binary_format_is_unsupported(tmp_path: Path) -> None:
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600
    assert failure(write(tmp_path, "old.doc", ole)).code == "unsupported_type"
    assert failure(write(tmp_path, "blob", os.urandom(4096))).code == "unsupported_type"


def test_a_slow_parse_is_killed_at_the_time_limit(tmp_path: Path) -> None:
    page = "<html><body>" + "<div><p>word word word</p></div>" * 200_000 + "</body></html>"
    path = write(tmp_path, "huge.html", page)
    started = time.monotonic()
    error = failure(path, max_seconds=0.2)
    assert error.code == "timeout"
    assert time.monotonic() - started < 10  # the child was killed, not waited for


def test_runaway_memory_in_the_parser_fails_as_too_large() -> None:
    with pytest.raises(ExtractionError) as error:
        run_isolated(lambda: bytearray(1 << 30), max_seconds=30, max_memory_bytes=512 << 20)
    assert error.value.code == "too_large"


def test_a_crash_in_the_parser_fails_as_corrupt_and_the_caller_survives() -> None:
    with pytest.raises(ExtractionError) as error:
        run_isolated(
            lambda: os.kill(os.getpid(), signal.SIGSEGV), max_seconds=30, max_memory_bytes=1 << 31
        )
    assert error.value.code == "corrupt"
    assert "SIGSEGV" in error.value.reason
    assert run_isolated(lambda: 42, max_seconds=30, max_memory_bytes=1 << 31) == 42


@pytest.mark.slow
def test_the_child_ends_itself_when_its_parent_is_killed(tmp_path: Path) -> None:
    # Celery's hard time limit SIGKILLs the worker: the parsing child must not live on.
    pid_file = tmp_path / "child.pid"
    script = (
        "import os, time\n"
        "from knowledge.extraction.isolation import run_isolated\n"
        f"def work():\n    open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "    time.sleep(600)\n"
        "run_isolated(work, max_seconds=1, max_memory_bytes=1 << 30)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).parents[2])
    deadline = time.monotonic() + 30
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline and parent.poll() is None
        time.sleep(0.05)
    child = int(pid_file.read_text())
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 30
    while process_alive(child):
        assert time.monotonic() < deadline, "the orphaned child is still running"
        time.sleep(0.2)


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text() if Path(f"/proc/{pid}/stat").exists() else ""
    return " Z " not in stat  # a zombie has ended; only its exit status waits for init
