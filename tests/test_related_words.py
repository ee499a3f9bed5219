"""Words the corpus lacks → the corpus words the model puts near them, and keyword search
counting those."""

import numpy as np
import pytest

from alliance_qa.keyword import KeywordIndex
from alliance_qa.related_words import NEAR_ENOUGH, PER_WORD, related_words
from alliance_qa.store import load_index


def unit(*rows):
    vectors = np.array(rows, dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.mark.unit
def test_a_missing_word_stands_for_its_nearest_corpus_words_by_distinct_stem():
    words = ["soldiers", "troops", "troop", "military", "bread", "the", "treaty"]
    vectors = unit([1, 0, 0], [0.9, 0.1, 0], [0.9, 0.12, 0], [0.7, 0.7, 0], [0, 0, 1],
                   [1, 0, 0.01], [0, 1, 0])
    stem = lambda w: w.rstrip("s")            # noqa: E731 — a toy stemmer
    table = related_words(words, vectors, {"troop", "military", "treaty"}, stem)
    # "troops" and "troop" share a stem: counted once; then the next nearest, "military"
    assert [s for s, _ in table["soldiers"]] == ["troop", "military"]
    assert all(weight >= NEAR_ENOUGH for _, weight in table["soldiers"])
    assert "bread" not in table                 # nothing near enough
    assert "the" not in table                   # a function word is never expanded
    assert "troops" not in table and "treaty" not in table      # the corpus has them


def test_the_built_index_relates_words_of_other_wordings_to_the_corpus_words(built):
    table = load_index(built.index_dir).related_words
    assert "troop" in dict(table["soldiers"]) and "china" in dict(table["beijing"])
    assert "treaty" not in table and "alliance" not in table        # corpus words
    assert all(len(pairs) <= PER_WORD for pairs in table.values())


@pytest.mark.unit
def test_keyword_search_counts_related_words_only_for_words_the_corpus_lacks():
    texts = ["American troops stayed on the peninsula.", "The treaty was signed in 1953."]
    related = {"soldiers": [("troop", 0.69)], "treaty": [("peninsula", 0.9)]}
    plain, expanded = KeywordIndex.from_texts(texts), KeywordIndex.from_texts(texts, related)
    assert not plain.scores("soldiers").any()
    with_related = expanded.scores("soldiers")
    assert with_related[0] > 0 and with_related[1] == 0
    assert np.isclose(with_related[0], 0.69 * plain.scores("troops")[0])
    # a word the corpus has is matched as itself, never expanded
    assert np.array_equal(expanded.scores("treaty"), plain.scores("treaty"))


def test_a_paraphrase_naming_what_the_text_calls_otherwise_finds_its_section(searcher):
    """"Beijing" is not in the text; "China" is. Before related words, the generic
    introduction came first."""
    answer = searcher.search("What does Beijing's growing clout mean for the alliance?")
    assert answer.hits[0].chunk.section != "introduction"
    assert "China" in answer.hits[0].chunk.text
