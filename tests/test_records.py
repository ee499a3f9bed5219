"""Chunk records decoded as asked, and the columns search reads for every chunk."""

import numpy as np
import pytest

from alliance_qa.chunking import chunk_documents
from alliance_qa.documents import parse_document
from alliance_qa.records import ChunkColumns, ChunkRecords, RecordWriter, encode

pytestmark = pytest.mark.unit

GUIDE = """# Field guide

Moths fly at night. Most rest by day.

## Wings

Scales cover the wings. They rub off as dust.

Some moths have clear wings.

## Food

Caterpillars eat leaves.
"""
NOTES = "Butterflies fly by day.\n\nThey fold their wings “upright.” Moths do not.\n"


@pytest.fixture
def corpus(tmp_path):
    documents = [parse_document(GUIDE, "guide.md", "guide", "0" * 64),
                 parse_document(NOTES, "notes.txt", "notes", "1" * 64)]
    # a tiny "model": the second paragraph of Wings is cut into two parts
    chunks = chunk_documents(documents, fits=lambda texts: [
        "clear wings" not in text or len(text) < 30 for text in texts])
    data, offsets = encode(chunks)
    (tmp_path / "chunks.jsonl").write_bytes(data)
    return documents, chunks, offsets, tmp_path / "chunks.jsonl"


def test_records_read_as_asked_are_the_chunks_written(corpus):
    documents, chunks, offsets, path = corpus
    records = ChunkRecords(path, offsets)
    assert len(records) == len(chunks) and list(records) == chunks
    assert [records[i] for i in range(len(chunks))] == chunks
    assert records[-1] == chunks[-1] and records[1:4] == chunks[1:4] and records[::-2] == \
        chunks[::-2]
    assert records[np.int64(2)] == chunks[2]
    with pytest.raises(IndexError):
        records[len(chunks)]
    # each record is the one JSON line a build has always written
    assert path.read_bytes().count(b"\n") == len(chunks)


def test_columns_number_documents_sections_and_paragraphs_in_corpus_order(corpus):
    documents, chunks, offsets, path = corpus
    columns = ChunkColumns.of(chunks, documents)
    assert columns.document_ids.tolist() == ["guide", "notes"]
    assert [columns.document_ids[d] for d in columns.document] == [c.document for c in chunks]
    assert columns.sentences.tolist() == [len(c.sentences) for c in chunks]
    opening = [c.text.split()[0] for c, first in zip(chunks, columns.opening) if first]
    assert opening == ["Moths", "Butterflies", "They"]     # each document's first section
    # the parts of a cut paragraph share its number; every other chunk has its own
    parts = [c for c in chunks if c.part]
    assert len(parts) >= 2
    same = {(a.paragraph_id == b.paragraph_id) == (pa == pb)
            for (a, pa) in zip(chunks, columns.paragraph)
            for (b, pb) in zip(chunks, columns.paragraph)}
    assert same == {True}
    sections = {(c.document, c.section) for c in chunks}
    assert len(set(columns.section.tolist())) == len(sections)
    assert columns.sentence_start()[-1] == sum(len(c.sentences) for c in chunks)


def test_records_written_a_document_at_a_time_are_the_records_and_columns_of_all(corpus):
    documents, chunks, offsets, path = corpus
    written = bytearray()
    writer = RecordWriter(lambda data: written.extend(data) or len(data))
    for document in documents:
        writer.add([document], [c for c in chunks if c.document == document.id])
    assert bytes(written) == path.read_bytes()
    columns, whole = writer.columns(), ChunkColumns.of(chunks, documents)
    assert columns.offsets.tolist() == offsets.tolist() == whole.offsets.tolist()
    for name, array in columns.arrays().items():
        assert array.dtype == whole.arrays()[name].dtype
        assert array.tolist() == whole.arrays()[name].tolist()
    # numbered across documents: "introduction" of each document is a section of its own
    assert columns.section.tolist() == [0, 1, 1, 1, 2, 3, 3]
    assert columns.paragraph.tolist() == [0, 1, 2, 2, 3, 4, 5]
    assert columns.document.tolist() == [0, 0, 0, 0, 0, 1, 1]


def test_stored_columns_that_do_not_fit_the_records_are_refused(corpus):
    documents, chunks, offsets, path = corpus
    arrays = ChunkColumns.of(chunks, documents).arrays()
    size = path.stat().st_size
    assert ChunkColumns.from_arrays(arrays, len(chunks), size).offsets[-1] == size
    for broken in ({"offsets": arrays["offsets"][:-1]},
                   {"offsets": arrays["offsets"] + 1},
                   {"sentences": arrays["sentences"][1:]},
                   {"document": arrays["document"] + 5},
                   {"paragraph": arrays["paragraph"].astype(np.int64)},
                   {"opening": arrays["opening"].astype(np.int8)}):
        with pytest.raises(ValueError):
            ChunkColumns.from_arrays({**arrays, **broken}, len(chunks), size)
    with pytest.raises(ValueError):
        ChunkColumns.from_arrays(arrays, len(chunks), size + 1)
