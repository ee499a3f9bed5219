"""Misspelt question words read as the words meant: "srtategies" → "strategies".

The model splits a misspelt word into pieces that mean little ("sr", "##tate", "##gies"),
and BM25 finds no such word at all, so one slip can cost the right passage (a slip in each
evaluation question took hit@1 from 0.93 to 0.82). A word is left as typed when it is
known: English (pyspellchecker's list of ~160,000 words, so "reshaped" or "clout" are never
"corrected"), a word of the corpus, or a whole word of the model's vocabulary.

An unknown word becomes a corpus word one edit away (a letter dropped, added, changed, or
two swapped; the more frequent first); else, for a word of eight letters or more, the most
similar corpus word (difflib: two slips); else the most frequent English word one edit away.
A word is also known when the corpus has another form of it (the same Snowball stem:
"upregulated" beside "upregulation"). Candidates keep the word's first letter (slips rarely
hit it, and a name changed there is another name: "busan" is not "susan"), and a word without
a vowel may only get one back ("trst" → trust; "dprk" is not "dark").

A capitalized word inside the question may be a name: it is only read as a name of the
corpus one edit away (a word the corpus writes capitalized more often than not:
"Rhiine" → Rhine, "Ploand" → Poland), never as a common word ("Geven" is not "Given").
An all-capitals word may be an acronym and is left as typed ("FLIS" is not "FIS").

A decade written short ("the 80s") is read as the one decade of that name the corpus
writes in full ("1980s"), and left as typed when the corpus writes none or several
("1880s" and "1980s"): written in full it scores as the text does (alliance: "wat happend
in the 70s and 80s" 1.50 → 1.80, over the learned threshold).
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from functools import cached_property

import Stemmer
from spellchecker import SpellChecker

from .language import DECADE, VOWEL

_WORD = re.compile(r"[^\W\d_]+")
SHORTEST = 4              # shorter words are too easily another word: left as typed
LONG = 8                  # a word this long may hold two slips…
SIMILAR_ENOUGH = 0.8      # …and still be this like a corpus word (difflib's ratio)


def corpus_words(texts: Iterable[str]) -> dict[str, int]:
    """How often each word occurs in the texts, as written ("Rhine", "rhine" and "RHINE"
    apart): what the speller knows of a corpus, counted at build time."""
    return dict(Counter(w for text in texts for w in _WORD.findall(text)))


def names_among(written: Mapping[str, int]) -> set[str]:
    """The words (lowercase) that the corpus writes capitalized more often than not."""
    capitalized, lower = Counter(), Counter()
    for word, count in written.items():
        (capitalized if word[:1].isupper() else lower)[word.lower()] += count
    return {word for word, count in capitalized.items() if count > lower[word]}


class Speller:
    """Reads misspelt question words as the words meant (corpus words first); `written`:
    each corpus word's count as written (`corpus_words`); `keywords`: the corpus's keyword
    tokens (BM25's vocabulary), of which the decades written in full ("1980s") are kept."""
    def __init__(self, written: Mapping[str, int], also_known: Collection[str] = (),
                 keywords: Iterable[str] = ()):
        self.corpus = Counter()
        for word, count in written.items():
            self.corpus[word.lower()] += count
        self.names = names_among(written)
        self._long_corpus_words = sorted(w for w in self.corpus if len(w) >= LONG - 1)
        self._stemmer = Stemmer.Stemmer("english")
        self._corpus_stems = set(self._stemmer.stemWords(list(self.corpus)))
        self._also_known = also_known
        self._decades: dict[str, list[str]] = {}          # "8" → ["1980s"]
        for word in sorted(keywords):
            decade = DECADE.fullmatch(word)
            if decade and decade.group(1):
                self._decades.setdefault(decade.group(2), []).append(word)

    @cached_property
    def _english(self) -> SpellChecker:
        """Loaded at the first word the corpus and the model both lack (0.14 s, ~25 MB):
        most questions never need it. Two threads may both load it; one copy is kept."""
        return SpellChecker(language="en", distance=1)

    def known(self, word: str) -> bool:
        """Whether the corpus, the model or the English word list has the word."""
        return (word in self.corpus or word in self._also_known
                or self._stemmer.stemWord(word) in self._corpus_stems
                or word in self._english.word_frequency.dictionary)

    def correction(self, word: str, name: bool = False) -> str | None:
        """The word meant by a lowercase word, or None when it is known or nothing is near.
        A question about the documents most likely means the documents' words: a corpus
        word one edit away comes first, then one similar enough, then an English word.
        A `name` may only be one of the corpus's names one edit away."""
        if len(word) < SHORTEST or self.known(word):
            return None
        # Slips rarely hit a word's first letter, and a name changed there is another name
        # ("busan" is not "susan"): candidates keep it. A word without a vowel lost one
        # ("trst") or is an acronym in lower case ("dprk" is not "dark").
        near = {w for w in self._english.edit_distance_1(word) if w[:1] == word[:1]
                and (VOWEL.search(word) or len(w) == len(word) + 1)}
        ours = [w for w in near if w in (self.names if name else self.corpus)]
        if ours:
            return max(ours, key=lambda w: (self.corpus[w], w))
        if name:            # read as nothing but one of the corpus's names
            return None
        if len(word) >= LONG:
            similar = difflib.get_close_matches(word, self._long_corpus_words, n=3,
                                                cutoff=SIMILAR_ENOUGH)
            similar = [w for w in similar if w[:1] == word[:1]]
            if similar:
                return similar[0]
        frequency = self._english.word_frequency.dictionary
        english = [w for w in near if w in frequency]
        return max(english, key=lambda w: (frequency[w], w)) if english else None

    def correct(self, text: str) -> tuple[str, tuple[tuple[str, str], ...]]:
        """The text with its misspelt words and short decades replaced, and each (as
        typed, as read)."""
        changes = []

        def decade(match: re.Match) -> str:
            full = self._decades.get(match.group(2), [])
            if match.group(1) or len(full) != 1:        # written in full, or not one decade
                return match.group(0)
            changes.append((match.group(0), full[0]))
            return full[0]

        def read(match: re.Match) -> str:
            typed = match.group(0)
            if typed.isupper() and len(typed) > 1:              # an acronym
                return typed
            named = typed[0].isupper() and match.start() > 0    # a capital inside it
            meant = self.correction(typed.lower(), name=named)
            if meant is None:
                return typed
            written = meant.capitalize() if typed[0].isupper() else meant
            changes.append((typed, written))
            return written

        text = DECADE.sub(decade, text)
        return _WORD.sub(read, text), tuple(dict.fromkeys(changes))
