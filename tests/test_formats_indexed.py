"""The seed document indexed as PDF, Word and a web page answers as the Markdown does; a PDF
answer carries its page in the command line's JSON, and its citation opens the page as an
image on the chat page."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pypdfium2 as pdfium
import pytest
from streamlit.testing.v1 import AppTest

from alliance_qa.config import Settings
from alliance_qa.corpus import read_corpus
from alliance_qa.documents import parse_markdown
from alliance_qa.indexing import build_index
from alliance_qa.search import Searcher
from alliance_qa.store import load_index
from conftest import CORPUS
from document_writers import write_docx, write_html, write_pdf

pytestmark = pytest.mark.full         # three more builds of the seed document
QUESTIONS = [json.loads(line)["question"] for line in
             (CORPUS.parent / "questions.jsonl").read_text().splitlines() if line.strip()]
WRITERS = {".pdf": write_pdf, ".docx": write_docx, ".html": write_html}


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, embedder, encoders) -> dict[str, Settings]:
    """{suffix: settings} of a real index of the seed document written in that format."""
    title, sections = parse_markdown(next(CORPUS.glob("*.md")).read_text(), "seed")
    built = {}
    for suffix, writer in WRITERS.items():
        root = tmp_path_factory.mktemp(suffix.strip("."))
        (root / "corpus").mkdir()
        writer(root / "corpus" / f"us-rok-alliance-history{suffix}", title, sections)
        settings = Settings(corpus_dir=root / "corpus", index_dir=root / "index",
                            encoders_dir=encoders)
        build_index(settings, embedder)
        built[suffix] = settings
    return built


@pytest.mark.parametrize("suffix", WRITERS)
def test_each_format_gives_the_same_first_citation_as_the_markdown(suffix, indexed, searcher,
                                                                  embedder):
    other = Searcher(load_index(indexed[suffix].index_dir), embedder)
    same = 0
    for question in QUESTIONS:
        want, got = searcher.search(question, k=1), other.search(question, k=1)
        same += (want.hits[0].chunk.section, want.hits[0].chunk.paragraph) == (
            got.hits[0].chunk.section, got.hits[0].chunk.paragraph)
    assert same == len(QUESTIONS), f"{same} of {len(QUESTIONS)}"


def test_ask_json_gives_the_page_of_a_pdf_passage(indexed):
    settings = indexed[".pdf"]
    env = {"ALLIANCE_QA_CORPUS": str(settings.corpus_dir),
           "ALLIANCE_QA_INDEX": str(settings.index_dir),
           "ALLIANCE_QA_ENCODERS": str(settings.encoders_dir), "PATH": ""}
    result = subprocess.run([sys.executable, "-m", "alliance_qa", "ask", "--json"],
                            input="What does THAAD stand for?\n", capture_output=True,
                            text=True, env=env, timeout=180)
    assert result.returncode == 0, result.stderr
    passages = json.loads(result.stdout.splitlines()[0])["passages"]
    first = passages[0]
    assert isinstance(first["page"], int) and first["page"] >= 1
    assert first["pages"][0] == first["page"] <= first["pages"][1]
    page = (f"p. {first['page']}" if first["pages"][0] == first["pages"][1]
            else f"pp. {first['pages'][0]}–{first['pages'][1]}")
    assert first["citation"].endswith(f", {page} ¶{first['paragraph']}")


def test_a_pdf_citation_opens_its_page_as_an_image_with_the_passage_marked(indexed,
                                                                          monkeypatch):
    settings = indexed[".pdf"]
    monkeypatch.setenv("ALLIANCE_QA_CORPUS", str(settings.corpus_dir))
    monkeypatch.setenv("ALLIANCE_QA_INDEX", str(settings.index_dir))
    index = load_index(settings.index_dir)
    chunk = next(c for c in index.chunks if c.pages and c.pages[0] < c.pages[1])
    at = AppTest.from_file(str(CORPUS.parents[2] / "app.py"), default_timeout=120)
    at.query_params["cite"] = chunk.paragraph_id
    at.query_params["hl"] = "0-40"
    at.run()
    assert not at.exception
    captions = [caption for image in at.image for caption in image.captions]
    assert captions == [f"{index.documents[0].title}, p. {n}"
                        for n in range(chunk.pages[0], chunk.pages[1] + 1)]
    text = "\n".join(m.value for m in at.markdown)
    assert f"Cited: {chunk.citation.replace(' (part', '').split(' (')[0]}" in text
    assert "<mark>" in text                     # the answering span, marked in the section


def test_editing_one_paragraph_of_a_pdf_re_embeds_only_that_paragraph(tmp_path, embedder,
                                                                      encoders):
    title, sections = parse_markdown(next(CORPUS.glob("*.md")).read_text(), "seed")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", encoders_dir=encoders)
    write_pdf(corpus / "report.pdf", title, sections)
    first = build_index(settings, embedder)
    first_chunks = load_index(settings.index_dir).chunks
    edited = list(sections)
    paragraphs = list(edited[5].paragraphs)
    paragraphs[1] = "A rewritten paragraph about joint exercises held every spring."
    edited[5] = replace(edited[5], paragraphs=tuple(paragraphs))
    write_pdf(corpus / "report.pdf", title, tuple(edited))
    second = build_index(settings, embedder)
    assert second.changes == {"added": 0, "changed": 1, "removed": 0}
    assert 0 < second.embedded <= 10 < second.reused
    assert second.chunks == first.chunks
    before_ids = {c.id for c in first_chunks}
    assert {c.id for c in load_index(settings.index_dir).chunks} == before_ids   # ids kept


def test_a_thousand_page_pdf_is_read_with_every_page_cited(tmp_path):
    title, sections = parse_markdown(next(CORPUS.glob("*.md")).read_text(), "seed")
    ten = write_pdf(tmp_path / "ten.pdf", title, sections)
    source = pdfium.PdfDocument(ten)
    book = pdfium.PdfDocument.new()
    pages = len(source)
    book.import_pages(source, list(range(pages)) * (1000 // pages + 1))
    while len(book) > 1000:
        book.del_page(len(book) - 1)
    (tmp_path / "corpus").mkdir()
    book.save(tmp_path / "corpus" / "book.pdf")
    documents, warnings = read_corpus(tmp_path / "corpus")
    assert not warnings
    [book_document] = documents
    cited = {page for s in book_document.sections for first, last in s.pages
             for page in range(first, last + 1)}
    assert cited == set(range(1, 1001))
    assert sum(len(s.paragraphs) for s in book_document.sections) > 5000
