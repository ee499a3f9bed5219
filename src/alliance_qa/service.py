"""Opening a searcher for the programs: load the model once, load and check the index.

Kept apart from `search.py` so that the search itself never reads settings or the disk.
"""

from __future__ import annotations

from .config import Settings
from .embedding import Embedder
from .errors import IndexStale
from .indexing import staleness
from .search import Searcher
from .store import load_index


def open_searcher(settings: Settings, embedder: Embedder | None = None) -> Searcher:
    """A searcher over the live index; IndexMissing/IndexCorrupt/IndexStale when unusable.

    The corpus is checked before the model loads (a stale index fails fast); the model's
    weights are checked against the index once it has loaded (no second hashing).
    """
    index = load_index(settings.index_dir)
    reasons = staleness(index.manifest, settings, check_model=False)
    if reasons:
        raise IndexStale(f"The index is out of date: {'; '.join(reasons)}.")
    embedder = embedder or Embedder(settings.model)
    if index.manifest["model_fingerprint"] != embedder.fingerprint:
        raise IndexStale("The index was built with another model than the one configured.")
    return Searcher(index, embedder, max_question_chars=settings.max_question_chars)
