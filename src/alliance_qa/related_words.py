"""Words a question may use that the corpus lacks → the corpus words the model puts near
them ("soldiers" → troops, "Beijing" → China, "protests" → demonstrations).

Keyword search finds nothing for a word the corpus does not use, so a paraphrase scores as
if that word were not there. The model's input embeddings (one static vector per vocabulary
word, before any context) place such a word near the corpus's own words for the same thing;
keyword search then counts those, weighted by how near they are (query expansion with word
embeddings, as in Kuzi, Shtok and Kurland, CIKM 2016). The table is made at build time for
every vocabulary word the corpus lacks and kept in the index, so a search needs no model
for it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .language import STOPWORDS

NEAR_ENOUGH = 0.4     # cosine of input embeddings; below it neighbours are mostly noise
PER_WORD = 2          # corpus words (distinct stems) a missing word stands for, at most
_BLOCK_BYTES = 64 * 2**20     # a block's transient: rows × corpus words × 16 bytes (the
                              # similarities, their negation, argpartition's int64 order)


def related_words(words: list[str], vectors: np.ndarray, corpus_stems: set[str],
                  stem: Callable[[str], str]) -> dict[str, list[tuple[str, float]]]:
    """{word the corpus lacks: [(corpus stem, cosine), …]} for the model's whole words.

    A vocabulary word is "in the corpus" when its stem is one of `corpus_stems`; those words
    are the neighbours a missing word may stand for, each stem counted once.
    """
    stems = [stem(w) for w in words]
    known = np.array([s in corpus_stems for s in stems])
    asked = np.array([len(w) > 2 and w not in STOPWORDS for w in words]) & ~known
    near, near_stems = vectors[known], [s for s, k in zip(stems, known) if k]
    table: dict[str, list[tuple[str, float]]] = {}
    if not len(near):
        return table
    rows = np.flatnonzero(asked)
    spare = min(4 * PER_WORD, len(near))          # a few more, for neighbours sharing a stem
    step = max(1, _BLOCK_BYTES // (16 * len(near)))
    for start in range(0, len(rows), step):
        block = rows[start:start + step]
        similarity = vectors[block] @ near.T
        close = similarity.max(axis=1) >= NEAR_ENOUGH          # most words have nothing near
        block, similarity = block[close], similarity[close]
        best = np.argpartition(-similarity, spare - 1, axis=1)[:, :spare]
        for word_row, scores, candidates in zip(block, similarity, best):
            found: dict[str, float] = {}
            for j in candidates[np.argsort(-scores[candidates])]:
                if scores[j] < NEAR_ENOUGH or len(found) == PER_WORD:
                    break
                found.setdefault(near_stems[j], round(float(scores[j]), 3))
            if found:
                table[words[word_row]] = list(found.items())
    return table
