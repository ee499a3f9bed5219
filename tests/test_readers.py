"""PDF, Word and web pages: the seed document written in each format by a real writer reads
back as the Markdown does; real files nobody here wrote read without loss; bad files become
named warnings; a cited PDF page is rendered with the passage marked where it stands."""

from __future__ import annotations

import hashlib
import io
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from fpdf import FPDF
from PIL import Image

from alliance_qa.chunking import chunk_documents
from alliance_qa.citations import find_section, resolve
from alliance_qa.corpus import read_corpus, read_source
from alliance_qa.documents import parse_markdown
from alliance_qa.page_image import cited_page_png
from alliance_qa.readers import READERS
from alliance_qa.readers.pdf_file import _PAGE_NUMBER
from conftest import CORPUS, DATA, SHIPPED_SECTIONS
from document_writers import write_docx, write_html, write_pdf

# The tests that write PDFs, Word files and pages with real writers (about a second each)
# run in the default tier; those that read the files in tests/data/real/ are unit tests.
REAL = DATA / "real"
SEED = next(CORPUS.glob("*.md"))


def shape(sections) -> list:
    """What a reader must reproduce: levels, headings and paragraph texts (white space as a
    browser shows it)."""
    return [(s.level, s.heading if s.level else "",
             tuple(re.sub(r"\s+", " ", p).strip() for p in s.paragraphs)) for s in sections]


@pytest.fixture(scope="module")
def seed():
    return parse_markdown(SEED.read_text(encoding="utf-8"), "seed")


@pytest.fixture(scope="module")
def seed_pdf(seed, tmp_path_factory) -> bytes:
    """The seed document as a PDF with bookmarks, a running header and page numbers."""
    return write_pdf(tmp_path_factory.mktemp("pdf") / "seed.pdf", *seed).read_bytes()


WRITERS = {"pdf with bookmarks": (write_pdf, ".pdf", {}),
           "pdf without bookmarks": (write_pdf, ".pdf", {"bookmarks": False}),
           "docx": (write_docx, ".docx", {}), "html": (write_html, ".html", {})}


@pytest.mark.parametrize("kind", WRITERS)
def test_the_seed_document_in_each_format_reads_as_the_markdown_does(kind, seed, seed_pdf,
                                                                     tmp_path):
    writer, suffix, options = WRITERS[kind]
    title, sections = seed
    data = seed_pdf if kind == "pdf with bookmarks" else writer(
        tmp_path / f"seed{suffix}", title, sections, **options).read_bytes()
    read_title, read_sections = READERS[suffix](data, "seed")
    assert read_title == title
    assert len(read_sections) == len(sections) == SHIPPED_SECTIONS
    assert shape(read_sections) == shape(sections)
    assert [s.slug for s in read_sections] == [s.slug for s in sections]


def test_a_pdf_paragraph_carries_its_pages_and_runs_on_across_a_page_break(seed, seed_pdf):
    title, _ = seed
    _, read = READERS[".pdf"](seed_pdf, "seed")
    pages = [pages for s in read for pages in s.pages]
    assert len(pages) == sum(len(s.paragraphs) for s in read)        # one per paragraph
    assert pages == sorted(pages) and pages[0] == (1, 1)
    assert any(first < last for first, last in pages)                 # one runs on
    text = "\n".join(p for s in read for p in s.paragraphs)
    assert "Page 2" not in text and title not in text                 # furniture dropped


def test_pdf_citations_name_the_page_and_resolve_back(seed_pdf, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "report.pdf").write_bytes(seed_pdf)
    documents, warnings = read_corpus(corpus)
    assert not warnings
    chunks = chunk_documents(documents)
    spanning = next(c for c in chunks if c.pages[0] < c.pages[1])
    assert re.search(rf", pp\. {spanning.pages[0]}–{spanning.pages[1]} ¶\d+$",
                     spanning.citation)
    single = chunks[0]
    assert single.citation.endswith(", p. 1 ¶1")
    resolved = resolve(documents, spanning.id)
    assert resolved.label == spanning.citation and resolved.text == spanning.text
    assert find_section(documents, spanning.citation.lower()).paragraph == spanning.paragraph
    for chunk in chunks:                    # every passage is its paragraph's own text
        paragraph = resolve(documents, chunk.paragraph_id).text
        assert chunk.text in paragraph


REAL_FILES = {
    # file: (title, sections, a heading, a sampled passage)
    "pdflatex-outline.pdf": (None, 10, "Baz", "Is there a difference between this text and "
                             "some nonsense like “Huardest gefburn”? Kjift – not at all!"),
    "multicolumn.pdf": ("Two-Column Document with Lorem Ipsum", 3, "Abstract",
                        "Pellentesque habitant morbi tristique senectus et netus et malesuada "
                        "fames ac turpis egestas."),
    "google-doc-document.pdf": ("Example document", 2, None,
                                "Errors should never pass silently."),
    "blk-paras-and-tables.docx": (None, 1, None, "Lorem ipsum dolor sit amet"),
    "par-known-paragraphs.docx": (None, 1, "Heading Paragraph", "Normal paragraph"),
    "hdr-header-footer.docx": (None, 1, None, "section without header of its own."),
    "wikipedia-mozilla.html": ("Mozilla", 38, "Eich CEO promotion controversy",
                               "Mozilla is a free-software community, created in 1998 by "
                               "members of Netscape."),
}


@pytest.mark.unit
@pytest.mark.parametrize("name", REAL_FILES)
def test_real_world_files_read_without_loss(name):
    title, count, heading, passage = REAL_FILES[name]
    read_title, sections = READERS[Path(name).suffix]((REAL / name).read_bytes(), "real")
    assert read_title == title
    assert len(sections) == count
    if heading:
        assert heading in [s.heading for s in sections]
    assert any(passage in p for s in sections for p in s.paragraphs)


@pytest.mark.unit
def test_real_pdfs_join_words_broken_at_line_ends_and_drop_page_numbers():
    _, sections = READERS[".pdf"]((REAL / "multicolumn.pdf").read_bytes(), "real")
    text = "\n".join(p for s in sections for p in s.paragraphs)
    assert "adipiscing elit" in text and "adip-" not in text and "\ufffe" not in text
    assert "\n1\n" not in f"\n{text}\n"
    _, sections = READERS[".pdf"]((REAL / "pdflatex-outline.pdf").read_bytes(), "real")
    paragraphs = [p for s in sections for p in s.paragraphs]
    assert not any(p.strip().isdigit() for p in paragraphs)


@pytest.mark.unit
def test_web_pages_leave_out_navigation_scripts_forms_and_edit_links():
    _, sections = READERS[".html"]((REAL / "wikipedia-mozilla.html").read_bytes(), "real")
    text = "\n".join([s.heading for s in sections] + [p for s in sections for p in s.paragraphs])
    assert "[edit]" not in text and "Jump to" not in text and "Contents" not in text
    assert "Main page" not in text and "<" not in text


def _scanned_pdf(path: Path) -> None:
    """A page that is only an image: what a scanner makes."""
    image = io.BytesIO()
    Image.new("RGB", (200, 100), "white").save(image, "PNG")
    pdf = FPDF()
    pdf.add_page()
    pdf.image(image, x=10, y=10, w=100)
    pdf.output(str(path))


def test_bad_files_are_named_warnings_and_the_rest_is_read(seed_pdf, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    good = seed_pdf
    (corpus / "good.pdf").write_bytes(good)
    (corpus / "truncated.pdf").write_bytes(good[: len(good) // 3])
    (corpus / "not-a.pdf").write_bytes(b"%PDF-1.7\nnothing else")
    shutil.copy(REAL / "libreoffice-writer-password.pdf", corpus / "locked.pdf")
    _scanned_pdf(corpus / "scan.pdf")
    (corpus / "broken.docx").write_bytes(b"PK\x03\x04 not really a zip")
    shutil.copy(REAL / "shp-inline-shape-access.docx", corpus / "pictures.docx")
    (corpus / "hostile.html").write_text(
        "<html><body><script>alert('x')</script><form><input value='secret'></form>"
        "<p onclick='evil()'>A <b>real</b> paragraph &lt;b&gt;kept as text&lt;/b&gt;.</p>"
        "</body></html>")
    documents, warnings = read_corpus(corpus)
    said = {w.path: w.message for w in warnings}
    assert said["locked.pdf"] == "skipped: it is encrypted with a password"
    assert said["scan.pdf"] == "skipped: it has no text layer (a scan?); OCR is not supported"
    assert said["not-a.pdf"].startswith("skipped: it is not a readable PDF")
    assert said["broken.docx"].startswith("skipped: it is not a readable Word document")
    assert said["pictures.docx"] == "skipped: it has no paragraphs of text"
    assert "truncated.pdf" in said or "truncated" in [d.id for d in documents]
    by_id = {d.id: d for d in documents}
    assert len(by_id["good"].sections) == SHIPPED_SECTIONS
    assert by_id["hostile"].sections[0].paragraphs == ("A real paragraph <b>kept as text</b>.",)


def test_a_cited_pdf_page_is_an_image_with_the_passage_and_sentence_marked(seed_pdf, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    data = seed_pdf
    (corpus / "report.pdf").write_bytes(data)
    documents, _ = read_corpus(corpus)
    section = documents[0].sections[3]
    paragraph, page = section.paragraphs[0], section.pages[0][0]
    sentence = (0, paragraph.index(".") + 1)
    plain, found = cited_page_png(data, page, paragraph, None, scale=1.0)
    marked, found_too = cited_page_png(data, page, paragraph, sentence, scale=1.0)
    assert found and found_too
    a, b = (np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
            for png in (plain, marked))
    assert a.shape == b.shape and a.shape[1] > 500

    def yellow(x):      # the passage's mark over white paper
        return int(((x[..., 0] > 245) & (x[..., 1] > 235) & (x[..., 2] < 215)).sum())

    def orange(x):      # the sentence's mark
        return int(((x[..., 0] > 245) & (x[..., 1] < 225) & (x[..., 2] < 170)).sum())

    assert yellow(a) > 5000 and orange(a) == 0
    assert orange(b) > 2000 and yellow(b) < yellow(a)
    other = cited_page_png(data, page, "Words that stand nowhere on this page at all.")[1]
    assert other is False


@pytest.mark.unit
def test_the_source_is_served_only_from_inside_the_corpus_and_only_unchanged(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.pdf").write_bytes(b"%PDF one")
    (tmp_path / "secret.pdf").write_bytes(b"%PDF secret")
    (corpus / "link.pdf").symlink_to(tmp_path / "secret.pdf")
    digest = hashlib.sha256(b"%PDF one").hexdigest()
    assert read_source(corpus, "a.pdf", digest) == b"%PDF one"
    for relative in ("../secret.pdf", "link.pdf", str(tmp_path / "secret.pdf")):
        with pytest.raises(ValueError):
            read_source(corpus, relative, hashlib.sha256(b"%PDF secret").hexdigest())
    (corpus / "a.pdf").write_bytes(b"%PDF two")
    with pytest.raises(ValueError, match="changed since the index was built"):
        read_source(corpus, "a.pdf", digest)


@pytest.mark.unit
@pytest.mark.parametrize(("line", "furniture"), [
    ("7", True), ("xii", True), ("Page 3 of 10", True), ("- 4 -", True),
    ("Civil", False), ("Ill", False), ("2024 budget", False)])
def test_page_numbers_are_told_from_words(line, furniture):
    assert bool(_PAGE_NUMBER.fullmatch(line)) is furniture
