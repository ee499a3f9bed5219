"""Questions encoded by ONNX Runtime: the same model, without loading PyTorch.

Importing sentence-transformers (PyTorch, transformers and what they import) is most of a
cold start, about 5 s on 2 cores; ONNX Runtime and the tokenizer load in about 0.3 s, and
encode a question in a third of the time. So the build exports the configured model's
transformer to ONNX, once per model (`<index>/encoders/<hash of its fingerprint>/`), and
keeps the export only if it gives the same vectors as sentence-transformers on the corpus's
own texts. The build then embeds the corpus with the export too, in batches of texts of
similar length (faster than sentence-transformers' default batches of 32: docs/speed.md),
and in 8 bits: the export keeps a copy whose matrix products run in int8, each word piece
scaled on its own (quantization.py: 1.6× faster on these CPUs, and a text's vectors do not
depend on its batch), if its vectors agree with the full model's on the same texts;
questions are always encoded by the full model.
The export also keeps the model's length limit and its whole words' input embeddings, so a
later build that finds it reads, chunks and embeds without loading PyTorch. A model whose
pipeline is not transformer → mean or CLS pooling → optional normalization is not
exported; its questions and its corpus are encoded by sentence-transformers.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .embedding import (
    Embedder,
    QueryEncoding,
    TokenVectors,
    fingerprint,
    read_whole,
    unit_token_vectors,
    untruncated,
)
from .integrity import file_sha256, is_sealed, sealed
from .processes import run_apart
from .quantization import quantize_per_word_piece

MODEL_FILE, TOKENIZER_FILE, SETTINGS_FILE = "model.onnx", "tokenizer.json", "encoder.json"
CORPUS_MODEL_FILE = "model-int8.onnx"   # 8-bit weights, for embedding the corpus
WORDS_FILE = "input-words.npz"     # the model's whole words and their input embeddings
FILES = (MODEL_FILE, TOKENIZER_FILE, WORDS_FILE, SETTINGS_FILE)
ENCODING_FILES = (TOKENIZER_FILE, SETTINGS_FILE)   # what encoding reads besides its model
POOLINGS = ("mean", "cls")
AGREEMENT = 0.9999       # least cosine between the two runtimes' vectors for a kept export
# Least cosine between the 8-bit copy's vectors and the full model's (texts' and word
# pieces'), on the corpus's own texts, for the copy to embed the corpus: a floor against a
# model that quantization breaks. all-MiniLM-L6-v2 keeps 0.98 for texts and for word
# pieces (docs/method.md).
QUANTIZED_AGREEMENT = 0.95
# Word pieces a batch holds at most, padding included: texts are sorted by length, so a
# batch is many sentences or a few paragraphs. Small batches stay in cache: 4,096 and 8,192
# were slower than 1,024, and 512 and 2,048 no faster (docs/method.md).
PIECES_PER_BATCH = 1024
# How exports are made; an export made otherwise is made again. 2: attention exported from
# its plain ("eager") form, which ONNX Runtime fuses and runs ~15% faster than the graph
# exported from PyTorch's fused attention (docs/method.md). 3: the export also carries what a
# build needs of the model besides its vectors (its length limit and its input word
# embeddings), so a build with an export does not load PyTorch. 4: with an 8-bit copy
# quantized per batch. 5: with the 8-bit copy quantized per word piece (quantization.py).
# 6: that copy's weights in 7 bits, which no x86 kernel overflows (quantization.py).
EXPORT_FORMAT = 6


def folder_for(encoders_dir: Path, fingerprint: str) -> Path:
    """The export's folder: named by a hash, as a fingerprint may be "name:org/model"."""
    return encoders_dir / hashlib.sha256(fingerprint.encode()).hexdigest()[:32]


class OnnxEncoder:
    """A verified export, loaded: encodes questions like `Embedder.encode_query`."""

    runtime = "onnxruntime"

    def __init__(self, folder: Path, threads: int = 0, files: tuple[str, ...] = FILES,
                 model: str = MODEL_FILE):
        """The export in `folder`, its `files` and the `model` run verified (a Ray worker,
        which only encodes, is sent its model and ENCODING_FILES); `model` is MODEL_FILE or
        the export's `corpus_model`."""
        import onnxruntime
        from tokenizers import Tokenizer

        settings = json.loads((folder / SETTINGS_FILE).read_text(encoding="utf-8"))
        if not is_sealed(settings):       # the settings decide every vector: verified too
            raise ValueError(f"{folder / SETTINGS_FILE} does not match its checksum")
        if model not in settings["files"]:
            raise ValueError(f"{folder / SETTINGS_FILE} names no {model}")
        for name, digest in settings["files"].items():
            if (name in files or name == model) and file_sha256(folder / name) != digest:
                raise ValueError(f"{folder / name} does not match its checksum")
        self.name, self.fingerprint = settings["model"], settings["fingerprint"]
        self.format = settings.get("format", 1)
        self.max_tokens = settings.get("max_tokens", 0)
        self.folder, self.model_file = folder, model
        self.corpus_model = settings.get("corpus_model", MODEL_FILE)
        self.model_digest = settings["files"][model]
        self.pooling = settings["pooling"]
        self.lowercase, self.inputs = settings["lowercase"], settings["inputs"]
        self.tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        options = onnxruntime.SessionOptions()
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = threads      # 0: one per core
        # Idle threads sleep instead of spinning: spinning kept a core busy through the
        # search that follows each forward pass (search 4.1 → 3.0 ms, encode 4.2 → 4.7 ms).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(str(folder / model), options,
                                                    providers=["CPUExecutionProvider"])
        self.dimension = int(self.session.get_outputs()[0].shape[-1])
        self._counter = None
        self._for_corpus: OnnxEncoder | None = None

    @classmethod
    def load(cls, encoders_dir: Path, fingerprint: str) -> OnnxEncoder | None:
        """The verified export of the model with this fingerprint; None if there is none or
        it cannot be used (the caller then loads sentence-transformers)."""
        folder = folder_for(encoders_dir, fingerprint)
        try:
            encoder = cls(folder)
        except Exception:    # missing, damaged or refused by ONNX Runtime: not worth a failure
            return None
        current = encoder.fingerprint == fingerprint and encoder.format == EXPORT_FORMAT
        return encoder if current else None

    def for_corpus(self) -> OnnxEncoder:
        """The encoder the build embeds the corpus with: the 8-bit copy when the export
        kept one and it loads, else this one."""
        if self._for_corpus is None:
            self._for_corpus = self
            if self.corpus_model != self.model_file:
                try:
                    self._for_corpus = OnnxEncoder(self.folder, files=ENCODING_FILES,
                                                   model=self.corpus_model)
                except (OSError, ValueError):   # a damaged copy costs speed, never a build
                    pass
        return self._for_corpus

    @classmethod
    def load_for_build(cls, encoders_dir: Path, fingerprint: str) -> OnnxEncoder | None:
        """`load`, refusing an export whose 8-bit copy does not load (damaged or gone): the
        build then exports the model again, copy and all, instead of embedding in full
        precision from then on."""
        encoder = cls.load(encoders_dir, fingerprint)
        if encoder is None or (encoder.corpus_model != encoder.model_file
                               and encoder.for_corpus() is encoder):
            return None
        return encoder

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit vectors of the texts, one row each."""
        return self._forward(texts, pieces=False)[0]

    def encode_query(self, text: str) -> QueryEncoding:
        """The text's vector and its word-piece vectors, from one forward pass."""
        vectors, pieces = self.encode_with_pieces([text])
        return QueryEncoding(vectors[0], pieces[0])

    def encode_with_pieces(self, texts: list[str]) -> tuple[np.ndarray, list[TokenVectors]]:
        """Each text's unit vector and its unit word-piece vectors (special tokens
        included), from one forward pass, in batches of texts of similar length."""
        return self._forward(texts, pieces=True)

    def _forward(self, texts: list[str], pieces: bool
                 ) -> tuple[np.ndarray, list[TokenVectors | None]]:
        encodings = self.tokenizer.encode_batch(
            [t.strip().lower() if self.lowercase else t.strip() for t in texts])  # as s-t
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        tokens: list[TokenVectors | None] = [None] * len(texts)
        for batch in _batches([len(e.ids) for e in encodings]):
            width = max(len(encodings[i].ids) for i in batch)
            feed = {name: np.zeros((len(batch), width), dtype=np.int64)
                    for name in ("input_ids", "attention_mask", "token_type_ids")}
            for row, i in enumerate(batch):
                length = len(encodings[i].ids)
                feed["input_ids"][row, :length] = encodings[i].ids
                feed["attention_mask"][row, :length] = 1
                feed["token_type_ids"][row, :length] = encodings[i].type_ids
            hidden = self.session.run(None, {k: feed[k] for k in self.inputs})[0]
            for row, i in enumerate(batch):
                length = len(encodings[i].ids)
                vector = hidden[row, :length].mean(axis=0) if self.pooling == "mean" else \
                    hidden[row, 0]
                vectors[i] = vector / max(float(np.linalg.norm(vector)), 1e-12)  # as s-t's
                if pieces:
                    tokens[i] = unit_token_vectors(encodings[i].ids, hidden[row, :length])
        return vectors, tokens

    def dictionary(self) -> frozenset[str]:
        """The whole words of the model's vocabulary."""
        return Embedder.whole_words(self.tokenizer.get_vocab())

    def fits(self, texts: list[str]) -> list[bool]:
        """Whether the model reads each text whole (as `Embedder.fits`)."""
        if self._counter is None:
            self._counter = untruncated(self.tokenizer)
        return read_whole(self._counter, self.max_tokens, texts)

    def word_vectors(self) -> tuple[list[str], np.ndarray] | None:
        """`Embedder.word_vectors`, as stored at export (None if the model had none)."""
        with np.load(self.folder / WORDS_FILE) as stored:
            words, vectors = stored["words"].tolist(), stored["vectors"]
        return (words, vectors) if len(words) else None

    def words(self, ids: np.ndarray) -> list[str]:
        """The word pieces of these vocabulary ids."""
        return [self.tokenizer.id_to_token(int(i)) or "" for i in ids]


def _batches(lengths: list[int]) -> list[list[int]]:
    """Text numbers in batches of similar length, each at most PIECES_PER_BATCH pieces
    padded (a longer text alone)."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    batches: list[list[int]] = []
    for i in order:       # ascending: the newest text is the batch's longest
        if batches and (len(batches[-1]) + 1) * lengths[i] <= PIECES_PER_BATCH:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


def unsupported(embedder: Embedder) -> str:
    """Why the model's pipeline cannot be run from an export of its transformer ("" if it
    can)."""
    modules = list(embedder.model)
    kinds = [type(m).__name__ for m in modules]
    if kinds[:2] != ["Transformer", "Pooling"] or kinds[2:] not in ([], ["Normalize"]):
        return f"its pipeline is {' → '.join(kinds)}"
    pooling = modules[1].get_config_dict().get("pooling_mode")
    if pooling not in POOLINGS:
        return f"it pools by {pooling!r}"
    if getattr(embedder.model, "default_prompt_name", None):
        return "it adds a prompt to every text"
    return ""


def export(embedder: Embedder, encoders_dir: Path, samples: list[str]
           ) -> tuple[OnnxEncoder | None, str]:
    """Export the model unless a verified export exists; keep it only if it agrees with
    sentence-transformers on `samples`. Returns the verified export, loaded (None if there
    is none), and why questions will be encoded by sentence-transformers ("" when they will
    not)."""
    folder = folder_for(encoders_dir, embedder.fingerprint)
    existing = OnnxEncoder.load_for_build(encoders_dir, embedder.fingerprint)
    if existing:
        return existing, ""
    reason = unsupported(embedder)
    if reason:
        return None, f"the model cannot be exported to ONNX: {reason}"
    temporary = encoders_dir / f".tmp-{folder.name}-{os.getpid()}"
    try:
        temporary.mkdir(parents=True)
        _write_export(embedder, temporary)
        encoder = OnnxEncoder(temporary)      # its session holds the model in memory
        disagreement = _disagreement(embedder, encoder, samples)
        if disagreement:
            return None, disagreement
        encoder = _with_quantized_copy(temporary, embedder, encoder, samples)
        shutil.rmtree(folder, ignore_errors=True)
        temporary.rename(folder)
        encoder.folder = folder          # where its other files are read from now
    except Exception as error:  # an export that fails costs speed, never the build
        landed = OnnxEncoder.load(encoders_dir, embedder.fingerprint)  # another build's
        return landed, "" if landed else \
            f"exporting the model to ONNX failed ({type(error).__name__}: {error})"
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    for other in encoders_dir.iterdir():     # exports of models no longer configured
        if other.is_dir() and other.name != folder.name and not other.name.startswith("."):
            shutil.rmtree(other, ignore_errors=True)
    return encoder, ""


def export_apart(model: str, encoders_dir: Path, samples: list[str]
                 ) -> tuple[OnnxEncoder | None, str]:
    """`export` for the model named `model`, run in a process of its own: PyTorch, which only
    the export needs, is loaded there and gone with it, so a build that embeds with the
    export never holds it (~370 MiB of every first build's memory). Returns the export
    loaded here, as `export` does."""
    try:
        why_not = run_apart(_export_model, model, encoders_dir, samples)
    except Exception as error:   # the model does not load there, or the process was killed
        return None, f"exporting the model to ONNX failed ({type(error).__name__}: {error})"
    landed = OnnxEncoder.load_for_build(encoders_dir, fingerprint(model))
    return landed, "" if landed else (why_not or "the export it made does not load")


def question_encoder(model: str, encoders_dir: Path, indexed_fingerprint: str
                     ) -> OnnxEncoder | Embedder:
    """The configured model for questions: its verified export when there is one and the
    model is the one the index was built with (no PyTorch to load), else
    sentence-transformers."""
    if fingerprint(model) == indexed_fingerprint:
        exported = OnnxEncoder.load(encoders_dir, indexed_fingerprint)
        if exported:
            return exported
    return Embedder(model)


def _export_model(model: str, encoders_dir: Path, samples: list[str], report: object) -> str:
    """Why the model was not exported ("" when it was): `export_apart`'s other process."""
    return export(Embedder(model), encoders_dir, samples)[1]


def remove_dead_temporaries(encoders_dir: Path) -> None:
    """Remove the half-written exports of builds that were killed (named by their process
    id; the folder may be shared by indexes with their own locks, so only dead ones)."""
    for temporary in encoders_dir.glob(".tmp-*-*"):
        pid = temporary.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(temporary, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:      # another user's process
        return True
    return True


def _write_export(embedder: Embedder, folder: Path) -> None:
    import torch

    transformer = embedder.model[0]
    inputs = list(embedder.model.tokenizer.model_input_names)
    example = embedder.model.tokenizer(["an example", "and another example text"],
                                       padding=True, return_tensors="pt")

    class LastHiddenState(torch.nn.Module):       # the exporter wants tensors, not dicts
        def __init__(self) -> None:
            super().__init__()
            self.model = transformer.auto_model

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            return self.model(**dict(zip(inputs, tensors))).last_hidden_state

    axes = {name: {0: "batch", 1: "tokens"} for name in [*inputs, "last_hidden_state"]}
    with warnings.catch_warnings(), torch.no_grad(), _plain_attention(transformer.auto_model):
        warnings.simplefilter("ignore")
        torch.onnx.export(LastHiddenState().eval(), tuple(example[n] for n in inputs),
                          str(folder / MODEL_FILE), input_names=inputs,
                          output_names=["last_hidden_state"], dynamic_axes=axes,
                          opset_version=17, dynamo=False)
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_str(embedder.model.tokenizer.backend_tokenizer.to_str())
    tokenizer.no_padding()
    tokenizer.enable_truncation(embedder.max_tokens)
    tokenizer.save(str(folder / TOKENIZER_FILE))
    words, vectors = embedder.word_vectors() or ([], np.zeros((0, embedder.dimension)))
    np.savez(folder / WORDS_FILE, words=np.array(words, dtype=str),
             vectors=np.asarray(vectors, dtype=np.float32))
    _seal(folder, embedder, MODEL_FILE)


def _with_quantized_copy(folder: Path, embedder: Embedder, encoder: OnnxEncoder,
                         samples: list[str]) -> OnnxEncoder:
    """The verified export in `folder` (`encoder`), with an 8-bit copy for the corpus if
    one can be made whose vectors of `samples` agree with the full model's (text and word
    pieces, QUANTIZED_AGREEMENT); else as it was."""
    try:
        if quantize_per_word_piece(folder / MODEL_FILE, folder / CORPUS_MODEL_FILE):
            _seal(folder, embedder, CORPUS_MODEL_FILE)
            copy = OnnxEncoder(folder, files=ENCODING_FILES, model=CORPUS_MODEL_FILE)
            if _agreement(encoder, copy, samples) >= QUANTIZED_AGREEMENT:
                return OnnxEncoder(folder)
    except Exception:     # a copy that cannot be made costs speed, never the export
        pass
    _seal(folder, embedder, MODEL_FILE)
    (folder / CORPUS_MODEL_FILE).unlink(missing_ok=True)
    return encoder


def _seal(folder: Path, embedder: Embedder, corpus_model: str) -> None:
    """Write the export's settings, with the checksum of each file the settings name and
    the model the corpus is embedded with."""
    transformer = embedder.model[0]
    names = [MODEL_FILE, TOKENIZER_FILE, WORDS_FILE, corpus_model]
    settings = sealed({
        "model": embedder.name, "fingerprint": embedder.fingerprint,
        "inputs": list(embedder.model.tokenizer.model_input_names),
        "format": EXPORT_FORMAT, "max_tokens": embedder.max_tokens,
        "pooling": embedder.model[1].get_config_dict()["pooling_mode"],
        "lowercase": bool(getattr(transformer, "do_lower_case", False)),
        "corpus_model": corpus_model,
        "files": {name: file_sha256(folder / name) for name in dict.fromkeys(names)},
    })
    (folder / SETTINGS_FILE).write_text(json.dumps(settings, indent=1), encoding="utf-8")


@contextmanager
def _plain_attention(model: object) -> Iterator[None]:
    """The model with its attention in plain operations while it is exported, as before
    after: transformers' "eager" implementation, whose graph ONNX Runtime fuses into one
    attention kernel. A model that cannot switch is exported as it is; the export is
    verified against sentence-transformers either way."""
    before = getattr(getattr(model, "config", None), "_attn_implementation", None)
    try:
        model.set_attn_implementation("eager")
    except Exception:       # an older transformers, or a model without the switch
        before = None
    try:
        yield
    finally:
        if before:
            model.set_attn_implementation(before)


def _agreement(encoder: OnnxEncoder, other: OnnxEncoder, samples: list[str]) -> float:
    """The least cosine between two encoders' vectors of `samples`, texts and word pieces."""
    (vectors, pieces), (others, other_pieces) = (encoder.encode_with_pieces(samples),
                                                 other.encode_with_pieces(samples))
    return min([float(np.min(np.sum(vectors * others, 1)))] + [
        float(np.min(np.sum(a.vectors * b.vectors, 1))) for a, b in zip(pieces, other_pieces)])


def _disagreement(embedder: Embedder, encoder: OnnxEncoder, samples: list[str]) -> str:
    """Why the export's vectors differ from sentence-transformers' ("" if they agree)."""
    for text in samples:
        expected, got = embedder.encode_query(text), encoder.encode_query(text)
        if not np.array_equal(expected.tokens.ids, got.tokens.ids):
            return "the exported tokenizer splits texts differently"
        agreement = min(float(expected.vector @ got.vector),
                        float(np.min(np.sum(expected.tokens.vectors * got.tokens.vectors, 1))))
        if agreement < AGREEMENT:
            return f"the exported model's vectors differ (cosine {agreement:.5f})"
    return ""
