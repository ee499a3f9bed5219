"""Word-piece rows stored as codes: scored from the codes as they would be decoded."""

from __future__ import annotations

import errno

import numpy as np
import pytest

from alliance_qa import token_codes


@pytest.mark.unit
def test_rows_scored_from_their_codes_equal_the_decoded_rows_products(monkeypatch):
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 40, 3000).astype(np.int32)
    vectors = rng.standard_normal((3000, 48)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    decoded_at_load = token_codes.TokenCodes.learn(vectors, ids)
    monkeypatch.setattr(token_codes, "DECODE_ALL_BELOW_BYTES", 0)    # as for a large index
    from_codes = token_codes.TokenCodes(decoded_at_load.ids, decoded_at_load.pieces,
                                        decoded_at_load.centroids, decoded_at_load.codebooks,
                                        decoded_at_load.codes, decoded_at_load.trained_rows)
    assert from_codes._decoded is None and decoded_at_load._decoded is not None
    query = vectors[[5, 17, 2999]] + 0.1
    rows = np.array([0, 1, 2, 2999, 1500, 7, 7])         # any order, repeated
    expected = query @ decoded_at_load.take(rows).T
    assert np.allclose(from_codes.similarities(query, rows), expected, atol=1e-5)
    assert np.allclose(decoded_at_load.similarities(query, rows), expected, atol=1e-6)
    most = np.concatenate([np.arange(2999, -1, -1), [7]])   # most rows: multiplied all at once
    assert np.allclose(decoded_at_load.similarities(query, most),
                       query @ decoded_at_load.take(most).T, atol=1e-6)
    # and a decoded row stays close to the vector it codes
    assert np.median(np.sum(decoded_at_load.take(rows) * vectors[rows], axis=1)) > 0.5


@pytest.mark.unit
def test_codes_are_put_in_text_order_from_the_spool_and_the_kept_texts(tmp_path):
    """New texts' codes are read back from the coder's spool in turn (spooled in blocks
    that a text may straddle), kept texts' come from the previous build."""
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(400, 16)).astype(np.float32)
    ids = rng.integers(0, 30, size=400).astype(np.int32)
    everything = token_codes.TokenCodes.learn(vectors, ids).codes
    counts = [3, 0, 5, 2, 4]                     # rows of texts 0…4
    starts = np.cumsum([0] + counts)
    kept = {1, 3}
    new_rows = np.concatenate([everything[starts[i]:starts[i + 1]] for i in range(5)
                               if i not in kept])
    spool = token_codes.Spool(everything.shape[1], tmp_path)
    spool.append(new_rows[:4])                   # text 2's rows straddle the two blocks
    spool.append(new_rows[4:])
    assert spool.rows == len(new_rows) and not list(tmp_path.iterdir())   # an unnamed file
    ordered = token_codes.in_text_order(counts, {0, 2, 4}, spool,
                                        lambda i: everything[starts[i]:starts[i + 1]])
    assert np.array_equal(np.concatenate(list(ordered)), everything[:sum(counts)])
    with pytest.raises(ValueError, match="fewer"):
        spool.read(1)                            # every spooled row was read once


@pytest.mark.unit
def test_the_token_table_is_written_in_text_order_from_spooled_ids_and_kept_texts(
        monkeypatch, tmp_path):
    """The new texts' vocabulary ids wait in a spool; the table comes back a block of whole
    texts at a time (a text with no rows, runs longer than a block), and the chunks having
    each piece, counted block by block, are those counted over the whole table."""
    from alliance_qa.store import PieceFrequencies, document_frequencies
    monkeypatch.setattr(token_codes, "_BLOCK_ROWS", 6)
    rng = np.random.default_rng(1)
    counts = np.array([3, 0, 5, 2, 4, 7, 1, 0, 2], np.int32)
    ids = [rng.integers(0, 12, size=n).astype(np.int32) for n in counts]
    kept = {1, 3, 6}
    spool = token_codes.Spool(1, tmp_path, np.int32)
    spool.append(np.concatenate([ids[i] for i in range(len(counts)) if i not in kept])[:, None])
    new = set(range(len(counts))) - kept
    blocks = list(PieceFrequencies().counted(
        token_codes.table_in_text_order(counts, new, spool, lambda i: ids[i])))
    whole = np.column_stack([np.repeat(np.arange(len(counts)), counts), np.concatenate(ids)])
    assert all(b.dtype == np.int32 and b.shape[1] == 2 for b in blocks)
    assert np.array_equal(np.concatenate(blocks), whole)
    for block in blocks:                                  # no text is split between blocks
        assert not set(block[:, 0]) & set(np.concatenate([b[:, 0] for b in blocks
                                                          if b is not block]))
    frequency = PieceFrequencies()
    for _ in frequency.counted(blocks):
        pass
    assert np.array_equal(frequency.chunks, document_frequencies(whole))


@pytest.mark.unit
def test_a_coder_learns_from_exactly_the_first_rows_and_codes_the_rest_with_them(
        monkeypatch):
    """Slices that straddle TRAINING_ROWS: the codebooks are those learned from the first
    TRAINING_ROWS rows alone (held in one buffer of that size), and the rows after them,
    in the same slice or later ones, are coded with those codebooks."""
    monkeypatch.setattr(token_codes, "TRAINING_ROWS", 300)
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((390, 24)).astype(np.float32)
    ids = rng.integers(0, 20, 390).astype(np.int32)
    original = vectors.copy()
    coder = token_codes.Coder()
    for start in (0, 130, 260):
        coder.add(vectors[start:start + 130], ids[start:start + 130])
        assert coder.first is None or coder.first.shape == (300, 24)
    spool, (pieces, centroids), like = coder.finish()
    alone = token_codes.TokenCodes.learn(vectors[:300], ids[:300])
    codes = spool.read(spool.rows)
    assert len(codes) == 390 and like.trained_rows == 300
    assert np.array_equal(codes[:300], alone.codes)
    assert np.array_equal(like.centroids, alone.centroids)
    rest = vectors[300:] - centroids[np.searchsorted(pieces, ids[300:])].astype(np.float32)
    assert np.array_equal(codes[300:], alone.quantizer.compute_codes(rest))
    assert np.array_equal(vectors, original)      # the caller's rows are never overwritten


@pytest.mark.unit
def test_rows_given_a_block_at_a_time_are_written_as_one_array(tmp_path):
    from alliance_qa import store
    rows = np.arange(60, dtype=np.uint8).reshape(20, 3)
    blocks = store.RowBlocks((20, 3), np.dtype(np.uint8), iter([rows[:7], rows[7:]]))
    digest = store._write_bytes(tmp_path / "rows.npy", blocks)
    assert np.array_equal(np.load(tmp_path / "rows.npy"), rows)
    assert digest == store.file_sha256(tmp_path / "rows.npy")
    for wrong in ([rows[:7]], [rows, rows[:1]], [rows[:, :2]]):
        with pytest.raises(ValueError):
            store._write_bytes(tmp_path / "wrong.npy",
                               store.RowBlocks((20, 3), np.dtype(np.uint8), iter(wrong)))


@pytest.mark.unit
def test_document_frequencies_count_each_chunk_once_per_piece():
    from alliance_qa import store
    table = np.array([[0, 5], [0, 5], [0, 2], [1, 5], [2, 0], [2, 2], [2, 2]], np.int32)
    naive = np.zeros(6, np.int64)
    for piece in range(6):
        naive[piece] = len({chunk for chunk, id_ in table.tolist() if id_ == piece})
    assert store.document_frequencies(table).tolist() == naive.tolist() == [1, 0, 2, 0, 0, 2]
    assert table.tolist()[0] == [0, 5]            # the table itself is left as it was


@pytest.mark.unit
def test_a_full_disk_while_codes_are_set_aside_is_said_in_words(tmp_path):
    from alliance_qa.errors import BuildFailed

    class Full:
        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    spool = token_codes.Spool(4, tmp_path)
    spool.file = Full()
    with pytest.raises(BuildFailed, match="the disk is full"):
        spool.append(np.zeros((3, 4), np.uint8))
    with pytest.raises(BuildFailed, match="Cannot set word pieces aside"):
        token_codes.Spool(4, tmp_path / "missing")


@pytest.mark.unit
@pytest.mark.parametrize("rows, dimension", [(5000, 384), (3000, 48), (100, 48)])
def test_codes_are_each_sub_vectors_nearest_entry_as_faiss_finds_it(rows, dimension):
    """Coded with one matrix product per sub-vector, the codes are FAISS's own, with 256
    entries a codebook and with fewer (a small corpus's, coded by FAISS)."""
    import faiss
    rng = np.random.default_rng(1)
    residuals = rng.standard_normal((rows, dimension)).astype(np.float32) * 0.2
    bits = min(8, int(np.log2(rows)))
    quantizer = faiss.ProductQuantizer(dimension, token_codes.subvectors(dimension), bits)
    quantizer.cp.min_points_per_centroid = 1
    quantizer.train(residuals)
    ours, theirs = token_codes.codes_of(quantizer, residuals), quantizer.compute_codes(residuals)
    assert ours.dtype == np.uint8 and ours.shape == theirs.shape
    assert (ours != theirs).mean() < 1e-4          # a near tie may round the other way
    error = [((residuals - quantizer.decode(codes)) ** 2).sum(axis=1) for codes in (ours,
                                                                                   theirs)]
    assert np.allclose(error[0], error[1], rtol=1e-5, atol=1e-7)   # as near, row by row
