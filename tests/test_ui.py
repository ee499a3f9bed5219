"""What an answer's card carries: the cited paragraph among a few neighbours, not a whole
long section, and the link that opens the whole of it."""

import re

import pytest

from alliance_qa import ui
from alliance_qa.chunking import chunk_documents
from alliance_qa.documents import Document, Section
from alliance_qa.search import Hit

pytestmark = pytest.mark.unit

LONG = Section("log", "entries", "2", "Entries", 1, None,
               tuple(f"Entry {n} of the keeper's log." for n in range(1, 13)))
SHORT = Section("log", "summary", "1", "Summary", 1, None, ("One.", "Two.", "Three."))
DOCUMENT = Document("log", "Keeper's log", "log.md", "0" * 64, (SHORT, LONG))


def card(paragraph: int, section: Section) -> str:
    chunk = next(c for c in chunk_documents([DOCUMENT])
                 if c.section == section.slug and c.paragraph == paragraph)
    return ui.hit_card(Hit(1, 1.0, chunk, ((0, 5),)), section)


def shown_paragraphs(html_text: str) -> list[int]:
    return [int(n) for n in re.findall(r'class="aqa-para(?: cited)?" id="p(\d+)"', html_text)]


def test_a_card_in_a_long_section_shows_the_cited_paragraph_among_its_neighbours():
    middle = card(7, LONG)
    assert shown_paragraphs(middle) == [5, 6, 7, 8, 9]
    assert 'class="aqa-para cited" id="p7"><span class="aqa-num">¶7</span><mark>Entry</mark>' \
        in middle
    assert 'href="?cite=log/entries" target="_self">the whole section (12 paragraphs)' in middle
    assert shown_paragraphs(card(1, LONG)) == [1, 2, 3]
    assert shown_paragraphs(card(12, LONG)) == [10, 11, 12]


def test_a_card_in_a_short_section_shows_all_of_it_and_no_second_link():
    short = card(2, SHORT)
    assert shown_paragraphs(short) == [1, 2, 3]
    assert "the whole section" not in short


def test_a_card_at_the_start_of_a_section_of_five_links_to_the_two_it_leaves_out():
    five = Section("log", "five", "3", "Five", 1, None, ("A.", "B.", "C.", "D.", "E."))
    document = Document("log", "Keeper's log", "log.md", "0" * 64, (five,))
    chunk = chunk_documents([document])[0]
    first = ui.hit_card(Hit(1, 1.0, chunk, ((0, 1),)), five)
    assert shown_paragraphs(first) == [1, 2, 3]
    assert "the whole section (5 paragraphs)" in first


def test_a_cited_section_by_itself_is_shown_whole():
    assert shown_paragraphs(ui.section_html(LONG, 7)) == list(range(1, 13))
