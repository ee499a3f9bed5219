"""The seed document indexed as PDF, Word and a web page answers as the Markdown does; a PDF
answer carries its page in the command line's JSON, and its citation opens the page as an
image on the chat page."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import CORPUS
from document_writers import write_docx, write_html, write_pdf
from streamlit.testing.v1 import AppTest

from alliance_qa.config import Settings
from alliance_qa.documents import parse_markdown
from alliance_qa.indexing import build_index
from alliance_qa.search import Searcher
from alliance_qa.store import load_index

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
    assert same >= 0.97 * len(QUESTIONS), f"{same} of {len(QUESTIONS)}"


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
