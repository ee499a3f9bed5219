"""Opening a searcher for the programs: load the model once, load and check the index.

Kept apart from `search.py` so that the search itself never reads settings or the disk. The
command line and the page both open through here, so they refuse the same indexes with the
same words, and serve the same ones with the same warning.
"""

from __future__ import annotations

from .abstention import CHECKS
from .config import Settings
from .embedding import QueryEncoder
from .errors import IndexStale
from .indexing import build_changes, corpus_changes
from .manifest import Manifest
from .onnx_encoder import question_encoder
from .search import Searcher
from .store import load_index

ANOTHER_MODEL = "The index was built with another model than the one configured."


def refuse_other_builds(manifest: Manifest, settings: Settings) -> None:
    """IndexStale when another model (by name) or another version of alliance-qa built the
    index: its answers would be wrong, so it is not served."""
    reasons = build_changes(manifest, settings, check_model=False)
    if reasons:
        raise IndexStale(f"The index cannot be used: {'; '.join(reasons)}.")


def refuse_other_model(manifest: Manifest, encoder: QueryEncoder) -> None:
    """IndexStale when the model that encodes questions is not the one that built the index
    (same name, other weights)."""
    if manifest.model_fingerprint != encoder.fingerprint:
        raise IndexStale(ANOTHER_MODEL)


def stale_warning(changes: list[str]) -> str:
    """What is said when the documents changed since the build ("" when they did not):
    the index still serves, as built."""
    if not changes:
        return ""
    shown = "; ".join(changes[:5]) + (f"; and {len(changes) - 5} more" if len(changes) > 5
                                      else "")
    return (f"The documents changed since the index was built ({shown}); answers come from "
            "the documents as they were. Run `alliance-qa build` to update the index.")


def open_searcher(settings: Settings, embedder: QueryEncoder | None = None,
                  checks: tuple[str, ...] = CHECKS) -> tuple[Searcher, str]:
    """A searcher over the live index, with these answer-type checks, and the warning to
    show when the documents changed since the build ("" when they did not);
    IndexMissing/IndexCorrupt/IndexStale when the index cannot serve.

    The index is checked before the model loads (a refused index fails fast); the model's
    weights are checked against the index once it has loaded (no second hashing).
    """
    index = load_index(settings.index_dir)
    refuse_other_builds(index.manifest, settings)
    warning = stale_warning(corpus_changes(index.manifest, settings.corpus_dir))
    embedder = embedder or question_encoder(settings.model, settings.encoders,
                                            index.manifest.model_fingerprint)
    refuse_other_model(index.manifest, embedder)
    return Searcher(index, embedder, max_question_chars=settings.max_question_chars,
                    checks=checks), warning
