"""A stranger at the page: links and images smuggled through a URL, the lookup box or the
corpus never render; rebuilds are not for any visitor; the page refuses what the command
line refuses, in the same words; an over-long paste is cut and says so; a page reached
under a foreign host name is refused. Real `streamlit run`, real headless Chromium."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from streamlit.testing.v1 import AppTest

from alliance_qa.browser import (
    CHAT_BOX,
    CHROMIUM,
    ask_in_page,
    running_app,
    wait_until_idle,
)
from alliance_qa.store import build_lock
from conftest import BROWSER_TESTS, ROOT
from test_app import alerts
from test_reliability import GUIDE

pytestmark = BROWSER_TESTS
LINK = "[Your session expired - log in again](http://evil.example/)"



@pytest.fixture(scope="module")
def markup_corpus(tmp_path_factory) -> Path:
    """A small corpus whose file names and headings are Markdown links and images."""
    corpus = tmp_path_factory.mktemp("markup") / "corpus"
    corpus.mkdir()
    (corpus / "guide.md").write_text(GUIDE + "\n## [Log in again](http://evil.example/)\n\n"
                                     "## Tides\n\nThe tide tables hung by the door.\n")
    (corpus / "[Session expired](http:evil.example).md").write_text("")
    return corpus


@pytest.fixture(scope="module")
def rebuilt(browser, markup_corpus, encoders, tmp_path_factory):
    """The app started on a missing index, rebuilt from the page: (url, the sidebar after)."""
    env = {"ALLIANCE_QA_CORPUS": str(markup_corpus), "ALLIANCE_QA_ENCODERS": str(encoders),
           "ALLIANCE_QA_INDEX": str(tmp_path_factory.mktemp("markup-index") / "index")}
    with running_app(env) as url:
        page = browser.new_page()
        page.goto(url)
        page.get_by_role("button", name="Rebuild the index").click(timeout=90_000)
        page.get_by_text("Indexed 1 document(s)").wait_for(timeout=240_000)
        wait_until_idle(page)
        sidebar = page.locator('[data-testid="stSidebar"]')
        yield url, env, sidebar.inner_text(), live_markup(sidebar)
        page.close()


def open_page(browser, url: str):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.requests = requests
    page.goto(url)
    page.locator(CHAT_BOX).wait_for(timeout=90_000)
    wait_until_idle(page)
    return page


def live_markup(locator) -> int:
    return locator.locator("a[href*='//evil'], a[href^='http:evil'], img").count()


def test_the_rebuild_summary_shows_corpus_names_and_headings_as_text(rebuilt):
    _, _, text, live = rebuilt
    assert "[Session expired](http:evil.example).md: skipped" in text
    assert "'[Log in again](http://evil.example/)'" in text
    assert live == 0


@pytest.mark.parametrize("cite", [LINK, "![x](http://127.0.0.1:9/pixel.png)"])
def test_a_deep_link_never_renders_links_or_images(browser, rebuilt, cite):
    url, _, _, _ = rebuilt
    page = open_page(browser, f"{url}/?cite={quote(cite)}")
    box = page.locator(".aqa-alert").first
    assert cite in box.inner_text()
    assert live_markup(page.locator("body")) == 0
    assert not [r for r in page.requests[1:] if "pixel.png" in r or "evil" in r]
    page.close()


def test_the_lookup_box_never_renders_links(browser, rebuilt):
    url, _, _, _ = rebuilt
    page = open_page(browser, url)
    lookup = page.get_by_label("Look up a citation")
    lookup.fill(LINK)
    lookup.press("Enter")
    box = page.locator('[data-testid="stSidebar"] .aqa-alert')
    box.wait_for()
    assert LINK in box.inner_text() and live_markup(box) == 0
    page.close()


def test_a_fresh_index_offers_visitors_no_rebuild(browser, rebuilt):
    url, _, _, _ = rebuilt
    page = open_page(browser, url)
    assert page.get_by_role("button", name="Rebuild the index").count() == 0
    assert page.get_by_text("The index is up to date").count() == 1
    page.close()


def test_an_over_long_paste_is_cut_and_says_so(browser, rebuilt):
    url, _, _, _ = rebuilt
    page = open_page(browser, url)
    ask_in_page(page, "What did the first lamps burn? " + "lamp " * 30_000, "first")
    notices = page.locator('[data-testid="stChatMessage"]').last.inner_text()
    assert "Your question was 150,031 characters long; only its first" in notices
    page.close()


def test_the_page_refuses_what_the_command_line_refuses_in_the_same_words(browser, rebuilt):
    _, env, _, _ = rebuilt
    other = {**env, "ALLIANCE_QA_MODEL": "/no/such/model"}
    cli = subprocess.run([sys.executable, "-m", "alliance_qa", "ask", "lamps"], text=True,
                         capture_output=True, env={**os.environ, **other})
    refusal = cli.stderr.strip().removeprefix("error: ")
    assert cli.returncode == 1 and "the model changed" in refusal
    with running_app(other) as url:
        page = browser.new_page()
        page.goto(url)
        box = page.locator(".aqa-alert").first
        box.wait_for(timeout=90_000)
        assert box.inner_text().strip() == refusal
        assert page.locator(CHAT_BOX).is_disabled()
        page.close()


def test_a_page_reached_under_a_foreign_host_name_is_refused(browser, rebuilt):
    url, _, _, _ = rebuilt
    port = url.rsplit(":", 1)[1]
    rebinding = browser.browser_type.launch(
        executable_path=CHROMIUM,
        args=["--headless", "--no-sandbox", "--disable-gpu",
              "--host-resolver-rules=MAP rebound.example 127.0.0.1"])
    try:
        page = rebinding.new_page()
        page.goto(f"http://rebound.example:{port}/")
        page.get_by_text("not this machine's").wait_for(timeout=90_000)
        assert page.locator(CHAT_BOX).count() == 0
        assert "Lighthouse" not in page.locator("body").inner_text()
    finally:
        rebinding.close()


# ---------------------------------------------------------------- rebuilds, in process

def start() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=240)
    return at.run()


def test_rebuilds_for_any_visitor_only_on_purpose(rebuilt, monkeypatch):
    _, env, _, _ = rebuilt
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert not [b for b in start().sidebar.button if b.label == "Rebuild the index"]
    monkeypatch.setenv("ALLIANCE_QA_PAGE_REBUILDS", "1")
    assert [b for b in start().sidebar.button if b.label == "Rebuild the index"]


def test_a_rebuild_while_another_runs_is_told_so(rebuilt, monkeypatch):
    _, env, _, _ = rebuilt
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ALLIANCE_QA_PAGE_REBUILDS", "1")
    at = start()
    with build_lock(Path(env["ALLIANCE_QA_INDEX"])):
        next(b for b in at.sidebar.button if b.label == "Rebuild the index").click().run()
    assert "Another build" in alerts(at.sidebar, "error")[0]
    assert not at.exception


def test_a_rebuild_from_the_page_releases_the_model_it_loaded(rebuilt, monkeypatch):
    import gc

    from alliance_qa.embedding import Embedder

    def models() -> int:
        gc.collect()
        return sum(type(o) is Embedder for o in gc.get_objects())

    _, env, _, _ = rebuilt
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ALLIANCE_QA_PAGE_REBUILDS", "1")
    at = start()
    before = models()
    next(b for b in at.sidebar.button if b.label == "Rebuild the index").click().run()
    assert "Indexed 1 document(s)" in alerts(at.sidebar, "success")[0]
    assert models() == before
