"""Word-level matching in context (late interaction, as in ColBERT's MaxSim and BERTScore).

Every content word piece of the question is matched to its closest word piece of a passage,
both as the model read them in context; a passage's score is the mean of those best matches,
weighted by how rare the question's piece is in the corpus (idf). One question vector must
squeeze every word into one point; word-level matching lets "American service members" meet
"U.S. military personnel" word by word, while rare words count for more than common ones.
The question's piece vectors come from the same forward pass as its vector.

The same matching tells how much of a question the documents cover at all: a whole word of
the question whose best match among the candidate passages is weak ("visa", "baseball" in a
corpus on an alliance) names something the documents never discuss.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .embedding import CONTINUATION_MARK, WORD_START_MARKS, TokenVectors, bare_piece
from .stopwords import STOPWORDS
from .store import token_starts


WIDEN_BELOW_BYTES = 256 * 2**20


@dataclass(frozen=True)
class WordMatch:
    scores: np.ndarray        # per chunk of the pool: Σ weight × best cosine of each piece
    piece_best: np.ndarray    # per question piece: its best cosine over the whole pool


class TokenMatcher:
    """Scores chunks by word-level matching; `table` rows are (chunk number, piece id) for
    each row of `vectors`, grouped by chunk in chunk order."""

    def __init__(self, vectors: np.ndarray, table: np.ndarray, chunk_count: int):
        # Stored as float16 (half the bytes); widened once when that fits easily in memory,
        # since widening the candidates' rows on every question costs more than the product.
        small = vectors.size * 4 <= WIDEN_BELOW_BYTES
        self.vectors = np.asarray(vectors, dtype=np.float32) if small else vectors
        ids = table[:, 1]
        self.start = token_starts(table, chunk_count)
        pairs = np.unique(table, axis=0) if len(table) else table   # (chunk, id) once each
        self.document_frequency = np.bincount(pairs[:, 1], minlength=int(ids.max(initial=0)) + 1)
        self.chunk_count = chunk_count

    def idf(self, ids: np.ndarray) -> np.ndarray:
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

    def match(self, tokens: TokenVectors, weights: np.ndarray, pool: np.ndarray) -> WordMatch:
        """For each chunk of `pool`: Σ weight × best cosine of that question piece in the chunk;
        and each question piece's best cosine anywhere in the pool (0 for uncounted pieces)."""
        keep = weights > 0
        result = np.zeros(len(pool), dtype=np.float32)
        piece_best = np.zeros(len(weights), dtype=np.float32)
        if not keep.any() or not len(pool):
            return WordMatch(result, piece_best)
        query, weights, kept_best = tokens.vectors[keep], weights[keep], piece_best[keep]
        order = np.argsort(pool, kind="stable")
        # runs of consecutive chunks are contiguous rows: one product per run, no copying
        for run in np.split(order, np.flatnonzero(np.diff(pool[order]) != 1) + 1):
            chunks = pool[run]
            low, high = self.start[chunks[0]], self.start[chunks[-1] + 1]
            similarity = query @ self.vectors[low:high].T               # pieces × rows
            best = np.maximum.reduceat(similarity, self.start[chunks] - low, axis=1)
            result[run] = weights @ best                                 # per chunk
            kept_best = np.maximum(kept_best, best.max(axis=1))
        piece_best[keep] = kept_best
        return WordMatch(result, piece_best)

    @staticmethod
    def uncovered(words: list[str], weights: np.ndarray, piece_best: np.ndarray,
                  below: float) -> tuple[float, list[str]]:
        """The share of the question's weight on whole words whose best match is below
        `below`, and those words. Pieces of split words (typos, rare names) do not count:
        "securty" splits into pieces that match nothing, but is not a new subject."""
        continues = _continuations(words)
        whole = ~continues & ~np.append(continues[1:], False)   # nor followed by a piece
        weak = (weights > 0) & whole & (piece_best < below)
        return float(weights[weak].sum()), [w for w, k in zip(words, weak) if k]


def _continuations(pieces: list[str]) -> np.ndarray:
    """Which pieces continue the word before them: WordPiece marks them ("##ty"); SentencePiece
    and byte-level BPE mark the pieces that start a word ("▁secur", "Ġsecur") instead."""
    marked_starts = any(p.startswith(WORD_START_MARKS) for p in pieces)

    def continues(piece: str) -> bool:       # "Ġ" is itself a letter to str.isalnum
        return piece.startswith(CONTINUATION_MARK) or (
            marked_starts and not piece.startswith(WORD_START_MARKS) and piece[:1].isalnum())
    return np.array([continues(p) for p in pieces], dtype=bool)


def _is_content(piece: str) -> bool:
    """A word piece of letters or digits that is not a function word; special tokens
    ("[CLS]", "<s>") and punctuation are not. Word-piece and byte-pair markers are ignored."""
    word = bare_piece(piece)
    return word.isalnum() and word.lower() not in STOPWORDS
