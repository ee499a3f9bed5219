"""Shared fixtures: the real bundled model, and one real index built per test session.

Every test gets its own ALLIANCE_QA_INDEX (an empty temporary folder) unless it asks for
the built index, so no test can touch the project's own `index/`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from alliance_qa.browser import CHROMIUM, chromium
from alliance_qa.config import Settings
from alliance_qa.corpus import read_corpus
from alliance_qa.embedding import Embedder
from alliance_qa.indexing import build_index
from alliance_qa.search import Searcher
from alliance_qa.store import load_index

ROOT = Path(__file__).resolve().parents[1]
# The shipped document as the evaluation suite keeps it: tests never read `corpus/`, which is
# the user's to change.
CORPUS = ROOT / "eval" / "alliance" / "corpus"
DATA = Path(__file__).resolve().parent / "data"
# Counts of the shipped document, read from it: tests about it never hard-code them.
SHIPPED = read_corpus(CORPUS)[0]
SHIPPED_SECTIONS = sum(len(d.sections) for d in SHIPPED)
SHIPPED_PARAGRAPHS = sum(len(s.paragraphs) for d in SHIPPED for s in d.sections)


@pytest.fixture(scope="session")
def encoders(tmp_path_factory) -> Path:
    """One folder of model exports for the session: each new index folder would otherwise
    export the model again (a few seconds each)."""
    return tmp_path_factory.mktemp("encoders")


@pytest.fixture(autouse=True)
def isolated_index(tmp_path, monkeypatch, encoders):
    monkeypatch.setenv("ALLIANCE_QA_INDEX", str(tmp_path / "index"))
    monkeypatch.setenv("ALLIANCE_QA_ENCODERS", str(encoders))
    monkeypatch.setenv("ALLIANCE_QA_CORPUS", str(CORPUS))
    monkeypatch.delenv("ALLIANCE_QA_MODEL", raising=False)


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture(scope="session")
def built(tmp_path_factory, embedder, encoders) -> Settings:
    """Settings whose index folder holds a real build of the project corpus."""
    settings = Settings(corpus_dir=CORPUS, index_dir=tmp_path_factory.mktemp("built") / "index",
                        encoders_dir=encoders)
    build_index(settings, embedder)
    return settings


@pytest.fixture
def page_index(built, tmp_path, monkeypatch) -> Path:
    """A private copy of the session's index, which the page (AppTest) is pointed at."""
    target = tmp_path / "app-index"
    shutil.copytree(built.index_dir, target)
    monkeypatch.setenv("ALLIANCE_QA_INDEX", str(target))
    return target


@pytest.fixture(scope="session")
def searcher(built, embedder) -> Searcher:
    return Searcher(load_index(built.index_dir), embedder)


@pytest.fixture
def corpus_copy(tmp_path) -> Path:
    """A writable copy of the corpus, for tests that edit it."""
    target = tmp_path / "corpus"
    shutil.copytree(CORPUS, target)
    return target


# The real-browser tests: marked, and skipped (saying why) where Debian's Chromium is absent.
BROWSER_TESTS = [pytest.mark.browser,
                 pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                    reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")]


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium for a module's tests."""
    with chromium() as browser:
        yield browser
