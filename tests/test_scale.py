"""The scaled corpora of the method-at-scale benchmark: real sentences recombined around a seed
corpus that keeps its own documents, and the share of files a rebuild edits."""

from pathlib import Path

import pytest

from alliance_qa.corpus import read_documents, scan_corpus
from alliance_qa.scale import edit_files, scaled_corpus
from alliance_qa.sentences import sentence_spans

pytestmark = pytest.mark.unit
SEED = Path(__file__).parent / "data" / "corpora"


def paragraphs(folder):
    documents, warnings = read_documents(scan_corpus(folder)[0])
    assert not warnings
    return [p for d in documents for s in d.sections for p in s.paragraphs]


def test_a_scaled_corpus_has_the_size_asked_the_seed_documents_and_real_sentences(tmp_path):
    seed = paragraphs(SEED)
    sentences = [p[a:b] for p in seed for a, b in sentence_spans(p)]
    files = scaled_corpus(tmp_path, 400, SEED, sentences)
    written = paragraphs(tmp_path)
    assert len(written) == 400 and files == -(-(400 - len(seed)) // 50)
    assert written[:len(seed)] != [] and set(seed) <= set(written)
    recombined = [p for p in written if p not in seed]
    for paragraph in recombined[:50]:
        parts = [paragraph[a:b] for a, b in sentence_spans(paragraph)]
        assert 3 <= len(parts) and all(part in sentences for part in parts)


def test_editing_a_share_of_the_files_changes_one_paragraph_in_each(tmp_path):
    sentences = ["One sentence here.", "Another one there.", "A third sentence.",
                 "The fourth one.", "And a fifth."]
    scaled_corpus(tmp_path, 1000, SEED, sentences)
    before = {p: p.read_text() for p in (tmp_path / "recombined").glob("*.md")}
    assert edit_files(tmp_path, 0.1) == 2
    changed = [p for p, text in before.items() if p.read_text() != text]
    assert len(changed) == 2
    for path in changed:
        assert path.read_text().count("This line was edited.") == 1
