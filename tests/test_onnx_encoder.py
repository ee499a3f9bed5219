"""Questions encoded by the model's ONNX export: the same vectors and answers as
sentence-transformers, no PyTorch loaded, and sentence-transformers again whenever the export
is missing, damaged or wrong."""

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from alliance_qa.config import Settings
from alliance_qa.evaluation import EVAL_DIR, find_suites, load_questions
from alliance_qa.indexing import (
    build_index,
    check_index,
    missing_export,
    reusable_vectors,
)
from alliance_qa.integrity import SEAL, sealed
from alliance_qa.onnx_encoder import (
    CORPUS_MODEL_FILE,
    ENCODING_FILES,
    EXPORT_FORMAT,
    MODEL_FILE,
    QUANTIZED_AGREEMENT,
    SETTINGS_FILE,
    WORDS_FILE,
    OnnxEncoder,
    _disagreement,
    _plain_attention,
    export,
    folder_for,
    unsupported,
)
from alliance_qa.service import open_searcher
from alliance_qa.store import read_manifest

ALLIANCE = next(s for s in find_suites(EVAL_DIR) if s.name == "alliance")
QUESTIONS = [q.question for q in load_questions(*ALLIANCE.question_sets)]
ODD = ["  thaad??  ", "Ｔｈｅ ＳＯＦＡ", "사드 배치", "é" * 3000, "what\u200bis\u00a0sofa"]


@pytest.fixture(scope="session")
def exported(built, embedder) -> OnnxEncoder:
    encoder = OnnxEncoder.load(built.encoders, embedder.fingerprint)
    assert encoder is not None, "the build made no usable export"
    return encoder


@pytest.mark.full
def test_the_export_gives_sentence_transformers_vectors(exported, embedder):
    for text in QUESTIONS + ODD:
        expected, got = embedder.encode_query(text), exported.encode_query(text)
        assert np.array_equal(got.tokens.ids, expected.tokens.ids), text
        assert float(got.vector @ expected.vector) > 0.9999, text
        assert np.min(np.sum(got.tokens.vectors * expected.tokens.vectors, 1)) > 0.9999, text
    assert exported.words(expected.tokens.ids) == embedder.words(expected.tokens.ids)
    assert exported.dictionary() == embedder.dictionary()


def test_a_batch_of_texts_of_any_length_embeds_as_each_text_alone(exported, embedder):
    """The build embeds the corpus through the export, many texts to a padded batch: padding
    changes no text's vector or word pieces."""
    texts = QUESTIONS[:40] + ODD + [" ".join(QUESTIONS[:30])]   # the last one is truncated
    vectors, pieces = exported.encode_with_pieces(texts)
    reference, reference_pieces = embedder.encode_with_pieces(texts)
    assert np.min(np.sum(vectors * reference, axis=1)) > 0.9999
    for text, got, alone, expected in zip(texts, pieces, map(exported.encode_query, texts),
                                          reference_pieces):
        assert np.array_equal(got.ids, expected.ids), text
        assert np.allclose(got.vectors, alone.tokens.vectors, atol=1e-4), text
        assert np.min(np.sum(got.vectors * expected.vectors, axis=1)) > 0.9999, text
    assert len(pieces[-1].ids) == embedder.max_tokens
    assert np.allclose(exported.encode(texts[:3]), vectors[:3], atol=1e-6)


def test_the_corpus_is_embedded_by_an_8_bit_copy_close_to_the_model(built, exported):
    """The build embeds the corpus with the export's 8-bit copy; questions are encoded by
    the full export. The copy's vectors are its own, yet close to the full model's."""
    corpus = exported.for_corpus()
    assert (exported.model_file, corpus.model_file) == (MODEL_FILE, CORPUS_MODEL_FILE)
    assert open_searcher(built)[0].embedder.model_file == MODEL_FILE
    texts = QUESTIONS[:20] + ODD
    (full, full_pieces), (eight, eight_pieces) = (exported.encode_with_pieces(texts),
                                                  corpus.encode_with_pieces(texts))
    agreement = np.sum(full * eight, axis=1)
    assert agreement.min() >= QUANTIZED_AGREEMENT and agreement.max() < 0.99999
    assert min(np.min(np.sum(a.vectors * b.vectors, axis=1))
               for a, b in zip(full_pieces, eight_pieces)) >= QUANTIZED_AGREEMENT
    assert read_manifest(built.index_dir).corpus_encoder == corpus.model_digest
    assert corpus.model_digest != exported.model_digest


def test_the_8_bit_copy_embeds_a_text_alike_in_any_batch(exported):
    """Each word piece is quantized on its own scale, so a text's vectors do not depend on
    the texts batched with it: an incremental or sliced build matches a full one."""
    corpus = exported.for_corpus()
    texts = QUESTIONS[:40] + ODD + [" ".join(QUESTIONS[:30])]
    vectors, pieces = corpus.encode_with_pieces(texts)
    for text, vector, got in zip(texts[::7], vectors[::7], pieces[::7]):
        alone, alone_pieces = corpus.encode_with_pieces([text])
        assert np.allclose(alone[0], vector, atol=1e-6), text
        assert np.allclose(alone_pieces[0].vectors, got.vectors, atol=1e-5), text
    assert np.allclose(corpus.encode(texts[10:20]), vectors[10:20], atol=1e-6)


def test_vectors_are_reused_only_from_a_build_embedded_the_same_way(built, embedder,
                                                                     exported, searcher):
    previous = searcher.index
    same = reusable_vectors(previous, embedder.fingerprint, exported.for_corpus().model_digest)
    assert len(same["context"]) == len(previous.chunks)
    assert reusable_vectors(previous, embedder.fingerprint, exported.model_digest) == {}


def damage_the_8_bit_copy(settings: Settings, fingerprint: str) -> Path:
    copy = folder_for(settings.encoders, fingerprint) / CORPUS_MODEL_FILE
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    return copy


def test_a_damaged_8_bit_copy_sends_the_build_back_to_the_model(export_copy, embedder):
    """A damaged copy never fails a build, nor serving: that build loads the model to export
    it again, copy and all, rather than embed in full precision from then on."""
    copy = damage_the_8_bit_copy(export_copy, embedder.fingerprint)
    encoder = OnnxEncoder.load(export_copy.encoders, embedder.fingerprint)
    assert encoder is not None and encoder.for_corpus() is encoder       # serves, slower
    assert missing_export(read_manifest(export_copy.index_dir), export_copy) == []
    assert OnnxEncoder.load_for_build(export_copy.encoders, embedder.fingerprint) is None
    copy.unlink()
    assert OnnxEncoder.load_for_build(export_copy.encoders, embedder.fingerprint) is None


@pytest.mark.full
def test_a_build_makes_a_damaged_8_bit_copy_again(export_copy, embedder, tmp_path):
    settings = replace(export_copy, index_dir=tmp_path / "index")   # the session's stays
    shutil.copytree(export_copy.index_dir, settings.index_dir)
    copy = damage_the_8_bit_copy(settings, embedder.fingerprint)
    before = read_manifest(settings.index_dir).corpus_encoder
    summary = build_index(settings)               # as the command line builds: no model given
    remade = OnnxEncoder.load_for_build(settings.encoders, embedder.fingerprint)
    assert remade is not None and remade.for_corpus().model_file == copy.name
    assert read_manifest(settings.index_dir).corpus_encoder == before   # the same copy
    assert summary.embedded == 0                          # so every vector was reused


@pytest.mark.full
def test_an_8_bit_copy_that_strays_from_the_model_is_not_kept(embedder, tmp_path, monkeypatch):
    monkeypatch.setattr("alliance_qa.onnx_encoder.QUANTIZED_AGREEMENT", 1.0)
    encoder, why_not = export(embedder, tmp_path, QUESTIONS[:5])
    assert encoder is not None and why_not == ""
    assert encoder.corpus_model == MODEL_FILE and encoder.for_corpus() is encoder
    assert not (encoder.folder / CORPUS_MODEL_FILE).exists()
    reloaded = OnnxEncoder.load(tmp_path, embedder.fingerprint)
    assert reloaded is not None and reloaded.corpus_model == MODEL_FILE


@pytest.mark.full
def test_the_product_answers_alike_with_either_runtime(built, searcher):
    fast, _ = open_searcher(built)
    assert fast.embedder.runtime == "onnxruntime"
    assert searcher.embedder.runtime == "sentence-transformers"
    for question in QUESTIONS:
        a, b = fast.search(question), searcher.search(question)
        assert [h.chunk.id for h in a.hits] == [h.chunk.id for h in b.hits], question
        assert a.abstained == b.abstained, question
        assert abs(a.confidence - b.confidence) < 1e-3, question


def test_a_first_build_exports_the_model_apart_and_never_loads_pytorch(built, tmp_path):
    """The export runs in a process of its own; the build embeds with it, as serving
    encodes with it, and keeps the ~370 MiB PyTorch costs out of its own memory."""
    script = ("import sys; from alliance_qa.config import Settings; "
              "from alliance_qa.indexing import build_index; "
              "s = build_index(Settings.from_env()); "
              "print(s.slow_questions == '', 'torch' in sys.modules)")
    env = {**os.environ, "ALLIANCE_QA_CORPUS": str(built.corpus_dir),
           "ALLIANCE_QA_INDEX": str(tmp_path / "index"),
           "ALLIANCE_QA_ENCODERS": str(tmp_path / "encoders")}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["True", "False"], out.stderr[-2000:]
    fresh, _ = open_searcher(replace(built, index_dir=tmp_path / "index",
                                     encoders_dir=tmp_path / "encoders"))
    assert fresh.embedder.runtime == "onnxruntime"
    assert "missile-defense" in fresh.search("What is THAAD?").hits[0].chunk.id


def test_asking_loads_no_pytorch(built):
    script = ("import sys; from alliance_qa.config import Settings; "
              "from alliance_qa.service import open_searcher; "
              "s, _ = open_searcher(Settings.from_env()); a = s.search('What is THAAD?'); "
              "print(s.embedder.runtime, a.hits[0].chunk.id, 'torch' in sys.modules)")
    env = {**os.environ, "ALLIANCE_QA_INDEX": str(built.index_dir),
           "ALLIANCE_QA_ENCODERS": str(built.encoders)}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    runtime, first, torch_loaded = out.stdout.split()
    assert (runtime, torch_loaded) == ("onnxruntime", "False"), out.stderr
    assert "missile-defense" in first


@pytest.fixture
def export_copy(built, embedder, tmp_path) -> Settings:
    """Settings with a private copy of the session's export, for tests that damage it."""
    source = folder_for(built.encoders, embedder.fingerprint)
    shutil.copytree(source, folder_for(tmp_path / "encoders", embedder.fingerprint))
    return Settings(corpus_dir=built.corpus_dir, index_dir=built.index_dir,
                    encoders_dir=tmp_path / "encoders")


def test_a_damaged_export_falls_back_to_sentence_transformers(export_copy, embedder):
    model = folder_for(export_copy.encoders, embedder.fingerprint) / MODEL_FILE
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF                   # one flipped byte inside the weights
    model.write_bytes(bytes(data))
    assert OnnxEncoder.load(export_copy.encoders, embedder.fingerprint) is None
    assert missing_export(read_manifest(export_copy.index_dir), export_copy)  # rebuild it
    fallback, _ = open_searcher(export_copy)
    assert fallback.embedder.runtime == "sentence-transformers"
    assert "status-of-forces" in fallback.search("What is SOFA?").hits[0].chunk.id


def test_encoding_needs_only_the_encoding_files_and_still_verifies_them(export_copy, embedder,
                                                                        exported):
    """A Ray worker is sent only what encoding reads, not the build's word vectors."""
    folder = folder_for(export_copy.encoders, embedder.fingerprint)
    (folder / WORDS_FILE).unlink()
    with pytest.raises(FileNotFoundError):
        OnnxEncoder(folder)
    worker = OnnxEncoder(folder, files=ENCODING_FILES)
    question = QUESTIONS[0]
    assert np.array_equal(worker.encode([question]), exported.encode([question]))
    model = folder / MODEL_FILE
    model.write_bytes(model.read_bytes()[:-1])
    with pytest.raises(ValueError, match="checksum"):
        OnnxEncoder(folder, files=ENCODING_FILES)


@pytest.mark.full
def test_a_missing_export_falls_back_and_is_remade_by_a_rebuild(built, embedder, tmp_path):
    settings = Settings(corpus_dir=built.corpus_dir, index_dir=tmp_path / "index",
                        encoders_dir=tmp_path / "none")
    shutil.copytree(built.index_dir, settings.index_dir)
    assert open_searcher(settings)[0].embedder.runtime == "sentence-transformers"
    assert [r for r in check_index(settings) if "ONNX export" in r]     # so a rebuild runs
    summary = build_index(settings, embedder)
    assert summary.embedded == 0 and summary.reused > 0                 # nothing re-embedded
    assert check_index(settings) == []
    assert open_searcher(settings)[0].embedder.runtime == "onnxruntime"
    model = folder_for(settings.encoders, embedder.fingerprint) / MODEL_FILE
    made = model.stat().st_mtime_ns
    build_index(settings, embedder)                                     # once per model
    assert model.stat().st_mtime_ns == made


def test_the_export_carries_what_a_build_needs_of_the_model(exported, embedder):
    assert exported.max_tokens == embedder.max_tokens
    texts = QUESTIONS[:20] + ODD + [" ".join(QUESTIONS[:30])]
    assert exported.fits(texts) == embedder.fits(texts)
    assert not exported.fits(texts)[-1]
    (words, vectors), (expected_words, expected) = exported.word_vectors(), embedder.word_vectors()
    assert words == expected_words and np.array_equal(vectors, expected)


@pytest.mark.full
def test_a_build_with_an_export_loads_no_pytorch_and_builds_the_same_index(built, tmp_path):
    """The build reads with the export alone: the same files (but the manifest's times) as
    the session's build, which was given the model loaded by sentence-transformers."""
    index = tmp_path / "index"
    script = ("import sys; from pathlib import Path; from alliance_qa.config import Settings; "
              "from alliance_qa.indexing import build_index; "
              f"build_index(Settings(corpus_dir=Path({str(built.corpus_dir)!r}), "
              f"index_dir=Path({str(index)!r}), encoders_dir=Path({str(built.encoders)!r}))); "
              "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "False"
    ours, theirs = (folder / (folder / "CURRENT").read_text().strip()
                    for folder in (index, built.index_dir))
    files = sorted(p.name for p in theirs.iterdir() if p.name != "manifest.json")
    assert files == sorted(p.name for p in ours.iterdir() if p.name != "manifest.json")
    for name in files:
        assert (ours / name).read_bytes() == (theirs / name).read_bytes(), name
    assert read_manifest(index).related_words == read_manifest(built.index_dir).related_words


def test_a_model_that_cannot_be_exported_asks_for_no_rebuild(built, tmp_path):
    settings = Settings(corpus_dir=built.corpus_dir, index_dir=built.index_dir,
                        encoders_dir=tmp_path / "none")
    manifest = read_manifest(built.index_dir)
    assert missing_export(manifest, settings)
    assert missing_export(replace(manifest, slow_questions="it pools by 'max'"), settings) == []


def test_an_export_made_the_older_way_is_made_again(export_copy, embedder, exported):
    assert exported.format == EXPORT_FORMAT
    folder = folder_for(export_copy.encoders, embedder.fingerprint)
    settings = json.loads((folder / SETTINGS_FILE).read_text())
    older = {k: v for k, v in settings.items() if k not in ("format", SEAL)}
    (folder / SETTINGS_FILE).write_text(json.dumps(sealed(older)))
    assert OnnxEncoder(folder).format == 1               # readable, but not current
    assert OnnxEncoder.load(export_copy.encoders, embedder.fingerprint) is None
    assert "out of date" in missing_export(read_manifest(export_copy.index_dir),
                                           export_copy)[0]


def test_the_model_is_exported_with_plain_attention_and_left_as_it_was(embedder):
    model = embedder.model[0].auto_model
    before = model.config._attn_implementation
    with _plain_attention(model):
        assert model.config._attn_implementation == "eager"
    assert model.config._attn_implementation == before


def test_an_export_that_disagrees_is_refused(export_copy, embedder, exported):
    assert _disagreement(embedder, exported, QUESTIONS[:3]) == ""
    folder = folder_for(export_copy.encoders, embedder.fingerprint)
    settings = json.loads((folder / SETTINGS_FILE).read_text())
    (folder / SETTINGS_FILE).write_text(json.dumps(sealed({**settings, "pooling": "cls"})))
    assert "vectors differ" in _disagreement(embedder, OnnxEncoder(folder), QUESTIONS[:3])


def test_a_pipeline_the_export_cannot_run_is_named(embedder):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Pooling
    max_pooled = SentenceTransformer(modules=[embedder.model[0],
                                              Pooling(embedder.dimension, pooling_mode="max")])
    assert "pools by 'max'" in unsupported(SimpleNamespace(model=max_pooled))
    assert unsupported(embedder) == ""
