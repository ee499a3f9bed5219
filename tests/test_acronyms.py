"""Acronyms a corpus defines, and their expansion in texts and questions."""

import pytest

from alliance_qa.acronyms import expand, find_acronyms

pytestmark = pytest.mark.unit
TEXTS = ["The Status of Forces Agreement (SOFA) governs troops.",
         "The Terminal High Altitude Area Defense (THAAD) system was deployed."]


def test_definitions_are_found_from_the_initials_before_the_parenthesis():
    assert find_acronyms(TEXTS) == {"SOFA": "Status of Forces Agreement",
                                    "THAAD": "Terminal High Altitude Area Defense"}


@pytest.mark.parametrize("text, added", [
    ("What does the sofa cover?", "Status of Forces Agreement"),        # any case
    ("Two SOFAs were signed.", "Status of Forces Agreement"),          # plural
    ("Where is THAAD? And the SOFA?", "Status of Forces Agreement; Terminal High Altitude "
                                      "Area Defense"),
    ("A status of forces agreement was signed.", "SOFA"),              # the other way
    ("The ſofa rule.", "Status of Forces Agreement"),                  # a folded letter
])
def test_each_form_is_written_beside_the_other(text, added):
    assert expand(text, find_acronyms(TEXTS)) == f"{text} ({added})"


@pytest.mark.parametrize("text", ["The sofabed and the bisofa.", "Nothing here.",
                                  "The SOFA (Status of Forces Agreement) again."])
def test_parts_of_words_and_texts_with_both_forms_are_left_alone(text):
    assert expand(text, find_acronyms(TEXTS)) == text


def test_a_part_of_a_text_expands_alike_among_the_acronyms_the_whole_mentions():
    """The build looks for acronyms once per chunk: its text and sentences, parts of the
    chunk's context text, expand the same among those the whole mentions."""
    from alliance_qa.acronyms import mentioned
    acronyms = find_acronyms(TEXTS) | {"DMZ": "Demilitarized Zone"}
    whole = ("Alliance. The THAAD battery is near the DMZ. A status of forces agreement "
             "covers troops. Nothing else.")
    among = mentioned(whole, acronyms)
    assert among == ["SOFA", "THAAD", "DMZ"]
    assert mentioned("Nothing else.", acronyms) == []
    parts = [whole, whole[10:], "The THAAD battery is near the DMZ.",
             "A status of forces agreement covers troops.", "Nothing else."]
    for part in parts:
        assert expand(part, acronyms, among) == expand(part, acronyms)
    assert expand("Nothing else.", acronyms, []) == "Nothing else."
