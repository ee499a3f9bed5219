"""Abstention: each answer-type check says what is missing only when it truly is, and the
calibration is learned by each index from its own corpus and model."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence

import pytest

from alliance_qa import abstention
from alliance_qa.abstention import Calibration
from alliance_qa.questions import prepare, read_question


def question(text: str):
    return read_question(prepare(text), lambda t: (t, ()))


@pytest.mark.unit
@pytest.mark.parametrize("asked, passages", [
    ("What did the Apollo 1 fire change?", ["After the Apollo 1 fire, NASA redesigned it."]),
    ("What happened in 1975?", ["The treaty was amended.", "In 1975 the ban ended."]),
    ("what did they do in the 80s", ["During the 1980s the allies held joint drills."]),
    ("How popular was the show in the late 80's?", ["Ratings fell in 1987."]),
    ("The 4 sales and service centers are viewed as", ["Its four sales and service centers…"]),
    ("A settlement between 2 parties existed before which date?", ["…between both parties…"]),
])
def test_a_number_the_passages_mention_is_never_called_missing(asked, passages):
    assert abstention.missing_number(asked, passages) == ""


@pytest.mark.unit
@pytest.mark.parametrize("asked, passages, missing", [
    ("What happened in 1975?", ["In 1976 the ban ended."], "1975"),
    ("what did they do in the 80s", ["During the 1990s they drilled."], "80s"),
])
def test_a_number_the_passages_lack_is_named(asked, passages, missing):
    assert f"never mention {missing}," in abstention.missing_number(asked, passages)


@pytest.mark.unit
@pytest.mark.parametrize("asked, asks_time", [
    ("When was the treaty signed?", True),
    ("Since when has the alliance shaped regional security?", True),
    ("In what year did it end?", True),
    ("When Washington revisits its military commitments to Seoul, does the basic promise "
     "change?", False),
    ("What changed when the war ended?", False),
])
def test_only_questions_that_ask_when_ask_for_a_time(asked, asks_time):
    assert bool(abstention.missing_time(asked, ["No time at all here."])) == asks_time


@pytest.mark.unit
@pytest.mark.parametrize("sentence", ["The alliance has shaped security since its inception.",
                                      "It was signed in 1953.", "During the eighties it grew.",
                                      "Talks resumed in March.", "The facade dated c1600.",
                                      "Members vote after a general debate.",
                                      "Troops stayed on during the armistice talks.",
                                      "Tides rise twice a day at the harbour.",
                                      "The allies drill annually."])
def test_a_time_expression_answers_a_when_question(sentence):
    assert abstention.missing_time("Since when has the alliance shaped security?",
                                   [sentence]) == ""


@pytest.mark.unit
@pytest.mark.parametrize("sentence", ["The treaty binds both parties.",
                                      "The debate comes before parliament.",
                                      "Upon request, records are shared."])
def test_a_preposition_without_an_event_is_no_time(sentence):
    assert abstention.missing_time("When was the treaty signed?", [sentence])


@pytest.mark.unit
def test_a_role_noun_counts_in_any_of_its_forms():
    passages = ["The combined command coordinates both forces."]
    assert abstention.missing_role("Which technologies help commanders decide faster?",
                                   passages) == ""
    assert "never mention a president" in abstention.missing_role(
        "Who was the president then?", passages)


@pytest.mark.unit
def test_a_how_many_question_needs_a_figure_counting_what_it_asks():
    asked = "How many soldiers does the US keep at Camp Humphreys?"
    assert abstention.missing_quantity(asked, ["Both nations signed it."])
    assert not abstention.missing_quantity(asked, ["About 28,500 soldiers serve there."])


@pytest.mark.unit
@pytest.mark.parametrize("asked", ["How tall is the tower?", "How deep is the harbour?"])
def test_how_tall_asks_for_a_figure(asked):
    assert abstention.missing_quantity(asked, ["It is very tall and deep."])
    assert not abstention.missing_quantity(asked, ["It measures 236 metres."])


@pytest.mark.unit
def test_how_large_may_ask_for_a_judgement():
    assert not abstention.missing_quantity("How large is the American military presence?",
                                           ["The US keeps a substantial presence."])


@pytest.mark.unit
def test_every_check_that_fires_is_reported_and_only_enabled_ones_abstain():
    evidence = abstention.Evidence(5.0, ["It was signed."], ["It was signed."])
    calibration = Calibration(1.0, 0.5, 200, 500)
    asked = question("When was the treaty signed in 1975?")
    verdict = abstention.decide(asked, evidence, calibration)
    assert verdict.abstain and set(verdict.fired) == {"time", "number"}
    assert "no date or time" in verdict.reason
    kept = abstention.decide(asked, evidence, calibration, checks=("number",))
    assert kept.abstain and "never mention 1975" in kept.reason
    assert not abstention.decide(asked, evidence, calibration, checks=()).abstain


@pytest.mark.unit
def test_a_figure_beside_the_best_sentence_in_the_first_passage_answers_how_many():
    best = "Thus, on 1 August 1944, the Warsaw Uprising began."
    first = best + " It lasted 63 days before the insurgents surrendered."
    asked = question("How many days did the Warsaw Uprising last?")
    calibration = Calibration(1.0, 0.5, 200, 500)
    assert not abstention.decide(asked, abstention.Evidence(5.0, [best], [first]),
                                 calibration).abstain
    elsewhere = abstention.Evidence(5.0, [best], [best, "It lasted 63 days."])
    assert abstention.decide(asked, elsewhere, calibration).fired == ("quantity",)


@pytest.mark.unit
def test_confidence_rises_through_the_threshold_between_what_is_and_is_not_answered():
    unanswered = [0.1 * i for i in range(11)]            # 0.0 … 1.0
    answered = [1.0 + 0.1 * i for i in range(21)]        # 1.0 … 3.0
    calibration = Calibration.fit(unanswered, answered)
    assert calibration.reference_questions == 11 and calibration.corpus_questions == 21
    assert Calibration.fit(unanswered, answered, near=4).reference_questions == 7
    assert 0.8 < calibration.threshold < 1.2
    assert calibration.confidence(calibration.threshold) == pytest.approx(0.5)
    assert calibration.confidence(0.0) < 0.1 < 0.9 < calibration.confidence(2.5)
    closer = Calibration.fit(unanswered, [0.6 + 0.1 * i for i in range(21)])
    assert closer.threshold < calibration.threshold      # it follows the answered side too


@pytest.mark.unit
def test_questions_the_corpus_answers_no_higher_than_others_trust_no_score():
    calibration = Calibration.fit([2.0, 2.5, 3.0], [0.1, 0.2, 0.3])
    assert calibration.confidence(10.0) < 0.5


@pytest.mark.unit
def test_questions_made_from_the_corpus_keep_a_sentences_words_in_order_at_question_length():
    sentences = ["The treaty was signed in Washington on 1 October 1953 by both ministers.",
                 "Troops stayed.", "Joint exercises are held every spring near the border."]
    lengths = [3, 5, 7]
    made = abstention.corpus_questions(sentences, lengths, count=30)
    assert made == abstention.corpus_questions(sentences, lengths, count=30)   # repeatable
    assert [len(q.split()) for q in made] == lengths * 10
    for question in made:
        source = next(s.split() for s in sentences if set(question.split()) <= set(s.split()))
        positions = [source.index(word) for word in question.split()]
        assert positions == sorted(positions) and source != ["Troops", "stayed."]
    assert abstention.corpus_questions([], lengths) == []


@pytest.mark.unit
def test_names_are_counted_by_the_texts_that_name_them_inside_a_sentence():
    texts = ["The treaty bound South Korea and the United States. South Korea's army grew.",
             "Troops from the United States stayed in South Korea’s south, said the Court "
             "of Justice.", "Seoul is not counted here: it opens the sentence."]
    names = abstention.corpus_names(texts)
    assert names == {"South Korea": 2, "United States": 2, "Court of Justice": 1}
    assert abstention.corpus_names(texts, sample=1) == abstention.corpus_names(texts, sample=1)
    assert sum(abstention.corpus_names(texts, sample=1).values()) <= 3


@pytest.mark.unit
def test_questions_from_sentences_read_as_asked_equal_those_from_a_list():
    """Calibration reads a stored build's sentences through ViewTexts: one pass to
    count words, then the drawn ones alone, and draws exactly what a list would give."""
    from types import SimpleNamespace

    import numpy as np

    from alliance_qa.view_texts import ViewTexts
    texts = ["The treaty was signed in 1953. It bound both sides.",
             "Troops stayed on the peninsula for decades after the war ended.",
             "Costs were shared. Exercises were held every year. Some were cut back."]
    chunks = [SimpleNamespace(text=text, sentences=tuple(
        (m.start(), m.end()) for m in re.finditer(r"[^.]+\.", text))) for text in texts]
    listed = [c.text[a:b] for c in chunks for a, b in c.sentences]
    starts = np.cumsum([0] + [len(c.sentences) for c in chunks])
    lazy = ViewTexts("sentences", chunks, {}, starts)
    assert len(lazy) == len(listed) == 6
    assert list(lazy) == listed and [lazy[n] for n in range(6)] == listed
    with pytest.raises(IndexError):
        lazy[6]
    lengths = [3, 5, 4]
    assert abstention.corpus_questions(lazy, lengths, 20) == \
        abstention.corpus_questions(listed, lengths, 20)


@pytest.mark.unit
def test_only_the_sampled_texts_are_read():
    """A large build's records are decoded as asked for: naming reads its sample alone."""
    texts = [f"Troops of South Korea met Unit {n} near Seoul." for n in range(50)]
    read = []

    class Recorded(Sequence):
        def __len__(self):
            return len(texts)

        def __getitem__(self, number):
            read.append(number)
            return texts[number]

    assert abstention.corpus_names(Recorded(), sample=5) == abstention.corpus_names(
        texts, sample=5)
    assert len(read) == 5 and len(set(read)) == 5


@pytest.mark.unit
def test_the_names_come_in_the_same_order_in_every_process():
    """The build draws the names by their order: a hash-ordered set made the threshold
    differ from one build of the same corpus to the next."""
    code = ("from alliance_qa.abstention import corpus_names; print(list(corpus_names("
            "['It bound South Korea, the United States, Japan, China and Russia.'])))")
    printed = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env={**os.environ, "PYTHONHASHSEED": seed}, check=True).stdout
               for seed in ("1", "2", "3")}
    assert printed == {"['South Korea', 'United States', 'Japan', 'China', 'Russia']\n"}


@pytest.mark.unit
def test_near_questions_set_the_reference_questions_among_the_corpus_names():
    questions = ["How long should I boil an egg?", "Which team won the league"]
    names = Counter({"South Korea": 30, "Court of Justice": 1})
    near = abstention.near_questions(questions, names)
    assert near == abstention.near_questions(questions, names)            # repeatable
    assert [q.rsplit(" in ", 1)[0] for q in near] == ["How long should I boil an egg",
                                                      "Which team won the league"]
    assert all(q.endswith(("in South Korea?", "in Court of Justice?")) for q in near)
    drawn = Counter(q.rsplit(" in ", 1)[1] for q in abstention.near_questions(
        questions * 100, names))
    assert drawn["South Korea?"] > 10 * drawn["Court of Justice?"]      # as often as named
    assert abstention.near_questions(questions, Counter()) == []


@pytest.mark.unit
def test_the_reference_questions_are_general_and_bundled():
    questions = abstention.reference_questions()
    assert len(questions) >= 200 and len(set(questions)) == len(questions)
    assert not any("korea" in q.lower() or "alliance" in q.lower() for q in questions)


def test_each_index_learns_its_own_calibration(built, tmp_path, embedder, encoders):
    """The build scores the reference questions against its own corpus: a corpus about the
    subjects of some reference questions sets a higher threshold."""
    from alliance_qa.config import Settings
    from alliance_qa.indexing import build_index
    from alliance_qa.store import read_manifest
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "kitchen.md").write_text(
        "# Kitchen notes\n\nBoil an egg for six minutes for a soft yolk.\n\n"
        "Sourdough bread bakes at 230 degrees; the dough rises twice.\n\n"
        "Garam masala blends cumin, coriander, cardamom and pepper.\n", encoding="utf-8")
    other = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", encoders_dir=encoders)
    build_index(other, embedder)
    ours, theirs = (read_manifest(s.index_dir).calibration for s in (built, other))
    assert ours["reference_questions"] == theirs["reference_questions"] >= 200
    assert ours["corpus_questions"] == theirs["corpus_questions"] == abstention.CORPUS_QUESTIONS
    assert ours["near_questions"] == ours["reference_questions"]   # set among its names
    assert theirs["near_questions"] == 0           # the kitchen notes name nothing
    assert ours["threshold"] != theirs["threshold"]
    json.dumps(ours)                                   # stored as plain JSON


@pytest.mark.unit
@pytest.mark.parametrize("stored, refused", [
    (None, "IndexStale"), ({"threshold": "high"}, "IndexCorrupt"), ([1, 2], "IndexCorrupt"),
    ({"threshold": 1.0, "scale": 0.2}, "IndexCorrupt"),
])
def test_a_missing_or_malformed_calibration_is_refused_with_the_rebuild(stored, refused):
    """An index without its calibration never serves with a threshold of nothing."""
    with pytest.raises(Exception) as raised:
        Calibration.from_manifest(stored)
    assert type(raised.value).__name__ == refused
    assert "alliance-qa build" in str(raised.value)
