"""A build's reading stage: the corpus read, chunked and written a batch of documents at a
time, then its keyword index and words made from the written records.

Only what later stages need of the documents and chunks is kept, in compact form: the
records' columns, the acronyms, the scripts, a digest of each chunk's text and each
document's hash. Holding every document, chunk and tokenized text until BM25 was made cost
~4.3 KB a passage, the part of a build's memory that grew fastest with the corpus.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from .abstention import scripts_of
from .acronyms import find_acronyms
from .chunking import FITS_AT_ONCE, Fits, chunk_documents
from .documents import Document
from .keyword import KeywordIndex, TokenIds, keyword_texts
from .records import ChunkColumns, ChunkRecords, RecordWriter
from .spelling import corpus_words
from .store import DOCUMENTS, RECORDS, DocumentList, Staging
from .view_texts import text_key

WORDS_AT_ONCE = 4096        # keyword texts tokenized and counted at a time
T = TypeVar("T")


@dataclass(frozen=True)
class CorpusRead:
    """What the later stages of a build need of the corpus it read and wrote."""

    records: ChunkRecords         # the chunks, read back from their file as asked
    columns: ChunkColumns
    acronyms: dict[str, str]      # found in the chunks' texts, first definition first
    scripts: list[str]            # the writing systems of the chunks' letters
    texts: dict[str, bytes]       # chunk id → key of its text, to tell what changed
    hashes: dict[str, str]        # path → SHA-256 of each document read
    sections: int

    @property
    def documents(self) -> int:
        """How many documents were read."""
        return len(self.columns.document_ids)


def read_into(staging: Staging, documents: Iterable[Document], fits: Fits) -> CorpusRead:
    """Chunk the documents (`fits`: which texts the model reads whole) and write them and
    their chunks' records to `staging`, a batch of whole documents at a time."""
    acronyms: dict[str, str] = {}
    scripts: set[str] = set()
    texts: dict[str, bytes] = {}
    hashes: dict[str, str] = {}
    sections = 0
    with staging.writing(RECORDS) as write_records, staging.writing(DOCUMENTS) as write_parsed:
        records, parsed = RecordWriter(write_records), DocumentList(write_parsed)
        for batch in _batches(documents, FITS_AT_ONCE, _paragraphs):
            chunks = chunk_documents(batch, fits)
            records.add(batch, chunks)
            for document in batch:
                parsed.add(document)
                hashes[document.path] = document.sha256
                sections += len(document.sections)
            for acronym, long_form in find_acronyms([c.text for c in chunks]).items():
                acronyms.setdefault(acronym, long_form)
            scripts.update(scripts_of(c.context_text() for c in chunks))  # expanding adds none
            texts.update((c.id, text_key(c.text)) for c in chunks)
        parsed.close()
    columns = records.columns()
    staging.columns(columns)
    return CorpusRead(ChunkRecords(staging.folder / RECORDS, columns.offsets), columns,
                      acronyms, sorted(scripts), texts, hashes, sections)


def _paragraphs(document: Document) -> int:
    """How many paragraphs a document has."""
    return sum(len(s.paragraphs) for s in document.sections)


def _batches(items: Iterable[T], at_least: int, weight: Callable[[T], int] = lambda _: 1
             ) -> Iterator[list[T]]:
    """The items in turn, in batches weighing `at_least` or more (the last one less)."""
    batch, weighed = [], 0
    for item in items:
        batch.append(item)
        weighed += weight(item)
        if weighed >= at_least:
            yield batch
            batch, weighed = [], 0
    if batch:
        yield batch


def keyword_words(read: CorpusRead) -> tuple[KeywordIndex, dict[str, int]]:
    """BM25 over the chunks' keyword texts and how often the corpus writes each word
    (spelling.py), made from the written records a batch at a time."""
    tokens, words = TokenIds(), Counter()
    for batch in _batches(keyword_texts(read.records, read.acronyms), WORDS_AT_ONCE):
        tokens.add(batch)
        words.update(corpus_words(batch))
    return tokens.keyword_index(), dict(words)

