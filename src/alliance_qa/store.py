"""The only code that touches `index/`: write a build atomically, load and verify it.

Layout: `index/CURRENT` names the live build folder (`index/build-…/`), which holds
`manifest.json`, `chunks.jsonl` and `chunk-columns.npz` (records.py), `documents.json`, one
FAISS inner-product index per view of the text (`context.faiss` and `text.faiss`: a unit
vector per chunk; `sentences.faiss`: a unit vector per sentence of each chunk, in chunk
order), the word pieces (token_codes.py: `token-codes.npy`, the product-quantized code of
each content word piece of each chunk's context text, in chunk order, `token-centroids.npz`,
each word piece's corpus centroid and how many chunks have it, and FAISS's codebooks, and
`tokens.npy`, each row's chunk number and vocabulary id), `embedding-keys.json`: for each
view, the SHA-256 of the exact text embedded for each row (for `tokens`, for each chunk), so
the next build can reuse every vector whose text and model are unchanged, `fits.npy`: what
the model was asked while chunking, by digest, with its answer (chunking.FitsMemory: the
next build asks again only about what changed), `related-words.json`: the corpus words each
word the corpus lacks stands for (related_words.py), `corpus-words.json` (spelling.py) and
BM25's files (keyword.py). A build is written to a hidden temporary folder part by part as
it is made (`Staging`), calibrated there, then made live by atomically replacing `CURRENT`;
readers resolve `CURRENT` once, so they never see a half-written build. The previous build
is kept until the next one lands, so a reader that started before a swap can finish. Nothing
here unpickles: the files are JSON, FAISS's own format and plain NumPy arrays.

Loading verifies every file it reads against the manifest's SHA-256 (two files at a time,
hashlib releases the GIL), memory-maps the large ones, and reads the documents, the
embedding keys and the fits only when asked: serving needs none of them.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import hashlib
import io
import json
import os
import re
import shutil
import stat
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TypeVar

import faiss
import numpy as np

from . import keyword
from .chunking import DIGEST, Chunk
from .documents import Document, Section
from .errors import BuildFailed, BuildLocked, IndexCorrupt, IndexMissing, IndexStale, disk_reason
from .integrity import file_sha256, sha256_bytes
from .keyword import KeywordIndex
from .manifest import Manifest
from .records import ChunkColumns, ChunkRecords, decode
from .token_codes import CodedPieces, TokenCodes, product_quantizer
from .view_texts import TextKeys

POINTER = "CURRENT"
LOCK = ".build.lock"
KEYS = "embedding-keys.npz"
HEX_KEYS = "embedding-keys.json"      # as builds before KEYS kept them: hexadecimal SHA-256
VIEWS = ("context", "text", "sentences")
TOKENS = "tokens"                   # the word pieces: one key a chunk, rows in token_codes
TOKEN_TABLE = "tokens.npy"
TOKEN_CODES = "token-codes.npy"
TOKEN_CENTROIDS = "token-centroids.npz"
RELATED = "related-words.json"
CORPUS_WORDS = "corpus-words.json"
FITS = "fits.npy"                   # what the model was asked while chunking (FitsMemory)
RECORDS, COLUMNS, DOCUMENTS = "chunks.jsonl", "chunk-columns.npz", "documents.json"
FILES = (RECORDS, DOCUMENTS, TOKEN_TABLE, TOKEN_CENTROIDS, TOKEN_CODES,
         *(f"{v}.faiss" for v in VIEWS), CORPUS_WORDS, *keyword.FILES)
# RELATED, COLUMNS, FITS and KEYS (or HEX_KEYS) are read when present: an index from before
# them still loads (its recipe makes it stale), so the rebuild can reuse its vectors.
SEARCHED = ("context", "text")      # views searched by vector; the others are read by row
EXACT_LIMIT = 50_000                # above this many vectors a searched view uses HNSW
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 32, 80, 128
ADD_ROWS = 16_384                   # a view's rows read back and added to FAISS at a time
QUANTIZER = faiss.ScalarQuantizer.QT_8bit
DECODE_AT_LOAD_BYTES = 32 * 2**20    # a view's rows decoded at load up to this (Rows)
T = TypeVar("T")
BUILD_NAME = re.compile(r"build-[0-9A-Za-z-]{1,80}")


@dataclass(frozen=True)
class StoredIndex:
    """A verified build, loaded into memory."""

    folder: Path
    manifest: Manifest
    chunks: Sequence[Chunk]           # ChunkRecords when loaded
    columns: ChunkColumns             # what search reads of every chunk
    views: dict[str, faiss.Index]     # VIEWS → index; "sentences" in chunk order
    token_table: np.ndarray           # int32 (chunk number, vocabulary id) per word-piece row
    tokens: TokenCodes                # the word-piece rows, in the table's order
    token_frequency: np.ndarray       # vocabulary id → how many chunks have that piece
    related_words: dict               # word the corpus lacks → [[corpus stem, weight], …]
    keyword: KeywordIndex             # BM25 over the chunks (keyword.keyword_texts)
    words: dict[str, int]             # each corpus word's count, for the speller
    known_documents: list[Document] | None = None   # `documents` when already in memory

    @property
    def build_id(self) -> str:
        """The name of the build folder this index was loaded from."""
        return self.manifest.build_id

    @functools.cached_property
    def documents(self) -> list[Document]:
        """The documents as parsed (their sections' full text): read and checked when first
        asked for (citation lookups, the page's outline), never by search."""
        if self.known_documents is not None:
            return self.known_documents
        return _documents(self.folder, self.manifest)

    @functools.cached_property
    def fits(self) -> dict[bytes, bool]:
        """Whether the model read each text whole, by digest, as the build that made this
        index asked while chunking (chunking.FitsMemory); empty for a build from before
        they were kept. Read and checked when asked: only a rebuild needs them."""
        if FITS not in self.manifest.files:
            return {}
        try:
            rows = np.load(io.BytesIO(_read_verified(self.folder, self.manifest, FITS)),
                           allow_pickle=False)
            if rows.dtype != np.uint8 or rows.ndim != 2 or rows.shape[1] != DIGEST + 1:
                raise ValueError("not digests and answers")
        except ValueError as error:
            raise _undecodable(self.folder, error) from error
        return dict(zip(map(bytes, rows[:, :DIGEST]), (rows[:, DIGEST] != 0).tolist()))

    @functools.cached_property
    def keys(self) -> dict[str, TextKeys]:
        """VIEWS, TOKENS → the key of the text embedded per row (one per chunk for TOKENS):
        what a later build reuses vectors by. Serving never needs them, so a loaded index
        reads and checks them only when asked (IndexCorrupt when they do not fit)."""
        try:
            if KEYS not in self.manifest.files and HEX_KEYS in self.manifest.files:
                keys = {view: TextKeys.of_hex(hexadecimal) for view, hexadecimal in
                        json.loads(_read_verified(self.folder, self.manifest, HEX_KEYS)).items()}
            else:
                data = io.BytesIO(_read_verified(self.folder, self.manifest, KEYS))
                with np.load(data, allow_pickle=False) as stored:
                    keys = {view: TextKeys(stored[view]) for view in stored.files}
            counts = {view: len(keys[view]) if view in keys else 0 for view in (*VIEWS, TOKENS)}
        except (ValueError, TypeError, AttributeError, OSError) as error:
            raise _undecodable(self.folder, error) from error
        expected = {**view_rows(self.columns), TOKENS: len(self.chunks)}   # a key a chunk
        if counts != expected:
            raise IndexCorrupt(f"The index in {self.folder} is inconsistent: embedding keys "
                               f"{counts}, rows {expected}.")
        return keys


# ---------------------------------------------------------------- writing

@contextlib.contextmanager
def build_lock(index_dir: Path) -> Iterator[None]:
    """Hold the index folder's build lock; a second build is refused, not queued."""
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        handle = open(index_dir / LOCK, "a+")
    except OSError as error:
        raise BuildFailed(f"Cannot write to the index folder {index_dir} "
                          f"({error.strerror or error}).",
                          "Make it writable (or set ALLIANCE_QA_INDEX to another folder) "
                          "and run `alliance-qa build` again.") from error
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            raise BuildLocked(f"Another build of {index_dir} is running.") from error
        for temporary in index_dir.glob(".tmp-build-*"):   # left by a build that was killed
            shutil.rmtree(temporary, ignore_errors=True)
        yield
    finally:
        handle.close()


class _FileWriter:
    """A file written block by block and made durable, hashed as it is written."""

    def __init__(self, path: Path):
        self._handle = open(path, "wb")
        self._digest = hashlib.sha256()

    def write(self, block: bytes | memoryview) -> int:
        self._handle.write(block)
        self._digest.update(block)
        return len(block)

    def close(self) -> str:
        """Flush the file to disk and close it; its SHA-256."""
        with self._handle:
            self._handle.flush()
            os.fsync(self._handle.fileno())
        return self._digest.hexdigest()


def _write_bytes(path: Path,
                 data: bytes | memoryview | np.ndarray | faiss.Index | RowBlocks | ViewIndex
                 ) -> str:
    """Write the data to the path, on disk; its SHA-256. A FAISS index is written in its own
    format and an array as .npy, both streamed a block at a time (never a copy of their
    contents in memory), as are rows given a block at a time."""
    file = _FileWriter(path)
    try:
        if isinstance(data, faiss.Index):
            faiss.write_index(data, faiss.PyCallbackIOWriter(file.write))
        elif isinstance(data, np.ndarray):
            np.save(_Hashed(file.write), data, allow_pickle=False)
        elif isinstance(data, RowBlocks | ViewIndex):
            data.save(_Hashed(file.write))
        else:
            file.write(data)
    finally:
        digest = file.close()
    return digest


class DocumentList:
    """The documents as parsed, given to `write` one at a time as one JSON array (written
    as `json.dumps(…, indent=1)` writes a list)."""

    def __init__(self, write: Callable[[bytes], int]):
        self._write, self._count = write, 0

    def add(self, document: Document) -> None:
        """The next document."""
        text = json.dumps(asdict(document), ensure_ascii=False, indent=1)
        self._write(("[\n" if not self._count else ",\n").encode()
                    + textwrap.indent(text, " ", lambda _: True).encode())
        self._count += 1

    def close(self) -> None:
        """End the array."""
        self._write(b"\n]" if self._count else b"[]")


@dataclass(frozen=True)
class RowBlocks:
    """A 2-d array given a block of rows at a time, to write as .npy without holding it."""
    shape: tuple[int, int]
    dtype: np.dtype
    blocks: Iterable[np.ndarray]

    def save(self, handle: _Hashed) -> None:
        """Write the .npy header, then each block (ValueError when they do not fit it)."""
        np.lib.format.write_array_header_1_0(handle, {
            "descr": np.lib.format.dtype_to_descr(np.dtype(self.dtype)),
            "fortran_order": False, "shape": self.shape})
        done = 0
        for block in self.blocks:
            if block.shape[1:] != self.shape[1:] or done + len(block) > self.shape[0]:
                raise ValueError(f"rows of shape {block.shape} after {done} of {self.shape}")
            handle.write(memoryview(np.ascontiguousarray(block, self.dtype)))
            done += len(block)
        if done != self.shape[0]:
            raise ValueError(f"{done} rows for {self.shape}")


@dataclass(frozen=True)
class _Hashed:
    """A file-like object for NumPy's writers: each block goes to `write`."""
    write: Callable[[bytes], int]


class ViewIndex:
    """One view's FAISS index, made from its rows as they are embedded, in order: one byte a
    dimension (FAISS's 8-bit scalar quantizer: cosines move by ~1e-3, hit@1 not at all on
    either evaluation corpus), searched exactly up to `exact_limit` rows and by HNSW above.

    The quantizer's ranges are each dimension's least and greatest value over all the rows,
    so none can be coded before the last is embedded. The rows therefore go to an unnamed
    temporary file (in `scratch`) as they come, with the running least and greatest values;
    the quantizer learns from those two rows exactly what it would learn from all of them,
    and the rows are read back and added ADD_ROWS at a time. A build thus holds a slice of
    a view's float32 rows, never the whole view (~640 MB for the sentences of 100,000
    passages), and writes them to disk once.

    A rebuild passes the previous build's ranges (`previous`), kept where the rows still
    reach them (CodeRanges.kept), so a vector it reuses is coded to the same bytes.
    """

    def __init__(self, dimension: int, total: int, exact_limit: int = EXACT_LIMIT,
                 scratch: Path | None = None, previous: CodeRanges | None = None):
        self.dimension, self.total, self.exact = dimension, total, total <= exact_limit
        self.previous = previous
        try:
            self._spill = tempfile.TemporaryFile(dir=scratch)
        except OSError as error:
            raise BuildFailed(f"Cannot set vectors aside in {scratch}: {disk_reason(error)}.") \
                from error
        self._least = np.full(dimension, np.inf, dtype=np.float32)
        self._greatest = np.full(dimension, -np.inf, dtype=np.float32)
        self._given = 0

    @classmethod
    def of_view(cls, view: str, dimension: int, total: int, scratch: Path | None = None,
                previous: CodeRanges | None = None) -> ViewIndex:
        """The index of a view: "sentences" is only read row by row, never searched, so it
        is stored flat (exact) at any size."""
        return cls(dimension, total, EXACT_LIMIT if view in SEARCHED else total, scratch,
                   previous)

    def add(self, rows: np.ndarray) -> None:
        """The view's next rows."""
        rows = np.ascontiguousarray(rows, dtype=np.float32).reshape(-1, self.dimension)
        if len(rows):
            try:
                self._spill.write(rows.tobytes())
            except OSError as error:
                raise BuildFailed(f"Setting the vectors aside on disk failed: "
                                  f"{disk_reason(error)}.") from error
            np.minimum(self._least, rows.min(axis=0), out=self._least)
            np.maximum(self._greatest, rows.max(axis=0), out=self._greatest)
            self._given += len(rows)

    def _configured(self) -> faiss.Index:
        """The view's index, empty, with its quantizer's ranges set."""
        if self.exact:
            index = faiss.IndexScalarQuantizer(self.dimension, QUANTIZER,
                                               faiss.METRIC_INNER_PRODUCT)
        else:
            index = faiss.IndexHNSWSQ(self.dimension, QUANTIZER, HNSW_M,
                                      faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        ranges = (CodeRanges.spanning(self._least, self._greatest) if self.previous is None
                  else self.previous.kept(self._least, self._greatest))
        ranges.set_on(index)
        return index

    def _spilled(self) -> Iterator[np.ndarray]:
        """The rows given, read back ADD_ROWS at a time (once)."""
        if self._given != self.total:
            raise BuildFailed(f"A view was given {self._given} of its {self.total} rows.")
        with self._spill:
            self._spill.seek(0)
            for start in range(0, self.total, ADD_ROWS):
                count = min(ADD_ROWS, self.total - start) * self.dimension
                yield np.fromfile(self._spill, dtype=np.float32, count=count
                                  ).reshape(-1, self.dimension)

    def finish(self) -> tuple[faiss.Index, dict]:
        """The index in memory, with its description for the manifest (HNSW's recall@10
        included)."""
        index = self._configured()
        for rows in self._spilled():
            index.add(rows)
        if self.exact:
            return index, self.description()
        index.hnsw.efSearch = HNSW_EF_SEARCH
        return index, {"type": f"IndexHNSWSQ (8-bit, M={HNSW_M}, efSearch={HNSW_EF_SEARCH})",
                       "vectors": self.total, "recall_at_10": recall_at_10(index)}

    def description(self) -> dict:
        """What an exact view's index is, for the manifest."""
        return {"type": "IndexScalarQuantizer (8-bit, exact)", "vectors": self.total}

    def save(self, handle: _Hashed) -> None:
        """Write an exact view's index in FAISS's format straight from the spilled rows, a
        block of codes at a time, never holding them all (`finish` would hold the index:
        ~1.5 KB a passage for the sentences). FAISS writes such an index as its header,
        then its codes' length and its codes; `streams_like_faiss` checks, once, that this
        FAISS still does, else the index is made in memory and written by FAISS."""
        if not self.exact or not streams_like_faiss():
            faiss.write_index(self.finish()[0], faiss.PyCallbackIOWriter(handle.write))
        else:
            self._stream(handle)

    def _stream(self, handle: _Hashed) -> None:
        index = self._configured()
        index.ntotal = self.total               # the header as it is with every row added
        handle.write(faiss.serialize_index(index)[:-8].tobytes())   # … but its codes' length
        handle.write(np.uint64(self.total * index.code_size).tobytes())
        for rows in self._spilled():
            handle.write(index.sa_encode(rows).tobytes())


@functools.cache
def streams_like_faiss() -> bool:
    """Whether an exact view streamed by ViewIndex.save is byte for byte what FAISS writes
    for the same index (checked once, on a few rows)."""
    rows = np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32)
    streamed, written = ViewIndex(8, len(rows)), ViewIndex(8, len(rows))
    for builder in (streamed, written):
        builder.add(rows)
    blocks: list[bytes] = []
    streamed._stream(_Hashed(lambda block: blocks.append(bytes(block)) or len(block)))
    return b"".join(blocks) == faiss.serialize_index(written.finish()[0]).tobytes()


@dataclass(frozen=True)
class CodeRanges:
    """What FAISS's 8-bit scalar quantizer learns (its min-max training): each dimension's
    least value and span. Code c of a dimension stands for least + (c + 0.5) / 255 × span, so
    a decoded row lies up to half a step (span / 255) inside the least value and up to half
    a step beyond the greatest."""

    least: np.ndarray
    span: np.ndarray

    @classmethod
    def spanning(cls, least: np.ndarray, greatest: np.ndarray) -> CodeRanges:
        """The ranges of rows whose values run from `least` to `greatest`."""
        return cls(least, greatest - least)

    @classmethod
    def of(cls, index: faiss.Index) -> CodeRanges | None:
        """The ranges a view's index was coded with (None for an index coded otherwise)."""
        coded = _coded(index)
        if not (isinstance(coded, faiss.IndexScalarQuantizer) and coded.is_trained
                and coded.sq.qtype == QUANTIZER):
            return None
        trained = faiss.vector_to_array(coded.sq.trained)
        return cls(trained[:index.d], trained[index.d:])

    def kept(self, least: np.ndarray, greatest: np.ndarray) -> CodeRanges:
        """The ranges for rows from `least` to `greatest`, these ranges kept, dimension by
        dimension, wherever the rows reach their bounds to within one step, as reused rows
        decoded from them do. Learned afresh from decoded rows, the ranges moved up half a
        step at every rebuild, and every reused vector's bytes moved with them."""
        step = self.span / 255
        top = self.least + self.span
        low = (least >= self.least) & (least <= self.least + step)
        high = (greatest >= top - step) & (greatest <= top + step)
        start = np.where(low, self.least, least)
        span = np.where(low & high, self.span, np.where(high, top, greatest) - start)
        return CodeRanges(start.astype(np.float32), span.astype(np.float32))

    def set_on(self, index: faiss.Index) -> None:
        """Train `index` (empty, 8-bit scalar-quantized) with exactly these ranges."""
        coded = _coded(index)
        faiss.copy_array_to_vector(
            np.concatenate([self.least, self.span]).astype(np.float32), coded.sq.trained)
        coded.is_trained = index.is_trained = True


def _coded(index: faiss.Index) -> faiss.Index:
    """The index that holds a view's codes: the HNSW index's storage, or the index itself."""
    return faiss.downcast_index(index.storage) if isinstance(index, faiss.IndexHNSW) else index


def vector_index(vectors: np.ndarray, exact_limit: int = EXACT_LIMIT
                 ) -> tuple[faiss.Index, dict]:
    """A view's index from all its rows at once (ViewIndex)."""
    builder = ViewIndex(vectors.shape[1], len(vectors), exact_limit)
    builder.add(vectors)
    return builder.finish()


def recall_at_10(index: faiss.IndexHNSW, sample: int = 500, seed: int = 0) -> float:
    """Share of the exact top 10 that HNSW finds, for perturbed copies of sample rows: exact
    over the same 8-bit codes, so this is what the graph loses, not the quantizer."""
    storage = faiss.downcast_index(index.storage)
    rng = np.random.default_rng(seed)
    chosen = rng.choice(index.ntotal, min(sample, index.ntotal), replace=False)
    rows = storage.reconstruct_batch(chosen.astype(np.int64))
    queries = rows + rng.normal(0, 0.02, rows.shape).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    _, truth = storage.search(queries, 10)
    _, found = index.search(queries, 10)
    return round(float(np.mean([len(set(t) & set(f)) / 10 for t, f in zip(truth, found)])), 4)


class Rows:
    """A view's vectors by row number, as float32: decoded once at load when they take at
    most DECODE_AT_LOAD_BYTES, else decoded as asked (a large index stays coded, a quarter of
    the float32 bytes, and memory-mapped). Decoding a row costs ~1 µs, a question reads a
    few thousand; decoding 112,000 rows at load took 0.5 s of the start and 172 MB."""

    def __init__(self, index: faiss.Index):
        self.index = index
        small = index.ntotal * index.d * 4 <= DECODE_AT_LOAD_BYTES
        self._all = matrix(index) if small else None

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def __getitem__(self, rows: slice | np.ndarray | list[int] | int) -> np.ndarray:
        if self._all is not None:
            return self._all[rows]
        one = isinstance(rows, int | np.integer)        # a row number of numpy's too
        wanted = (np.arange(*rows.indices(len(self))) if isinstance(rows, slice)
                  else range(len(self))[rows] if one else rows)
        found = self.index.reconstruct_batch(np.asarray(wanted, dtype=np.int64).reshape(-1))
        return found[0] if one else found


def matrix(index: faiss.Index) -> np.ndarray:
    """All vectors of an index as one float32 array: a view of FAISS's own memory (no copy)
    where they are stored flat, else decoded."""
    if isinstance(index, faiss.IndexFlat) and index.ntotal:
        return faiss.rev_swig_ptr(index.get_xb(), index.ntotal * index.d).reshape(
            index.ntotal, index.d)
    if not index.ntotal:
        return np.zeros((0, index.d), np.float32)
    return index.reconstruct_n(0, index.ntotal)


def _npz_bytes(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **arrays)
    return buffer.getvalue()


def token_description(coded: CodedPieces, quantizer: faiss.ProductQuantizer) -> dict:
    """The word-piece rows as the manifest describes them (`quantizer`: their codebooks')."""
    return {"type": f"word-piece centroids + product-quantized residuals ({quantizer.M} × "
                    f"{quantizer.nbits} bits)", "vectors": coded.rows,
            "trained_rows": coded.trained_rows}


class Staging:
    """A build's files, written to a temporary folder as the build makes each part (so
    the build lets each go once written), then loaded from there as serving loads them
    (the build calibrates on them), and made live in one atomic step, or discarded."""

    def __init__(self, index_dir: Path):
        self.index_dir = index_dir
        self.build_id = (time.strftime("%Y%m%d-%H%M%S")
                         + f"-{os.getpid()}-{time.monotonic_ns() % 10**6}")
        self.folder = index_dir / f".tmp-build-{self.build_id}"
        self.files: dict[str, str] = {}              # name → SHA-256
        self.descriptions: dict[str, dict] = {}      # vector index → what it is
        self._guarded(lambda: self.folder.mkdir(parents=True))

    def _guarded(self, step: Callable[[], T]) -> T:
        try:
            return step()
        except OSError as error:
            raise BuildFailed(f"Writing the index to {self.index_dir} failed: "
                              f"{disk_reason(error)}.") from error

    def _write(self, name: str,
               data: bytes | memoryview | np.ndarray | faiss.Index | RowBlocks | ViewIndex
               ) -> None:
        def write() -> None:
            self.files[name] = _write_bytes(self.folder / name, data)
        self._guarded(write)

    def view(self, name: str, vectors: ViewIndex) -> None:
        """A view's FAISS index, made from its rows (ViewIndex) and streamed to its file: an
        exact one a block of codes at a time, an HNSW one as FAISS writes it."""
        if vectors.exact:
            self._write(f"{name}.faiss", vectors)
            self.descriptions[name] = vectors.description()
            return
        index, self.descriptions[name] = vectors.finish()
        self._write(f"{name}.faiss", index)

    def word_pieces(self, coded: CodedPieces) -> None:
        """The word-piece rows: their codes and their (chunk, vocabulary id) table, each
        streamed from the build's spools a block at a time; the pieces' centroids, the
        codebooks and how many chunks have each piece (counted as the table is written)."""
        quantizer = product_quantizer(coded.codebooks)
        self._write(TOKEN_CODES, RowBlocks((coded.rows, quantizer.code_size),
                                           np.dtype(np.uint8), coded.codes))
        frequency = PieceFrequencies()
        self._write(TOKEN_TABLE, RowBlocks((coded.rows, 2), np.dtype(np.int32),
                                           frequency.counted(coded.table)))
        self._write(TOKEN_CENTROIDS, _npz_bytes(pieces=coded.pieces, centroids=coded.centroids,
                                                codebooks=coded.codebooks,
                                                frequency=frequency.chunks))
        self.descriptions[TOKENS] = token_description(coded, quantizer)

    def words(self, keyword: KeywordIndex, related: dict, counts: dict[str, int]) -> None:
        """BM25 over the chunks, the related-words table and the corpus words' counts."""
        self._write(RELATED, json.dumps(related, ensure_ascii=False, sort_keys=True).encode())
        self._write(CORPUS_WORDS, json.dumps(counts, ensure_ascii=False,
                                             sort_keys=True).encode())
        for name, data in keyword.files().items():
            self._write(name, data)

    def fits(self, answers: dict[bytes, bool]) -> None:
        """What the model was asked while chunking: each text's digest and answer."""
        rows = np.zeros((len(answers), DIGEST + 1), np.uint8)
        if answers:
            digests = sorted(answers)
            rows[:, :DIGEST] = np.frombuffer(b"".join(digests), np.uint8).reshape(-1, DIGEST)
            rows[:, DIGEST] = [answers[digest] for digest in digests]
        self._write(FITS, rows)

    @contextlib.contextmanager
    def writing(self, name: str) -> Iterator[Callable[[bytes], int]]:
        """A file the caller writes a block at a time, with the function yielded (which
        returns how many bytes it wrote); it is made durable and hashed when the block
        ends. The corpus's records and documents are written so, a batch at a time."""
        file = self._guarded(lambda: _FileWriter(self.folder / name))
        try:
            yield lambda block: self._guarded(lambda: file.write(block))
        except BaseException:
            with contextlib.suppress(OSError):
                file.close()
            raise
        self.files[name] = self._guarded(file.close)

    def columns(self, columns: ChunkColumns) -> None:
        """The columns of the chunk records (records.py)."""
        self._write(COLUMNS, _npz_bytes(**columns.arrays()))

    def keys(self, keys: dict[str, TextKeys]) -> None:
        """The key of each embedded text (VIEWS, TOKENS → a key a row)."""
        self._write(KEYS, _npz_bytes(**{view: k.rows for view, k in keys.items()}))

    def sealed(self, manifest: Manifest) -> Manifest:
        """The manifest with this build's id, files and vector indexes."""
        return replace(manifest, build_id=self.build_id, vector_indexes=self.descriptions,
                       files=dict(self.files))

    def load(self, manifest: Manifest) -> StoredIndex:
        """The staged build as serving will load it (checked and memory-mapped)."""
        return _load_folder(self.folder, manifest)

    def publish(self, manifest: Manifest) -> Path:
        """Make the build live with `manifest` (sealed, and what was measured on the
        files); on failure nothing changes."""
        final = self.index_dir / f"build-{self.build_id}"
        current, pointer = self.index_dir / POINTER, self.index_dir / f".{POINTER}.tmp"

        def switch() -> None:
            _write_bytes(self.folder / "manifest.json", manifest.to_json())
            os.rename(self.folder, final)
            _write_bytes(pointer, final.name.encode())
            if current.is_dir() and not current.is_symlink():
                shutil.rmtree(current)     # a damaged pointer: the build repairs it
            os.replace(pointer, current)
        self._guarded(switch)
        _prune(self.index_dir, keep={final.name, *_previous(self.index_dir, final.name)})
        return final

    def discard(self) -> None:
        """Remove the staged build (nothing of it is live)."""
        shutil.rmtree(self.folder, ignore_errors=True)


def _previous(index_dir: Path, current: str) -> list[str]:
    builds = sorted(p.name for p in index_dir.glob("build-*") if p.name != current)
    return builds[-1:]


def _prune(index_dir: Path, keep: set[str]) -> None:
    """Remove builds other than `keep`, and temporaries left by failed builds (the caller
    holds the build lock, so no other build is writing one)."""
    for path in list(index_dir.glob("build-*")) + list(index_dir.glob(".tmp-build-*")):
        if path.name not in keep:
            shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------- reading

def live_folder(index_dir: Path) -> Path:
    """The folder of the live build, or IndexMissing. A pointer that is damaged, or is a
    link or anything but a plain file, is IndexCorrupt, and its content is never shown
    (a link could point at any file)."""
    pointer = index_dir / POINTER
    try:
        handle = os.open(pointer, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        try:
            if not stat.S_ISREG(os.fstat(handle).st_mode):
                raise IndexCorrupt(f"The index pointer {pointer} is not a plain file.")
            raw = os.read(handle, 256)
        finally:
            os.close(handle)
    except FileNotFoundError:
        raise IndexMissing(f"There is no index in {index_dir} yet.") from None
    except OSError as error:
        problem = ("is a link, which is not followed" if error.errno == errno.ELOOP else
                   f"cannot be read ({error.strerror or error})")
        raise IndexCorrupt(f"The index pointer {pointer} {problem}.") from error
    name = raw.decode("ascii", "replace").strip()
    if not BUILD_NAME.fullmatch(name):
        raise IndexCorrupt(f"The index pointer {pointer} is damaged: it names no build folder.")
    folder = index_dir / name
    if not folder.is_dir():
        raise IndexCorrupt(f"The index pointer {pointer} names {name}, which is not there.")
    return folder


def read_manifest(index_dir: Path) -> Manifest:
    """The live build's manifest, checked for shape, types, format version and checksum."""
    folder = live_folder(index_dir)
    try:
        data = (folder / "manifest.json").read_bytes()
    except FileNotFoundError:
        raise IndexCorrupt(f"The index manifest {folder / 'manifest.json'} is missing.") \
            from None
    except OSError as error:
        raise IndexCorrupt(f"The index manifest in {folder} is unreadable or malformed.") \
            from error
    return Manifest.from_json(data, str(folder))


def _mismatch(folder: Path, name: str) -> IndexCorrupt:
    return IndexCorrupt(f"The index file {folder / name} does not match its manifest "
                        "(changed or damaged since the build).")


def _unreadable(folder: Path, name: str, error: OSError) -> IndexCorrupt:
    return IndexCorrupt(f"The index file {folder / name} cannot be read ({error.strerror}).")


def _undecodable(folder: Path, error: Exception) -> IndexCorrupt:
    return IndexCorrupt(f"The index in {folder} cannot be decoded ({type(error).__name__}).")


def _read_verified(folder: Path, manifest: Manifest, name: str) -> bytes:
    try:
        data = (folder / name).read_bytes()
    except OSError as error:
        raise _unreadable(folder, name, error) from error
    if sha256_bytes(data) != manifest.files.get(name):
        raise _mismatch(folder, name)
    return data


def _check_file(folder: Path, manifest: Manifest, name: str) -> None:
    """A file checked against the manifest in blocks, never held whole (it is mapped next)."""
    try:
        digest = file_sha256(folder / name)
    except OSError as error:
        raise _unreadable(folder, name, error) from error
    if digest != manifest.files.get(name):
        raise _mismatch(folder, name)


def _verify(folder: Path, manifest: Manifest, read: list[str], mapped: list[str]
            ) -> dict[str, bytes]:
    """The `read` files' bytes, and the `mapped` ones checked, all against the manifest,
    two at a time (hashing releases the GIL): at 100,000 passages ~800 MB are hashed."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        checks = [pool.submit(_check_file, folder, manifest, name) for name in mapped]
        reads = {name: pool.submit(_read_verified, folder, manifest, name) for name in read}
        for check in checks:
            check.result()
        return {name: future.result() for name, future in reads.items()}


def _map_vectors(folder: Path, name: str) -> faiss.Index:
    """A checked FAISS file, its codes memory-mapped (FAISS's IO_FLAG_MMAP_IFC): nothing is
    copied at load (0.7 s at 100,000 passages with IO_FLAG_MMAP, which copies these index
    types' codes), and their pages are read as searches touch them."""
    return faiss.read_index(str(folder / name), faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)


def _document(data: dict) -> Document:
    sections = tuple(Section(**{**s, "paragraphs": tuple(s["paragraphs"]),
                                "pages": tuple(map(tuple, s.get("pages", ())))})
                     for s in data["sections"])
    return Document(**{**data, "sections": sections})


def _documents(folder: Path, manifest: Manifest) -> list[Document]:
    """A build's documents, checked against its manifest."""
    try:
        return [_document(d) for d in json.loads(_read_verified(folder, manifest, DOCUMENTS))]
    except (ValueError, TypeError, KeyError) as error:
        raise _undecodable(folder, error) from error


def load_index(index_dir: Path) -> StoredIndex:
    """Load the live build, refusing anything that is not exactly what its manifest says.

    A build pruned between resolving `CURRENT` and reading it (two rebuilds landed during
    the read) is retried once on the new live build.
    """
    try:
        return _load_live(index_dir)
    except IndexCorrupt:
        live_folder(index_dir)     # raises when the pointer itself is damaged
        return _load_live(index_dir)


def _load_live(index_dir: Path) -> StoredIndex:
    manifest = read_manifest(index_dir)
    folder = live_folder(index_dir)
    if folder.name != f"build-{manifest.build_id}":
        raise IndexCorrupt(f"The manifest in {folder} belongs to another build.")
    return _load_folder(folder, manifest)


def _load_folder(folder: Path, manifest: Manifest) -> StoredIndex:
    lacking = sorted(set(FILES) - manifest.files.keys())
    if lacking:
        raise IndexStale(f"The index in {folder} was built by another version of alliance-qa "
                         f"(it has no {', '.join(lacking)}).")
    vectors = [f"{view}.faiss" for view in VIEWS]
    read = [name for name in (TOKEN_CENTROIDS, CORPUS_WORDS, RELATED, COLUMNS)
            if name in manifest.files]
    raw = _verify(folder, manifest, read, [RECORDS, TOKEN_TABLE, TOKEN_CODES, *vectors,
                                           *keyword.FILES])
    try:
        views = {name.removesuffix(".faiss"): _map_vectors(folder, name) for name in vectors}
        chunks, columns, documents = _chunks(folder, manifest, raw.get(COLUMNS))
        token_table = np.load(folder / TOKEN_TABLE, mmap_mode="r", allow_pickle=False)
        codes = np.load(folder / TOKEN_CODES, mmap_mode="r", allow_pickle=False)
        with np.load(io.BytesIO(raw[TOKEN_CENTROIDS]), allow_pickle=False) as stored:
            pieces, centroids = stored["pieces"], stored["centroids"]
            codebooks = stored["codebooks"]
            frequency = (stored["frequency"] if "frequency" in stored.files
                         else document_frequencies(token_table))
        related_words = _related(json.loads(raw.get(RELATED, b"{}")))
        words = _counts(json.loads(raw[CORPUS_WORDS]))
        keywords = KeywordIndex.load(folder, related_words)
        trained = int(manifest.vector_indexes.get(TOKENS, {}).get("trained_rows", 0))
        last = chunks[-1] if len(chunks) else None     # the records decode
    except (RuntimeError, ValueError, TypeError, KeyError, AttributeError, OSError) as error:
        raise _undecodable(folder, error) from error
    expected = {**view_rows(columns), TOKENS: len(token_table)}
    counts = {**{view: index.ntotal for view, index in views.items()}, TOKENS: len(codes)}
    if (counts != expected
            or len(chunks) != manifest.chunk_count
            or any(index.d != manifest.dimension for index in views.values())
            or not _codes_fit(codes, codebooks, manifest.dimension)
            or keywords.documents != len(chunks)
            or not _token_table_fits(token_table, len(chunks))
            or not _centroids_fit(pieces, centroids, token_table, manifest.dimension)
            or frequency.ndim != 1 or len(frequency) < int(pieces.max(initial=-1)) + 1
            or (last is not None
                and last.document != columns.document_ids[columns.document[-1]])):
        raise IndexCorrupt(f"The index in {folder} is inconsistent: {len(chunks)} chunk "
                           f"records, {manifest.chunk_count} in the manifest, vectors "
                           f"{counts}.")
    tokens = TokenCodes(token_table[:, 1], pieces, centroids, codebooks, codes, trained)
    return StoredIndex(folder, manifest, chunks, columns, views, token_table, tokens,
                       frequency, related_words, keywords, words, known_documents=documents)


def _chunks(folder: Path, manifest: Manifest, stored_columns: bytes | None
            ) -> tuple[Sequence[Chunk], ChunkColumns, list[Document] | None]:
    """The records, read as asked, and their columns; a build from before the columns has
    every record decoded (and its documents read) to make them."""
    if stored_columns is None:
        data, documents = (folder / RECORDS).read_bytes(), _documents(folder, manifest)
        chunks = [decode(line) for line in data.splitlines() if line.strip()]
        return chunks, ChunkColumns.of(chunks, documents), documents
    with np.load(io.BytesIO(stored_columns), allow_pickle=False) as stored:
        arrays = {name: stored[name] for name in stored.files}
    count = len(arrays["offsets"]) - 1   # the columns agree with each other and the records
    columns = ChunkColumns.from_arrays(arrays, count, (folder / RECORDS).stat().st_size)
    return ChunkRecords(folder / RECORDS, columns.offsets), columns, None


def load_documents(index_dir: Path) -> list[Document]:
    """Only the live build's documents (verified), for citation lookups: the text the
    answers were taken from, whatever `corpus/` holds now."""
    manifest = read_manifest(index_dir)
    return _documents(live_folder(index_dir), manifest)


def _related(data: dict) -> dict:
    """The related-words table, checked for shape: {word: [[stem, weight], …]}."""
    return {str(word): [(str(stem), float(weight)) for stem, weight in pairs]
            for word, pairs in data.items()}


def _counts(data: dict) -> dict[str, int]:
    """The corpus words' counts, checked for shape: {word: count}."""
    return {str(word): int(count) for word, count in data.items()}


def token_starts(table: np.ndarray, chunk_count: int) -> np.ndarray:
    """Where each chunk's rows of the "tokens" view begin, then where the last one ends
    (`table`: grouped by chunk in chunk order)."""
    counts = np.bincount(table[:, 0], minlength=chunk_count)[:chunk_count]
    return np.concatenate([[0], np.cumsum(counts)])


def view_rows(columns: ChunkColumns) -> dict[str, int]:
    """How many rows each view has for these chunks: one a chunk, one a sentence."""
    chunks = len(columns.sentences)
    return {"context": chunks, "text": chunks, "sentences": int(columns.sentences.sum())}


def document_frequencies(table: np.ndarray) -> np.ndarray:
    """Vocabulary id → how many chunks have that word piece (`table`: the token table)."""
    ids = table[:, 1]
    vocabulary = int(ids.max(initial=0)) + 1
    # (chunk, id) once each, as one sorted int64 key: 40 ms for a million rows, where
    # np.unique(table, axis=0) took 1.7 s; made and sorted in place (one array of the
    # table's length: three were the build's peak at 100,000 passages)
    pairs = table[:, 0].astype(np.int64)
    pairs *= vocabulary
    pairs += ids
    pairs.sort()
    first = np.r_[True, pairs[1:] != pairs[:-1]][:len(pairs)]
    return np.bincount(pairs[first] % vocabulary, minlength=vocabulary)


class PieceFrequencies:
    """How many chunks have each word piece, counted over blocks of the token table that
    each hold whole chunks (as document_frequencies counts the whole table)."""

    def __init__(self) -> None:
        self.chunks = np.zeros(1, np.int64)

    def counted(self, blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """The blocks, each counted as it passes."""
        for block in blocks:
            found = document_frequencies(block)
            if len(found) > len(self.chunks):
                self.chunks = np.pad(self.chunks, (0, len(found) - len(self.chunks)))
            self.chunks[:len(found)] += found
            yield block


def spans_rows(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The row numbers of spans (each `counts[i]` rows from `starts[i]`), one after another:
    the rows of a pool of chunks, read in one call."""
    return np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())


def _centroids_fit(pieces: np.ndarray, centroids: np.ndarray, table: np.ndarray,
                   dimension: int) -> bool:
    """Sorted piece ids, a float16 row for each, and every id the table uses among them."""
    return (centroids.dtype == np.float16 and centroids.shape == (len(pieces), dimension)
            and pieces.dtype == np.int32 and pieces.ndim == 1
            and bool(np.all(np.diff(pieces) > 0)) and _all_among(table[:, 1], pieces))


def _codes_fit(codes: np.ndarray, codebooks: np.ndarray, dimension: int) -> bool:
    """Codebooks of a product quantizer for `dimension`, and uint8 codes of its size."""
    if codebooks.ndim != 3 or codebooks.dtype != np.float32 or codes.ndim != 2:
        return False
    count, entries, width = codebooks.shape
    bits = int(entries).bit_length() - 1
    return (count * width == dimension and entries == 2 ** bits and 1 <= bits <= 8
            and codes.dtype == np.uint8 and codes.shape[1] == (count * bits + 7) // 8)


def _all_among(ids: np.ndarray, known: np.ndarray) -> bool:
    """Whether every one of `ids` (non-negative) is in `known` (a scatter: 0.1 s for
    8.6 million ids, where np.isin took 0.3)."""
    used = np.zeros(int(ids.max(initial=-1)) + 1, bool)
    used[ids] = True
    return not np.setdiff1d(np.flatnonzero(used), known).size


def _token_table_fits(table: np.ndarray, chunk_count: int) -> bool:
    """Rows grouped by chunk in chunk order, and every chunk has some."""
    if table.ndim != 2 or table.shape[1] != 2 or table.dtype != np.int32:
        return False
    chunk_of, steps = table[:, 0], np.diff(table[:, 0])
    if not len(table):
        return chunk_count == 0
    return bool(chunk_of[0] == 0 and chunk_of[-1] == chunk_count - 1
                and ((steps == 0) | (steps == 1)).all() and (table[:, 1] >= 0).all())
