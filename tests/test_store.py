"""Index on disk: build → load, freshness, atomic replace, and every broken-index case."""

import errno
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import faiss
import numpy as np
import pytest

from alliance_qa import indexing, keyword, store
from alliance_qa.config import Settings
from alliance_qa.errors import BuildFailed, BuildLocked, IndexCorrupt, IndexMissing, IndexStale
from alliance_qa.indexing import build_index, check_index
from alliance_qa.integrity import file_sha256, sealed
from alliance_qa.manifest import FORMAT_VERSION
from alliance_qa.service import open_searcher
from alliance_qa.store import build_lock, live_folder, load_index, read_manifest
from conftest import SHIPPED_PARAGRAPHS, SHIPPED_SECTIONS


def test_manifest_says_what_the_index_was_built_from(built):
    manifest = read_manifest(built.index_dir)
    assert manifest.format_version == FORMAT_VERSION
    assert manifest.model == built.model and len(manifest.model_fingerprint) == 64
    assert manifest.dimension == 384
    assert list(manifest.corpus) == ["us-rok-alliance-history.md"]
    assert manifest.chunk_count == SHIPPED_PARAGRAPHS
    assert manifest.section_count == SHIPPED_SECTIONS
    assert {"faiss-cpu", "sentence-transformers", "torch"} <= manifest.versions.keys()
    assert manifest.acronyms == {"THAAD": "Terminal High Altitude Area Defense",
                                 "SOFA": "Status of Forces Agreement"}
    assert set(manifest.files) == {"context.faiss", "text.faiss", "sentences.faiss",
                                   "token-codes.npy", "tokens.npy", "token-centroids.npz",
                                   "chunks.jsonl", "chunk-columns.npz",
                                   "documents.json", "embedding-keys.npz",
                                   "related-words.json", "corpus-words.json", "fits.npy",
                                   *keyword.FILES}
    assert manifest.related_words > 1000       # words the corpus lacks, with neighbours


def test_load_gives_back_the_built_chunks(built, embedder):
    index = load_index(built.index_dir)
    assert len(index.chunks) == index.views["text"].ntotal == SHIPPED_PARAGRAPHS
    assert index.views["sentences"].ntotal == sum(len(c.sentences) for c in index.chunks)
    # a row per content word piece of each chunk's context text, in chunk order
    table = index.token_table
    assert len(index.tokens) == len(table) > 55 * 20
    assert (np.diff(table[:, 0]) >= 0).all() and set(table[:, 0]) == set(range(55))
    words = set(embedder.words(table[:, 1]))
    assert {"treaty", "alliance", "##ad"} <= words and not words & {"[CLS]", "the", ",", "."}
    assert index.documents[0].sections[3].heading == "Key provisions of the treaty"


@pytest.mark.full
def test_builds_are_deterministic(built, embedder, tmp_path):
    again = replace(built, index_dir=tmp_path / "again")
    build_index(again, embedder)
    first, second = load_index(built.index_dir), load_index(again.index_dir)
    assert list(first.chunks) == list(second.chunks)
    files = read_manifest(built.index_dir).files, read_manifest(again.index_dir).files
    for name in ("chunks.jsonl", "documents.json", "embedding-keys.npz", "tokens.npy"):
        assert files[0][name] == files[1][name], name     # made from the text: byte for byte
    for view in store.VIEWS:                              # made by the model: to rounding
        assert np.allclose(store.matrix(first.views[view]).astype(np.float32),
                           store.matrix(second.views[view]).astype(np.float32), atol=1e-5)
    # Related words come from the model's word vectors through BLAS, whose sums may round
    # differently from run to run: the same words with the same nearby stems (but for ties
    # at the cut-offs, at most 1 in 100) at the same weights to their 3 decimals.
    related = first.related_words, second.related_words
    shared = related[0].keys() & related[1].keys()
    differing = len(related[0].keys() ^ related[1].keys())
    for word in shared:
        ours, theirs = dict(related[0][word]), dict(related[1][word])
        differing += ours.keys() != theirs.keys()
        assert all(abs(ours[s] - theirs[s]) <= 2e-3 for s in ours.keys() & theirs.keys())
    assert differing <= len(related[0]) // 100
    calibrations = first.manifest.calibration, second.manifest.calibration
    assert all(abs(calibrations[0][k] - calibrations[1][k]) < 1e-3 for k in calibrations[0])


def fresh_build(embedder, tmp_path, corpus):
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index")
    build_index(settings, embedder)
    return settings


@pytest.mark.full
def test_check_reports_fresh_then_each_kind_of_staleness(embedder, tmp_path, corpus_copy):
    settings = fresh_build(embedder, tmp_path, corpus_copy)
    assert check_index(settings) == []
    document = corpus_copy / "us-rok-alliance-history.md"
    document.write_text(document.read_text() + "\nOne more paragraph.\n")
    (corpus_copy / "new.txt").write_text("A new document.\n")
    assert check_index(settings) == ["new.txt was added", "us-rok-alliance-history.md was edited"]
    (corpus_copy / "new.txt").unlink()
    document.unlink()
    assert check_index(settings) == ["us-rok-alliance-history.md was removed"]
    other_model = replace(settings, model="/no/such/model")
    assert "the model changed" in check_index(other_model)[-1]


@pytest.mark.full
def test_an_index_older_than_the_documents_serves_as_built_and_says_so(embedder, tmp_path,
                                                                       corpus_copy):
    settings = fresh_build(embedder, tmp_path, corpus_copy)
    assert open_searcher(settings, embedder)[1] == ""
    (corpus_copy / "extra.md").write_text("# Extra\n\nMore text.\n")
    searcher, warning = open_searcher(settings, embedder)
    assert "extra.md was added" in warning and "alliance-qa build" in warning
    assert [d.path for d in searcher.index.documents] == ["us-rok-alliance-history.md"]


@pytest.mark.full
def test_an_index_built_by_another_model_is_refused_with_the_fix(embedder, tmp_path,
                                                                 corpus_copy):
    settings = fresh_build(embedder, tmp_path, corpus_copy)
    with pytest.raises(IndexStale) as error:
        open_searcher(replace(settings, model="/some/other/model"), embedder)
    assert "the model changed" in str(error.value) and "alliance-qa build" in str(error.value)


@pytest.mark.unit
def test_missing_index(tmp_path):
    with pytest.raises(IndexMissing, match="alliance-qa build"):
        load_index(tmp_path / "nothing")


@pytest.fixture
def damaged(built, tmp_path):
    """A copy of the session's build, for a test to damage."""
    settings = replace(built, index_dir=tmp_path / "index")
    shutil.copytree(built.index_dir, settings.index_dir)
    return settings, live_folder(settings.index_dir)


@pytest.mark.parametrize("damage, message", [
    (lambda f: (f / "text.faiss").write_bytes((f / "text.faiss").read_bytes()[:1000]),
     "does not match its manifest"),
    (lambda f: (f / "manifest.json").write_text("{not json"), "malformed"),
    (lambda f: (f / "manifest.json").write_text("[]"), "lacks required fields"),
    (lambda f: (f / "chunks.jsonl").unlink(), "cannot be read"),
    (lambda f: (f / "chunks.jsonl").write_text("tampered\n"), "does not match its manifest"),
    (lambda f: (f / "related-words.json").write_text("{}"), "does not match its manifest"),
    (lambda f: (f.parent / "CURRENT").write_text("../../etc"), "names no build folder"),
])
def test_damaged_index_is_refused_with_a_clear_message(damaged, damage, message):
    settings, folder = damaged
    damage(folder)
    with pytest.raises(IndexCorrupt) as error:
        load_index(settings.index_dir)
    assert message in str(error.value) and "alliance-qa build" in str(error.value)


def test_records_that_do_not_match_the_vector_count_are_refused(damaged):
    from alliance_qa.records import ChunkColumns, encode
    settings, folder = damaged
    index = load_index(settings.index_dir)
    data, offsets = encode(list(index.chunks)[:-1])
    files = {"chunks.jsonl": data, "chunk-columns.npz": store._npz_bytes(
        **ChunkColumns.of(list(index.chunks)[:-1], index.documents).arrays())}
    manifest = json.loads((folder / "manifest.json").read_text())
    for name, content in files.items():
        (folder / name).write_bytes(content)
        manifest["files"][name] = store.sha256_bytes(content)    # even consistent hashes
    (folder / "manifest.json").write_text(json.dumps(sealed(manifest)))   # as a build writes it
    with pytest.raises(IndexCorrupt, match="inconsistent"):
        load_index(settings.index_dir)
    (folder / "chunk-columns.npz").write_bytes(b"PK\x03\x04 damaged")   # and columns that
    with pytest.raises(IndexCorrupt, match="does not match"):          # are not the build's
        load_index(settings.index_dir)


def test_a_damaged_documents_file_leaves_search_alone_and_refuses_the_outline(damaged,
                                                                              embedder):
    """Search never reads the documents; what does (the page's outline, citation lookup)
    is told the index is damaged."""
    from alliance_qa.search import Searcher
    settings, folder = damaged
    (folder / "documents.json").write_text("[]")
    index = load_index(settings.index_dir)
    answer = Searcher(index, embedder).search("What is THAAD?")
    assert not answer.abstained and "THAAD" in answer.hits[0].chunk.text
    with pytest.raises(IndexCorrupt, match="does not match its manifest"):
        index.documents
    with pytest.raises(IndexCorrupt, match="alliance-qa build"):
        store.load_documents(settings.index_dir)


def test_keys_kept_as_hexadecimal_by_an_earlier_build_are_reused(damaged, embedder):
    """A build from before the keys were rows of bytes kept each as hexadecimal SHA-256:
    it still loads, and the next build reuses every vector it can tell apart by them."""
    settings, folder = damaged
    keys = load_index(settings.index_dir).keys
    written = json.dumps({view: [k.hex() + "0" * 32 for k in rows]           # 64 digits
                          for view, rows in keys.items()}).encode()
    (folder / "embedding-keys.npz").unlink()
    (folder / "embedding-keys.json").write_bytes(written)
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["files"]["embedding-keys.npz"]
    manifest["files"]["embedding-keys.json"] = store.sha256_bytes(written)
    (folder / "manifest.json").write_text(json.dumps(sealed(manifest)))
    assert load_index(settings.index_dir).keys == keys
    report = build_index(settings, embedder)
    assert report.embedded == 0 and report.reused > 2 * SHIPPED_PARAGRAPHS
    assert load_index(settings.index_dir).keys == keys


def _one_text_key() -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, text=np.zeros((1, 16), np.uint8))
    return buffer.getvalue()


@pytest.mark.parametrize("keys", [b"tampered", _one_text_key()])
def test_damaged_embedding_keys_leave_serving_alone_and_the_next_build_embeds_all(
        damaged, embedder, keys):
    """Only a build reads the keys: a searcher loads without them; the build that finds
    them damaged (or not fitting, even under a consistent hash) embeds every text again."""
    settings, folder = damaged
    (folder / "embedding-keys.npz").write_bytes(keys)
    manifest = json.loads((folder / "manifest.json").read_text())
    if keys != b"tampered":
        manifest["files"]["embedding-keys.npz"] = store.sha256_bytes(keys)
        (folder / "manifest.json").write_text(json.dumps(sealed(manifest)))
    index = load_index(settings.index_dir)
    assert len(index.chunks) == SHIPPED_PARAGRAPHS
    with pytest.raises(IndexCorrupt, match="alliance-qa build"):
        index.keys
    report = build_index(settings, embedder)
    assert report.reused == 0 and report.embedded > 2 * SHIPPED_PARAGRAPHS
    assert len(load_index(settings.index_dir).keys["text"]) == SHIPPED_PARAGRAPHS


def test_a_word_piece_table_out_of_chunk_order_is_refused(damaged):
    settings, folder = damaged
    table = load_index(settings.index_dir).token_table[::-1].copy()
    digest = store._write_bytes(folder / "tokens.npy", table)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"]["tokens.npy"] = digest
    (folder / "manifest.json").write_text(json.dumps(sealed(manifest)))   # as a build writes it
    with pytest.raises(IndexCorrupt, match="inconsistent"):
        load_index(settings.index_dir)


@pytest.mark.parametrize("change", [lambda codes: codes[:, :-1], lambda codes: codes[:-1],
                                    lambda codes: codes.astype(np.int16)])
def test_word_piece_codes_that_do_not_fit_their_codebooks_are_refused(damaged, change):
    """Codes whose file still matches its manifest entry, but whose width, row count or
    type does not fit the codebooks and the table."""
    settings, folder = damaged
    codes = change(np.load(folder / "token-codes.npy"))
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"]["token-codes.npy"] = store._write_bytes(folder / "token-codes.npy",
                                                              np.ascontiguousarray(codes))
    (folder / "manifest.json").write_text(json.dumps(sealed(manifest)))   # as a build writes it
    with pytest.raises(IndexCorrupt, match="inconsistent"):
        load_index(settings.index_dir)


def test_an_index_from_a_version_without_word_pieces_is_called_stale(damaged):
    """What a build by the previous release looks like: no word-piece files."""
    settings, folder = damaged
    manifest = json.loads((folder / "manifest.json").read_text())
    for name in ("token-codes.npy", "tokens.npy", "token-centroids.npz"):
        (folder / name).unlink()
        del manifest["files"][name]
    (folder / "manifest.json").write_text(json.dumps(sealed(manifest)))   # as a build writes it
    with pytest.raises(IndexStale, match="another version of alliance-qa") as error:
        load_index(settings.index_dir)
    assert "token-codes.npy" in str(error.value) and "alliance-qa build" in str(error.value)


@pytest.mark.full
def test_an_index_from_before_related_words_and_columns_is_stale_its_rebuild_reuses_all(
        damaged, embedder, built):
    settings, folder = damaged
    manifest = json.loads((folder / "manifest.json").read_text())
    for name in ("related-words.json", "chunk-columns.npz"):
        (folder / name).unlink()
        del manifest["files"][name]
    manifest["recipe"] = "views:context,text,sentences,tokens-float16/acronyms-v2"
    (folder / "manifest.json").write_text(json.dumps(sealed(manifest)))   # as a build writes it
    old = load_index(settings.index_dir)
    assert old.related_words == {} and old.chunks == list(load_index(built.index_dir).chunks)
    assert check_index(settings) == ["it was built by another version of alliance-qa"]
    summary = build_index(settings, embedder)
    assert summary.embedded == 0 and load_index(settings.index_dir).related_words


@pytest.mark.full
def test_a_failed_build_keeps_the_previous_index(damaged, embedder, monkeypatch):
    settings, folder = damaged
    before = load_index(settings.index_dir)

    def disk_full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(store, "_write_bytes", disk_full)
    with pytest.raises(BuildFailed, match="the disk is full"):
        build_index(settings, embedder)
    monkeypatch.undo()
    assert live_folder(settings.index_dir) == folder
    assert list(load_index(settings.index_dir).chunks) == list(before.chunks)
    assert not list(settings.index_dir.glob(".tmp-build-*"))


@pytest.mark.full
def test_calibration_reads_the_build_as_written_and_its_failure_keeps_the_previous_index(
        damaged, embedder, monkeypatch):
    settings, folder = damaged
    before, seen = load_index(settings.index_dir), []

    def fails(index, reader):
        seen.append((index.folder, index.views["context"].ntotal, len(index.chunks)))
        raise RuntimeError("calibration failed")
    monkeypatch.setattr(indexing, "calibrate", fails)
    with pytest.raises(RuntimeError, match="calibration failed"):
        build_index(settings, embedder)
    (staged, rows, chunks), = seen
    assert staged.name.startswith(".tmp-build-") and rows == chunks == len(before.chunks)
    assert not staged.exists() and not list(settings.index_dir.glob(".tmp-build-*"))
    assert live_folder(settings.index_dir) == folder
    assert list(load_index(settings.index_dir).chunks) == list(before.chunks)


def test_an_unwritable_index_folder_is_reported(tmp_path, embedder):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    settings = Settings(index_dir=blocker / "index")
    with pytest.raises(BuildFailed, match="Cannot write to the index folder"):
        build_index(settings, embedder)


def test_a_second_build_at_the_same_time_is_refused(tmp_path, embedder):
    settings = Settings(index_dir=tmp_path / "index")
    with build_lock(settings.index_dir):
        with pytest.raises(BuildLocked, match="Another build"):
            build_index(settings, embedder)


@pytest.mark.slow
def test_readers_during_rebuilds_always_see_a_whole_index(damaged, embedder):
    settings, _ = damaged
    errors, loads = [], []
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            try:
                loads.append(len(load_index(settings.index_dir).chunks))
            except Exception as error:       # any failure is what this test looks for
                errors.append(error)
            time.sleep(0.005)
    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for _ in range(2):
        build_index(settings, embedder)
    stop.set()
    for t in threads:
        t.join()
    assert errors == [] and loads and set(loads) == {55}
    assert len(list(settings.index_dir.glob("build-*"))) == 2      # live + previous


@pytest.mark.full
def test_bad_files_are_skipped_by_name_and_the_rest_indexed(embedder, tmp_path, corpus_copy):
    (corpus_copy / "broken.txt").write_bytes(b"\x00\x01\x02 binary")
    (corpus_copy / "empty.md").write_text("")
    (corpus_copy / "latin.txt").write_bytes("Café history of the alliance.".encode("latin-1"))
    huge = " ".join(f"Sentence {i} of one very long paragraph about the alliance." for i in
                    range(800))
    (corpus_copy / "huge.md").write_text(f"# Huge\n\n{huge}\n")
    settings = Settings(corpus_dir=corpus_copy, index_dir=tmp_path / "index")
    summary = build_index(settings, embedder)
    assert summary.documents == 3
    assert any(w.startswith("broken.txt: skipped") for w in summary.warnings)
    assert any(w.startswith("empty.md: skipped") for w in summary.warnings)
    index = load_index(settings.index_dir)
    pieces = [c for c in index.chunks if c.document == "huge"]
    assert len(pieces) > 10 and " ".join(c.text for c in pieces) == huge
    assert check_index(settings) == []            # skipped files are part of what is fresh
    (corpus_copy / "broken.txt").write_text("Now it is readable text.\n")
    assert check_index(settings) == ["broken.txt was edited"]


def test_damaged_fits_are_refused_only_by_a_rebuild_which_then_asks_again(damaged):
    settings, folder = damaged
    index = load_index(settings.index_dir)
    assert index.fits and all(isinstance(a, bool) for a in index.fits.values())
    (folder / "fits.npy").write_bytes(b"tampered")
    index = load_index(settings.index_dir)           # serving never reads them
    with pytest.raises(IndexCorrupt, match="does not match its manifest"):
        index.fits
    assert indexing.fits_before(index, index.manifest.model_fingerprint) == {}


@pytest.mark.full
def test_a_rebuild_with_nothing_changed_asks_the_model_nothing(embedder, tmp_path,
                                                                monkeypatch):
    """Not even about a paragraph too long to read whole, cut into runs of sentences."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    long = " ".join(f"Keeper {i} trimmed the wick of the lamp at dusk." for i in range(120))
    (corpus / "lamps.md").write_text(f"# Lamps\n\n## Log\n\n{long}\n\nTides rise.\n")
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index")
    build_index(settings, embedder)
    assert sum(1 for c in load_index(settings.index_dir).chunks if c.part) > 1
    asked, fits = [], embedder.fits
    monkeypatch.setattr(embedder, "fits", lambda texts: asked.extend(texts) or fits(texts))
    assert build_index(settings, embedder).embedded == 0 and asked == []
    (corpus / "lamps.md").write_text(f"# Lamps\n\n## Log\n\n{long}\n\nTides fall.\n")
    build_index(settings, embedder)
    assert asked == ["Log: Tides fall."]


@pytest.mark.full
def test_editing_one_paragraph_re_embeds_only_that_paragraph(embedder, tmp_path, corpus_copy):
    settings = Settings(corpus_dir=corpus_copy, index_dir=tmp_path / "incremental")
    first = build_index(settings, embedder)
    assert first.reused == 0 and first.changes == {"added": 55, "changed": 0, "removed": 0}
    before = load_index(settings.index_dir)
    old = codes_by_chunk(before)       # read now: two builds later, its folder is gone
    unchanged = build_index(settings, embedder)       # every vector reused, to the same bytes
    assert unchanged.embedded == 0
    again = load_index(settings.index_dir).folder
    assert again != before.folder
    assert {f.name for f in again.iterdir() if (before.folder / f.name).read_bytes()
            != f.read_bytes()} == {"manifest.json"}
    document = corpus_copy / "us-rok-alliance-history.md"
    text = document.read_text()
    edited = text.replace("Overall, the Cold War era marked a period of strategic consolidation",
                          "All in all, the Cold War era marked a period of strategic "
                          "consolidation")
    edited = edited.replace("Overall, post-Cold War developments contributed to a resilient "
                            "and adaptive partnership, aligning military capabilities with "
                            "shifting regional security dynamics and technological "
                            "advancements.\n\n", "")
    assert edited.count("All in all") == 1 and len(edited) < len(text)
    document.write_text(edited)
    second = build_index(settings, embedder)
    assert second.changes == {"added": 0, "changed": 1, "removed": 1}
    # one chunk changed: its context (one pass with its word pieces), its text and its one
    # changed sentence
    assert second.embedded == 3
    assert second.reused == first.embedded - 3 - 3       # less the removed chunk's 3 texts

    full = Settings(corpus_dir=corpus_copy, index_dir=tmp_path / "full")
    build_index(full, embedder, full=True)
    incremental, rebuilt = load_index(settings.index_dir), load_index(full.index_dir)
    assert list(incremental.chunks) == list(rebuilt.chunks) and incremental.keys == rebuilt.keys
    assert np.array_equal(incremental.token_table, rebuilt.token_table)
    for view in store.VIEWS:       # one byte a dimension, the ranges learned per build
        assert np.allclose(store.matrix(incremental.views[view]),
                           store.matrix(rebuilt.views[view]), atol=0.01)
    # the word pieces: the unchanged rows keep their codes, the changed chunk's rows are coded
    # with the first build's codebooks; the full build learned its own, as close
    assert incremental.tokens.trained_rows == len(before.tokens)
    assert rebuilt.tokens.trained_rows == len(rebuilt.tokens)
    new = codes_by_chunk(incremental)
    assert len(old.keys() & new.keys()) == 53
    assert all(np.array_equal(old[key], new[key]) for key in old.keys() & new.keys())
    decoded = incremental.tokens.rows(0, len(incremental.tokens))
    relearned = rebuilt.tokens.rows(0, len(rebuilt.tokens))
    assert np.median(np.sum(decoded * relearned, axis=1)) > 0.95


@pytest.mark.full
def test_a_build_codes_word_pieces_slice_by_slice_past_the_rows_it_learns_from(
        embedder, tmp_path, corpus_copy, built, monkeypatch):
    """A large corpus's build holds vectors only until it can learn the codebooks, and a
    view's rows a slice at a time: here a few slices' worth, as if the corpus had many more
    rows than TRAINING_ROWS and ADD_ROWS."""
    from alliance_qa import indexing, token_codes
    monkeypatch.setattr(indexing, "SLICE", 8)
    monkeypatch.setattr(indexing, "PIECES_SLICE", 8)
    monkeypatch.setattr(token_codes, "TRAINING_ROWS", 500)
    monkeypatch.setattr(store, "ADD_ROWS", 16)
    settings = Settings(corpus_dir=corpus_copy, index_dir=tmp_path / "sliced",
                        encoders_dir=built.encoders)
    build_index(settings, embedder)
    sliced, whole = load_index(settings.index_dir), load_index(built.index_dir)
    assert np.array_equal(sliced.token_table, whole.token_table)
    assert sliced.tokens.trained_rows == len(sliced.tokens) > 4 * 500
    decoded = sliced.tokens.rows(0, len(sliced.tokens))
    assert np.median(np.sum(decoded * whole.tokens.rows(0, len(whole.tokens)), axis=1)) > 0.95
    for view in store.VIEWS:
        assert np.allclose(store.matrix(sliced.views[view]), store.matrix(whole.views[view]),
                           atol=0.01)


def codes_by_chunk(index):
    """Each chunk's word-piece codes, by the key of the text they were embedded from."""
    starts = store.token_starts(index.token_table, len(index.chunks))
    return {key: index.tokens.codes[a:b]
            for key, a, b in zip(index.keys["tokens"], starts, starts[1:])}


@pytest.mark.full
def test_above_the_size_limit_searched_views_use_hnsw_with_recall_recorded(
        embedder, tmp_path, monkeypatch, searcher):
    monkeypatch.setattr(store, "EXACT_LIMIT", 20)
    settings = Settings(index_dir=tmp_path / "hnsw")
    build_index(settings, embedder)
    manifest = read_manifest(settings.index_dir)
    for view in ("text", "context"):
        assert manifest.vector_indexes[view]["type"].startswith("IndexHNSWSQ")
        assert 0.9 <= manifest.vector_indexes[view]["recall_at_10"] <= 1.0
    assert manifest.vector_indexes["sentences"]["type"] == "IndexScalarQuantizer (8-bit, exact)"
    from alliance_qa.search import Searcher, Weights
    approximate = Searcher(load_index(settings.index_dir), embedder, Weights(candidates=10))
    exact = Searcher(searcher.index, embedder, Weights(candidates=10))
    for question in ("What is THAAD?", "treaty provisions", "burden sharing"):
        assert approximate.search(question).hits[0].chunk.id == \
            exact.search(question).hits[0].chunk.id


def test_vector_files_are_memory_mapped_and_still_verified(damaged, searcher, embedder):
    from alliance_qa.search import Searcher
    settings, folder = damaged
    mapped = Searcher(load_index(settings.index_dir), embedder)
    for question in ("What is THAAD?", "burden sharing"):
        assert [h.chunk.id for h in mapped.search(question).hits] == \
            [h.chunk.id for h in searcher.search(question).hits]
    data = bytearray((folder / "text.faiss").read_bytes())
    data[-10] ^= 0xFF
    (folder / "text.faiss").write_bytes(bytes(data))
    with pytest.raises(IndexCorrupt, match="does not match its manifest"):
        load_index(settings.index_dir)


@pytest.mark.unit
def test_the_recipe_changes_with_any_module_a_build_runs_and_only_those(tmp_path):
    from alliance_qa import indexing
    package = tmp_path / "alliance_qa"
    shutil.copytree(Path(indexing.__file__).parent, package,
                    ignore=shutil.ignore_patterns("__pycache__"))
    before = indexing.build_recipe(package)
    assert before == indexing.recipe()
    for module, moves in [("chunking.py", True), ("search.py", True),     # calibration runs it
                          ("language.py", True), ("cli.py", False), ("ui.py", False)]:
        source = (package / module).read_text()
        (package / module).write_text(source + "\n# an edit\n")
        assert (indexing.build_recipe(package) != before) == moves, module
        (package / module).write_text(source)
    (package / "data" / "reference-questions.txt").write_text("What is a moth?\n")
    assert indexing.build_recipe(package) != before


def test_vectors_decoded_as_asked_equal_those_decoded_at_load(built, monkeypatch):
    index = load_index(built.index_dir)
    at_load = store.Rows(index.views["sentences"])
    monkeypatch.setattr(store, "DECODE_AT_LOAD_BYTES", 0)        # as for a large index
    as_asked = store.Rows(index.views["sentences"])
    assert at_load._all is not None and as_asked._all is None
    for rows in (slice(3, 9), np.array([7, 0, 130]), [5], 12, np.int64(12)):
        assert as_asked[rows].shape == at_load[rows].shape
        assert np.allclose(at_load[rows], as_asked[rows], atol=1e-6)
    # one byte a dimension: within rounding of the model's own vectors
    assert store.matrix(index.views["sentences"]).shape == (len(at_load), 384)


def test_the_stored_keyword_index_scores_as_one_built_from_the_chunks(built):
    from alliance_qa.keyword import KeywordIndex, keyword_texts
    from alliance_qa.spelling import corpus_words
    index = load_index(built.index_dir)
    texts = list(keyword_texts(index.chunks, index.manifest.acronyms))
    fresh = KeywordIndex.from_texts(texts, index.related_words)
    assert type(index.keyword._bm25.scores["data"]) is np.memmap     # read as pages are needed
    for question in ("burden sharing costs", "What is THAAD?", "soldiers in Beijing"):
        assert np.allclose(index.keyword.scores(question), fresh.scores(question))
        assert index.keyword.scores(question).any()
    assert index.words == corpus_words(texts)


def unit_rows(count: int, seed: int = 0) -> np.ndarray:
    rows = np.random.default_rng(seed).normal(size=(count, 16)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.mark.unit
def test_a_view_fed_slice_by_slice_is_the_view_fed_whole():
    rows = unit_rows(300)
    whole, _ = store.vector_index(rows)
    builder = store.ViewIndex(16, len(rows))
    for start in range(0, len(rows), 7):
        builder.add(rows[start:start + 7])
    sliced, description = builder.finish()
    assert description == {"type": "IndexScalarQuantizer (8-bit, exact)", "vectors": 300}
    assert np.array_equal(store.matrix(sliced), store.matrix(whole))


@pytest.mark.unit
def test_a_large_view_fed_slice_by_slice_codes_each_row_as_from_all_rows(monkeypatch):
    """Rows are spilled to disk and added ADD_ROWS at a time; the quantizer's ranges are
    still those of all the rows, so every row is coded as if the view had been given whole."""
    monkeypatch.setattr(store, "ADD_ROWS", 64)
    rows = unit_rows(1000)
    builder = store.ViewIndex(16, len(rows), exact_limit=100)
    for start in range(0, len(rows), 10):
        builder.add(rows[start:start + 10])
    index, description = builder.finish()
    assert description["type"].startswith("IndexHNSWSQ") and index.ntotal == 1000
    assert 0.9 <= description["recall_at_10"] <= 1.0
    whole = faiss.IndexScalarQuantizer(16, store.QUANTIZER, faiss.METRIC_INNER_PRODUCT)
    whole.train(rows)
    whole.add(rows)
    assert np.array_equal(store.matrix(index), store.matrix(whole))
    with pytest.raises(BuildFailed):
        store.ViewIndex(16, 5).finish()                   # fewer rows than announced


@pytest.mark.unit
def test_an_exact_view_is_written_from_disk_as_faiss_writes_it(monkeypatch, tmp_path):
    """An exact view (the sentences at any size) goes from its spilled rows to its file a
    block of codes at a time, never made in memory: the file is byte for byte the one FAISS
    writes for the index made in memory, and loads as it; the check that this FAISS writes
    so holds."""
    assert store.streams_like_faiss()
    monkeypatch.setattr(store, "ADD_ROWS", 64)
    rows = unit_rows(1000)
    streamed, made = store.ViewIndex(16, len(rows)), store.ViewIndex(16, len(rows))
    for builder in (streamed, made):
        for start in range(0, len(rows), 10):
            builder.add(rows[start:start + 10])
    staging = store.Staging(tmp_path)
    staging.view("sentences", streamed)
    index, description = made.finish()
    written = (staging.folder / "sentences.faiss").read_bytes()
    assert written == faiss.serialize_index(index).tobytes()
    assert staging.descriptions["sentences"] == description
    loaded = faiss.read_index(str(staging.folder / "sentences.faiss"))
    assert np.array_equal(store.matrix(loaded), store.matrix(index))
    monkeypatch.setattr(store, "streams_like_faiss", lambda: False)     # a FAISS that differs
    fallback = store.ViewIndex(16, len(rows))
    fallback.add(rows)
    staging.view("text", fallback)
    assert (staging.folder / "text.faiss").read_bytes() == written


@pytest.mark.unit
@pytest.mark.parametrize("exact_limit", [store.EXACT_LIMIT, 100])
def test_a_view_made_again_from_its_decoded_rows_keeps_its_codes(exact_limit):
    """A rebuild reuses vectors decoded from the previous build's codes: given that build's
    ranges, it codes them to the same bytes; ranges learned from the decoded rows alone
    would move up half a step, and every row's codes with them at every rebuild."""
    rows = unit_rows(300)
    first, _ = store.vector_index(rows, exact_limit)
    decoded = store.matrix(first)
    ranges = store.CodeRanges.of(first)
    assert np.array_equal(ranges.least, rows.min(axis=0))
    builder = store.ViewIndex(16, len(rows), exact_limit, previous=ranges)
    builder.add(decoded)
    again, _ = builder.finish()
    assert np.array_equal(store.CodeRanges.of(again).span, ranges.span)
    assert np.array_equal(store.matrix(again), decoded)
    relearned, _ = store.vector_index(decoded, exact_limit)
    assert np.all(store.CodeRanges.of(relearned).least > ranges.least)    # moved up


@pytest.mark.unit
def test_kept_ranges_follow_rows_that_leave_or_pass_them():
    ranges = store.CodeRanges(np.zeros(3, np.float32), np.full(3, 2.55, np.float32))
    least = np.array([0.005, 0.5, -1.0], np.float32)      # kept, its row gone, passed
    greatest = np.array([2.56, 1.0, 2.55], np.float32)    # kept, its row gone, kept
    kept = ranges.kept(least, greatest)
    assert np.allclose(kept.least, [0.0, 0.5, -1.0])
    assert np.allclose(kept.least + kept.span, [2.55, 1.0, 2.55])
    assert kept.span[0] == ranges.span[0]


@pytest.mark.unit
def test_an_index_is_streamed_to_its_file_and_a_full_disk_still_says_so(tmp_path):
    """FAISS files are written a block at a time as FAISS writes them, never copied whole
    into memory first; the checksum is of the bytes on disk."""
    index, _ = store.vector_index(unit_rows(3000))
    path = tmp_path / "view.faiss"
    digest = store._write_bytes(path, index)
    assert path.read_bytes() == faiss.serialize_index(index).tobytes()
    assert digest == file_sha256(path)
    with pytest.raises(OSError) as error:
        store._write_bytes(Path("/dev/full"), index)
    assert error.value.errno == errno.ENOSPC


@pytest.mark.unit
def test_an_array_is_streamed_to_its_file_as_numpy_saves_it(tmp_path):
    table = np.arange(3 * 2**20, dtype=np.int32).reshape(-1, 2)    # 12 MiB: many blocks
    path = tmp_path / "tokens.npy"
    digest = store._write_bytes(path, table)
    saved = io.BytesIO()
    np.save(saved, table, allow_pickle=False)
    assert path.read_bytes() == saved.getvalue() and digest == file_sha256(path)
    assert np.array_equal(np.load(path, mmap_mode="r"), table)
    with pytest.raises(OSError) as error:
        store._write_bytes(Path("/dev/full"), table)
    assert error.value.errno == errno.ENOSPC


@pytest.mark.unit
def test_rows_come_in_order_fresh_among_known():
    from alliance_qa.indexing import PreviousVectors, rows_in_order
    keys = [f"k{i}" for i in range(10)]
    vectors = np.arange(10, dtype=np.float32)[:, None] * np.ones((1, 2), np.float32)
    stored = [9, 0, 3, 2, 8, 6, 7]            # a previous build's rows, in its own order
    previous = faiss.IndexFlatIP(2)
    previous.add(vectors[stored])
    known = PreviousVectors([keys[i] for i in stored], previous)
    assert np.array_equal(known["k3"], vectors[3])
    fresh = iter([([1], vectors[[1]]), ([4, 5], vectors[[4, 5]])])
    blocks = list(rows_in_order(10, keys, known, fresh, 2))
    assert [len(b) for b in blocks] == [2, 4, 4]
    assert np.array_equal(np.concatenate(blocks), vectors)


@pytest.mark.unit
def test_reused_rows_before_a_late_fresh_row_come_a_slice_at_a_time(monkeypatch):
    """A rebuild that re-embeds one text near the end never holds every reused row before
    it at once."""
    from alliance_qa import indexing
    from alliance_qa.indexing import PreviousVectors, rows_in_order
    monkeypatch.setattr(indexing, "SLICE", 3)
    keys = [f"k{i}" for i in range(10)]
    vectors = np.arange(10, dtype=np.float32)[:, None] * np.ones((1, 2), np.float32)
    previous = faiss.IndexFlatIP(2)
    previous.add(vectors[:8])
    known = PreviousVectors(keys[:8], previous)
    fresh = iter([([8, 9], vectors[[8, 9]])])
    blocks = list(rows_in_order(10, keys, known, fresh, 2))
    assert [len(b) for b in blocks] == [3, 3, 3, 1]
    assert np.array_equal(np.concatenate(blocks), vectors)


def test_the_keyword_files_are_the_same_bytes_in_any_process():
    """bm25s numbers words in set order, which follows the process's hash seed: the index
    numbers them itself, so two builds of one corpus write the same files."""
    script = ("import hashlib; from alliance_qa.keyword import KeywordIndex; "
              "files = KeywordIndex.from_texts(['Tides rise twice a day at the pools.', "
              "'Keepers trim the wicks at dusk.', 'Bees swarm in late spring.']).files(); "
              "print(hashlib.sha256(b''.join(files[n] for n in sorted(files))).hexdigest())")
    digests = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              check=True, env={**os.environ, "PYTHONHASHSEED": seed}).stdout
               for seed in ("1", "2", "3")}
    assert len(digests) == 1


@pytest.mark.unit
def test_a_full_disk_while_vectors_are_set_aside_is_said_in_words(monkeypatch):
    builder = store.ViewIndex(16, 10)

    class Full:
        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(builder, "_spill", Full())
    with pytest.raises(BuildFailed, match="the disk is full"):
        builder.add(unit_rows(10))
