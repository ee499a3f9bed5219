"""Shared fixtures: the real bundled model, and one real index built per test session.

Every test gets its own ALLIANCE_QA_INDEX (an empty temporary folder) unless it asks for
the built index, so no test can touch the project's own `index/`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from alliance_qa.config import Settings
from alliance_qa.embedding import Embedder
from alliance_qa.indexing import build_index
from alliance_qa.search import Searcher
from alliance_qa.store import load_index

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpus"
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(autouse=True)
def isolated_index(tmp_path, monkeypatch):
    monkeypatch.setenv("ALLIANCE_QA_INDEX", str(tmp_path / "index"))
    monkeypatch.setenv("ALLIANCE_QA_CORPUS", str(CORPUS))
    monkeypatch.delenv("ALLIANCE_QA_MODEL", raising=False)


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture(scope="session")
def built(tmp_path_factory, embedder) -> Settings:
    """Settings whose index folder holds a real build of the project corpus."""
    settings = Settings(corpus_dir=CORPUS, index_dir=tmp_path_factory.mktemp("built") / "index")
    build_index(settings, embedder)
    return settings


@pytest.fixture(scope="session")
def searcher(built, embedder) -> Searcher:
    return Searcher(load_index(built.index_dir), embedder)


@pytest.fixture
def corpus_copy(tmp_path) -> Path:
    """A writable copy of the corpus, for tests that edit it."""
    target = tmp_path / "corpus"
    shutil.copytree(CORPUS, target)
    return target
