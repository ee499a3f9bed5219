import hashlib

import numpy as np
import pytest

from alliance_qa.acronyms import expand, find_acronyms, mentioned
from alliance_qa.chunking import chunk_documents
from alliance_qa.corpus import read_corpus
from alliance_qa.records import ChunkColumns, ChunkRecords, encode
from alliance_qa.view_texts import KEY_BYTES, TextKeys, ViewTexts, text_key, view_inputs
from conftest import CORPUS

pytestmark = pytest.mark.unit


def listed_inputs(chunks, acronyms):
    """The views' texts made all at once, as lists: what the model must be given."""
    inputs = {"context": [], "text": [], "sentences": []}
    for chunk in chunks:
        among = mentioned(chunk.context_text(), acronyms)
        inputs["context"].append(expand(chunk.context_text(), acronyms, among))
        inputs["text"].append(expand(chunk.text, acronyms, among))
        inputs["sentences"] += [expand(chunk.text[s:e], acronyms, among)
                                for s, e in chunk.sentences]
    return inputs


def test_texts_made_from_written_records_are_those_made_at_once(tmp_path):
    """A build reads each text to embed back from its written records when it needs it;
    every view's texts, asked for in any order or all in turn, are exactly those made from
    the chunks in memory, acronyms expanded (the shipped corpus has many)."""
    documents, _ = read_corpus(CORPUS)
    chunks = chunk_documents(documents, lambda texts: [len(t) < 400 for t in texts])
    acronyms = find_acronyms([c.text for c in chunks])
    assert acronyms
    data, offsets = encode(chunks)
    (tmp_path / "chunks.jsonl").write_bytes(data)
    records = ChunkRecords(tmp_path / "chunks.jsonl", offsets)
    starts = ChunkColumns.of(chunks, documents).sentence_start()
    lazy, listed = view_inputs(records, acronyms, starts), listed_inputs(chunks, acronyms)
    assert any(a != b for a, b in zip(listed["text"], (c.text for c in chunks)))  # expanded
    for view in ("context", "text", "sentences"):
        assert len(lazy[view]) == len(listed[view])
        assert list(lazy[view]) == listed[view]
        backwards = range(len(listed[view]) - 1, -1, -7)
        assert [lazy[view][n] for n in backwards] == [listed[view][n] for n in backwards]
        with pytest.raises(IndexError):
            lazy[view][len(listed[view])]
    assert list(ViewTexts("sentences", chunks, acronyms)) == listed["sentences"]


def test_text_keys_are_the_texts_digests_in_rows():
    texts = ["The treaty was signed in 1953.", "", "Sécurité", "The treaty was signed in 1953."]
    keys = TextKeys.of(texts)
    assert keys.rows.shape == (4, KEY_BYTES) and keys.rows.dtype == np.uint8
    assert list(keys) == [text_key(t) for t in texts] and keys[2] == text_key("Sécurité")
    assert keys[0] == keys[3] != keys[1]
    assert keys == TextKeys(keys.rows.copy()) and keys != TextKeys.of(texts[:3])
    with pytest.raises(ValueError):
        TextKeys(np.zeros((2, KEY_BYTES + 1), np.uint8))
    kept_as_hex = [hashlib.sha256(t.encode()).hexdigest() for t in texts]   # earlier builds
    assert TextKeys.of_hex(kept_as_hex) == keys
    for damaged in (["abc"], "0" * 64, [7]):
        with pytest.raises(ValueError):
            TextKeys.of_hex(damaged)
