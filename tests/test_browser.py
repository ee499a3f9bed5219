"""The main user path in a real browser: `streamlit run app.py` and headless Chromium."""

import re
import shutil

import pytest

from alliance_qa.browser import (
    CHAT_BOX,
    ask_in_page,
    concurrent_sessions,
    running_app,
    top_citation,
)
from alliance_qa.config import Settings
from alliance_qa.documents import parse_markdown
from alliance_qa.indexing import build_index
from conftest import BROWSER_TESTS, CORPUS, ROOT
from document_writers import write_pdf

pytestmark = BROWSER_TESTS
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="module")
def app_url(built, tmp_path_factory):
    index = tmp_path_factory.mktemp("browser") / "index"
    shutil.copytree(built.index_dir, index)
    with running_app({"ALLIANCE_QA_INDEX": str(index), "ALLIANCE_QA_CORPUS": str(built.corpus_dir),
                      "ALLIANCE_QA_ENCODERS": str(built.encoders)}) as url:
        yield url



@pytest.fixture
def seed_pdf_corpus(tmp_path):
    """The shipped document as a PDF with bookmarks, alone in a corpus folder."""
    title, sections = parse_markdown(next(CORPUS.glob("*.md")).read_text(), "seed")
    (tmp_path / "corpus").mkdir()
    write_pdf(tmp_path / "corpus" / "us-rok-alliance-history.pdf", title, sections)
    return tmp_path / "corpus"


@pytest.fixture
def page(browser, app_url):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.dialogs = dialogs
    page.goto(app_url)
    page.locator(CHAT_BOX).wait_for(timeout=90_000)
    yield page
    page.close()


def last_answer(page):
    return page.locator('[data-testid="stChatMessage"]').last


def test_ask_open_the_citation_and_screenshot(page):
    ask_in_page(page, "What are the key provisions of the treaty?",
                "Key provisions of the treaty")
    answer = last_answer(page)
    answer.locator(".aqa-card").nth(2).wait_for()
    assert answer.locator(".aqa-card").count() == 3
    assert answer.locator("mark").count() >= 3
    answer.get_by_text("Open §1.2 Key provisions of the treaty").first.click()
    cited = answer.locator("details[open] .aqa-para.cited").first
    cited.wait_for()
    assert cited.inner_text().startswith("¶")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "answer-with-open-citation.png"), full_page=True)
    assert page.locator('[data-testid="stException"]').count() == 0


def test_markup_in_a_question_is_shown_never_run(page):
    question = ("<script>alert('x')</script><img src=x onerror=alert(2)> "
                "[a link](http://example.com) $x^2$ **bold**")
    ask_in_page(page, question, "do not appear")
    asked = page.locator('[data-testid="stChatMessage"]').first
    assert question in asked.inner_text()
    assert asked.locator("a, img, script, strong, .katex").count() == 0
    page.wait_for_timeout(300)
    assert page.dialogs == []
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "markup-as-text.png"), full_page=True)


def test_a_shared_citation_link_opens_the_paragraph(browser, app_url):
    page = browser.new_page()
    page.goto(f"{app_url}/?cite=us-rok-alliance-history/the-status-of-forces-agreement-sofa-"
              "updates%23p3")
    cited = page.locator(".aqa-para.cited")
    cited.wait_for(timeout=90_000)
    assert "updates to the SOFA also emphasize environmental" in cited.inner_text()
    assert page.get_by_text("Cited: §5.1 The Status of Forces Agreement (SOFA) updates, ¶3") \
        .count() == 1
    page.close()


def test_several_sessions_at_once_each_get_their_own_answer(browser, app_url, searcher):
    questions = ["What is SOFA?", "burden sharing disputes", "What kinds of missiles does "
                 "THAAD protect against?", "Which neighbouring powers react to the alliance?"]
    expected = [searcher.search(q).hits[0].chunk.citation for q in questions]
    citations, latencies, _ = concurrent_sessions(browser, app_url, questions, rounds=2)
    assert citations == [[e, e] for e in expected]
    assert len(latencies) == 8


def test_markup_in_a_corpus_file_is_shown_never_run(browser, embedder, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "tricky.md").write_text(
        "# Tricky\n\n## Markup\n\nThe zebra note <script>alert(1)</script><img src=x "
        "onerror=alert(2)> links [here](http://example.com) with $E=mc^2$ and **bold**.\n")
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index")
    build_index(settings, embedder)
    env = {"ALLIANCE_QA_CORPUS": str(corpus), "ALLIANCE_QA_INDEX": str(settings.index_dir)}
    with running_app(env) as url:
        page = browser.new_page()
        dialogs = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(url)
        page.locator(CHAT_BOX).wait_for(timeout=90_000)
        ask_in_page(page, "zebra note", "zebra note")
        passage = page.locator(".aqa-text").first
        assert "<script>alert(1)</script><img src=x onerror=alert(2)>" in passage.inner_text()
        assert "[here](http://example.com) with $E=mc^2$ and **bold**" in passage.inner_text()
        assert passage.locator("a, img, script, strong, .katex").count() == 0
        page.wait_for_timeout(300)
        assert dialogs == []
        page.close()


def test_a_three_turn_conversation_reads_the_follow_up_with_its_subject(page):
    ask_in_page(page, "What is the Mutual Defense Treaty?", "Mutual Defense Treaty")
    ask_in_page(page, "What were its main provisions?", "Read as a follow-up")
    assert top_citation(page, 3).startswith("§1.2 Key provisions of the treaty")
    ask_in_page(page, "What kinds of missiles does THAAD protect against?", "THAAD")
    third = last_answer(page)
    assert third.get_by_text("Read as a follow-up").count() == 0
    assert top_citation(page, 5).startswith("§4.2 Deployment of Missile Defense systems")
    assert page.locator('[data-testid="stException"]').count() == 0


def test_a_pdf_answer_cites_its_page_and_opens_it_marked(browser, embedder, seed_pdf_corpus):
    settings = Settings(corpus_dir=seed_pdf_corpus, index_dir=seed_pdf_corpus.parent / "index")
    build_index(settings, embedder)
    with running_app(settings.as_env()) as url:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url)
        page.locator(CHAT_BOX).wait_for(timeout=90_000)
        ask_in_page(page, "What are the key provisions of the treaty?", "Key provisions")
        citation = top_citation(page, 1)
        assert re.fullmatch(r"§1\.2 Key provisions of the treaty, pp?\. [0-9–]+ ¶\d", citation)
        answer = last_answer(page)
        answer.get_by_text("Open §1.2 Key provisions of the treaty").first.click()
        answer.get_by_text("link to the page").first.click()
        image = page.locator('[data-testid="stImage"] img').first
        image.wait_for(timeout=90_000)
        assert image.evaluate("img => img.naturalWidth") > 500
        caption = page.locator('[data-testid="stImage"]').first.inner_text()
        assert re.search(r", p\. \d+$", caption.strip())
        assert "hl=" in page.url and page.locator(".aqa-para.cited mark").count() == 1
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "pdf-citation-page.png"), full_page=True)
        assert page.locator('[data-testid="stException"]').count() == 0
        page.close()
