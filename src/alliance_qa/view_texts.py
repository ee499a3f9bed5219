"""What the model reads for each view of a build, and the key each text's vector is kept
under for reuse.

A view's texts are made from their chunks when asked for (a build reads them back from its
staged records, decoded one at a time), not held in lists, and the keys are rows of one
array. At 100,000 passages the three views' texts and their keys as strings held ~2.9 KB a
passage (~300 MB) through the whole embedding stage.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Iterator, Sequence

import numpy as np

from .acronyms import expand, mentioned
from .chunking import Chunk

KEY_BYTES = 16          # a text's key: the first bytes of its SHA-256


def text_key(text: str) -> bytes:
    """The key under which a text's vector is kept for reuse."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:KEY_BYTES]


class Mentions:
    """Which acronyms each chunk's context text holds (`acronyms.mentioned`: all that its
    text and sentences, parts of it, can hold), looked for once a chunk, in chunk order, and
    kept as numbers into the acronym list: a few bytes a chunk, where looking again for
    each view and pass took most of the time of making the texts."""

    def __init__(self, acronyms: dict[str, str]):
        self.acronyms, self.names = acronyms, list(acronyms)
        self.number = {name: i for i, name in enumerate(self.names)}
        self.ends: array[int] = array("q")        # chunk i's numbers end at ends[i]
        self.numbers: array[int] = array("I")

    def of(self, number: int, chunk: Chunk) -> list[str]:
        """The acronyms chunk `number` holds, in the dictionary's order."""
        if not self.acronyms:
            return []
        if number < len(self.ends):
            start = self.ends[number - 1] if number else 0
            return [self.names[i] for i in self.numbers[start:self.ends[number]]]
        among = mentioned(chunk.context_text(), self.acronyms)
        if number == len(self.ends):              # the next chunk in order: kept
            self.numbers.extend(self.number[name] for name in among)
            self.ends.append(len(self.numbers))
        return among


class ViewTexts(Sequence[str]):
    """One view's texts, acronyms expanded, each made from its chunk when asked for: the
    chunk with its heading path ("context"), the chunk alone ("text") or one of its
    sentences ("sentences"; `starts`: where each chunk's sentences begin, then the end).
    Views of the same chunks share their `mentions`."""

    def __init__(self, view: str, chunks: Sequence[Chunk], acronyms: dict[str, str],
                 starts: np.ndarray | None = None, mentions: Mentions | None = None):
        if view not in ("context", "text", "sentences"):
            raise ValueError(f"no view {view!r}")
        if view == "sentences" and starts is None:
            starts = np.cumsum([0] + [len(c.sentences) for c in chunks], dtype=np.int64)
        self.view, self.chunks, self.acronyms, self.starts = view, chunks, acronyms, starts
        self.mentions = mentions or Mentions(acronyms)

    def __len__(self) -> int:
        return len(self.chunks) if self.starts is None else int(self.starts[-1])

    def __getitem__(self, number: int) -> str:      # type: ignore[override]
        if not 0 <= number < len(self):
            raise IndexError(f"{self.view} text number out of range")
        if self.starts is None:
            return self._made(number, self.chunks[number])[0]
        chunk = int(np.searchsorted(self.starts, number, side="right")) - 1
        start, end = self.chunks[chunk].sentences[number - int(self.starts[chunk])]
        return expand(self.chunks[chunk].text[start:end], self.acronyms,
                      self.mentions.of(chunk, self.chunks[chunk]))

    def __iter__(self) -> Iterator[str]:
        for number, chunk in enumerate(self.chunks):
            yield from self._made(number, chunk)

    def _made(self, number: int, chunk: Chunk) -> list[str]:
        """This view's texts of chunk `number`."""
        among = self.mentions.of(number, chunk)
        if self.view == "context":
            return [expand(chunk.context_text(), self.acronyms, among)]
        if self.view == "text":
            return [expand(chunk.text, self.acronyms, among)]
        return [expand(chunk.text[s:e], self.acronyms, among) for s, e in chunk.sentences]


def view_inputs(chunks: Sequence[Chunk], acronyms: dict[str, str],
                sentence_starts: np.ndarray | None = None) -> dict[str, ViewTexts]:
    """What the model reads for each view: "context", "text" and "sentences" (the
    acronyms each chunk holds looked for once, for all three)."""
    mentions = Mentions(acronyms)
    return {"context": ViewTexts("context", chunks, acronyms, mentions=mentions),
            "text": ViewTexts("text", chunks, acronyms, mentions=mentions),
            "sentences": ViewTexts("sentences", chunks, acronyms, sentence_starts, mentions)}


class TextKeys(Sequence[bytes]):
    """The keys of a view's texts in order, a row of KEY_BYTES each (as Python strings of
    hexadecimal digits they took ~120 bytes a key)."""

    def __init__(self, rows: np.ndarray):
        if rows.dtype != np.uint8 or rows.ndim != 2 or rows.shape[1] != KEY_BYTES:
            raise ValueError(f"text keys are rows of {KEY_BYTES} bytes")
        self.rows = rows

    @classmethod
    def of(cls, texts: Sequence[str]) -> TextKeys:
        """The keys of these texts, made in one pass over them."""
        rows = np.empty((len(texts), KEY_BYTES), np.uint8)
        made = 0
        for made, text in enumerate(texts, 1):
            rows[made - 1] = np.frombuffer(text_key(text), np.uint8)
        if made != len(rows):
            raise ValueError(f"{made} texts, {len(rows)} expected")
        return cls(rows)

    @classmethod
    def of_hex(cls, keys: list[str]) -> TextKeys:
        """Keys kept as hexadecimal SHA-256 (by builds before keys were rows): their first
        KEY_BYTES bytes, the same key as `text_key` makes (ValueError for anything else)."""
        if not isinstance(keys, list) or not all(isinstance(k, str) and len(k) == 64
                                                 for k in keys):
            raise ValueError("embedding keys are not hexadecimal SHA-256")
        rows = np.frombuffer(bytes.fromhex("".join(k[:2 * KEY_BYTES] for k in keys)), np.uint8)
        return cls(rows.reshape(len(keys), KEY_BYTES).copy())

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, number: int) -> bytes:     # type: ignore[override]
        return self.rows[number].tobytes()

    def __iter__(self) -> Iterator[bytes]:
        return (row.tobytes() for row in self.rows)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TextKeys) and np.array_equal(self.rows, other.rows)

    __hash__ = None       # type: ignore[assignment]     # mutable rows: not hashable
