"""Keyword (BM25) scoring with bm25s: stemmed words, English function words left out.
(Misspelt words are read as the words meant before the search: spelling.py.)

bm25s's own English list keeps question words ("how", "what", "why"), so every "How …"
question would match every passage containing "how"; our list (stopwords.py) drops them too.
"""

from __future__ import annotations

import bm25s
import numpy as np
import Stemmer

from .stopwords import STOPWORDS

_STOPWORD_LIST = sorted(STOPWORDS)      # bm25s takes a list


class KeywordIndex:
    """BM25 over a list of texts; `scores` gives one float per text."""

    def __init__(self, texts: list[str]):
        self._stemmer = Stemmer.Stemmer("english")
        self._bm25 = bm25s.BM25()
        tokens = self.tokenize(texts)
        # bm25s cannot index an empty vocabulary; a single placeholder token keeps it valid.
        self._bm25.index([t or ["\x00"] for t in tokens], show_progress=False)
        self.vocabulary = set(self._bm25.vocab_dict)

    def tokenize(self, texts: list[str]) -> list[list[str]]:
        """Lowercased, stemmed words without function words."""
        return bm25s.tokenize(texts, stopwords=_STOPWORD_LIST, stemmer=self._stemmer,
                              return_ids=False, show_progress=False)

    def scores(self, text: str) -> np.ndarray:
        """BM25 of every text for the question (words the corpus lacks score nothing)."""
        tokens = [t for t in self.tokenize([text])[0] if t in self.vocabulary]
        if not tokens:
            return np.zeros(self._bm25.scores["num_docs"], dtype=np.float32)
        return self._bm25.get_scores(tokens).astype(np.float32)
