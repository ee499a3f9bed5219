"""Keyword (BM25) scoring with bm25s: stemmed words, English function words left out, and
a question word the corpus lacks counted as the corpus words the model puts near it
(related_words.py). (Misspelt words are read as the words meant before the search:
spelling.py.)

bm25s's own English list keeps question words ("how", "what", "why"), so every "How …"
question would match every passage containing "how"; our list (stopwords.py) drops them too.
The build saves the index with bm25s's own format, and serving memory-maps it, so a start
never tokenizes the corpus again.
"""

from __future__ import annotations

import tempfile
from array import array
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import bm25s
import numpy as np
import Stemmer
from bm25s.tokenization import Tokenized

from .acronyms import expand
from .chunking import Chunk
from .language import STOPWORDS

_STOPWORD_LIST = sorted(STOPWORDS)      # bm25s takes a list
Related = dict[str, list[tuple[str, float]]]     # word → [(corpus stem, weight), …]


def keyword_texts(chunks: Iterable[Chunk], acronyms: dict[str, str]) -> Iterator[str]:
    """What keyword search reads of each chunk: its heading path and text, acronyms
    written out."""
    return (expand(" ".join(c.breadcrumb) + ". " + c.text, acronyms) for c in chunks)


# The saved index's files, as bm25s names them (its `save` and `load` arguments), prefixed.
SAVED = {"data": "data.csc.index.npy", "indices": "indices.csc.index.npy",
         "indptr": "indptr.csc.index.npy", "vocab": "vocab.index.json",
         "params": "params.index.json"}
FILE_PREFIX = "bm25-"
FILES = tuple(FILE_PREFIX + name for name in SAVED.values())


class KeywordIndex:
    """BM25 over a list of texts; `scores` gives one float per text."""

    def __init__(self, bm25: bm25s.BM25, related: Related | None = None):
        self._stemmer = Stemmer.Stemmer("english")
        self._bm25 = bm25
        self.vocabulary = set(bm25.vocab_dict)
        self.related = related or {}

    @classmethod
    def from_texts(cls, texts: Iterable[str], related: Related | None = None) -> KeywordIndex:
        """Index the texts."""
        tokens = TokenIds()
        tokens.add(list(texts))
        return tokens.keyword_index(related)

    def with_related(self, related: Related) -> KeywordIndex:
        """The same index, a word the corpus lacks counted as these related words."""
        return KeywordIndex(self._bm25, related)

    def files(self) -> dict[str, bytes]:
        """The index as bm25s saves it: file name → bytes."""
        names = {f"{part}_name": FILE_PREFIX + name for part, name in SAVED.items()}
        with tempfile.TemporaryDirectory() as folder:
            self._bm25.save(folder, show_progress=False, **names)
            return {name: (Path(folder) / name).read_bytes() for name in FILES}

    @classmethod
    def load(cls, folder: Path, related: Related | None = None) -> KeywordIndex:
        """An index saved by `files` into `folder`, its arrays memory-mapped."""
        names = {f"{part}_name": FILE_PREFIX + name for part, name in SAVED.items()}
        return cls(bm25s.BM25.load(str(folder), mmap=True, show_progress=False, **names),
                   related)

    @property
    def documents(self) -> int:
        """How many texts are indexed."""
        return int(self._bm25.scores["num_docs"])

    def stem(self, word: str) -> str:
        """A word's Snowball stem."""
        return self._stemmer.stemWord(word)

    def tokenize(self, texts: list[str], stem: bool = True) -> list[list[str]]:
        """Lowercased words without function words; stemmed unless `stem` is False."""
        return tokenize(texts, self._stemmer if stem else None)

    def scores(self, text: str) -> np.ndarray:
        """BM25 of every text for the question; a word the corpus lacks counts as its
        related corpus words, each weighted by its similarity."""
        weighted: dict[str, float] = {}
        for word in self.tokenize([text], stem=False)[0]:
            token = self.stem(word)
            pairs = [(token, 1.0)] if token in self.vocabulary else self.related.get(word, [])
            for token, weight in pairs:
                weighted[token] = weighted.get(token, 0.0) + weight
        scores = np.zeros(self.documents, dtype=np.float32)
        for weight, tokens in _by_weight(weighted).items():
            scores += weight * self._bm25.get_scores(tokens).astype(np.float32)
        return scores


class TokenIds:
    """Texts' tokens as numbers into their vocabulary, in one flat array (4 bytes a token),
    added a batch of texts at a time: a build makes BM25 from these, not from every text's
    tokens held as lists of strings (which peaked at ~3 KB a passage)."""

    def __init__(self) -> None:
        self._stemmer = Stemmer.Stemmer("english")
        self._numbers: dict[str, int] = {}         # token → number, in order of appearance
        self._tokens = array("i")
        self._ends = array("q", [0])               # where each text's tokens end

    def add(self, texts: list[str]) -> None:
        """The next texts."""
        numbers = self._numbers
        for tokens in tokenize(texts, self._stemmer):
            # bm25s cannot index an empty vocabulary; a placeholder token keeps it valid.
            self._tokens.extend(numbers.setdefault(t, len(numbers)) for t in tokens or ["\x00"])
            self._ends.append(len(self._tokens))

    def keyword_index(self, related: Related | None = None) -> KeywordIndex:
        """BM25 over the texts added. Tokens are numbered in sorted order: bm25s numbers
        them in set order, which differs from one process to the next (hash seeds), and so
        would the saved files."""
        vocabulary = sorted(self._numbers)
        renumbered = np.empty(len(vocabulary), np.int32)
        renumbered[[self._numbers[t] for t in vocabulary]] = np.arange(len(vocabulary))
        runs = _Runs(renumbered[np.frombuffer(self._tokens, np.int32)],
                     np.frombuffer(self._ends, np.int64))
        bm25 = bm25s.BM25(csc_backend="scipy")   # 123 MB to make at 100,000 passages; numpy's 204
        bm25.index(Tokenized(ids=runs, vocab={t: n for n, t in enumerate(vocabulary)}),
                   show_progress=False)
        return KeywordIndex(bm25, related)


class _Runs(Sequence[list[int]]):
    """Each text's token numbers, as bm25s reads them (a list each), made as asked."""

    def __init__(self, tokens: np.ndarray, ends: np.ndarray):
        self._tokens, self._ends = tokens, ends

    def __len__(self) -> int:
        return len(self._ends) - 1

    def __getitem__(self, number: int) -> list[int]:  # type: ignore[override]
        if not 0 <= number < len(self):
            raise IndexError(number)
        return self._tokens[self._ends[number]:self._ends[number + 1]].tolist()


def tokenize(texts: list[str], stemmer: Stemmer.Stemmer | None) -> list[list[str]]:
    """Lowercased words without function words, stemmed by `stemmer` when given."""
    return bm25s.tokenize(texts, stopwords=_STOPWORD_LIST, stemmer=stemmer, return_ids=False,
                          show_progress=False)


def _by_weight(weighted: dict[str, float]) -> dict[float, list[str]]:
    """Tokens grouped by weight: bm25s scores a list of tokens in one call."""
    groups: dict[float, list[str]] = {}
    for token, weight in weighted.items():
        groups.setdefault(weight, []).append(token)
    return groups
