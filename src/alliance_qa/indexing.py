"""The build: corpus → chunks → vectors → a stored index, and whether a stored one is fresh.

Each stage is a plain function of the previous stage's output, so the embedding step can be
swapped (for a distributed one, say) without touching the others.
"""

from __future__ import annotations

import functools
import hashlib
import platform
import re
import signal
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from importlib import metadata
from pathlib import Path

import faiss
import numpy as np

from . import __version__
from .abstention import (
    UNCALIBRATED,
    Calibration,
    corpus_names,
    corpus_questions,
    near_questions,
    reference_questions,
)
from .chunking import FitsMemory
from .cluster import RayReader
from .config import Settings
from .corpus import MAX_FILE_BYTES, CorpusFile, CorpusWarning, DocumentReader, scan_corpus
from .embedding import CorpusModel, Embedder, TextEncoder, TokenVectors, fingerprint
from .errors import AllianceQAError, BuildFailed, ClusterUnavailable, CorpusEmpty
from .integrity import file_sha256
from .keyword import KeywordIndex
from .manifest import Manifest
from .memory import release_freed_memory
from .onnx_encoder import (
    OnnxEncoder,
    export,
    export_apart,
    folder_for,
    question_encoder,
    remove_dead_temporaries,
)
from .processes import ProcessEnded, Progress, run_apart
from .reading import CorpusRead, keyword_words, read_into
from .related_words import related_words
from .store import (
    TOKENS,
    CodeRanges,
    Rows,
    Staging,
    StoredIndex,
    ViewIndex,
    build_lock,
    load_index,
    read_manifest,
    token_starts,
)
from .token_codes import (
    CodedPieces,
    Coder,
    Spool,
    TokenCodes,
    in_text_order,
    table_in_text_order,
)
from .token_match import content_pieces
from .view_texts import TextKeys, ViewTexts, text_key, view_inputs

# `from .module import …` and `from . import a, b` (names in parentheses across lines too),
# wherever they stand: a match inside a string only adds a module to the digest.
RELATIVE_IMPORT = re.compile(r"^[ \t]*from[ \t]+\.([\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n]*)",
                             re.MULTILINE)


def build_recipe(package: Path = Path(__file__).parent, start: str = "indexing") -> str:
    """A digest of the source of every module a build runs — found by following the
    package's relative imports from `start`, those inside functions included — and of the
    bundled data. Any change to how an index is made (chunking, views, calibration, the
    search that calibrates) makes every older index stale; nothing is bumped by hand. The
    imports are found by a pattern, not by parsing (every start computes this: 6 ms
    against 300 ms)."""
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        path = package / f"{name}.py"
        if name in seen or not path.exists():
            continue
        seen.add(name)
        for module, names in RELATIVE_IMPORT.findall(path.read_text(encoding="utf-8")):
            todo += [module.split(".")[0]] if module else [
                n.split(" as ")[0].strip() for n in names.strip("()").split(",")]
    digest = hashlib.sha256()
    for path in [package / f"{name}.py" for name in sorted(seen)] + sorted(
            (package / "data").glob("*")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return f"source-{digest.hexdigest()[:16]}"


@functools.cache
def recipe() -> str:
    """This installation's build recipe (computed once, when first needed: ~70 ms)."""
    return build_recipe()


VIEW_NAMES = {"context": "paragraphs with their headings", "text": "paragraphs",
              "sentences": "sentences"}


@dataclass(frozen=True)
class BuildSummary:
    """What a build did, as the command prints it."""
    documents: int
    sections: int
    chunks: int
    sentences: int
    seconds: float
    folder: str
    warnings: list[str] = field(default_factory=list)
    embedded: int = 0            # texts embedded by this build
    reused: int = 0              # texts whose vectors came from the previous build
    changes: dict[str, int] = field(default_factory=dict)   # chunks added/changed/removed
    slow_questions: str = ""     # why questions are encoded by sentence-transformers, if so

    def __str__(self) -> str:
        lines = [f"Indexed {self.documents} document(s), {self.sections} sections, "
                 f"{self.chunks} chunks ({self.sentences} sentences) in {self.seconds:.1f} s "
                 f"({self.chunks / max(self.seconds, 1e-9):.0f} chunks/s).",
                 f"Chunks added {self.changes.get('added', 0)}, changed "
                 f"{self.changes.get('changed', 0)}, removed {self.changes.get('removed', 0)}; "
                 f"texts embedded {self.embedded}, reused {self.reused}."]
        lines.append(f"Questions are encoded by sentence-transformers: {self.slow_questions}."
                     if self.slow_questions else
                     "Questions are encoded by the model's verified ONNX export.")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


class PreviousVectors(Mapping):
    """A previous build's vectors of one view by text key, decoded from its index as asked
    (its rows stay coded and memory-mapped: decoding them all held ~1 GB at 100,000
    passages)."""

    def __init__(self, keys: Sequence[bytes], index: faiss.Index):
        self.row = {key: row for row, key in enumerate(keys)}
        self.rows = Rows(index)
        self.ranges = CodeRanges.of(index)

    def __getitem__(self, key: bytes) -> np.ndarray:
        return self.rows[self.row[key]]

    def take(self, keys: list[bytes]) -> np.ndarray:
        """The vectors of these keys, decoded in one call (~1.3 µs a row, against ~4 µs
        decoded one at a time)."""
        return self.rows[[self.row[key] for key in keys]]

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.row)

    def __len__(self) -> int:
        return len(self.row)


def fits_before(previous: StoredIndex | None, fingerprint: str) -> dict[bytes, bool]:
    """What the previous build's model was asked while chunking, and answered (whether a
    text fits), if the same code (its recipe) and model (its tokenizer and length limit)
    made it: they alone decide that."""
    if (previous is None or previous.manifest.model_fingerprint != fingerprint
            or previous.manifest.recipe != recipe()):
        return {}
    try:
        return previous.fits
    except AllianceQAError:      # unreadable: every paragraph is counted again
        return {}


def corpus_encoder(reader: TextEncoder) -> str:
    """What embeds the corpus, as the manifest names it: the checksum of the ONNX file run
    (the full export or its 8-bit copy), or sentence-transformers."""
    return reader.model_digest if isinstance(reader, OnnxEncoder) else reader.runtime


def reusable_vectors(previous: StoredIndex | None, fingerprint: str, encoded_by: str
                     ) -> dict[str, Mapping]:
    """{view: {text key: vector}} from the previous build, if the same model embedded it the
    same way (`encoded_by`: corpus_encoder); for "tokens", {text key: (piece ids, codes)} (a
    text has a row per content word piece)."""
    if (previous is None or previous.manifest.model_fingerprint != fingerprint
            or previous.manifest.corpus_encoder != encoded_by):
        return {}
    try:
        keys = previous.keys
    except AllianceQAError:    # its vectors cannot be told apart: embed everything again
        return {}
    cache: dict[str, Mapping] = {view: PreviousVectors(keys[view], index)
                                 for view, index in previous.views.items()}
    codes, table = previous.tokens.codes, previous.token_table
    starts = token_starts(table, len(previous.chunks))
    cache[TOKENS] = {key: (table[a:b, 1], codes[a:b])
                     for key, a, b in zip(keys[TOKENS], starts, starts[1:])}
    return cache


SLICE = 512         # texts embedded per call
PIECES_SLICE = 128  # … with their word pieces: a build holds one slice's word-piece vectors
                    # (~40 MB; 512 texts made the 10,000-passage build's peak ~150 MB higher)


def _slices(indices: list[int], size: int, progress: bool, on_progress: Progress, stage: str,
            span: tuple[float, float]) -> Iterator[list[int]]:
    """`indices` a slice at a time, each reported (as a fraction within `span`, and on a
    terminal bar with `progress`) before it is embedded."""
    bar = None
    if not indices:
        _report(on_progress, stage, span[0])      # named even when nothing is embedded
    elif progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(indices), desc=stage.split(" (")[0], unit="texts")
    for start in range(0, len(indices), size):
        _report(on_progress, stage, span[0] + (span[1] - span[0]) * start / len(indices))
        yield indices[start:start + size]
        if bar is not None:
            bar.update(len(indices[start:start + size]))
    if bar is not None:
        bar.close()


def embedded_slices(reader: TextEncoder | RayReader, texts: Sequence[str], missing: list[int],
                    pieces: bool, progress: bool, on_progress: Progress, stage: str,
                    span: tuple[float, float]
                    ) -> Iterator[tuple[list[int], tuple[np.ndarray, list[TokenVectors] | None]]]:
    """The `missing` texts embedded a slice at a time (PIECES_SLICE texts with their word
    pieces, else SLICE): each slice's text numbers with its vectors (and pieces), each
    slice reported as `_slices` reports it."""
    size = PIECES_SLICE if pieces else SLICE
    return zip(_slices(missing, size, progress, on_progress, stage, span),
               embed_in_slices(reader, texts, missing, pieces, size))


def embed_in_slices(reader: TextEncoder | RayReader, texts: Sequence[str], numbers: list[int],
                    pieces: bool, size: int
                    ) -> Iterator[tuple[np.ndarray, list[TokenVectors] | None]]:
    """The vectors of the texts with these numbers (and their word pieces, if `pieces`),
    `size` texts at a time, in order, each text made only for its slice: streamed by Ray
    Data's workers for `build --ray` (given them all at once), else one call per slice
    here."""
    if isinstance(reader, RayReader):
        yield from reader.stream([texts[i] for i in numbers], size, pieces) if numbers else ()
        return
    for start in range(0, len(numbers), size):
        part = [texts[i] for i in numbers[start:start + size]]
        yield reader.encode_with_pieces(part) if pieces else (reader.encode(part), None)


def rows_in_order(count: int, keys: Sequence[bytes], known: PreviousVectors | dict,
                  embedded: Iterator[tuple[list[int], np.ndarray]], dimension: int
                  ) -> Iterator[np.ndarray]:
    """A view's rows 0…count-1 in order, at most SLICE at a time: each embedded slice (its
    row numbers ascending, and ascending from slice to slice) with the `known` rows (by
    text key) before and among it, then the known rows after the last. (A block that ran
    from one fresh row to the next held every reused row between: ~1.1 GB for a rebuild
    that re-embedded a few sentences among 416,565.)"""
    done = 0

    def blocks(end: int, fresh: dict[int, np.ndarray]) -> Iterator[np.ndarray]:
        nonlocal done
        while done < end:
            stop = min(done + SLICE, end)
            rows = np.empty((stop - done, dimension), dtype=np.float32)
            reused = [i for i in range(done, stop) if i not in fresh]
            if reused:
                rows[np.asarray(reused) - done] = known.take([keys[i] for i in reused])
            for i in range(done, stop):
                if i in fresh:
                    rows[i - done] = fresh[i]
            yield rows
            done = stop

    for part, vectors in embedded:
        yield from blocks(part[-1] + 1, dict(zip(part, vectors)))
    yield from blocks(count, {})


def index_view(view: str, keys: Sequence[bytes], known: PreviousVectors | dict,
               embedded: Iterator[tuple[list[int], np.ndarray]], dimension: int,
               scratch: Path | None) -> ViewIndex:
    """A view's rows in order (rows_in_order), given as they come to the maker of its
    index (which Staging.view writes)."""
    previous = known.ranges if isinstance(known, PreviousVectors) else None
    index = ViewIndex.of_view(view, dimension, len(keys), scratch, previous)
    for rows in rows_in_order(len(keys), keys, known, embedded, dimension):
        index.add(rows)
    return index


def embed_views(reader: TextEncoder | RayReader, inputs: dict[str, Sequence[str]],
                keys: dict[str, Sequence[bytes]], progress: bool = False,
                on_progress: Progress = None, cache: dict[str, Mapping] | None = None,
                scratch: Path | None = None
                ) -> Iterator[tuple[str, ViewIndex, int]]:
    """The embedding stage for the views without word pieces ("text", "sentences"): each
    view's texts → unit vectors, reusing cached ones, into the view's index as they come
    (store.ViewIndex, which spills them to a temporary file in `scratch`).

    Yields one view at a time (so each can be written and let go before the next is made):
    its name, its rows' ViewIndex and how many texts were embedded anew.
    """
    for done, (view, texts) in enumerate(inputs.items()):
        known = (cache or {}).get(view, {})
        missing = [i for i, k in enumerate(keys[view]) if k not in known]
        stage = (f"Embedding {len(missing)} of {len(texts)} {VIEW_NAMES[view]} "
                 f"({len(texts) - len(missing)} unchanged)…")
        span = (0.4 + 0.45 * done / len(inputs), 0.4 + 0.45 * (done + 1) / len(inputs))
        fresh = ((part, vectors) for part, (vectors, _) in embedded_slices(
            reader, texts, missing, False, progress, on_progress, stage, span))
        yield view, index_view(view, keys[view], known, fresh, reader.dimension, scratch), \
            len(missing)


@dataclass(frozen=True)
class Pieces:
    """The context view and the word pieces, from one forward pass over the context texts."""

    index: ViewIndex             # the context view's rows, to be made an index
    coded: CodedPieces           # the content word pieces of every text, in text order
    embedded: int                # texts embedded anew


class CodebooksOutgrown(Exception):
    """An incremental build's new word-piece rows outgrew the previous codebooks."""


def embed_with_pieces(reader: TextEncoder | RayReader, texts: Sequence[str],
                      keys: Sequence[bytes],
                      progress: bool = False,
                      on_progress: Progress = None, cache: dict[str, Mapping] | None = None,
                      previous: TokenCodes | None = None, scratch: Path | None = None
                      ) -> Pieces:
    """The context view and the word pieces of the same texts, from one forward pass each,
    a slice at a time, the pieces coded as they come (token_codes.Coder).

    Rows of unchanged texts keep their codes, and new rows are coded with the previous
    build's codebooks, until the rows outgrow twice what those were learned on: then every
    text is embedded and the codebooks are learned anew (token_codes.py).
    """
    known_vectors = (cache or {}).get("context", {})
    known_codes = (cache or {}).get(TOKENS, {}) if previous is not None else {}
    kept = [i for i, k in enumerate(keys) if k in known_vectors and k in known_codes]
    missing = sorted(set(range(len(texts))) - set(kept))
    counts = np.zeros(len(texts), np.int32)           # each text's word-piece rows
    counts[kept] = [len(known_codes[keys[i]][0]) for i in kept]
    kept_rows = int(counts.sum())
    coder = Coder(previous if kept else None, scratch)
    fresh_ids = Spool(1, scratch, np.int32)         # the new rows' vocabulary ids, in order
    stage = (f"Embedding {len(missing)} of {len(texts)} paragraphs with their headings, word "
             f"by word ({len(kept)} unchanged)…")

    def fresh() -> Iterator[tuple[list[int], np.ndarray]]:
        for part, (vectors, pieces) in embedded_slices(
                reader, texts, missing, True, progress, on_progress, stage, (0.1, 0.4)):
            pieces = [content_pieces(p, reader.words(p.ids)) for p in pieces]
            counts[part] = [len(p.ids) for p in pieces]
            ids = np.concatenate([p.ids for p in pieces])
            fresh_ids.append(ids.reshape(-1, 1))
            coder.add(np.concatenate([p.vectors for p in pieces]), ids)
            if kept and kept_rows + coder.rows > 2 * previous.trained_rows:
                raise CodebooksOutgrown
            yield part, vectors

    try:
        index = index_view("context", keys, known_vectors, fresh(), reader.dimension, scratch)
    except CodebooksOutgrown:
        _report(on_progress, "The corpus has outgrown its word-piece codebooks: "
                             "embedding every paragraph to learn them anew…", 0.1)
        return embed_with_pieces(reader, texts, keys, progress, on_progress, scratch=scratch)
    spool, (pieces, centroids), owner = coder.finish()
    new = set(missing)
    return Pieces(index, CodedPieces(
        int(counts.sum()),
        table_in_text_order(counts, new, fresh_ids, lambda i: known_codes[keys[i]][0]),
        pieces, centroids, owner.codebooks,
        in_text_order(counts, new, spool, lambda i: known_codes[keys[i]][1]),
        owner.trained_rows if kept else coder.rows), len(missing))


def estimate_seconds(reader: TextEncoder, inputs: dict[str, Sequence[str]],
                     keys: dict[str, Sequence[bytes]], cache: dict[str, Mapping]) -> float:
    """How long embedding the texts not in `cache` will take: for each view, a sample of the
    texts it will embed timed and scaled by their count."""
    seconds = 0.0
    for view, texts in inputs.items():
        known = cache.get(view, {})
        missing = [i for i, key in enumerate(keys[view]) if key not in known]
        if missing:
            sample = [texts[i] for i in missing[:: max(1, len(missing) // 8)][:8]]
            start = time.perf_counter()
            reader.encode(sample)
            seconds += (time.perf_counter() - start) / len(sample) * len(missing)
    return seconds


def duration(seconds: float) -> str:
    """"40 s", "12 min", "3.5 hours"."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} hours"


def chunk_changes(previous: StoredIndex | None, now: dict[str, bytes]) -> dict[str, int]:
    """How many chunks were added, changed (same id, new text) and removed (`now`: each
    chunk's id → the key of its text)."""
    before = {c.id: text_key(c.text) for c in previous.chunks} if previous else {}
    return {"added": len(now.keys() - before.keys()),
            "changed": sum(before[i] != now[i] for i in now.keys() & before.keys()),
            "removed": len(before.keys() - now.keys())}


def _previous_build(index_dir: Path) -> StoredIndex | None:
    try:
        return load_index(index_dir)
    except AllianceQAError:      # missing or unusable: this build starts from nothing
        return None


def _report(on_progress: Progress, stage: str, fraction: float) -> None:
    if on_progress:
        on_progress(stage, fraction)


def library_versions() -> dict[str, str]:
    """The versions of the libraries a build depends on."""
    versions = {"python": platform.python_version(), "alliance-qa": __version__}
    for package in ("faiss-cpu", "sentence-transformers", "torch", "transformers", "numpy",
                    "bm25s"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def build_index(settings: Settings, embedder: CorpusModel | None = None, progress: bool = False,
                on_progress: Progress = None, full: bool = False,
                ray: str | None = None, workers: int | None = None) -> BuildSummary:
    """Read the corpus, embed it and write a new live index; the old one stays on failure.

    Vectors of texts the previous build embedded with the same model are reused, unless
    `full`. `progress` shows terminal progress bars; `on_progress(stage, fraction)` reports
    stages. With `ray` ("local" or a cluster's address), `workers` Ray workers (default:
    one per CPU of the cluster) embed the texts (cluster.py).

    Each part of the index is written as soon as it is made and let go (store.Staging);
    abstention is then calibrated on the written files, loaded as serving loads them, and
    only then is the build made live. Given no model (the command line, the page), the
    files are written by a process of its own (processes.py), so that what writing them
    held is the system's again before calibration loads the index.
    """
    start = time.perf_counter()
    with build_lock(settings.index_dir):
        staging = Staging(settings.index_dir)
        try:
            if embedder is None:
                manifest, summary = _write_apart(staging, settings, progress, on_progress,
                                                 full, ray, workers)
                reader = question_encoder(settings.model, settings.encoders,
                                          manifest.model_fingerprint)
            else:
                manifest, reader, summary = _write_build(staging, settings, embedder,
                                                         progress, on_progress, full, ray,
                                                         workers)
            _report(on_progress, "Calibrating abstention on questions it can and cannot "
                                 "answer…", 0.9)
            release_freed_memory()      # the index is loaded where the build's arrays were
            calibration = calibrate(staging.load(manifest), reader)
            folder = staging.publish(replace(manifest, calibration=asdict(calibration)))
        except BaseException:
            staging.discard()
            raise
        _report(on_progress, "Done.", 1.0)
    return replace(summary, seconds=time.perf_counter() - start, folder=str(folder))


def _write_apart(staging: Staging, settings: Settings, progress: bool, on_progress: Progress,
                 full: bool, ray: str | None, workers: int | None
                 ) -> tuple[Manifest, BuildSummary]:
    """`_write_build` in a process of its own, its stages reported here. A first build of
    100,000 passages held ~1.45 GiB while calibrating in the process that had written
    them (docs/speed.md)."""
    try:
        return run_apart(_write_there, staging, settings, progress, full, ray, workers,
                         on_progress=on_progress)
    except ProcessEnded as error:
        killed = ": out of memory?" if error.code == -signal.SIGKILL else ""
        raise BuildFailed(f"The build stopped before it finished ({error}{killed}).") \
            from error


def _write_there(staging: Staging, settings: Settings, progress: bool, full: bool,
                 ray: str | None, workers: int | None, report: Progress
                 ) -> tuple[Manifest, BuildSummary]:
    manifest, _, summary = _write_build(staging, settings, None, progress, report, full, ray,
                                        workers)
    return manifest, summary


def _write_build(staging: Staging, settings: Settings, embedder: CorpusModel | None,
                 progress: bool, on_progress: Progress, full: bool, ray: str | None,
                 workers: int | None) -> tuple[Manifest, TextEncoder, BuildSummary]:
    """Every file of a build, written to `staging` part by part; returns its manifest
    (all but the calibration), the encoder of the model, and what the build did."""
    start = time.perf_counter()
    _report(on_progress, "Reading the corpus…", 0.0)
    files, refused = scan_corpus(settings.corpus_dir)
    documents = DocumentReader(files)      # read as each batch is chunked and written
    remove_dead_temporaries(settings.encoders)     # of exports by killed builds
    embedder, exported, slow_questions = prepared_model(
        settings, embedder, lambda: document_samples(documents, refused, settings), on_progress)
    previous = _previous_build(settings.index_dir)
    fits = FitsMemory(embedder.fits, {} if full else fits_before(previous,
                                                                 embedder.fingerprint))
    read = read_into(staging, documents, fits)
    warnings = refused + documents.warnings
    if not len(read.records):
        raise _empty(settings, warnings)
    staging.fits(fits.answers)
    del fits
    skipped = {w.path: w.message for w in warnings if w.message.startswith("skipped")}
    # Sizes and times as scanned before reading: an edit during the build shows as one.
    corpus, corpus_stat = corpus_state(files, known=read.hashes)
    _report(on_progress, "Finding the corpus words near the words it lacks…", 0.02)
    related = _write_words(staging, embedder, read)
    counts = (read.documents, read.sections, len(read.records))
    changes = chunk_changes(previous, read.texts)
    acronyms, scripts, records = read.acronyms, read.scripts, read.records
    inputs = view_inputs(records, acronyms, read.columns.sentence_start())
    del read
    context = TextKeys.of(inputs["context"])
    keys = {"context": context, TOKENS: context, "text": TextKeys.of(inputs["text"]),
            "sentences": TextKeys.of(inputs["sentences"])}
    staging.keys(keys)
    release_freed_memory()
    reader = exported or embedder                 # encodes questions, as serving will
    corpus_reader = exported.for_corpus() if exported else embedder
    encoded_by = corpus_encoder(corpus_reader)
    cache = {} if full else reusable_vectors(previous, embedder.fingerprint, encoded_by)
    estimate = estimate_seconds(corpus_reader, inputs, keys, cache)
    if estimate:
        _report(on_progress, f"Embedding will take about {duration(estimate)} on this "
                             "machine…", 0.05)
    workforce = _ray_reader(corpus_reader if exported else None, settings, slow_questions,
                            ray, workers) if ray else corpus_reader
    try:
        pieces = embed_with_pieces(workforce, inputs["context"], keys["context"], progress,
                                   on_progress, cache, previous.tokens if cache else None,
                                   settings.index_dir)
        staging.view("context", pieces.index)
        staging.word_pieces(pieces.coded)
        new_texts = pieces.embedded
        del pieces
        release_freed_memory()
        for view, index, embedded in embed_views(
                workforce, {v: inputs[v] for v in ("text", "sentences")}, keys, progress,
                on_progress, cache, settings.index_dir):
            staging.view(view, index)
            new_texts += embedded
            del index
    finally:
        if workforce is not corpus_reader:
            workforce.close()
    sentence_count, texts = len(inputs["sentences"]), sum(map(len, inputs.values()))
    del cache, inputs, keys, records
    _report(on_progress, "Writing the index…", 0.85)
    manifest = Manifest(
        model=embedder.name, model_fingerprint=embedder.fingerprint, corpus_encoder=encoded_by,
        dimension=embedder.dimension, max_tokens=embedder.max_tokens, recipe=recipe(),
        corpus=corpus, corpus_stat=corpus_stat, skipped=skipped,
        document_count=counts[0], section_count=counts[1], chunk_count=counts[2],
        sentence_count=sentence_count, acronyms=acronyms,
        scripts=scripts, related_words=len(related),
        slow_questions=slow_questions, built_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        build_seconds=round(time.perf_counter() - start, 3), versions=library_versions())
    return staging.sealed(manifest), reader, BuildSummary(
        *counts, sentence_count, 0.0, "", [str(w) for w in warnings], new_texts,
        texts - new_texts, changes, slow_questions)


def _write_words(staging: Staging, embedder: CorpusModel, read: CorpusRead) -> dict:
    """BM25 over the chunks' keyword texts, the related words and the corpus words,
    written; returns the related words. Made before the embedding, while the build holds
    the least."""
    keyword, words = keyword_words(read)
    related = corpus_related_words(embedder, keyword)
    staging.words(keyword.with_related(related), related, words)
    return related


def prepared_model(settings: Settings, embedder: CorpusModel | None,
                   samples: Callable[[], list[str]], on_progress: Progress = None
                   ) -> tuple[CorpusModel, OnnxEncoder | None, str]:
    """The model a build reads with, its verified export (None if there is none) and why
    questions will be encoded by sentence-transformers ("" when they will not).

    Given no model (the command line, the page), the build uses the configured model's
    verified export, with its 8-bit copy intact if it kept one; else it exports the model
    in a process of its own (so that a damaged copy is made again rather than every later
    build embed in full precision), and loads PyTorch only if no export can be made. Given
    a loaded model (tests, the benchmark), the export is made here. `samples()` gives the
    texts an export is checked on: the corpus is read for them only when one is made."""
    if isinstance(embedder, OnnxEncoder):
        return embedder, embedder, ""
    existing = OnnxEncoder.load_for_build(settings.encoders, embedder.fingerprint if embedder
                                          else fingerprint(settings.model))
    if existing:
        return embedder or existing, existing, ""
    texts = samples()
    _report(on_progress, "Exporting the model to ONNX Runtime (once per model)…", 0.01)
    if embedder is None:
        exported, why_not = export_apart(settings.model, settings.encoders, texts)
        return exported or Embedder(settings.model), exported, why_not
    return embedder, *export(embedder, settings.encoders, texts)


def _ray_reader(encoder: OnnxEncoder | None, settings: Settings, why_not: str,
                address: str, workers: int | None) -> RayReader:
    """Ray workers with the export that embeds the corpus (`encoder`; they need one: they
    do not load PyTorch)."""
    if encoder is None:
        raise ClusterUnavailable(f"build --ray ships the model's ONNX export to the workers, "
                                 f"and there is none: {why_not}.",
                                 "Build without --ray.")
    return RayReader(encoder, folder_for(settings.encoders, encoder.fingerprint),
                     None if address == "local" else address, workers)


def calibrate(index: StoredIndex, reader: TextEncoder) -> Calibration:
    """Score, with the searcher that will serve this index, the bundled questions about
    other subjects (as written and set among the corpus's names) and questions made from
    the corpus's own sentences: where the two sides stand decides when the documents do not
    answer."""
    from .search import Searcher
    searcher = Searcher(index, reader, calibration=UNCALIBRATED)
    reference = reference_questions()
    texts = ViewTexts("text", searcher.chunks, {})       # each record decoded as asked
    near = near_questions(reference, corpus_names(texts))
    sentences = ViewTexts("sentences", searcher.chunks, {}, searcher.sentence_start)
    own = corpus_questions(sentences if len(sentences) else texts,
                           [len(q.split()) for q in reference])
    return Calibration.fit(searcher.probe(reference + near, reader.encode_with_pieces),
                           searcher.probe(own, reader.encode_with_pieces), near=len(near))


def corpus_related_words(embedder: CorpusModel, keyword: KeywordIndex) -> dict:
    """The related-words table for a keyword index; empty for a model without input word
    embeddings."""
    vocabulary = embedder.word_vectors()
    if vocabulary is None:
        return {}
    return related_words(*vocabulary, keyword.vocabulary, keyword.stem)


def document_samples(documents: DocumentReader, refused: list[CorpusWarning],
                     settings: Settings) -> list[str]:
    """Texts to check an export on: the corpus's first headings and paragraphs, a sentence
    of each, and its longest paragraph under its heading (which a model may truncate).
    CorpusEmpty when there is no document (before a model is exported for nothing)."""
    first: list[tuple[str, str]] = []
    longest, count = ("", ""), 0
    for count, document in enumerate(documents, 1):
        for section in document.sections:
            for paragraph in section.paragraphs:
                if count <= 4 and len(first) < 4:
                    first.append((section.heading, paragraph))
                if len(paragraph) > len(longest[1]):
                    longest = (section.heading, paragraph)
    if not count:
        raise _empty(settings, refused + documents.warnings)
    texts = [heading for heading, _ in first] + [p for _, p in first] + [
        p.split(". ")[0] for _, p in first] + ["\n".join(longest)]
    return [t for t in dict.fromkeys(texts) if t.strip()]


def _empty(settings: Settings, warnings: list[CorpusWarning]) -> CorpusEmpty:
    return CorpusEmpty(f"No usable documents in {settings.corpus_dir}"
                       + (f" ({'; '.join(map(str, warnings))})." if warnings else "."))


def corpus_state(files: list[CorpusFile], manifest: Manifest | None = None,
                 known: dict[str, str] | None = None
                 ) -> tuple[dict[str, str], dict[str, list[int]]]:
    """{relative path: SHA-256} of the scanned files ("" for one over the size limit or
    unreadable), and {relative path: [size, modification time]}. A file whose hash is
    `known`, or whose size and time are as `manifest` recorded, is not read again: checking
    freshness costs a `stat` per file, not a read of the corpus."""
    hashes, stats = {}, {}
    recorded = manifest.corpus_stat if manifest else {}
    for file in files:
        stats[file.relative] = [file.size, file.mtime_ns]
        if file.relative in (known or {}):
            hashes[file.relative] = known[file.relative]
        elif recorded.get(file.relative) == stats[file.relative]:
            hashes[file.relative] = manifest.corpus.get(file.relative, "")
        elif file.size > MAX_FILE_BYTES:
            hashes[file.relative] = ""
        else:
            try:
                hashes[file.relative] = file_sha256(file.path)
            except OSError:
                hashes[file.relative] = ""
    return hashes, stats


def corpus_signature(corpus_dir: Path) -> tuple:
    """(path, size, modification time) of every corpus file: cheap to take on every page
    view, and it changes whenever a file is added, removed or written."""
    files, _ = scan_corpus(corpus_dir)
    return tuple((f.relative, f.size, f.mtime_ns) for f in files)


def corpus_changes(manifest: Manifest, corpus_dir: Path) -> list[str]:
    """What changed in the corpus since the build: files added, removed or edited."""
    built = manifest.corpus
    now, _ = corpus_state(scan_corpus(corpus_dir)[0], manifest)
    return ([f"{path} was added" for path in sorted(now.keys() - built.keys())]
            + [f"{path} was removed" for path in sorted(built.keys() - now.keys())]
            + [f"{path} was edited" for path in sorted(built.keys() & now.keys())
               if built[path] != now[path]])


def build_changes(manifest: Manifest, settings: Settings, check_model: bool = True) -> list[str]:
    """Why the index cannot serve these settings at all: another model (by name, or with
    `check_model` by its weights) or another version of alliance-qa built it."""
    reasons = []
    if manifest.model != settings.model:
        reasons.append(f"the model changed from {manifest.model!r} to {settings.model!r}")
    elif check_model:
        try:
            if fingerprint(settings.model) != manifest.model_fingerprint:
                reasons.append(f"the weights of model {settings.model!r} changed")
        except (OSError, AllianceQAError) as error:
            reasons.append(f"the model {settings.model!r} cannot be checked ({error})")
    if manifest.recipe != recipe():
        reasons.append("it was built by another version of alliance-qa")
    return reasons


def staleness(manifest: Manifest, settings: Settings, check_model: bool = True) -> list[str]:
    """Why an index no longer matches the corpus and model; empty when it is fresh."""
    return (corpus_changes(manifest, settings.corpus_dir)
            + build_changes(manifest, settings, check_model))


def missing_export(manifest: Manifest, settings: Settings) -> list[str]:
    """Why a rebuild would speed questions up: the model's ONNX export is gone or damaged
    (the index still serves, loading PyTorch to encode questions)."""
    if manifest.slow_questions or OnnxEncoder.load(settings.encoders,
                                                   manifest.model_fingerprint):
        return []
    return ["the model's ONNX export for questions is missing, damaged or out of date (without "
            "it every "
            "start loads PyTorch, ~5 s)"]


def check_index(settings: Settings) -> list[str]:
    """Reasons to rebuild the live index (raises IndexMissing/IndexCorrupt when unusable)."""
    manifest = read_manifest(settings.index_dir)
    return staleness(manifest, settings) + missing_export(manifest, settings)
