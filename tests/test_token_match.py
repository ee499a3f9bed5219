"""Word-level matching: which question pieces count, and the best-match arithmetic, checked
against a plain loop over the stored piece vectors of the real index."""

import numpy as np

from alliance_qa.acronyms import expand
from alliance_qa.language import STOPWORDS


def encode(searcher, question):
    encoding = searcher.encode(question)
    words = searcher.embedder.words(encoding.tokens.ids)
    return encoding, words, searcher.tokens.query_weights(encoding.tokens, words)


def test_only_content_pieces_weigh_and_rare_ones_weigh_more(searcher):
    _, words, weights = encode(searcher, "How did the alliance respond to Patriot batteries?")
    weighted = {w for w, x in zip(words, weights) if x > 0}
    assert weighted == {"alliance", "respond", "patriot", "batteries"}
    assert np.isclose(weights.sum(), 1.0)
    by_word = dict(zip(words, weights))
    # "alliance" is in almost every chunk, "patriot" in one
    assert by_word["patriot"] > 3 * by_word["alliance"]


def test_a_question_of_function_words_only_scores_nothing(searcher):
    encoding, _, weights = encode(searcher, "What is it and how?")
    assert not weights.any()
    pool = np.arange(len(searcher.chunks))
    assert not searcher.tokens.match(encoding.tokens, weights, pool).any()


def test_scores_equal_a_plain_loop_over_each_chunks_pieces(searcher):
    encoding, _, weights = encode(searcher, "Which accord governs American service members?")
    pool = np.array([40, 3, 5, 4, 17, 0, 54, 1])      # any order, runs and single chunks
    scores = searcher.tokens.match(encoding.tokens, weights, pool)
    table = searcher.index.token_table
    rows = searcher.index.tokens.rows(0, len(table))
    for chunk, score in zip(pool, scores):
        mine = rows[table[:, 0] == chunk]
        best = (encoding.tokens.vectors @ mine.T).max(axis=1)
        assert np.isclose(score, weights @ best, atol=1e-5)


def test_the_stored_pieces_are_the_content_pieces_of_the_chunks_context_text(searcher,
                                                                              embedder):
    chunk = 7
    text = expand(searcher.chunks[chunk].context_text(), searcher.acronyms)
    _, (fresh,) = embedder.encode_with_pieces([text])
    table = searcher.index.token_table
    stored = table[table[:, 0] == chunk, 1]
    words = embedder.words(fresh.ids)
    assert list(stored) == [i for i, w in zip(fresh.ids, words)
                            if w.strip("#").isalnum() and w not in STOPWORDS]
    # and each stored row is close to the vector the model gives that piece in context
    rows = np.flatnonzero(table[:, 0] == chunk)
    decoded = searcher.index.tokens.rows(rows[0], rows[-1] + 1)
    original = fresh.vectors[[i for i, w in enumerate(words)
                              if w.strip("#").isalnum() and w not in STOPWORDS]]
    assert np.median(np.sum(decoded * original, axis=1)) > 0.95


def test_word_matching_finds_a_passage_that_shares_no_exact_question_word(searcher):
    """"service members" and "accord" appear nowhere; the SOFA passages are found by the
    words' meaning in context ("personnel", "agreement")."""
    encoding, _, weights = encode(searcher, "Which accord governs American service members?")
    pool = np.arange(len(searcher.chunks))
    scores = searcher.tokens.match(encoding.tokens, weights, pool)
    best = searcher.chunks[int(np.argmax(scores))]
    assert "Status of Forces Agreement" in best.text


def test_rows_decoded_once_at_load_or_per_question_score_alike(searcher, monkeypatch):
    import alliance_qa.token_codes as token_codes
    from alliance_qa.token_match import TokenMatcher
    stored = searcher.index.tokens
    monkeypatch.setattr(token_codes, "DECODE_ALL_BELOW_BYTES", 0)    # as for a large index
    per_question = token_codes.TokenCodes(stored.ids, stored.pieces, stored.centroids,
                                          stored.codebooks, stored.codes, stored.trained_rows)
    assert per_question._decoded is None and stored._decoded is not None
    kept = TokenMatcher(per_question, searcher.index.token_table, len(searcher.chunks),
                        searcher.index.token_frequency)
    pool = np.arange(len(searcher.chunks))
    for question in ("Which accord governs American service members?", "burden sharing"):
        encoding, _, weights = encode(searcher, question)
        assert np.allclose(kept.match(encoding.tokens, weights, pool),
                           searcher.tokens.match(encoding.tokens, weights, pool),
                           atol=1e-6)
