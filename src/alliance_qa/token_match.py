"""Word-level matching in context (late interaction, as in ColBERT's MaxSim and BERTScore).

Every content word piece of the question is matched to its closest word piece of a passage,
both as the model read them in context; a passage's score is the mean of those best matches,
weighted by how rare the question's piece is in the corpus (idf). One question vector must
squeeze every word into one point; word-level matching lets "American service members" meet
"U.S. military personnel" word by word, while rare words count for more than common ones.
The question's piece vectors come from the same forward pass as its vector. A passage keeps
only its content pieces (`content_pieces`): a question's content piece has never had its best
match in a function word or a comma (hit@1 the same on both evaluation corpora), and that
halves the rows. The rows are stored compressed (token_codes.py).

"""

from __future__ import annotations

import functools

import numpy as np

from .embedding import TokenVectors, bare_piece
from .language import STOPWORDS
from .store import spans_rows, token_starts
from .token_codes import TokenCodes


class TokenMatcher:
    """Scores chunks by word-level matching; `table` rows are (chunk number, piece id) for
    each row of `rows`, grouped by chunk in chunk order; `document_frequency`: vocabulary id
    → how many chunks have that piece (store.document_frequencies)."""

    def __init__(self, rows: TokenCodes, table: np.ndarray, chunk_count: int,
                 document_frequency: np.ndarray):
        self.rows = rows
        self.start = token_starts(table, chunk_count)
        self.document_frequency = document_frequency
        self.chunk_count = chunk_count

    def idf(self, ids: np.ndarray) -> np.ndarray:
        """Inverse document frequency of word pieces in the corpus."""
        df = np.zeros(len(ids))
        known = ids < len(self.document_frequency)
        df[known] = self.document_frequency[ids[known]]
        return np.log((self.chunk_count + 1) / (df + 0.5))

    def query_weights(self, tokens: TokenVectors, words: list[str]) -> np.ndarray:
        """idf weights summing to 1 over the question's content pieces (0 for special tokens,
        punctuation and function words); all zero when the question has none."""
        content = np.array([_is_content(w) for w in words], dtype=bool)
        weights = np.where(content, self.idf(tokens.ids), 0.0).clip(min=0.0)
        total = weights.sum()
        return weights / total if total > 0 else weights

    def match(self, tokens: TokenVectors, weights: np.ndarray, pool: np.ndarray) -> np.ndarray:
        """For each chunk of `pool`: Σ weight × best cosine of that question piece in the chunk."""
        keep = weights > 0
        result = np.zeros(len(pool), dtype=np.float32)
        if not keep.any() or not len(pool):
            return result
        query, weights = tokens.vectors[keep], weights[keep]
        starts, ends = self.start[pool], self.start[pool + 1]
        counts = ends - starts       # every chunk has at least one row (content_pieces)
        # pieces × the pool's rows, read at once
        similarity = self.rows.similarities(query, spans_rows(starts, counts))
        best = np.maximum.reduceat(similarity, np.cumsum(counts) - counts, axis=1)
        return (weights @ best).astype(np.float32)


def content_pieces(tokens: TokenVectors, pieces: list[str]) -> TokenVectors:
    """A passage's content pieces (`pieces`: the word pieces of `tokens.ids`); its first
    piece when it has none, so every passage keeps a row."""
    keep = np.array([_is_content(p) for p in pieces], dtype=bool)
    if not keep.any():
        keep[:1] = True
    return TokenVectors(tokens.ids[keep], tokens.vectors[keep])


@functools.lru_cache(maxsize=1 << 17)      # a vocabulary's pieces, asked once per row
def _is_content(piece: str) -> bool:
    """A word piece of letters or digits that is not a function word; special tokens
    ("[CLS]", "<s>") and punctuation are not. Word-piece and byte-pair markers are ignored."""
    word = bare_piece(piece)
    return word.isalnum() and word.lower() not in STOPWORDS
