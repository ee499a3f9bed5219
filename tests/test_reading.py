"""A build's reading stage: documents read, chunked and written a batch at a time leave
exactly what reading the whole corpus at once made."""

import json
from dataclasses import asdict

import pytest

from alliance_qa import reading
from alliance_qa.abstention import scripts_of
from alliance_qa.acronyms import find_acronyms
from alliance_qa.chunking import FitsMemory, chunk_documents
from alliance_qa.corpus import DocumentReader, read_corpus, scan_corpus
from alliance_qa.keyword import KeywordIndex, keyword_texts
from alliance_qa.records import ChunkColumns, encode
from alliance_qa.spelling import corpus_words
from alliance_qa.store import COLUMNS, DOCUMENTS, RECORDS, Staging
from alliance_qa.view_texts import text_key
from conftest import CORPUS, DATA

pytestmark = pytest.mark.unit


def short(texts):
    """A tiny "model": it reads texts of up to 150 characters whole."""
    return [len(text) <= 150 for text in texts]


@pytest.mark.parametrize("corpus", [CORPUS, DATA / "corpora", DATA / "real"])
def test_a_corpus_read_in_batches_is_written_as_read_whole(tmp_path, monkeypatch, corpus):
    monkeypatch.setattr(reading, "FITS_AT_ONCE", 3)       # many batches of whole documents
    monkeypatch.setattr(reading, "WORDS_AT_ONCE", 7)
    documents, _ = read_corpus(corpus)
    chunks = chunk_documents(documents, short)
    assert any(c.part for c in chunks)                   # some paragraphs were cut
    staging = Staging(tmp_path / "index")
    reader = DocumentReader(scan_corpus(corpus)[0])
    read = reading.read_into(staging, reader, FitsMemory(short))

    assert (staging.folder / RECORDS).read_bytes() == bytes(encode(chunks)[0])
    assert list(read.records) == chunks
    assert (staging.folder / DOCUMENTS).read_bytes() == json.dumps(
        [asdict(d) for d in documents], ensure_ascii=False, indent=1).encode()
    whole = ChunkColumns.of(chunks, documents)
    for name, array in read.columns.arrays().items():
        assert array.tolist() == whole.arrays()[name].tolist(), name
    assert set(staging.files) == {RECORDS, DOCUMENTS, COLUMNS}

    acronyms = find_acronyms([c.text for c in chunks])
    assert read.acronyms == acronyms and list(read.acronyms) == list(acronyms)
    assert read.scripts == scripts_of(c.context_text() for c in chunks)
    assert read.texts == {c.id: text_key(c.text) for c in chunks}
    assert read.hashes == {d.path: d.sha256 for d in documents}
    assert (read.documents, read.sections) == (len(documents),
                                               sum(len(d.sections) for d in documents))

    keyword, words = reading.keyword_words(read)
    searched = list(keyword_texts(chunks, acronyms))
    assert keyword.files() == KeywordIndex.from_texts(searched).files()
    assert words == corpus_words(searched)
