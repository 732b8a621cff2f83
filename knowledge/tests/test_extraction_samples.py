"""Every sample document in shared/data/docs-formats/ gets its expected outcome."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.extraction import ExtractionError, document_extract
from knowledge.extraction.detect import CSV, DOCX, EML, HTML, MARKDOWN, PDF, PLAIN, PPTX, RST, XLSX
from knowledge.tests.conftest import DOCS_FORMATS

# The media type and a phrase from the longest block, or the error code. "slow" files take
# seconds (hundreds of pages).
EXPECTED: dict[str, tuple[str, str | None]] = {
    "2023-half-year-analyses-by-segment.xlsx": (XLSX, "5931 | 989 | 924 |"),
    "LICENSE.md": (MARKDOWN, "documentation, if provided along with th"),
    "README-w-include.rst": (RST, "PDF copy of the layout parser"),
    "README.md": (MARKDOWN, "In addition, here are instructions for"),
    "README.rst": (RST, "PDF copy of the layout parser"),
    "arbitrary-records.json": ("unsupported_type", None),
    "book-war-and-peace-1225p.txt": (PLAIN, "carried out; in fact, it seemed"),
    "book-war-and-peace-1p.txt": (PLAIN, "in which our grandfathers not only"),
    "category-level.docx": (DOCX, "me, that it requires a strong"),
    "codeblock.md": (MARKDOWN, 'content="width=device-width, initial-sca'),
    "contains-pictures.docx": (DOCX, ". Ut enim ad minim veniam,"),
    "csv-with-escaped-commas.csv": (CSV, "| A | A | A,A"),
    "csv-with-line-delimiter.csv": (CSV, "b | c d | e"),
    "csv-with-long-lines.csv": (CSV, "IL4 | 6Prot IL5 | 6Prot"),
    "docx-hdrftr.docx": (DOCX, "First header para Table cell1"),
    "docx-shapes.docx": (DOCX, "Paragraph with <inline-image1> and <inli"),
    "docx-tables.docx": (DOCX, "| Header Col 2 Lorem ipsum"),
    "duplicate-paragraphs.docx": (DOCX, "some text"),
    "eml/email-equals-attachment-filename.eml": (EML, "recipient@example.com Date: Sun, 13 Aug "),
    "eml/email-inline-content-disposition.eml": (EML, "Test User <testuser@example.com> To: rec"),
    "eml/email-no-html-content-1.eml": (EML, "https://github.com/nf-core/bactmap/subsc"),
    "eml/email-no-utf8-2008-07-16.062410.eml": (EML, "חופש שבועיים מעבודה ולמדתי, אבל עובד"),
    "eml/email-no-utf8-2014-03-17.111517.eml": (EML, "hijacked. To get back into your"),
    "eml/email-replace-mime-encodings-error-1.eml": (
        EML,
        "Oct 2022 08:59:12 +0000 Subject: Someone",
    ),
    "eml/email-replace-mime-encodings-error-2.eml": (
        EML,
        "29, 2023 12:30 PM To: 'email@domain.com'",
    ),
    "eml/email-replace-mime-encodings-error-3.eml": (EML, "receive future emails from Amazon Web"),
    "eml/email-replace-mime-encodings-error-4.eml": (
        EML,
        "Unsubscribe https://u28034542.ct.sendgri",
    ),
    "eml/email-replace-mime-encodings-error-5.eml": (EML, "is something that you would like"),
    "eml/email-with-image.eml": (EML, "Mallori Harrell <mallori@unstructured.io"),
    "eml/empty.eml": ("empty", None),
    "eml/fake-email-attachment.eml": (EML, "<mallori@unstructured.io> Date: Fri, 23 "),
    "eml/fake-email-b64.eml": (EML, "NotMatthew <NotMatthew@notunstructured.c"),
    "eml/fake-email-header.eml": (EML, "Cc: Fake Email <fake-email@unstructured."),
    "eml/fake-email-image-embedded.eml": (EML, "Mallori Harrell <mallori@unstructured.io"),
    "eml/fake-email-malformed-encoding.eml": (EML, "Robinson <mrobinson@unstructured.io> Dat"),
    "eml/fake-email-utf-16-be.eml": (EML, "Robinson <mrobinson@unstructured.io> Dat"),
    "eml/fake-email-utf-16-le.eml": (EML, "Robinson <mrobinson@unstructured.io> Dat"),
    "eml/fake-email-utf-16.eml": (EML, "Robinson <mrobinson@unstructured.io> Dat"),
    "eml/fake-email.eml": (EML, "NotMatthew <NotMatthew@notunstructured.c"),
    "eml/fake-email.txt": (EML, "Robinson <mrobinson@unstructured.io> Dat"),
    "eml/fake-encrypted.eml": ("encrypted", None),
    "eml/family-day.eml": (EML, "Harrell <mallori@unstructured.io> Date: "),
    "eml/mime-attach-mp3.eml": (EML, "sender@example.com To: recipient@example"),
    "eml/mime-different-plain-html.eml": (EML, "A marketing message was sent to"),
    "eml/mime-html-only.eml": (EML, "1 GB of free storage, significantly"),
    "eml/mime-multi-to-cc-bcc.eml": (EML, "Sue <sue@example.com> Cc: Tom <tom@examp"),
    "eml/mime-multipart-digest.eml": (EML, "To: bob@example.com Cc: carol@example.co"),
    "eml/mime-no-body.eml": (EML, "Date: Tue, 01 Oct 2024 12:34:56"),
    "eml/mime-no-subject.eml": (EML, "From: sender@example.com To: recipient@e"),
    "eml/mime-no-to.eml": (EML, "Tom <tom@example.com>, Alice <alice@exam"),
    "eml/mime-simple.eml": (EML, "sender@example.com To: recipient@example"),
    "eml/mime-word-encoded-subject.eml": (EML, "To: recipient@example.com Subject: Simpl"),
    "eml/rfc822-no-date.eml": (EML, "header. Note that this is non-standard"),
    "eml/simple-rfc-822.eml": (EML, '"From", "To", "Date", and "Subject", eac'),
    "eml/test-invalid-date.eml": (EML, "To: recipient@example.com Date: INVALID-"),
    "eml/test-iso-8601-date.eml": (EML, "To: recipient@example.com Date: 2025-07-"),
    "eml/test-rfc2822-date.eml": (EML, "Tue, 29 Jul 2025 12:42:06 +0000"),
    "emoji.xlsx": (XLSX, "🤠😅"),
    "empty.txt": ("empty", None),
    "empty.xlsx": ("no_text", None),
    "example-10k-1p.html": (HTML, "preceding 12 months (or for such"),
    "example-10k.html": (HTML, "2020-12-31 0000013156 glxz:TriangulumSha"),
    "example-list-items-multiple.docx": (DOCX, "simply dummy text of the printing"),
    "example-steelJIS-datasheet-utf-16.html": (HTML, "SNB22-3. Standards of SNB22-3. Tensile S"),
    "example-steelJIS-datasheet.html": (HTML, "SNB22-3. Standards of SNB22-3. Tensile S"),
    "example-with-scripts.html": (HTML, '"excessive reporting" in order to inunda'),
    "factbook-utf-16.xml": ("unsupported_type", None),
    "factbook.xml": ("unsupported_type", None),
    "fake-doc-emphasized-text.docx": (DOCX, "Col 2 A bold italic bold-italic"),
    "fake-doc.rtf": ("unsupported_type", None),
    "fake-email.eml": (EML, "NotMatthew <NotMatthew@notunstructured.c"),
    "fake-email.txt": (EML, "Robinson <mrobinson@unstructured.io> Dat"),
    "fake-html-cp1252.html": (HTML, "restaurante tenía un menú del día."),
    "fake-html-lang-de.html": (HTML, "zum Geschäftsjahr vom 01.01.2020 bis zum"),
    "fake-html-pre.htm": (HTML, "the following: (1) Effective enforcement"),
    "fake-html-with-base64-image.html": (HTML, "Unstructured Logo"),
    "fake-html-with-duplicate-elements.html": (HTML, "is a span. This is another"),
    "fake-html-with-footer-and-header.html": (HTML, "My first paragraph."),
    "fake-html-with-image-from-url.html": (HTML, "Unstructured Logo"),
    "fake-html.html": (HTML, "cow comes home under the sun"),
    "fake-incomplete-json.txt": (PLAIN, '"is_student": true, "address": { "city":'),
    "fake-power-point-malformed.pptx": (PPTX, "Problem Date Placeholder"),
    "fake-power-point-many-pages.pptx": (PPTX, "Page 1"),
    "fake-power-point-table.pptx": (PPTX, "Red | Green | Blue Purple"),
    "fake-power-point.pptx": (PPTX, "for first bullet Use _TextFrame.add_para"),
    "fake-text-all-whitespace.txt": ("empty", None),
    "fake-text-utf-16-be.txt": (PLAIN, "- Dogs are the best -"),
    "fake-text-utf-16-le.txt": (PLAIN, "- Dogs are the best -"),
    "fake-text-utf-16.txt": (PLAIN, "- Dogs are the best -"),
    "fake-text-utf-32.txt": (PLAIN, "- Dogs are the best -"),
    "fake-text.txt": (PLAIN, "- Dogs are the best -"),
    "fake.docx": (DOCX, "Lorem ipsum dolor sit amet."),
    "fake.odt": ("unsupported_type", None),
    "fake_table.docx": (DOCX, "| Header Col 2 Lorem ipsum"),
    "grid_offset_error.docx": (DOCX, "A | Merged B1-B3 C"),
    "group-shapes-nested.pptx": (PPTX, "A"),
    "handbook-1p-no-rendered-page-breaks.docx": (DOCX, "The Handbook does not present a"),
    "handbook-1p.docx": (DOCX, "The Handbook does not present a"),
    "handbook-872p.docx": (DOCX, "plan is dismissed or converted prior"),
    "hebrew-text-base64-iso88598i.txt": (PLAIN, "8uPr5e8gVGVzbGEgLSDw4/j5+iDn+unu5CDy7CDk"),
    "hlink-meta.docx": (DOCX, "Five with link to foo.com introduction"),
    "ideas-page.html": (HTML, "(much of standup comedy is based"),
    "language-docs/UDHR_first_article_all.txt": (PLAIN, "Eejatzi oquemitari te oncameethate intzi"),
    "language-docs/eng_afr_spa.txt": (PLAIN, "a spirit of brotherhood. All human"),
    "language-docs/eng_spa.txt": (PLAIN, "rights. They are endowed with reason"),
    "language-docs/eng_spa.xlsx": (XLSX, "rights. They are endowed with reason"),
    "language-docs/eng_spa_mult.docx": (DOCX, "spirit of brotherhood. All human beings"),
    "language-docs/eng_spa_mult.eml": (EML, "spirit of brotherhood. All human beings"),
    "language-docs/eng_spa_mult.epub": ("unsupported_type", None),
    "language-docs/eng_spa_mult.html": (HTML, "spirit of brotherhood. All human beings"),
    "language-docs/eng_spa_mult.md": (MARKDOWN, "spirit of brotherhood. All human beings"),
    "language-docs/eng_spa_mult.odt": ("unsupported_type", None),
    "language-docs/eng_spa_mult.pptx": (PPTX, "spirit of brotherhood. All human beings"),
    "language-docs/eng_spa_mult.rst": (RST, "spirit of brotherhood. All human beings"),
    "language-docs/eng_spa_mult.rtf": ("unsupported_type", None),
    "language-docs/eng_spa_mult.txt": (PLAIN, "spirit of brotherhood. All human beings"),
    "language-docs/eng_spa_mult.xml": ("unsupported_type", None),
    "language-docs/fr_olap.pdf": (PDF, "autre requête et un log résume"),
    "more-than-1k-cells.xlsx": (XLSX, "x | x x | x"),
    "norwich-city.txt": (PLAIN, "in their first season together for"),
    "not-unstructured-payload.json": ("unsupported_type", None),
    "page-breaks.docx": (DOCX, "so it breaks onto third page------------"),
    "password_protected.xlsx": ("encrypted", None),
    "pdf/DA-1p.pdf": (PDF, "simply by virtue of their magical"),
    "pdf/DA-619p.pdf": (PDF, "Fer .......................27 Warden-Com"),
    "pdf/a1977-backus-p21.pdf": (PDF, "shown how p maps atoms and"),
    "pdf/all-number-table.pdf": (PDF, "600.015 800.017 1000.019 1200.01 11 1400"),
    "pdf/chevron-page.pdf": (PDF, "to neighboring Jordan and Egypt. 2.5"),
    "pdf/copy-protected.pdf": (PDF, "it dicult for research teams to"),
    "pdf/embedded-cmap-cidfont.pdf": (PDF, "This text uses an embedded CMap"),
    "pdf/embedded-images-tables.pdf": (PDF, "polarization data for stainless steel in"),
    "pdf/embedded-images.pdf": (PDF, "left the access zone 3. Note:"),
    "pdf/embedded-link.pdf": (PDF, "detected as separate element. We will"),
    "pdf/emphasis-text.pdf": (PDF, "Test bold. Italic. Now Italic and"),
    "pdf/failure-after-repair.pdf": (PDF, "back. Elbow stretch Bend your elbow"),
    "pdf/fake-bold-sample.pdf": (PDF, "The quick brown fox jumps over"),
    "pdf/fake-memo-with-duplicate-page.pdf": (PDF, "blankets, and 200 laptops delivered on"),
    "pdf/fake-memo.pdf": (PDF, "blankets, and 200 laptops delivered on"),
    "pdf/figure-overlay-text.pdf": (PDF, "Printed Name: Jane Doe"),
    "pdf/header-test-doc.pdf": (PDF, "Title Here is a lovely sentences."),
    "pdf/interface-config-guide-p93.pdf": (PDF, "an interface or SAP) can be"),
    "pdf/invalid-pdf-structure-pdfminer-one-page.pdf": (
        PDF,
        "execute the strategy. • Vacant National",
    ),
    "pdf/korean-text-with-tables.pdf": (PDF, "40만원 미만 시에도 제공 * 할인점은"),
    "pdf/layout-parser-paper-fast.pdf": (PDF, "it difficult for research teams to"),
    "pdf/layout-parser-paper-with-empty-pages.pdf": (PDF, "it dicult for research teams to"),
    "pdf/layout-parser-paper-with-table.pdf": (PDF, "training. We now provide detailed descri"),
    "pdf/list-item-example.pdf": (PDF, "arise during the design phase, as"),
    "pdf/loremipsum-flat.pdf": ("no_text", None),
    "pdf/multi-column-2p.pdf": (PDF, "equal lengths as the basic retrieval"),
    "pdf/multi-column.pdf": (PDF, "structured semantic models for Web searc"),
    "pdf/negative-coords.pdf": (PDF, "on the carbon footprint data level"),
    "pdf/password.pdf": ("encrypted", None),
    "pdf/pdf-bad-color-space.pdf": (PDF, "Energy use contributes to a significant"),
    "pdf/pdf-with-ocr-text.pdf": (PDF, "ltd , accepting aieiabership Met eneloal"),
    "pdf/pdf2image-memory-error-test-400p.pdf": (PDF, "bottom of the index screen. •"),
    "pdf/reliance.pdf": (PDF, "Manufactured Capital 194 Intellectual Ca"),
    "pdf/single_table.pdf": ("no_text", None),
    "pdf/table-multi-row-column-cells.pdf": ("no_text", None),
    "picture.pptx": ("no_text", None),
    "rotated-page-90.pdf": (PDF, "Second line of text here Hello"),
    "sample-presentation.pptx": (PPTX, "a sub-bullet And another one This"),
    "science-exploration-1p.pptx": (PPTX, "Sciences and Exploration Directorate Vir"),
    "semicolon-delimited.csv": (CSV, "| eiusmod | tempor incididunt ut"),
    "simple-table.md": (MARKDOWN, "Item | Price | # In"),
    "simple.docx": (DOCX, "my first thought. This is my"),
    "simple.json": ("unsupported_type", None),
    "simple.odt": ("unsupported_type", None),
    "simple.pptx": (PPTX, "have all the flowers gone? Who"),
    "simple.zip": ("unsupported_type", None),
    "single-column.csv": (CSV, "| do eiusmod tempor incididunt ut"),
    "single-line-object.json": ("unsupported_type", None),
    "spring-weather.html.json": ("unsupported_type", None),
    "stanley-cups-utf-16.csv": (CSV, "| STL | 1 Flyers |"),
    "stanley-cups-with-emoji.csv": (CSV, "| 1 Flyers | PHI |"),
    "stanley-cups.csv": (CSV, "| STL | 1 Flyers |"),
    "stanley-cups.xlsx": (XLSX, "Blues | STL | 1.0 Flyers"),
    "table-multi-row-column-cells-actual.csv": (CSV, "5 | 2 | 3 |"),
    "table-semicolon-delimiter.csv": (CSV, "123 | -123 2023 | 2"),
    "tables-with-incomplete-rows.docx": (DOCX, "where one or more rows is"),
    "teams_chat.docx": (DOCX, "0:0:0.0 --> 0:0:1.510 Some Body OK."),
    "test-image-jpg-mime.pptx": ("no_text", None),
    "umlauts-non-utf8.md": (MARKDOWN, "können"),
    "umlauts-utf8.md": (MARKDOWN, "können"),
    "vodafone.xlsx": (XLSX, "Marketable homes passed | Nine quarters"),
    "winter-sports.epub": ("unsupported_type", None),
    "xlsx-subtable-cases.xlsx": (XLSX, "| c d | e |"),
}
SLOW = {"pdf/DA-619p.pdf", "handbook-872p.docx", "book-war-and-peace-1225p.txt",
        "pdf/pdf2image-memory-error-test-400p.pdf", "example-10k.html"}  # fmt: skip


def sample_files() -> list[str]:
    if not DOCS_FORMATS.is_dir():
        return sorted(EXPECTED)
    files = (p for p in DOCS_FORMATS.rglob("*") if p.is_file())
    return sorted(str(p.relative_to(DOCS_FORMATS)) for p in files if "test_evaluate" not in str(p))


def test_every_sample_file_has_an_expected_outcome(docs_formats: Path) -> None:
    assert set(sample_files()) == set(EXPECTED)


@pytest.mark.parametrize(
    "relative",
    [pytest.param(f, marks=pytest.mark.slow) if f in SLOW else f for f in sample_files()],
)
def test_sample_file_extracts_to_its_expected_outcome(docs_formats: Path, relative: str) -> None:
    expected_type, phrase = EXPECTED[relative]
    if phrase is None:
        with pytest.raises(ExtractionError) as error:
            document_extract(path=docs_formats / relative)
        assert error.value.code == expected_type
        assert error.value.reason.endswith(".")
        return
    extracted = document_extract(path=docs_formats / relative)
    assert extracted.media_type == expected_type
    assert extracted.title
    text = "\n".join(block.text for block in extracted.blocks)
    assert " ".join(phrase.split()) in " ".join(text.split())
    assert all(block.text == block.text.strip() and block.text for block in extracted.blocks)
