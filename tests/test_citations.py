import pytest

from alliance_qa.citations import (
    citation_id,
    citation_label,
    find_section,
    parse_citation_id,
    resolve,
)
from alliance_qa.corpus import read_corpus
from conftest import CORPUS, SHIPPED_PARAGRAPHS


@pytest.fixture(scope="module")
def documents():
    return read_corpus(CORPUS)[0]


@pytest.mark.unit
def test_label_and_id_of_a_paragraph(documents):
    section = next(s for s in documents[0].sections if s.number == "1.2")
    assert citation_label(section, 2) == "§1.2 Key provisions of the treaty, ¶2"
    assert citation_id(section, 2) == "us-rok-alliance-history/key-provisions-of-the-treaty#p2"


@pytest.mark.unit
def test_every_paragraph_round_trips_id_to_text_to_id(documents):
    seen = set()
    for document in documents:
        for section in document.sections:
            for number, text in enumerate(section.paragraphs, start=1):
                cid = citation_id(section, number)
                resolved = resolve(documents, cid)
                assert resolved.text == text
                assert resolved.id == cid
                seen.add(cid)
    assert len(seen) == SHIPPED_PARAGRAPHS


@pytest.mark.unit
def test_ids_are_stable_across_parses():
    first = [citation_id(s, 1) for s in read_corpus(CORPUS)[0][0].sections]
    second = [citation_id(s, 1) for s in read_corpus(CORPUS)[0][0].sections]
    assert first == second


@pytest.mark.unit
@pytest.mark.parametrize("bad", [
    "", "nonsense", "../etc/passwd#p1", "us-rok-alliance-history/../../x#p1",
    "us-rok-alliance-history/key-provisions-of-the-treaty#p0",
    "us-rok-alliance-history/key-provisions-of-the-treaty#p99",
    "us-rok-alliance-history/no-such-section#p1", "x" * 1000, "/abs/path#p1",
])
def test_bad_ids_resolve_to_nothing(documents, bad):
    assert resolve(documents, bad) is None


@pytest.mark.unit
def test_traversal_is_not_even_parsed():
    assert parse_citation_id("../../secret/x#p1") is None
    assert parse_citation_id("doc/section#p1; rm -rf /") is None


@pytest.mark.unit
def test_find_section_by_number_heading_or_id(documents):
    assert find_section(documents, "1.2").section.heading == "Key provisions of the treaty"
    assert find_section(documents, "§5.1").section.number == "5.1"
    assert find_section(documents, "key provisions of the TREATY").section.number == "1.2"
    assert find_section(documents, "us-rok-alliance-history/introduction").section.number == ""
    assert find_section(documents, "9.9") is None


@pytest.mark.unit
def test_find_section_takes_every_label_an_answer_shows(documents):
    for document in documents:
        for section in document.sections:        # the introduction's label has no number
            for number in range(1, len(section.paragraphs) + 1):
                found = find_section(documents, citation_label(section, number))
                assert (found.section, found.paragraph) == (section, number)
            assert find_section(documents, citation_label(section)).paragraph is None
    one_two = next(s for s in documents[0].sections if s.number == "1.2")
    assert find_section(documents, citation_label(one_two, 9)) is None      # no ¶9 there
    assert find_section(documents, "§1.3 Key provisions of the treaty") is None
