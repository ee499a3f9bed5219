"""Opening a searcher for the programs: load the model once, load and check the index.

Kept apart from `search.py` so that the search itself never reads settings or the disk.
"""

from __future__ import annotations

from .abstention import CHECKS
from .config import Settings
from .embedding import Embedder, QueryEncoder, fingerprint
from .errors import IndexStale
from .indexing import staleness
from .onnx_encoder import OnnxEncoder
from .search import Searcher
from .store import load_index


def open_encoder(settings: Settings, indexed_fingerprint: str) -> QueryEncoder:
    """The configured model for questions: its verified ONNX export when the build made one
    and the model is the one the index was built with (no PyTorch to load), else
    sentence-transformers."""
    if fingerprint(settings.model) == indexed_fingerprint:
        exported = OnnxEncoder.load(settings.encoders, indexed_fingerprint)
        if exported:
            return exported
    return Embedder(settings.model)


def open_searcher(settings: Settings, embedder: QueryEncoder | None = None,
                  checks: tuple[str, ...] = CHECKS) -> Searcher:
    """A searcher over the live index, with these answer-type checks;
    IndexMissing/IndexCorrupt/IndexStale when unusable.

    The corpus is checked before the model loads (a stale index fails fast); the model's
    weights are checked against the index once it has loaded (no second hashing).
    """
    index = load_index(settings.index_dir)
    reasons = staleness(index.manifest, settings, check_model=False)
    if reasons:
        raise IndexStale(f"The index is out of date: {'; '.join(reasons)}.")
    embedder = embedder or open_encoder(settings, index.manifest["model_fingerprint"])
    if index.manifest["model_fingerprint"] != embedder.fingerprint:
        raise IndexStale("The index was built with another model than the one configured.")
    return Searcher(index, embedder, max_question_chars=settings.max_question_chars,
                    checks=checks)
