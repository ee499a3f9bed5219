"""The chat UI's flows in process, with streamlit.testing.v1.AppTest (real index and model)."""

import html
import re

import pytest
from streamlit.testing.v1 import AppTest

from alliance_qa import formats
from alliance_qa.config import Settings
from alliance_qa.indexing import build_index
from conftest import ROOT, SHIPPED_PARAGRAPHS, SHIPPED_SECTIONS

APP = str(ROOT / "app.py")
CITED = "us-rok-alliance-history/key-provisions-of-the-treaty#p2"


def serve_corpus(corpus, index_dir, embedder, monkeypatch) -> Settings:
    """Build a real index of `corpus` and point the app at both."""
    settings = Settings(corpus_dir=corpus, index_dir=index_dir)
    build_index(settings, embedder)
    monkeypatch.setenv("ALLIANCE_QA_CORPUS", str(corpus))
    monkeypatch.setenv("ALLIANCE_QA_INDEX", str(index_dir))
    return settings


def start(**query) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def alerts(where, kind: str) -> list[str]:
    """The texts of the app's message boxes of one kind ("error", "info", …) in `where`
    (the page, the sidebar or a chat message), as shown."""
    return [html.unescape(re.sub(r"<br>", "\n", re.sub(r"^<div[^>]*>|</div>$", "", m.value)))
            for m in where.markdown if m.value.startswith(f'<div class="aqa-alert {kind}"')]


def all_markdown(at) -> str:
    return "\n".join(m.value for m in at.markdown)


def assistant_html(at) -> str:
    return "\n".join(m.value for message in at.chat_message if message.name == "assistant"
                     for m in message.markdown)


def test_new_user_sees_an_explanation_and_example_questions(page_index):
    at = start()
    assert not at.exception
    assert "Ask a question about the documents" in all_markdown(at)
    labels = [b.label for b in at.button]
    assert sum(label.endswith("?") for label in labels) == 3
    example = next(b for b in at.button if b.label.endswith("?"))
    example.click().run()
    assert not at.exception
    assert [m.name for m in at.chat_message] == ["user", "assistant"]
    assert not [b for b in at.button if b.label.endswith("?")]     # asked: examples gone


def test_ask_shows_passage_cards_with_citations_and_highlights(page_index):
    at = start()
    at.chat_input[0].set_value("What are the key provisions of the treaty?").run()
    assert not at.exception
    shown = assistant_html(at)
    assert shown.count('class="aqa-card"') == 3
    assert "§1.2 Key provisions of the treaty, ¶" in shown
    assert "<mark>" in shown and "relevance" in shown
    assert "<summary>Open §1.2 Key provisions of the treaty</summary>" in shown


def test_a_misspelt_question_is_answered_and_says_how_it_was_read(page_index):
    at = start()
    at.chat_input[0].set_value("What are the key provisons of the treaty?").run()
    assert not at.exception
    assert alerts(at, "info") == ["Read “provisons” as “provisions”."]
    assert "§1.2 Key provisions of the treaty, ¶" in assistant_html(at)
    assert ">What are the key provisons of the treaty?<" in at.chat_message[0].markdown[0].value


def test_each_citation_opens_its_section_with_the_paragraph_marked(page_index):
    at = start()
    at.chat_input[0].set_value("What are the key provisions of the treaty?").run()
    html_text = assistant_html(at)
    folds = html_text.split("<details")[1:]
    assert len(folds) == 3
    fold = next(f for f in folds if "Open §1.2 Key provisions" in f)
    assert fold.count('class="aqa-para') == 3 and fold.count("aqa-para cited") == 1
    assert "<code>us&#45;rok&#45;alliance&#45;history/key&#45;provisions" in fold
    assert 'href="?cite=us-rok-alliance-history/key-provisions-of-the-treaty%23p' in fold


def test_off_topic_question_says_so_first_then_low_confidence_passages(page_index):
    at = start()
    at.chat_input[0].set_value("How do I bake sourdough bread?").run()
    shown = assistant_html(at)
    assert shown.index("do not appear to answer") < shown.index("aqa-card")
    assert shown.count("aqa-low\">low confidence<") == 3


def test_cite_deep_link_shows_the_paragraph(page_index):
    at = start(cite=CITED)
    assert not at.exception
    text = all_markdown(at)
    assert "Cited: §1.2 Key provisions of the treaty, ¶2" in text
    assert '<div class="aqa-para cited" id="p2">' in text
    assert any(c.value == CITED for c in at.code)


@pytest.mark.parametrize("bad", ["../../etc/passwd", "us-rok-alliance-history/nope#p1",
                                 "<script>alert(1)</script>"])
def test_bad_deep_links_are_refused_in_words(page_index, bad):
    at = start(cite=bad)
    assert not at.exception
    assert "names no paragraph or section" in alerts(at, "error")[0]


def test_citation_lookup_box_takes_ids_numbers_and_headings(page_index):
    at = start()
    box = at.sidebar.text_input[0]
    box.set_value("1.2").run()
    assert "§1.2 Key provisions of the treaty" in "\n".join(m.value for m in at.sidebar.markdown)
    box.set_value(CITED).run()
    assert "The treaty also emphasizes" in "\n".join(m.value for m in at.sidebar.markdown)
    box.set_value("no such thing").run()
    assert "Nothing is cited as" in alerts(at.sidebar, "error")[0]


def test_outline_lists_every_section_of_the_shipped_document(page_index):
    at = start()
    outline = next(e for e in at.sidebar.expander if e.label == "Browse the outline")
    links = "\n".join(m.value for m in outline.markdown).count('href="?cite=')
    assert links == SHIPPED_SECTIONS


def test_sidebar_shows_the_shipped_document_s_index_status(page_index):
    at = start()
    status = "\n".join(m.value for m in at.sidebar.markdown)
    assert f"1 document(s), {SHIPPED_SECTIONS} sections, {SHIPPED_PARAGRAPHS} passages" in status
    assert "Status: fresh" in status
    assert "questions run by onnxruntime" in status      # the build's export, not PyTorch


def test_a_damaged_documents_file_is_refused_by_the_page_like_any_index_file(page_index):
    """Search never reads the documents, but the page lists them: it refuses them at open."""
    from alliance_qa.store import live_folder
    (live_folder(page_index) / "documents.json").write_text("[]")
    at = start()
    assert not at.exception
    assert "does not match its manifest" in alerts(at, "error")[0]
    assert at.chat_input[0].disabled


@pytest.mark.unit
def test_missing_index_is_explained_and_the_app_still_starts(tmp_path, monkeypatch):
    monkeypatch.setenv("ALLIANCE_QA_INDEX", str(tmp_path / "missing"))
    at = start()
    assert not at.exception
    assert "There is no index" in alerts(at, "error")[0]
    assert "alliance-qa build" in alerts(at, "error")[0]
    assert at.chat_input[0].disabled


@pytest.mark.full
def test_rebuild_from_the_sidebar_makes_a_missing_index(tmp_path, monkeypatch):
    monkeypatch.setenv("ALLIANCE_QA_INDEX", str(tmp_path / "fresh"))
    at = start()
    next(b for b in at.sidebar.button if b.label == "Rebuild the index").click().run()
    assert not at.exception
    assert not at.error and not alerts(at, "error")
    assert "Status: fresh" in "\n".join(m.value for m in at.sidebar.markdown)


def test_clear_chat_and_download(page_index):
    at = start()
    at.chat_input[0].set_value("What is SOFA?").run()
    at.chat_input[0].set_value("").run()
    assert len(at.chat_message) == 4           # the empty question is answered gently
    assert "Type a question" in alerts(at.chat_message[3], "info")[0]
    answer = at.session_state.messages[1]["answer"]
    download = formats.transcript_markdown(        # what the download button is given
        [m for m in at.session_state.messages if "error" not in m])
    assert download.startswith("# alliance-qa conversation\n\n## Q: What is SOFA?")
    assert f"**[1] {answer.hits[0].chunk.citation}**" in download
    assert f"(`{answer.hits[0].chunk.id}`)" in download and "Type a question" not in download
    next(b for b in at.button if b.label == "Clear the chat").click().run()
    assert len(at.chat_message) == 0


@pytest.mark.parametrize("question", [
    "<script>alert(1)</script>", "[click](javascript:alert(1)) ![x](http://x/y.png)",
    "$\\frac{1}{2}$ **bold** <b>html</b>",
])
def test_markup_in_questions_is_shown_as_text(page_index, question):
    at = start()
    at.chat_input[0].set_value(question).run()
    assert not at.exception
    shown = at.chat_message[0].markdown[0].value
    inner = shown.removeprefix('<div class="aqa-question">').removesuffix("</div>")
    assert "<" not in inner and "[" not in inner and "$" not in inner and "*" not in inner
    assert html.unescape(inner) == question


@pytest.mark.full
def test_a_rebuild_while_serving_takes_effect_on_the_next_question(embedder, corpus_copy,
                                                                   tmp_path, monkeypatch):
    settings = serve_corpus(corpus_copy, tmp_path / "live", embedder, monkeypatch)
    at = start()
    at.chat_input[0].set_value("What is SOFA?").run()
    assert "Status of Forces" in assistant_html(at)
    (corpus_copy / "zebra.md").write_text("# Zebra Accord\n\n## Terms\n\nThe zebra accord of "
                                          "2031 set rules for striped crossings.\n")
    build_index(settings, embedder)                 # as `alliance-qa build` would, meanwhile
    at.chat_input[0].set_value("What did the zebra accord set rules for?").run()
    assert not at.exception
    last = at.chat_message[-1].markdown[0].value
    assert "Zebra Accord" in last and "striped crossings" in last
    assert "2 document(s)" in "\n".join(m.value for m in at.sidebar.markdown)


def test_a_failed_rebuild_is_explained_and_the_old_index_keeps_serving(page_index, tmp_path,
                                                                       monkeypatch):
    at = start()
    empty = tmp_path / "emptied"
    empty.mkdir()
    monkeypatch.setenv("ALLIANCE_QA_CORPUS", str(empty))
    at.run()                                   # the page sees the change: Rebuild offered
    next(b for b in at.sidebar.button if b.label == "Rebuild the index").click().run()
    assert not at.exception
    assert "No usable documents" in alerts(at.sidebar, "error")[0]
    at.chat_input[0].set_value("What is SOFA?").run()
    assert "Status of Forces" in assistant_html(at)
    assert "Status: stale: us-rok-alliance-history.md was removed" in \
        html.unescape("\n".join(m.value for m in at.sidebar.markdown))


@pytest.mark.full
def test_with_several_documents_answers_name_them_and_can_be_filtered(embedder, corpus_copy,
                                                                       tmp_path, monkeypatch):
    (corpus_copy / "zebra.md").write_text("# Zebra Accord\n\n## Terms\n\nThe zebra accord "
                                          "treaty set rules for striped crossings.\n")
    serve_corpus(corpus_copy, tmp_path / "two", embedder, monkeypatch)
    at = start()
    at.chat_input[0].set_value("treaty provisions").run()
    assert "The History of the US–South Korea Military Alliance › " in assistant_html(at)
    at.sidebar.selectbox[0].select("Zebra Accord").run()
    at.chat_input[0].set_value("treaty provisions").run()
    last = at.chat_message[-1].markdown[0].value
    assert last.count('class="aqa-card') == 1 and "Zebra Accord › Terms" in last


@pytest.mark.full
def test_markup_inside_a_corpus_file_is_shown_as_text(embedder, tmp_path, monkeypatch):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "tricky.md").write_text(
        "# Tricky\n\n## Markup\n\nThe zebra note <script>alert(1)</script> links "
        "[here](javascript:alert(2)) and shows ![pic](http://x/y.png) with $E=mc^2$ and "
        "<b>bold</b>.\n")
    serve_corpus(corpus, tmp_path / "index", embedder, monkeypatch)
    at = start()
    at.chat_input[0].set_value("zebra note").run()
    shown = assistant_html(at)
    text = shown[shown.index('class="aqa-text"'):]
    text = text[:text.index("</div>")]
    assert "<script" not in text and "<b>" not in text and "](" not in text and "$" not in text
    assert "&#60;script&#62;alert&#40;1&#41;&#60;/script&#62;" in text
