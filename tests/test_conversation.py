"""Follow-up questions read with the conversation, on the page and the command line; the
conversation evaluation; choices recorded on the page and scored by `eval --feedback`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from streamlit.testing.v1 import AppTest

from alliance_qa.conversation import Conversation
from alliance_qa.evaluation import evaluate_conversations, load_conversations
from alliance_qa.questions import leans_on_context
from conftest import CORPUS, ROOT

PROVISIONS = "us-rok-alliance-history/key-provisions-of-the-treaty"


@pytest.mark.unit
@pytest.mark.parametrize("question", [
    "What were its main provisions?", "And who opposed it?", "And in the 1980s?",
    "What about SOFA?", "Why?", "Tell me more", "Why does that matter for deterrence?",
    "Do those updates touch on the environment?", "Which one is the most prominent?",
    "What happened then?", "How do they help commanders?"])
def test_questions_that_lean_on_the_conversation(question):
    assert leans_on_context(question)


@pytest.mark.unit
@pytest.mark.parametrize("question", [
    "What is THAAD?", "When was the Mutual Defense Treaty signed?",
    "Is there a plan for missile defense?", "What does the treaty say that the parties owe?",
    "How did the alliance change during the 1970s?", "Who pays for US troops in Korea?"])
def test_questions_that_stand_alone(question):
    assert not leans_on_context(question)


def test_a_follow_up_is_read_with_the_subject_and_a_new_subject_starts_afresh(searcher):
    conversation = Conversation()
    first = searcher.search("What is the Mutual Defense Treaty?")
    conversation = conversation.after(first)
    follow = searcher.search("What were its main provisions?", context=conversation.context)
    assert follow.context and follow.searched.startswith("What is the Mutual Defense Treaty?")
    assert follow.searched.endswith("What were its main provisions?")
    assert "Read as a follow-up to “What is the Mutual Defense Treaty?”" in follow.notices
    assert f"{follow.hits[0].chunk.document}/{follow.hits[0].chunk.section}" == PROVISIONS
    assert not follow.abstained
    conversation = conversation.after(follow)
    assert conversation.subject == first.searched            # the subject is kept
    changed = searcher.search("When was THAAD deployed?", context=conversation.context)
    assert not changed.context and changed.searched == "When was THAAD deployed?"
    assert conversation.after(changed).subject == "When was THAAD deployed?"


def test_ask_json_conversation_reads_each_line_with_the_ones_before(built):
    lines = "What is the Mutual Defense Treaty?\nWhat were its main provisions?\nWhat is THAAD?\n"
    env = {**built.as_env(), "PATH": ""}

    def run(*flags):
        result = subprocess.run([sys.executable, "-m", "alliance_qa", "ask", "--json", *flags],
                                input=lines, capture_output=True, text=True, env=env,
                                timeout=180)
        assert result.returncode == 0, result.stderr
        return [json.loads(line) for line in result.stdout.splitlines()]

    talk, apart = run("--conversation"), run()
    assert talk[1]["searched"].startswith("What is the Mutual Defense Treaty?")
    assert talk[1]["passages"][0]["id"].startswith(PROVISIONS)
    assert talk[2]["searched"] == "What is THAAD?"
    assert apart[1]["searched"] == "What were its main provisions?"


@pytest.mark.full
def test_follow_ups_score_close_to_the_same_questions_written_out(searcher):
    scores = evaluate_conversations(
        searcher, load_conversations(CORPUS.parent / "conversations.jsonl"))
    follow = scores["follow-up"]
    assert follow["turns"] >= 60
    assert follow["hit1"] >= 0.85
    assert follow["hit1"] >= follow["hit1_written_out"] - 0.05
    assert follow["hit1"] > follow["hit1_alone"] + 0.1
    # The threshold learned from questions set among the corpus's names abstains on one
    # bare "Why?" after two turns (docs/quality.md, what is still weak); not on more.
    assert follow["wrongly_abstained"] <= 1
    for kind in ("standalone", "subject-change"):
        assert scores[kind]["hit1"] == scores[kind]["hit1_alone"]


def test_the_page_reads_a_follow_up_and_records_which_passage_answered(page_index, tmp_path,
                                                                       monkeypatch, built):
    record = tmp_path / "feedback.jsonl"
    monkeypatch.setenv("ALLIANCE_QA_FEEDBACK", str(record))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    at.chat_input[0].set_value("What is the Mutual Defense Treaty?").run()
    at.chat_input[0].set_value("What were its main provisions?").run()
    assert not at.exception
    answers = [m for m in at.chat_message if m.name == "assistant"]
    second = "\n".join(m.value for m in answers[1].markdown)
    assert "Read as a follow&#45;up to “What is the Mutual Defense Treaty?”" in second
    assert "§1.2 Key provisions of the treaty" in second.split('class="aqa-card')[1]
    choices = at.get("button_group")
    assert len(choices) == 2 and choices[1].options[-1] == "None of these"
    choices[1].set_value("[1]").run()
    [line] = record.read_text().splitlines()
    saved = json.loads(line)
    assert saved["question"] == "What were its main provisions?"
    assert saved["context"][0] == "What is the Mutual Defense Treaty?"
    assert saved["chosen"] == saved["shown"][0] and saved["chosen"].startswith(PROVISIONS)
    assert "Recorded: [1]. Thank you." in [c.value for c in at.caption]
    result = subprocess.run([sys.executable, "-m", "alliance_qa", "eval", "--feedback",
                             str(record), "--json"], capture_output=True, text=True,
                            env={**built.as_env(), "ALLIANCE_QA_INDEX": str(page_index),
                                 "PATH": ""}, timeout=180)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["answered"] == {"questions": 1, "hit1": 1.0, "hit3": 1.0}


def test_without_a_feedback_file_nothing_is_asked_or_written(page_index, tmp_path):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    at.chat_input[0].set_value("What is the Mutual Defense Treaty?").run()
    assert not at.exception and not at.get("button_group")
    assert not list(tmp_path.glob("*.jsonl"))


def test_a_feedback_file_that_cannot_be_written_is_said_and_nothing_breaks(page_index,
                                                                          tmp_path,
                                                                          monkeypatch):
    monkeypatch.setenv("ALLIANCE_QA_FEEDBACK", str(tmp_path))     # a folder, not a file
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    at.chat_input[0].set_value("What is the Mutual Defense Treaty?").run()
    at.get("button_group")[0].set_value("None of these").run()
    assert not at.exception
    assert any(c.value.startswith("Not recorded: the feedback file cannot be written")
               for c in at.caption)
