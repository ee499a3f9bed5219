"""Word-level matching: which question pieces count, and the best-match arithmetic, checked
against a plain loop over the stored piece vectors of the real index."""

import numpy as np

from alliance_qa.acronyms import expand


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
    rows, table = searcher.tokens.vectors, searcher.index.token_table
    for chunk, score in zip(pool, scores):
        mine = rows[table[:, 0] == chunk]
        best = (encoding.tokens.vectors @ mine.T).max(axis=1)
        assert np.isclose(score, weights @ best, atol=1e-5)


def test_the_stored_pieces_are_those_of_the_chunks_context_text(searcher, embedder):
    chunk = 7
    text = expand(searcher.chunks[chunk].context_text(), searcher.acronyms)
    fresh = embedder.encode_tokens([text])[0]
    table = searcher.index.token_table
    assert np.array_equal(fresh.ids, table[table[:, 0] == chunk, 1])


def test_word_matching_finds_a_passage_that_shares_no_exact_question_word(searcher):
    """"service members" and "accord" appear nowhere; the SOFA passages are found by the
    words' meaning in context ("personnel", "agreement")."""
    encoding, _, weights = encode(searcher, "Which accord governs American service members?")
    pool = np.arange(len(searcher.chunks))
    scores = searcher.tokens.match(encoding.tokens, weights, pool)
    best = searcher.chunks[int(np.argmax(scores))]
    assert "Status of Forces Agreement" in best.text


def test_word_pieces_are_stored_as_float16_and_score_alike_widened_or_not(searcher,
                                                                          monkeypatch):
    import alliance_qa.token_match as token_match
    from alliance_qa.store import matrix
    stored = matrix(searcher.index.views["tokens"])
    assert stored.dtype == np.float16                       # half the bytes on disk
    monkeypatch.setattr(token_match, "WIDEN_BELOW_BYTES", 0)   # as for a large index
    kept = token_match.TokenMatcher(stored, searcher.index.token_table, len(searcher.chunks))
    assert kept.vectors.dtype == np.float16 and searcher.tokens.vectors.dtype == np.float32
    pool = np.arange(len(searcher.chunks))
    for question in ("Which accord governs American service members?", "burden sharing"):
        encoding, _, weights = encode(searcher, question)
        assert np.allclose(kept.match(encoding.tokens, weights, pool),
                           searcher.tokens.match(encoding.tokens, weights, pool),
                           atol=1e-5)
