"""Retrieval: FAISS against brute force, answers with citations and highlights, abstention,
bad questions, and thread safety."""

import threading

import numpy as np
import pytest

from alliance_qa.errors import UnknownDocument
from alliance_qa.questions import EmptyQuestion

SECTION = "us-rok-alliance-history/"


def test_faiss_search_equals_a_brute_force_dot_product(searcher, embedder):
    query = embedder.encode(["What did the treaty provide?"])[0]
    for view, matrix in (("text", searcher.text_vectors), ("context", searcher.context_vectors)):
        scores, ids = searcher.index.views[view].search(query[None, :], 10)
        brute = matrix[:] @ query
        order = np.argsort(-brute)[:10]
        assert np.allclose(scores[0], brute[order], atol=1e-5)
        assert set(ids[0][:5]) == set(order[:5]) or np.allclose(brute[ids[0][:5]],
                                                                 brute[order[:5]], atol=1e-5)


def test_best_sentences_of_a_pool_equal_each_chunks_own_best(searcher, embedder):
    query = embedder.encode(["What did the treaty provide?"])[0]
    pool = np.array([40, 3, 5, 4, 17, 0, 54, 1])
    best = searcher.best_sentences(query, pool)
    assert np.allclose(best, [searcher.sentence_scores(query, c).max() for c in pool])


@pytest.mark.parametrize("question, section", [
    ("What are the key provisions of the 1953 treaty?", "key-provisions-of-the-treaty"),
    ("What is SOFA?", "the-status-of-forces-agreement-sofa-updates"),
    ("Which neighbouring powers react to the alliance?",
     "impact-of-the-us-and-south-korea-military-alliance-history-on-regional-security"),
    ("burden sharing disputes", "challenges-and-controversies-in-the-alliance"),
])
def test_answers_cite_the_right_section_first(searcher, question, section):
    answer = searcher.search(question)
    assert not answer.abstained
    first = answer.hits[0].chunk
    assert first.id.startswith(SECTION + section + "#p")
    assert first.citation.startswith("§")


def test_highlight_is_a_sentence_of_the_passage_that_answers(searcher):
    answer = searcher.search("What kinds of missiles does THAAD protect against?")
    hit = answer.hits[0]
    start, end = hit.highlights[0]
    assert "short, medium, and intermediate-range ballistic missiles" in hit.chunk.text[start:end]


def test_acronym_and_expansion_find_the_same_passage(searcher):
    short = searcher.search("THAAD deployment").hits[0].chunk.id
    long = searcher.search("Terminal High Altitude Area Defense deployment").hits[0].chunk.id
    assert short == long


def test_top_passages_are_distinct_and_ranked(searcher):
    answer = searcher.search("joint military exercises", k=5)
    assert [h.rank for h in answer.hits] == [1, 2, 3, 4, 5]
    assert len({h.chunk.id for h in answer.hits}) == 5


@pytest.mark.parametrize("question", [
    "What is the capital of France?", "How do I bake sourdough bread?", "Tell me a joke.",
])
def test_off_topic_questions_abstain_but_keep_passages(searcher, question):
    answer = searcher.search(question)
    assert answer.abstained and answer.confidence < 0.5 and answer.reason
    assert len(answer.hits) == 3


@pytest.mark.parametrize("question", [
    "What is the best hotel in Seoul?", "How do I renew my passport in South Korea?",
])
def test_questions_near_the_subject_that_the_text_does_not_treat_abstain(searcher, question):
    """They share the collection's names, and the build calibrated on questions that do."""
    answer = searcher.search(question)
    assert answer.abstained and answer.reason.startswith("Nothing in") and answer.hits


@pytest.mark.parametrize("question", [
    "When was THAAD deployed in South Korea?",
    "How many American troops are stationed in South Korea today?",
    "What did the 2018 inter-Korean summit agree on?",
    "Who was the US president when the Mutual Defense Treaty was signed?",
    "Which city hosts the largest US base in Korea?",
    "What did the THAAD deployment cost?",
    "What is the US military budget?",
    "How many soldiers does the US keep at Camp Humphreys?",     # "both nations" is no count
])
def test_questions_the_text_does_not_answer_abstain(searcher, question):
    """A check finds the kind of fact asked missing, whether or not the score alone would
    already abstain (the reason shown is then the score's)."""
    answer = searcher.search(question)
    assert answer.abstained and answer.fired
    assert answer.reason.startswith(("The closest passages", "The sentences", "Nothing in"))


@pytest.mark.parametrize("question", [
    "Who signed the Mutual Defense Treaty?", "Which neighbouring powers react to the alliance?",
    "Where are U.S. forces stationed?", "How many nations does the treaty commit to mutual "
    "defense?",
])
def test_who_where_questions_the_text_answers_are_answered(searcher, question):
    assert not searcher.search(question).abstained


def test_a_date_question_the_text_answers_is_answered(searcher):
    answer = searcher.search("When was the Mutual Defense Treaty signed?")
    assert not answer.abstained
    assert "1953" in answer.hits[0].chunk.text


@pytest.mark.parametrize("question", ["", "   ", "\n\t", "?!?...", "\x00\x01"])
def test_empty_questions_are_refused_gently(searcher, question):
    with pytest.raises(EmptyQuestion) as error:
        searcher.search(question)
    assert "Type a question" in str(error.value)


@pytest.mark.parametrize("question", [
    "treaty\x00provisions\x07", "What about THAAD? 🚀🇰🇷", "ما هو التحالف", "한미동맹의 역사는?",
    "Mixed 한국 and English treaty", "lone \ud800 surrogate treaty", "<script>alert(1)</script>",
    "[link](http://example.com) ![img](x.png) $x^2$", "ｆｕｌｌｗｉｄｔｈ treaty",
])
def test_odd_text_is_answered_or_refused_in_words(searcher, question):
    answer = searcher.search(question)
    assert len(answer.hits) == 3
    assert isinstance(answer.abstained, bool)


def test_a_huge_question_is_shortened_with_a_note(searcher):
    answer = searcher.search("treaty provisions " * 6000)
    assert len(answer.question) <= 1000
    assert "only its first" in answer.notices[0]
    assert answer.hits


def test_a_pasted_citation_id_returns_that_passage(searcher):
    cid = SECTION + "key-provisions-of-the-treaty#p2"
    answer = searcher.search(cid)
    assert [h.chunk.id for h in answer.hits] == [cid]
    assert "citation id" in answer.notices[0]


def test_document_filter(searcher):
    assert searcher.search("treaty", document="us-rok-alliance-history").hits
    with pytest.raises(UnknownDocument, match="alliance-qa sections"):
        searcher.search("treaty", document="no-such-document")


QUESTIONS = ["What is THAAD?", "treaty provisions", "Why does the US keep forces in Korea?",
             "sofa rules", "future of the alliance", "What is the capital of France?",
             "cold war", "burden sharing"]


@pytest.mark.slow
def test_threads_share_one_searcher_and_get_the_serial_results(searcher):
    def key(answer):
        return (answer.abstained, tuple((h.chunk.id, h.score) for h in answer.hits))
    serial = {q: key(searcher.search(q)) for q in QUESTIONS}
    mismatches, done = [], []

    def worker(offset):
        for i in range(200):
            q = QUESTIONS[(i + offset) % len(QUESTIONS)]
            if key(searcher.search(q)) != serial[q]:
                mismatches.append(q)
        done.append(offset)
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(done) == 8 and mismatches == []


@pytest.mark.parametrize("question", [
    "What gives Seoul confidence that Washington will come to its defense?",
    "regional securty impact",
    pytest.param("cyber stuff", marks=pytest.mark.xfail(
        strict=True, reason="two vague words score below the two-sided threshold "
        "(docs/quality.md, what is still weak)")),
])
def test_paraphrases_typos_and_fragments_are_not_taken_for_new_subjects(searcher, question):
    assert not searcher.search(question).abstained


@pytest.mark.parametrize("typed, meant", [
    ("missle", "missile"), ("allaince", "alliance"), ("srtategies", "strategies"),
    ("goverment", "government"), ("interoperabilty", "interoperability")])
def test_misspelt_words_are_read_as_the_words_meant(searcher, typed, meant):
    assert searcher.speller.correction(typed) == meant


@pytest.mark.parametrize("word", ["service", "protest", "promise", "senior", "bread", "reshaped",
                                  "clout", "zzzzzz"])
def test_real_words_and_gibberish_are_left_as_typed(searcher, word):
    """The first five are one or two letters from a corpus word (serve, protect, provision,
    sensor, ready), the next two are English words the model's vocabulary lacks."""
    assert searcher.speller.correction(word) is None


def test_names_and_acronyms_are_not_spelling_mistakes(searcher):
    question = "Did Yoon or the KATUSA program change OPCON plans in the DPRK?"
    assert searcher.speller.correct(question) == (question, ())
    assert searcher.speller.correction("dprk") is None            # not "dark"
    for word in ("busan", "osan"):                                 # not "susan", "san"
        assert (searcher.speller.correction(word) or word)[0] == word[0]


@pytest.mark.parametrize("typed, meant", [
    ("How do the SOFA updates build trst?", "How do the SOFA updates build trust?"),
    ("Whta did the treaty provide?", "What did the treaty provide?"),
])
def test_lost_vowels_and_a_first_word_are_read_right(searcher, typed, meant):
    assert searcher.speller.correct(typed)[0] == meant


@pytest.mark.parametrize("question", ["Which missile batteries complement TAHAD?",
                                      "Did Geven sign the treaty?", "What does FLIS mean?",
                                      "Did Mrs Pyongyangg sign the treaty?"])
def test_capitalized_names_and_acronyms_are_never_rewritten_into_other_words(searcher,
                                                                             question):
    """A capital inside the question may be a name, all capitals an acronym: a common word
    of the corpus one letter away is not what was meant ("Geven" is not "Given"), nor a name
    two slips away."""
    assert searcher.speller.correct(question) == (question, ())


@pytest.mark.unit
def test_a_slip_in_a_name_is_read_as_the_corpus_name_one_edit_away():
    from alliance_qa.spelling import Speller, corpus_words
    speller = Speller(corpus_words(["The Rhine flows north. Given the Rhine, Basel grew.",
                                    "It was given to the city of Basel.", "Rhine barges."]))
    assert speller.names == {"rhine", "basel", "it"}
    assert speller.correct("How long is the Rhiine?") == ("How long is the Rhine?",
                                                          (("Rhiine", "Rhine"),))
    assert speller.correct("Who founded Bsael?") == ("Who founded Basel?",
                                                       (("Bsael", "Basel"),))
    assert speller.correct("Did Geven sign?") == ("Did Geven sign?", ())   # not a name here
    assert speller.correct("Did geven sign?") == ("Did given sign?", (("geven", "given"),))


@pytest.mark.unit
def test_a_short_decade_is_read_as_the_one_the_corpus_writes_in_full():
    from alliance_qa.spelling import Speller
    speller = Speller({}, keywords=["1970s", "1980s", "1880s", "80s", "treaty"])
    assert speller.correct("what happened in the 70s and ’70s?") == (
        "what happened in the 1970s and 1970s?", (("70s", "1970s"), ("’70s", "1970s")))
    assert speller.correct("and in the 80s, or 1975, or the 60s?") == (
        "and in the 80s, or 1975, or the 60s?", ())        # two centuries, or none written
    assert Speller({}).correct("the 70s") == ("the 70s", ())


def test_the_built_index_reads_a_short_decade_as_the_text_writes_it(searcher):
    answer = searcher.search("what happened in the 70s")
    assert answer.searched.startswith("what happened in the 1970s")
    assert not answer.abstained and "1970s" in answer.hits[0].chunk.citation


@pytest.mark.unit
def test_a_word_whose_other_form_the_corpus_has_is_left_alone():
    from alliance_qa.spelling import Speller, corpus_words
    speller = Speller(corpus_words(["Upregulation of the gene was measured."]))
    assert speller.correction("upregulated") is None            # not "unrelated"
    assert speller.correction("upregulaton") == "upregulation"


@pytest.mark.parametrize("clean, typed", [
    ("Which neighbouring countries adjust their strategies because of the alliance?",
     "Which neighbouring countries adjust their srtategies because of the alliance?"),
    ("treaty provisions", "treaty provisons"),
    ("What rules govern American soldiers based on the peninsula?",
     "What rules govern American soldiers based on the pennisula?"),
])
def test_a_typo_finds_what_the_word_meant_finds(searcher, clean, typed):
    asked, slipped = searcher.search(clean), searcher.search(typed)
    assert [h.chunk.id for h in slipped.hits] == [h.chunk.id for h in asked.hits]
    assert slipped.question == typed                           # shown as typed
    assert any(notice.startswith("Read “") for notice in slipped.notices)
    assert not any(notice.startswith("Read “") for notice in asked.notices)


@pytest.mark.parametrize("question", ["What is this document about overall?", "Summarize the text",
                                      "What are the main points of the document?",
                                      "give me an overview"])
def test_questions_about_the_whole_document_get_its_opening(searcher, question):
    answer = searcher.search(question)
    assert not answer.abstained
    assert [h.chunk.paragraph_id.split("/")[1] for h in answer.hits[:2]] == \
        ["introduction#p1", "introduction#p2"]                       # in reading order
    assert any("as a whole" in notice for notice in answer.notices)


@pytest.mark.parametrize("question", ["What does the text say about THAAD?",
                                      "Summarize the treaty provisions",
                                      "Which document describes the status of US forces?"])
def test_questions_about_a_subject_of_the_document_are_searched_as_usual(searcher, question):
    answer = searcher.search(question)
    assert answer.hits[0].chunk.section != "introduction"
    assert not any("as a whole" in notice for notice in answer.notices)


@pytest.mark.unit
@pytest.mark.parametrize("question, searched", [
    ("why do us troops stay in korea", "why do us troops stay in korea?"),
    ("What’s SOFA", "What’s SOFA?"),
    ("Is THAAD still deployed?", "Is THAAD still deployed?"),
    ("How did it end.", "How did it end."),
    ("treaty provisions", "treaty provisions"),
    ("Whatever happened to the treaty", "Whatever happened to the treaty"),
])
def test_a_question_asked_without_its_question_mark_is_searched_with_one(question, searched):
    from alliance_qa.questions import as_a_question
    assert as_a_question(question) == searched


@pytest.mark.unit
@pytest.mark.parametrize("message, asked", [
    ("Hi! Quick question: what is SOFA? Thanks!", "What is SOFA?"),
    ("hey, do you know when the treaty was signed thx", "when the treaty was signed"),
    ("Good morning team, please explain how THAAD works.", "How THAAD works."),
    ("Can you tell me about the alliance vision?", "The alliance vision?"),
    ("Thank you for the treaty summary", "Thank you for the treaty summary"),
    ("Thanks!", "Thanks!"),                                # nothing but chatter: left alone
])
def test_greetings_thanks_and_requests_are_not_what_is_asked(message, asked):
    from alliance_qa.questions import without_chatter
    assert without_chatter(message) == asked


def unmarked(question):
    return question.rstrip("?")


def chatty(question):
    return f"Hi! Could you tell me {question[0].lower()}{question[1:]} Thanks!"


@pytest.mark.parametrize("retype, question", [
    # without the question mark, these four had moved their right first passage down
    (unmarked, "How does the partnership keep the region calm?"),
    (unmarked, "Why does the partnership discourage Pyongyang from attacking?"),
    (unmarked, "What legal foundation does the alliance rest on?"),
    (unmarked, "What rules govern American soldiers based on the peninsula?"),
    # "Hi, " alone before each evaluation question had cost 12 right first places of 205
    (chatty, "What changed in the status of forces agreement?"),
    (chatty, "How does the partnership keep the region calm?"),
    (chatty, "When was the Mutual Defense Treaty signed?"),
])
def test_a_question_typed_otherwise_gets_the_same_answer(searcher, retype, question):
    plain, retyped = searcher.search(question, k=5), searcher.search(retype(question), k=5)
    assert [h.chunk.id for h in retyped.hits] == [h.chunk.id for h in plain.hits]
    assert (retyped.abstained, retyped.confidence) == (plain.abstained, plain.confidence)


@pytest.mark.unit
@pytest.mark.parametrize("message, asking", [
    ("I'm writing a report on the alliance. What did the treaty provide?",
     "What did the treaty provide?"),
    ("I am reading. What is SOFA? I need it for class.", "What is SOFA?"),
    ("I study the U.S. alliance. burden sharing", "burden sharing"),     # none asks: the last
    ("What is SOFA?", ""),                                              # one sentence
    ("Where are U.S. forces stationed?", ""),             # initials end no sentence
    ("What is SOFA? Why was it updated?", ""),            # every sentence asks
])
def test_the_asking_sentences_of_a_message(message, asking):
    from alliance_qa.questions import asking_sentences
    assert asking_sentences(message) == asking


def test_a_sentence_of_context_keeps_what_it_refers_to(searcher):
    """Searched alone, "Why was it deployed?" has nothing to say what "it" is."""
    answer = searcher.search("I'm curious about THAAD. Why was it deployed?")
    assert not answer.abstained
    assert "THAAD" in answer.hits[0].chunk.text


@pytest.mark.parametrize("question", [
    "Where is the relationship heading in the coming years?",
    "What has Seoul done lately to make its own armed forces stronger?",
])
def test_a_sentence_of_context_does_not_change_the_answer(searcher, question):
    """Both had lost their first passage when searched as one text with the context. It
    stays first or second: the second asked with the context is a near-tie between two
    sections (0.3% apart on a CPU with AVX-512 VNNI, which rounds otherwise than AVX2)."""
    plain = searcher.search(question)
    framed = searcher.search(f"I'm writing a report on the US–South Korea alliance. {question}")
    assert plain.hits[0].chunk.id in [h.chunk.id for h in framed.hits[:2]]
    assert not framed.abstained


def test_after_a_sentence_of_context_the_question_is_checked_as_asked(searcher):
    dated = searcher.search("I'm writing a report on the alliance. When was THAAD deployed?")
    assert dated.abstained and "no date or time" in dated.reason    # the "when" check runs


def test_only_the_best_candidates_by_the_other_evidence_are_matched_word_by_word(searcher):
    from dataclasses import replace

    from alliance_qa.search import Searcher
    narrow = Searcher(searcher.index, searcher.embedder,
                      replace(searcher.weights, candidates=30, rerank=25))
    question = "What did the Mutual Defense Treaty provide?"
    wide = searcher.retrieve(searcher.read(question))
    found = narrow.retrieve(narrow.read(question))
    assert len(found.pool) == 25 < len(wide.pool)
    assert narrow.search(question).hits[0].chunk.id == searcher.search(question).hits[0].chunk.id
