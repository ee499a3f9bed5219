"""The build: corpus → chunks → vectors → a stored index, and whether a stored one is fresh.

Each stage is a plain function of the previous stage's output, so the embedding step can be
swapped (for a distributed one, say) without touching the others.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from importlib import metadata
from pathlib import Path

import numpy as np

from . import __version__
from .abstention import UNCALIBRATED, Calibration, reference_questions, scripts_of
from .acronyms import expand, find_acronyms
from .chunking import Chunk, chunk_documents
from .config import Settings
from .corpus import MAX_FILE_BYTES, CorpusFile, read_documents, scan_corpus
from .embedding import Embedder, TokenVectors, fingerprint
from .errors import AllianceQAError, CorpusEmpty
from .integrity import file_sha256
from .keyword import KeywordIndex, keyword_texts
from .manifest import Manifest
from .onnx_encoder import OnnxEncoder, export
from .related_words import related_words
from .store import (
    BuildContents,
    StoredIndex,
    assemble,
    build_lock,
    load_index,
    matrix,
    read_manifest,
    token_starts,
    vector_indexes,
    write_index,
)


def build_recipe(package: Path = Path(__file__).parent, start: str = "indexing") -> str:
    """A digest of the source of every module a build runs — found by following the
    package's relative imports from `start`, those inside functions included — and of the
    bundled data. Any change to how an index is made (chunking, views, calibration, the
    search that calibrates) makes every older index stale; nothing is bumped by hand."""
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        path = package / f"{name}.py"
        if name in seen or not path.exists():
            continue
        seen.add(name)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                todo += [node.module.split(".")[0]] if node.module else \
                    [alias.name for alias in node.names]
    digest = hashlib.sha256()
    for path in [package / f"{name}.py" for name in sorted(seen)] + sorted(
            (package / "data").glob("*")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return f"source-{digest.hexdigest()[:16]}"


@functools.cache
def recipe() -> str:
    """This installation's build recipe (computed once, when first needed: ~70 ms)."""
    return build_recipe()


Progress = Callable[[str, float], None] | None   # (stage, fraction done)
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


def view_inputs(chunks: list[Chunk], acronyms: dict[str, str]) -> dict[str, list[str]]:
    """What the model reads for each view, acronyms expanded: the chunk with its heading
    path ("context"), the chunk alone ("text"), and each of its sentences ("sentences")."""
    return {
        "context": [expand(c.context_text(), acronyms) for c in chunks],
        "text": [expand(c.text, acronyms) for c in chunks],
        "sentences": [expand(c.text[s:e], acronyms) for c in chunks for s, e in c.sentences],
    }


def text_key(text: str) -> str:
    """The key under which a text's vector is kept for reuse."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def reusable_vectors(previous: StoredIndex | None,
                     fingerprint: str) -> dict[str, dict[str, np.ndarray]]:
    """{view: {text key: vector}} from the previous build, if it used the same model; for
    "tokens", {text key: TokenVectors} (a text has a row per word piece)."""
    if previous is None or previous.manifest.model_fingerprint != fingerprint:
        return {}
    cache = {view: dict(zip(previous.keys[view], matrix(previous.views[view])))
             for view in previous.views if view != "tokens"}
    rows, table = matrix(previous.views["tokens"]), previous.token_table
    starts = token_starts(table, len(previous.chunks))
    cache["tokens"] = {key: TokenVectors(table[a:b, 1], rows[a:b])
                       for key, a, b in zip(previous.keys["tokens"], starts, starts[1:])}
    return cache


def embed_views(embedder: Embedder, inputs: dict[str, list[str]], progress: bool = False,
                on_progress: Progress = None,
                cache: dict[str, dict[str, np.ndarray]] | None = None
                ) -> tuple[dict[str, np.ndarray], dict[str, list[str]], int]:
    """The embedding stage: each view's texts → unit vectors, reusing cached ones.

    Returns the vectors, each row's text key, and how many texts were embedded anew.
    """
    vectors, keys, embedded = {}, {}, 0
    for done, (view, texts) in enumerate(inputs.items()):
        keys[view] = [text_key(t) for t in texts]
        known = (cache or {}).get(view, {})
        missing = [i for i, k in enumerate(keys[view]) if k not in known]
        _report(on_progress, f"Embedding {len(missing)} of {len(texts)} {VIEW_NAMES[view]} "
                             f"({len(texts) - len(missing)} unchanged)…",
                0.1 + 0.75 * done / len(inputs))
        fresh = embedder.encode([texts[i] for i in missing], progress=progress)
        rows = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
        for i, k in enumerate(keys[view]):
            if k in known:
                rows[i] = known[k]
        rows[missing] = fresh
        vectors[view], embedded = rows, embedded + len(missing)
    return vectors, keys, embedded


def embed_tokens(embedder: Embedder, texts: list[str], progress: bool = False,
                 on_progress: Progress = None, cache: dict[str, TokenVectors] | None = None
                 ) -> tuple[np.ndarray, np.ndarray, list[str], int]:
    """The word-piece stage: each text's piece vectors, stacked in text order, with the
    (text number, vocabulary id) of each row, each text's key, and how many texts were
    embedded anew."""
    keys = [text_key(t) for t in texts]
    known = cache or {}
    missing = [i for i, k in enumerate(keys) if k not in known]
    _report(on_progress, f"Embedding the word pieces of {len(missing)} of {len(texts)} "
                         f"paragraphs ({len(texts) - len(missing)} unchanged)…", 0.85)
    fresh = dict(zip(missing, embedder.encode_tokens([texts[i] for i in missing],
                                                     progress=progress)))
    blocks = [fresh[i] if i in fresh else known[k] for i, k in enumerate(keys)]
    vectors = np.concatenate([b.vectors for b in blocks]).astype(np.float32, copy=False)
    table = np.column_stack([np.repeat(np.arange(len(blocks)), [len(b.ids) for b in blocks]),
                             np.concatenate([b.ids for b in blocks])]).astype(np.int32)
    return vectors, table, keys, len(missing)


def estimate_seconds(embedder: Embedder, inputs: dict[str, list[str]],
                     cache: dict[str, dict]) -> float:
    """How long embedding the texts not in `cache` will take: a sample of them timed, scaled
    by characters (each paragraph is read twice more, alone and for its word pieces)."""
    to_embed = [t for view, texts in inputs.items() for t in texts
                if text_key(t) not in cache.get(view, {})]
    to_embed += [t for t in inputs["context"] if text_key(t) not in cache.get("tokens", {})]
    if not to_embed:
        return 0.0
    sample = to_embed[:: max(1, len(to_embed) // 16)][:16]
    start = time.perf_counter()
    embedder.encode(sample)
    per_character = (time.perf_counter() - start) / max(sum(map(len, sample)), 1)
    return per_character * sum(map(len, to_embed))


def duration(seconds: float) -> str:
    """"40 s", "12 min", "3.5 hours"."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} hours"


def chunk_changes(previous: StoredIndex | None, chunks: list[Chunk]) -> dict[str, int]:
    """How many chunks were added, changed (same id, new text) and removed."""
    before = {c.id: c.text for c in previous.chunks} if previous else {}
    now = {c.id: c.text for c in chunks}
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


def build_index(settings: Settings, embedder: Embedder | None = None, progress: bool = False,
                on_progress: Progress = None, full: bool = False) -> BuildSummary:
    """Read the corpus, embed it and write a new live index; the old one stays on failure.

    Vectors of texts the previous build embedded with the same model are reused, unless
    `full`. `progress` shows terminal progress bars; `on_progress(stage, fraction)` reports
    stages.
    """
    start = time.perf_counter()
    with build_lock(settings.index_dir):
        _report(on_progress, "Reading the corpus…", 0.0)
        files, refused = scan_corpus(settings.corpus_dir)
        documents, warnings = read_documents(files)
        warnings = refused + warnings
        if not documents:
            raise CorpusEmpty(f"No usable documents in {settings.corpus_dir}"
                              + (f" ({'; '.join(map(str, warnings))})." if warnings else "."))
        skipped = {w.path: w.message for w in warnings if w.message.startswith("skipped")}
        # Sizes and times as scanned before reading: an edit during the build shows as one.
        corpus, corpus_stat = corpus_state(files, known={d.path: d.sha256 for d in documents})
        embedder = embedder or Embedder(settings.model)
        chunks = chunk_documents(documents, embedder.fits)
        acronyms = find_acronyms([c.text for c in chunks])
        previous = _previous_build(settings.index_dir)
        cache = {} if full else reusable_vectors(previous, embedder.fingerprint)
        inputs = view_inputs(chunks, acronyms)
        estimate = estimate_seconds(embedder, inputs, cache)
        if estimate:
            _report(on_progress, f"Embedding will take about {duration(estimate)} on this "
                                 "machine…", 0.05)
        views, keys, embedded = embed_views(embedder, inputs, progress, on_progress, cache)
        views["tokens"], token_table, keys["tokens"], pieces_embedded = embed_tokens(
            embedder, inputs["context"], progress, on_progress, cache.get("tokens"))
        _report(on_progress, "Finding the corpus words near the words it lacks…", 0.87)
        related = corpus_related_words(embedder, keyword_texts(chunks, acronyms))
        _report(on_progress, "Exporting the model for questions (once per model)…", 0.88)
        slow_questions = export(embedder, settings.encoders, question_samples(inputs))
        seconds = time.perf_counter() - start
        manifest = Manifest(
            model=embedder.name, model_fingerprint=embedder.fingerprint,
            dimension=embedder.dimension, max_tokens=embedder.max_tokens, recipe=recipe(),
            corpus=corpus, corpus_stat=corpus_stat, skipped=skipped,
            document_count=len(documents),
            section_count=sum(len(d.sections) for d in documents), chunk_count=len(chunks),
            sentence_count=len(views["sentences"]), acronyms=acronyms,
            scripts=scripts_of(inputs["context"]), related_words=len(related),
            slow_questions=slow_questions, built_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            build_seconds=round(seconds, 3), versions=library_versions())
        contents = BuildContents(documents, chunks, views, keys, token_table, related)
        indexes = vector_indexes(views)
        _report(on_progress, "Calibrating abstention on questions about other subjects…", 0.89)
        calibration = calibrate(assemble(manifest, contents, indexes), embedder)
        manifest = replace(manifest, calibration=asdict(calibration))
        _report(on_progress, "Writing the index…", 0.9)
        folder = write_index(settings.index_dir, manifest, contents, indexes)
        _report(on_progress, "Done.", 1.0)
    texts = sum(map(len, inputs.values())) + len(inputs["context"])   # + word-piece view
    embedded += pieces_embedded
    return BuildSummary(len(documents), manifest.section_count, len(chunks),
                        manifest.sentence_count, time.perf_counter() - start, str(folder),
                        [str(w) for w in warnings], embedded, texts - embedded,
                        chunk_changes(previous, chunks), slow_questions)


def calibrate(index: StoredIndex, embedder: Embedder) -> Calibration:
    """Score the bundled questions about other subjects with the searcher that will serve
    this index: where its scores stand decides when the documents do not answer."""
    from .search import Searcher
    searcher = Searcher(index, embedder, calibration=UNCALIBRATED)
    return Calibration.fit(searcher.probe(reference_questions(), embedder.encode_tokens))


def corpus_related_words(embedder: Embedder, texts: list[str]) -> dict:
    """The related-words table for keyword search over `texts`; empty for a model without
    input word embeddings."""
    vocabulary = embedder.word_vectors()
    if vocabulary is None:
        return {}
    keyword = KeywordIndex(texts)
    return related_words(*vocabulary, keyword.vocabulary, keyword.stem)


def question_samples(inputs: dict[str, list[str]]) -> list[str]:
    """Texts to check an export on: a few of each view, and the longest (truncated)."""
    texts = [t for view in inputs.values() for t in view[:4]]
    return texts + [max(inputs["context"], key=len)]


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
    return ["the model's ONNX export for questions is missing or damaged (without it every "
            "start loads PyTorch, ~5 s)"]


def check_index(settings: Settings) -> list[str]:
    """Reasons to rebuild the live index (raises IndexMissing/IndexCorrupt when unusable)."""
    manifest = read_manifest(settings.index_dir)
    return staleness(manifest, settings) + missing_export(manifest, settings)
