"""Keyword (BM25) scoring with bm25s: stemmed words, English function words left out, and
misspelt question words matched to the nearest word of the corpus.

bm25s's own English list keeps question words ("how", "what", "why"), so every "How …"
question would match every passage containing "how"; the list below drops them too.
"""

from __future__ import annotations

import difflib

import bm25s
import numpy as np
import Stemmer

STOPWORDS = sorted(set("""
a about above after again against all am an and any are aren't as at be because been before
being below between both but by can could did didn't do does doesn't doing don't down during
each either else ever few for from further get gets got had has have having he her here hers
herself him himself his how i if in into is isn't it it's its itself just let like may me might
more most much must my myself neither no nor not now of off on once only or other ought our ours
ourselves out over own please same say says she should so some still such tell than that the
their theirs them themselves then there these they this those through thus to too under until up
upon us very was wasn't way we were weren't what whatever when where whether which while who
whom whose why will with within without would you your yours yourself yourselves
""".split()) - {"us"})   # "US" the country outweighs "us" the pronoun in this kind of corpus


class KeywordIndex:
    """BM25 over a list of texts; `scores` gives one float per text."""

    def __init__(self, texts: list[str], correct_typos: bool = True):
        self._stemmer = Stemmer.Stemmer("english")
        self._bm25 = bm25s.BM25()
        tokens = self.tokenize(texts)
        # bm25s cannot index an empty vocabulary; a single placeholder token keeps it valid.
        self._bm25.index([t or ["\x00"] for t in tokens], show_progress=False)
        self.vocabulary = set(self._bm25.vocab_dict)
        self._long_words = sorted(w for w in self.vocabulary if len(w) >= 4) \
            if correct_typos else []

    def tokenize(self, texts: list[str]) -> list[list[str]]:
        return bm25s.tokenize(texts, stopwords=STOPWORDS, stemmer=self._stemmer,
                              return_ids=False, show_progress=False)

    def correct(self, token: str) -> str | None:
        """The token, or the closest word of the corpus for a likely misspelling of one."""
        if token in self.vocabulary:
            return token
        if len(token) < 5 or token.isdigit():
            return None
        close = difflib.get_close_matches(token, self._long_words, n=1, cutoff=0.8)
        return close[0] if close else None

    def scores(self, text: str) -> np.ndarray:
        """BM25 of every text for the question; misspelt words count as their correction."""
        tokens = [c for c in map(self.correct, self.tokenize([text])[0]) if c]
        if not tokens:
            return np.zeros(self._bm25.scores["num_docs"], dtype=np.float32)
        return self._bm25.get_scores(tokens).astype(np.float32)
