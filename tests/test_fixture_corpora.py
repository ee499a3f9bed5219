"""The main path on small corpora of each kind a user brings (tests/data/corpora/): outlined
Markdown, plain text with headings by line, plain text without headings, and German."""

from __future__ import annotations

import shutil

import pytest
from streamlit.testing.v1 import AppTest

from alliance_qa import ui
from alliance_qa.config import Settings
from alliance_qa.corpus import read_corpus
from alliance_qa.indexing import build_index
from alliance_qa.search import Searcher
from alliance_qa.store import load_index
from conftest import DATA, ROOT

CORPORA = DATA / "corpora"


@pytest.fixture(scope="session")
def mixed_settings(tmp_path_factory, embedder, encoders) -> Settings:
    settings = Settings(corpus_dir=CORPORA, index_dir=tmp_path_factory.mktemp("mixed") / "index",
                        encoders_dir=encoders)
    summary = build_index(settings, embedder)
    assert summary.documents == 4 and not summary.warnings
    return settings


@pytest.fixture(scope="session")
def mixed(mixed_settings, embedder) -> Searcher:
    return Searcher(load_index(mixed_settings.index_dir), embedder)


@pytest.mark.unit
def test_each_kind_of_document_reads_into_its_outline():
    documents = {d.id: d for d in read_corpus(CORPORA)[0]}
    outline = {name: [(s.number, s.heading, len(s.paragraphs)) for s in d.sections]
               for name, d in documents.items()}
    assert outline["lighthouse-keeping"] == [
        ("", "Lighthouse Keeping", 1), ("1", "Lamps and lenses", 2), ("2", "Daily duties", 0),
        ("2.1", "Night watch", 1), ("2.2", "Maintenance", 1), ("3", "Automation", 1)]
    assert outline["beekeeping-notes"] == [("1", "Hive inspections", 2), ("2", "Swarming", 1),
                                           ("3", "Harvest", 1)]
    assert outline["tide-pools"] == [("", "tide pools", 3)]
    assert outline["hanse"][0] == ("", "Die Hanse", 1)
    assert documents["hanse"].title == "Die Hanse"


@pytest.mark.parametrize(("question", "cited"), [
    ("How often did keepers trim the wicks?", "§1 Lamps and lenses, ¶1"),
    ("Who designed the lens of concentric prisms?", "§1 Lamps and lenses, ¶2"),
    ("What did the keeper do at sunset?", "§2.1 Night watch, ¶1"),
    ("How much honey should be left for winter?", "§3 Harvest, ¶1"),
    ("What do upright eggs in the cells tell you?", "§1 Hive inspections, ¶2"),
    ("How does the ochre sea star eat mussels?", "tide pools, ¶3"),
    ("Wann fand der letzte Hansetag statt?", "§3 Niedergang, ¶1"),
    ("Welche Waren handelten die Hansekaufleute?", "§2 Waren, ¶1"),
])
def test_questions_find_their_paragraph_in_each_kind_of_document(mixed, question, cited):
    answer = mixed.search(question)
    assert answer.hits[0].chunk.citation == cited
    assert not answer.abstained


def test_a_question_about_none_of_them_abstains(mixed):
    assert mixed.search("What is the boiling point of nitrogen?").abstained


def test_the_page_outlines_one_chosen_document_of_a_library(mixed_settings, tmp_path,
                                                            monkeypatch):
    """Past ui.OUTLINE_DOCUMENTS documents the outline is one document's, chosen by title
    (all of them made 1.26 MB of HTML at 2,003 documents)."""
    shutil.copytree(mixed_settings.index_dir, tmp_path / "index")
    monkeypatch.setenv("ALLIANCE_QA_INDEX", str(tmp_path / "index"))
    monkeypatch.setenv("ALLIANCE_QA_CORPUS", str(CORPORA))
    monkeypatch.setattr(ui, "OUTLINE_DOCUMENTS", 2)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    assert not at.exception
    outline = next(e for e in at.sidebar.expander if e.label == "Browse the outline")
    chooser = next(s for s in outline.selectbox if s.label == "Outline of")
    titles = list(chooser.options)
    assert len(titles) == 4

    def outlined() -> list[str]:
        box = next(e for e in at.sidebar.expander if e.label == "Browse the outline")
        shown = "\n".join(m.value for m in box.markdown)
        return [t for t in titles if f"<b>{ui.escape(t)}</b>" in shown]

    assert outlined() == [titles[0]]
    chooser.set_value(2).run()
    assert not at.exception and outlined() == [titles[2]]
