"""Word-piece vectors in 36 bytes each: the piece's corpus centroid plus a quantized residual.

Word-level matching (token_match.py) needs a vector for every content word piece of every
passage, as the model read it in context: ~90 per paragraph, 768 bytes each in float16, which
made the index ~130 KB a paragraph. Stored the way ColBERTv2 (Santhanam et al., 2022) stores
its token vectors, a vector is a centroid plus a product-quantized residual. The centroid
needs no clustering here: it is the mean of that word piece's own vectors across the corpus
("treaty" as the corpus uses it), learned at build time and kept once per piece. A row keeps
only its residual from it, product-quantized by FAISS: 32 one-byte codes for a
384-dimensional model, plus its 4-byte piece id, which the index stores anyway. Measured on
both evaluation corpora, hit@1 is unchanged (docs/method.md has the table).

The codebooks are learned from the build's own vectors. A later build encodes the rows of
new or edited paragraphs with the same codebooks and keeps every other row's code as it was;
once the corpus has grown to twice the rows the codebooks were learned on, the next build
learns them anew (and so embeds every paragraph again). A build codes its rows as they are
embedded (`Coder`): it holds vectors only until it has enough rows to learn the codebooks
from, and the codes and the rows' vocabulary ids wait in temporary files (`Spool`) until they
are written in text order, so what it holds does not grow with the corpus's word pieces.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from .errors import BuildFailed, disk_reason

DIMENSIONS_PER_CODE = 12        # a 384-dimensional vector → 32 codes of one byte
TRAINING_ROWS = 256 * 256       # what FAISS's k-means would sample anyway
DECODE_ALL_BELOW_BYTES = 256 * 2**20    # vectors decoded once at load take at most this
_BLOCK_ROWS = 8192              # rows given their centroid's share at a time
CODE_BLOCK = 128                # rows coded at once: their distances to every entry stay cached


def _unit(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return (rows / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


def subvectors(dimension: int) -> int:
    """How many codes a row gets: the largest divisor of `dimension` that leaves each code
    at least 12 dimensions (32 for 384, 64 for 768)."""
    wanted = max(1, dimension // DIMENSIONS_PER_CODE)
    return max(m for m in range(1, wanted + 1) if dimension % m == 0)


def product_quantizer(codebooks: np.ndarray) -> faiss.ProductQuantizer:
    """FAISS's product quantizer with these codebooks (subvectors × entries × width)."""
    count, entries, width = codebooks.shape
    quantizer = faiss.ProductQuantizer(count * width, count, int(entries).bit_length() - 1)
    faiss.copy_array_to_vector(np.ascontiguousarray(codebooks, np.float32).ravel(),
                               quantizer.centroids)
    return quantizer


def _codebooks_of(quantizer: faiss.ProductQuantizer) -> np.ndarray:
    return faiss.vector_to_array(quantizer.centroids).reshape(quantizer.M, quantizer.ksub,
                                                              quantizer.dsub)


def codes_of(quantizer: faiss.ProductQuantizer, rows: np.ndarray) -> np.ndarray:
    """`quantizer.compute_codes(rows)`: each sub-vector's nearest codebook entry, found with
    one matrix product per block of rows and sub-vector. FAISS codes sub-vectors of under
    16 dimensions a row at a time, ~4× slower on one core. Codebooks of fewer than 256
    entries (a corpus too small for more), whose codes FAISS packs in bits, are coded by
    FAISS."""
    if quantizer.nbits != 8:
        return quantizer.compute_codes(np.ascontiguousarray(rows, np.float32))
    books = _codebooks_of(quantizer)                        # sub-vectors × entries × width
    transposed = np.ascontiguousarray(books.transpose(0, 2, 1))
    half_norms = 0.5 * np.einsum("sew,sew->se", books, books)[:, None, :]
    codes = np.empty((len(rows), quantizer.M), np.uint8)
    for start in range(0, len(rows), CODE_BLOCK):
        block = np.asarray(rows[start:start + CODE_BLOCK], np.float32).reshape(
            -1, quantizer.M, quantizer.dsub).transpose(1, 0, 2)
        # nearest entry: least |entry|²/2 − sub-vector · entry (|sub-vector|² is the same)
        codes[start:start + CODE_BLOCK] = (half_norms - block @ transposed).argmin(axis=2).T
    return codes


@dataclass
class TokenCodes:
    """The word-piece rows of an index: `ids` (the vocabulary id of each row), `pieces`
    (the sorted ids that have a centroid), `centroids` (float16, one row per piece),
    `codebooks` (float32, subvectors × entries × width: FAISS's product quantizer) and
    `codes` (uint8, each row's residual coded with them; memory-mapped when loaded)."""

    ids: np.ndarray
    pieces: np.ndarray
    centroids: np.ndarray
    codebooks: np.ndarray
    codes: np.ndarray
    trained_rows: int             # how many rows the codebooks were learned from

    def __post_init__(self) -> None:
        self.quantizer = product_quantizer(self.codebooks)
        self._decoded = self._centroids = None
        if len(self) * self.centroids.shape[1] * 4 <= DECODE_ALL_BELOW_BYTES:
            self._decoded = self.take(np.arange(len(self)))
        else:      # scored from the codes per question (`similarities`)
            self._centroids = self.centroids.astype(np.float32)

    def __len__(self) -> int:
        return len(self.codes)

    def centroid_of(self, rows: np.ndarray) -> np.ndarray:
        """Each row's centroid row (looked up as asked: for every row of a large index it
        took 0.9 s of each start)."""
        return np.searchsorted(self.pieces, self.ids[rows])

    def rows(self, low: int, high: int) -> np.ndarray:
        """Rows low…high−1 as float32 vectors."""
        return self.take(np.arange(low, high))

    def take(self, rows: np.ndarray) -> np.ndarray:
        """These rows as float32 vectors, decoded in one call: centroid plus residual, unit
        to within the quantization (norms 0.88–1.03 on the evaluation corpora; scaling
        them to 1 did not raise hit@1 on either)."""
        if self._decoded is not None:
            return self._decoded[rows]
        residual = self.quantizer.decode(np.ascontiguousarray(self.codes[rows]))
        centroids = self._centroids if self._centroids is not None else self.centroids
        return (centroids[self.centroid_of(rows)] + residual).astype(np.float32, copy=False)

    def similarities(self, query: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """`query @ take(rows).T` (query: float32 rows), without decoding rows that were
        not decoded at load: the centroids' share is multiplied once per distinct piece,
        the residuals' share is summed from tables of each query subvector against each
        codebook entry, as FAISS's own product-quantizer search does."""
        if self._decoded is not None:
            if 4 * len(rows) >= len(self._decoded):    # most rows: copying them costs more
                return (query @ self._decoded.T)[:, rows]   # than multiplying them all
            return query @ self._decoded[rows].T
        m, entries, width = self.codebooks.shape
        # (m, entries, queries): every codebook entry's product with the query's subvector
        tables = np.ascontiguousarray(np.matmul(
            self.codebooks, query.reshape(len(query), m, width).transpose(1, 2, 0)))
        codes = self.codes[rows]
        residual = np.zeros((len(rows), len(query)), np.float32)
        for part in range(m):
            residual += tables[part][codes[:, part]]
        pieces, which = np.unique(self.centroid_of(rows), return_inverse=True)
        return (query @ self._centroids[pieces].T)[:, which] + residual.T

    @classmethod
    def learn(cls, vectors: np.ndarray, ids: np.ndarray, seed: int = 0,
              overwrite: bool = False) -> TokenCodes:
        """Learn the centroids and codebooks from a build's rows, and encode them. With
        `overwrite`, `vectors` is turned into the residuals in place (no second copy)."""
        dimension = vectors.shape[1]
        pieces, centroids = _centroids(vectors, ids, np.zeros(0, np.int32),
                                       np.zeros((0, dimension), np.float16))
        residual = _subtract_centroids(vectors if overwrite else vectors.copy(), ids,
                                       pieces, centroids)
        rows = len(vectors)
        bits = int(min(8, max(1, np.log2(max(rows, 2)))))     # k-means needs 2**bits rows
        quantizer = faiss.ProductQuantizer(dimension, subvectors(dimension), bits)
        quantizer.cp.min_points_per_centroid = 1    # a small corpus trains on what it has
        quantizer.cp.seed = seed
        if rows == 1:
            training = np.repeat(residual, 2, axis=0)
        elif rows <= TRAINING_ROWS:
            training = residual          # every row, in order: what a sample of all would be
        else:
            sample = np.random.default_rng(seed).permutation(rows)[:TRAINING_ROWS]
            training = residual[np.sort(sample)]
        quantizer.train(np.ascontiguousarray(training))
        del training
        codes = codes_of(quantizer, residual)
        return cls(np.asarray(ids, np.int32), pieces, centroids, _codebooks_of(quantizer),
                   codes, rows)


@dataclass(frozen=True)
class CodedPieces:
    """A build's word-piece rows as it writes them, in text order, a block at a time (read
    from disk as written): the table's rows and their codes; with the centroids and
    codebooks."""

    rows: int
    table: Iterable[np.ndarray]        # int32 (text number, vocabulary id) rows, whole texts
    pieces: np.ndarray
    centroids: np.ndarray
    codebooks: np.ndarray
    codes: Iterable[np.ndarray]
    trained_rows: int


class Spool:
    """Rows appended to an unnamed temporary file, then read back in order: a build's
    word-piece codes and vocabulary ids wait on disk, not in memory (~350 MB at 100,000
    passages)."""

    def __init__(self, width: int, folder: Path | None = None, dtype: type = np.uint8):
        try:
            self.file = tempfile.TemporaryFile(dir=folder)
        except OSError as error:
            raise BuildFailed(f"Cannot set word pieces aside in {folder}: "
                              f"{disk_reason(error)}.") from error
        self.width, self.dtype, self.rows, self._reading = width, np.dtype(dtype), 0, False

    def append(self, rows: np.ndarray) -> None:
        """Add rows after those already spooled."""
        try:
            self.file.write(memoryview(np.ascontiguousarray(rows, self.dtype)))
        except OSError as error:
            raise BuildFailed(f"Setting the word pieces aside on disk failed: "
                              f"{disk_reason(error)}.") from error
        self.rows += len(rows)

    def read(self, count: int) -> np.ndarray:
        """The next `count` rows (the first call starts at the first row)."""
        if not self._reading:
            self.file.seek(0)
            self._reading = True
        size = int(count) * self.width * self.dtype.itemsize
        data = self.file.read(size)
        if len(data) != size:
            raise ValueError(f"the spool holds fewer than {count} more rows")
        return np.frombuffer(data, self.dtype).reshape(int(count), self.width)


class Coder:
    """Codes word-piece rows as a build embeds them, slice by slice: with `like`'s
    codebooks, or with codebooks learned from the first TRAINING_ROWS rows, gathered in one
    buffer (the only vectors it ever holds); the codes go to a `Spool` in `folder`. Pieces
    first seen later get their own rows' mean as centroid."""

    def __init__(self, like: TokenCodes | None = None, folder: Path | None = None):
        self.like, self.folder = like, folder
        self.centroids = (like.pieces, like.centroids) if like else None
        self.first: np.ndarray | None = None                  # rows before codebooks
        self.first_ids: list[np.ndarray] = []
        self.spool = Spool(like.codes.shape[1], folder) if like else None
        self.rows = 0

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        """Code the next rows (vocabulary ids `ids`), in order."""
        self.rows += len(ids)
        if self.like is None:
            if self.first is None:
                self.first = np.empty((TRAINING_ROWS, vectors.shape[1]), np.float32)
            held = self.rows - len(ids)         # every row so far is in the buffer
            taken = min(len(ids), TRAINING_ROWS - held)
            self.first[held:held + taken] = vectors[:taken]
            self.first_ids.append(ids[:taken])
            if held + taken < TRAINING_ROWS:
                return
            self._learn()
            vectors, ids = vectors[taken:], ids[taken:]
            if not len(ids):
                return
        self.centroids = _centroids(vectors, ids, *self.centroids)
        residual = _subtract_centroids(np.array(vectors, np.float32, order="C"), ids,
                                       *self.centroids)
        self.spool.append(codes_of(self.like.quantizer, residual))

    def _learn(self) -> None:
        ids = np.concatenate(self.first_ids) if self.first_ids else np.zeros(0, np.int32)
        vectors = self.first[:len(ids)] if self.first is not None else np.zeros((0, 1))
        self.first, self.first_ids = None, []
        self.like = TokenCodes.learn(vectors, ids, overwrite=True)
        self.centroids = (self.like.pieces, self.like.centroids)
        self.spool = Spool(self.like.codes.shape[1], self.folder)
        self.spool.append(self.like.codes)

    def finish(self) -> tuple[Spool, tuple[np.ndarray, np.ndarray], TokenCodes]:
        """The spool of every added row's code, the centroids (pieces, rows), and the
        codebooks' owner."""
        if self.like is None:
            self._learn()
        return self.spool, self.centroids, self.like


def runs_in_text_order(counts: Sequence[int], new: Collection[int], fresh: Spool,
                       kept: Callable[[int], np.ndarray]
                       ) -> Iterator[tuple[int, int, np.ndarray]]:
    """Every text's rows in text order, as (first text, the text after the last, their
    rows), in blocks of whole texts of at least _BLOCK_ROWS rows but the last (more for a
    text with more): new texts' rows read in turn from `fresh`, a kept text's `kept(i)`.
    (A block a kept text made an incremental build write and count ~110,000 blocks.)"""
    start, rows, parts, unread = 0, 0, [], 0

    def read() -> None:
        nonlocal unread
        if unread:
            parts.append(fresh.read(unread))
            unread = 0

    for i, count in enumerate(counts):
        if i in new:
            unread += count
        else:
            read()
            parts.append(kept(i))
        rows += count
        if rows >= _BLOCK_ROWS:
            read()
            yield start, i + 1, parts[0] if len(parts) == 1 else np.concatenate(parts)
            start, rows, parts = i + 1, 0, []
    read()
    if start < len(counts):
        yield start, len(counts), (np.concatenate(parts) if parts else fresh.read(0))


def in_text_order(counts: Sequence[int], new: Collection[int], fresh: Spool,
                  kept: Callable[[int], np.ndarray]) -> Iterator[np.ndarray]:
    """Every text's codes, in text order (runs_in_text_order), a block at a time."""
    return (rows for _, _, rows in runs_in_text_order(counts, new, fresh, kept))


def table_in_text_order(counts: np.ndarray, new: Collection[int], fresh_ids: Spool,
                        kept_ids: Callable[[int], np.ndarray]) -> Iterator[np.ndarray]:
    """The token table, (text number, vocabulary id) a row, in text order, a block of whole
    texts at a time: new texts' ids read from `fresh_ids`, a kept text's `kept_ids(i)`."""
    def kept(i: int) -> np.ndarray:
        return np.asarray(kept_ids(i), np.int32).reshape(-1, 1)

    for first, end, ids in runs_in_text_order(counts, new, fresh_ids, kept):
        numbers = np.repeat(np.arange(first, end, dtype=np.int32), counts[first:end])
        yield np.column_stack([numbers, ids.reshape(-1)])


def _subtract_centroids(rows: np.ndarray, ids: np.ndarray, pieces: np.ndarray,
                        centroids: np.ndarray) -> np.ndarray:
    """`rows` (float32, C-ordered, overwritten) minus each row's piece centroid: the
    residuals, made _BLOCK_ROWS at a time (no second copy of the rows)."""
    nearest = np.searchsorted(pieces, ids)
    for start in range(0, len(rows), _BLOCK_ROWS):
        block = slice(start, start + _BLOCK_ROWS)
        rows[block] -= centroids[nearest[block]]
    return rows


def _centroids(vectors: np.ndarray, ids: np.ndarray, known_pieces: np.ndarray,
               known: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The known centroids (sorted piece ids, float16 rows) extended by the unit mean
    vector of each piece of `ids` they lack."""
    fresh = ~np.isin(ids, known_pieces)       # only rows of pieces without one are summed
    if not fresh.any():
        return known_pieces, known
    vectors, ids = vectors[fresh], ids[fresh]
    order = np.argsort(ids, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(ids[order]) != 0])
    sums = np.add.reduceat(vectors[order], starts, axis=0)
    pieces = np.concatenate([known_pieces, ids[order][starts]]).astype(np.int32)
    rows = np.concatenate([known, _unit(sums).astype(np.float16)])
    order = np.argsort(pieces, kind="stable")
    return pieces[order], rows[order]
