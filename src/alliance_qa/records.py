"""A build's chunk records, decoded one at a time as they are asked for, and the columns that
search reads for every chunk at once.

`chunks.jsonl` holds one JSON record a chunk. `chunk-columns.npz` holds where each record
starts and a few numbers a chunk: its sentence count, its document, section and paragraph
(each numbered in corpus order; the parts of a cut paragraph share one) and whether it is in
its document's first section. Search needs those for every chunk; it needs a chunk's text,
heading and citation only for the few it shows or reads. Decoding every record at load took
4.8 s of each start at 100,000 passages and held their text in memory; the columns are
~25 bytes a chunk and the records are read and decoded as asked.
"""

from __future__ import annotations

import functools
import io
import json
import operator
import os
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from .chunking import Chunk
from .documents import Document

CACHED = 4096          # decoded records kept (an answer reads a few dozen)
_FIELDS = tuple(field.name for field in fields(Chunk))    # none of them a dataclass


@dataclass(frozen=True)
class ChunkColumns:
    """For every chunk, in chunk order, what search reads of all of them."""

    offsets: np.ndarray       # int64: where each record starts in chunks.jsonl, then its end
    sentences: np.ndarray     # int32: the chunk's sentence count
    document: np.ndarray      # int32: its document's number in `document_ids`
    section: np.ndarray       # int32: its section's number, in corpus order
    paragraph: np.ndarray     # int32: its paragraph's number, in corpus order
    opening: np.ndarray       # bool: it is in its document's first section
    document_ids: np.ndarray  # str: the documents' ids, in corpus order

    @classmethod
    def of(cls, chunks: Sequence[Chunk], documents: list[Document]) -> ChunkColumns:
        """The columns of these chunks (in document order), their records where `encode`
        puts them."""
        writer = RecordWriter(len)
        writer.add(documents, chunks)
        return writer.columns()

    def arrays(self) -> dict[str, np.ndarray]:
        """The columns by name, to store."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], chunk_count: int,
                    records_size: int) -> ChunkColumns:
        """Stored columns, checked to fit `chunk_count` records in a file of `records_size`
        bytes (ValueError when they do not)."""
        columns = cls(**{name: arrays[name] for name in cls.__dataclass_fields__})
        per_chunk = (columns.sentences, columns.document, columns.section, columns.paragraph,
                     columns.opening)
        offsets, documents = columns.offsets, len(columns.document_ids)
        if not (len(offsets) == chunk_count + 1 and offsets.dtype == np.int64
                and all(len(c) == chunk_count for c in per_chunk)
                and columns.document_ids.dtype.kind == "U"
                and (not chunk_count or offsets[0] == 0) and offsets[-1] == records_size
                and bool(np.all(np.diff(offsets) > 0))
                and all(c.dtype == np.int32 and (c >= 0).all() for c in per_chunk[:4])
                and columns.opening.dtype == bool
                and bool((columns.document < max(documents, 1)).all())):
            raise ValueError("chunk columns do not fit the records")
        return columns

    def sentence_start(self) -> np.ndarray:
        """Where each chunk's rows of the "sentences" view begin, then where the last ends."""
        return np.concatenate([[0], np.cumsum(self.sentences, dtype=np.int64)])


def record(chunk: Chunk) -> bytes:
    """A chunk's record: one line of JSON."""
    values = {name: getattr(chunk, name) for name in _FIELDS}   # asdict deep-copies: 5× slower
    return (json.dumps(values, ensure_ascii=False, sort_keys=True) + "\n").encode()


def encode(chunks: Sequence[Chunk]) -> tuple[memoryview, np.ndarray]:
    """The records file's bytes, written once into one buffer and not copied (joining the
    lines held them twice), and where each record starts, then the end."""
    buffer, offsets = io.BytesIO(), np.zeros(len(chunks) + 1, np.int64)
    for number, chunk in enumerate(chunks, 1):
        offsets[number] = offsets[number - 1] + buffer.write(record(chunk))
    return buffer.getbuffer(), offsets


class RecordWriter:
    """Chunk records given to `write` a batch of documents at a time, and the columns of all
    given: a build writes each batch and lets it go. `write` takes a record's bytes
    and returns how many it wrote (`len` only measures them)."""

    def __init__(self, write: Callable[[bytes], int]):
        self._write = write
        self._offsets = array("q", [0])
        self._sentences, self._document, self._section, self._paragraph = (
            array("i") for _ in range(4))
        self._opening = array("b")
        self._ids: list[str] = []
        self._sections = self._paragraphs = 0      # numbered so far

    def add(self, documents: Sequence[Document], chunks: Sequence[Chunk]) -> None:
        """Documents and their chunks, each in order."""
        by_document: dict[str, list[Chunk]] = {}
        for chunk in chunks:
            by_document.setdefault(chunk.document, []).append(chunk)
        for document in documents:
            self._add(document, by_document.get(document.id, []))

    def _add(self, document: Document, chunks: list[Chunk]) -> None:
        number, opening = len(self._ids), document.sections[0].slug if document.sections else None
        self._ids.append(document.id)
        sections: dict[str, int] = {}
        paragraphs: dict[str, int] = {}
        for chunk in chunks:
            self._offsets.append(self._offsets[-1] + self._write(record(chunk)))
            self._sentences.append(len(chunk.sentences))
            self._document.append(number)
            self._section.append(sections.setdefault(chunk.section,
                                                      self._sections + len(sections)))
            self._paragraph.append(paragraphs.setdefault(chunk.paragraph_id,
                                                         self._paragraphs + len(paragraphs)))
            self._opening.append(chunk.section == opening)
        self._sections += len(sections)
        self._paragraphs += len(paragraphs)

    def columns(self) -> ChunkColumns:
        """The columns of every chunk given so far."""
        def numbers(values: array, dtype: type) -> np.ndarray:
            return np.frombuffer(values, values.typecode).astype(dtype)
        return ChunkColumns(numbers(self._offsets, np.int64),
                            numbers(self._sentences, np.int32),
                            numbers(self._document, np.int32),
                            numbers(self._section, np.int32),
                            numbers(self._paragraph, np.int32),
                            numbers(self._opening, bool), np.array(self._ids, dtype=str))


def decode(line: bytes | str) -> Chunk:
    """One record → its chunk (ValueError, TypeError or KeyError when it is not one)."""
    data = json.loads(line)
    return Chunk(**{**data, "breadcrumb": tuple(data["breadcrumb"]),
                    "sentences": tuple(tuple(span) for span in data["sentences"]),
                    "pages": tuple(data["pages"]) if data.get("pages") else None})


class ChunkRecords(Sequence[Chunk]):
    """The chunks of a stored build as a read-only sequence: each record read from the file
    and decoded when it is first asked for (the most recent CACHED are kept). Records are
    read, not memory-mapped: a pass over all of them (a build's embedding reads each
    chunk's texts in turn) holds none of the file's pages."""

    def __init__(self, path: Path, offsets: np.ndarray):
        self._file = open(path, "rb")      # closed with this object
        self._offsets = offsets
        self._decoded = functools.lru_cache(maxsize=CACHED)(self._decode)

    def _decode(self, number: int) -> Chunk:
        start, end = int(self._offsets[number]), int(self._offsets[number + 1])
        return decode(os.pread(self._file.fileno(), end - start, start))

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, key: int | slice) -> Chunk | list[Chunk]:   # as a list's
        if isinstance(key, slice):
            return [self._decoded(i) for i in range(*key.indices(len(self)))]
        number = operator.index(key)
        if not -len(self) <= number < len(self):
            raise IndexError("chunk number out of range")
        return self._decoded(number % len(self))

    def __iter__(self) -> Iterator[Chunk]:
        return (self._decode(i) for i in range(len(self)))    # a pass over all: not cached
