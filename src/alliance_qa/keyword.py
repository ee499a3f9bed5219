"""Keyword (BM25) scoring with bm25s: stemmed words, English function words left out, and
misspelt question words matched to the nearest word of the corpus.

A question word counts as misspelt only when it is in neither the corpus nor the dictionary
given (the embedding model's vocabulary of whole words): "service" is a word, not a typo of
"serve"; "missle" is a typo of "missile".

bm25s's own English list keeps question words ("how", "what", "why"), so every "How …"
question would match every passage containing "how"; our list (stopwords.py) drops them too.
"""

from __future__ import annotations

import difflib
from typing import Collection

import bm25s
import numpy as np
import Stemmer

from .stopwords import STOPWORDS

_STOPWORD_LIST = sorted(STOPWORDS)      # bm25s takes a list


class KeywordIndex:
    """BM25 over a list of texts; `scores` gives one float per text."""

    def __init__(self, texts: list[str], correct_typos: bool = True,
                 dictionary: Collection[str] = ()):
        self._stemmer = Stemmer.Stemmer("english")
        self.dictionary = dictionary
        self._bm25 = bm25s.BM25()
        tokens = self.tokenize(texts)
        # bm25s cannot index an empty vocabulary; a single placeholder token keeps it valid.
        self._bm25.index([t or ["\x00"] for t in tokens], show_progress=False)
        self.vocabulary = set(self._bm25.vocab_dict)
        self._long_words = sorted(w for w in self.vocabulary if len(w) >= 4) \
            if correct_typos else []

    def tokenize(self, texts: list[str], stem: bool = True) -> list[list[str]]:
        """Lowercased words without function words; stemmed unless `stem` is False."""
        return bm25s.tokenize(texts, stopwords=_STOPWORD_LIST,
                              stemmer=self._stemmer if stem else None,
                              return_ids=False, show_progress=False)

    def correct(self, word: str) -> str | None:
        """The word's stem, or the closest stem of the corpus for a likely misspelling."""
        token = self._stemmer.stemWord(word)
        if token in self.vocabulary:
            return token
        if len(token) < 5 or token.isdigit() or word in self.dictionary:
            return None
        close = difflib.get_close_matches(token, self._long_words, n=1, cutoff=0.8)
        return close[0] if close else None

    def scores(self, text: str) -> np.ndarray:
        """BM25 of every text for the question; misspelt words count as their correction."""
        tokens = [c for c in map(self.correct, self.tokenize([text], stem=False)[0]) if c]
        if not tokens:
            return np.zeros(self._bm25.scores["num_docs"], dtype=np.float32)
        return self._bm25.get_scores(tokens).astype(np.float32)
