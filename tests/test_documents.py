import codecs
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alliance_qa.corpus import decode, read_corpus
from alliance_qa.documents import is_plain_heading, parse_markdown, parse_plain_text
from conftest import CORPUS, DATA

OUTLINE = [
    ("", "The History of the US–South Korea Military Alliance", 2),
    ("1", "Origins of the US and South Korea military partnership post-Korean War", 3),
    ("1.1", "The 1953 Mutual Defense Treaty and its strategic significance", 3),
    ("1.2", "Key provisions of the treaty", 3),
    ("1.3", "U.S. military commitments and South Korea’s security guarantees", 3),
    ("2", "Evolution of the alliance during the Cold War", 3),
    ("2.1", "The 1970s and 1980s: Adaptation amid regional tensions", 3),
    ("3", "Post-Cold War developments in the alliance", 4),
    ("4", "The 21st-century strategic realignment", 3),
    ("4.1", "ROK-U.S. combined defense posture upgrades", 4),
    ("4.2", "Deployment of Missile Defense systems and advanced technology", 3),
    ("5", "Key agreements shaping the alliance today", 4),
    ("5.1", "The Status of Forces Agreement (SOFA) updates", 3),
    ("5.2", "The U.S.-South Korea Alliance Vision and Future Plans", 4),
    ("6", "Challenges and controversies in the alliance", 3),
    ("7", "Impact of the US and South Korea military alliance history on regional security", 4),
    ("8", "Future prospects of the US and South Korea military alliance", 3),
]


@pytest.mark.unit
def test_corpus_outline_is_exactly_the_seventeen_sections():
    documents, warnings = read_corpus(CORPUS)
    assert warnings == []
    [document] = documents
    assert document.id == "us-rok-alliance-history"
    assert document.title == "The History of the US–South Korea Military Alliance"
    assert [(s.number, s.heading, len(s.paragraphs)) for s in document.sections] == OUTLINE


@pytest.mark.unit
def test_sections_know_their_parents_and_levels():
    [document], _ = read_corpus(CORPUS)
    by_number = {s.number: s for s in document.sections}
    assert by_number["1.2"].parent == by_number["1"].slug
    assert by_number["5.1"].parent == by_number["5"].slug
    assert by_number["3"].parent is None and by_number["3"].level == 1
    assert by_number["4.2"].level == 2
    assert by_number[""].level == 0 and by_number[""].parent is None


@pytest.mark.unit
def test_markdown_keeps_every_word_of_the_source_text():
    source = (DATA / "us-rok-alliance-history.txt").read_text(encoding="utf-8")
    [document], _ = read_corpus(CORPUS)
    words = []
    for s in document.sections:
        if s.number:
            words += s.heading.split()
        for p in s.paragraphs:
            words += p.split()
    assert words == source.split()


@pytest.mark.unit
def test_plain_text_gives_the_same_sections_as_markdown():
    source = (DATA / "us-rok-alliance-history.txt").read_text(encoding="utf-8")
    _, flat = parse_plain_text(source, "us-rok-alliance-history")
    markdown = (CORPUS / "us-rok-alliance-history.md").read_text(encoding="utf-8")
    _, sections = parse_markdown(markdown, "us-rok-alliance-history")
    assert [(s.heading, s.paragraphs) for s in flat] == \
        [(s.heading, s.paragraphs) for s in sections]
    assert all(s.level <= 1 for s in flat)


@pytest.mark.unit
def test_plain_text_with_blank_lines_keeps_wrapped_lines_as_the_source_has_them():
    text = "Title Line\n\nFirst para line one\nline two.\n\nSecond para.\n"
    _, sections = parse_plain_text(text, "d")
    assert [(s.heading, s.paragraphs) for s in sections] == [
        ("Title Line", ("First para line one\nline two.", "Second para."))]


@pytest.mark.unit
def test_a_document_without_headings_is_cited_by_its_title(tmp_path):
    from alliance_qa.citations import citation_label
    (tmp_path / "apollo-program.md").write_text("# Apollo program\n\nFirst.\n\nSecond.\n")
    (tmp_path / "plain_notes.txt").write_text("one paragraph.\n\nanother one.\n")
    documents, _ = read_corpus(tmp_path)
    labels = [citation_label(d.sections[0], 2) for d in documents]
    assert labels == ["Apollo program, ¶2", "plain notes, ¶2"]
    assert [d.sections[0].slug for d in documents] == ["introduction", "introduction"]


@pytest.mark.unit
def test_duplicate_headings_get_unique_slugs():
    _, sections = parse_markdown("## Notes\n\nA.\n\n## Notes\n\nB.\n\n### Notes\n\nC.\n", "d")
    assert [s.slug for s in sections] == ["notes", "notes-2", "notes-3"]
    assert [s.number for s in sections] == ["1", "2", "2.1"]


@pytest.mark.unit
def test_heading_rule_for_plain_text():
    assert is_plain_heading("Key provisions of the treaty")
    assert is_plain_heading("The 1970s and 1980s: Adaptation amid regional tensions")
    assert not is_plain_heading("This ends with a full stop.")
    assert not is_plain_heading("lowercase start is a sentence fragment")
    assert not is_plain_heading(" ".join(["word"] * 30))


@pytest.mark.unit
def test_decoding_of_odd_encodings():
    text = "Café — ‘quoted’"
    assert decode(codecs.BOM_UTF8 + text.encode()) == (text, 0)
    assert decode(text.encode("utf-16")) == (text, 0)
    # One stray byte costs one character, not the whole file read as Latin-1.
    assert decode("Café — ok".encode() + b" \xe9t\xe9") == ("Café — ok �t�", 2)
    assert decode("A real � kept.".encode()) == ("A real � kept.", 0)
    try:
        decode(b"\x00\x01binary\x00")
    except ValueError as error:
        assert "binary" in str(error)
    else:
        raise AssertionError("binary data was decoded")


def write(folder: Path, name: str, data: bytes | str) -> None:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())


@pytest.mark.unit
def test_bad_files_are_skipped_with_named_warnings_and_good_ones_kept(tmp_path):
    write(tmp_path, "good.md", "# Good\n\n## Part\n\nA real paragraph.\n")
    write(tmp_path, "empty.txt", "")
    write(tmp_path, "only-headings.md", "# T\n\n## A\n\n## B\n")
    write(tmp_path, "binary.txt", b"\x89PNG\x00\x00\x01\x02")
    write(tmp_path, "sub/crlf.txt", "Heading Here\r\nBody line one.\r\n")
    write(tmp_path, "latin.txt", "Caf\xe9 society was here.".encode("latin-1"))
    write(tmp_path, "utf16.md", "# Sixteen\n\nText in UTF-16.\n".encode("utf-16"))
    write(tmp_path, "bom.md", b"\xef\xbb\xbf# Bom\n\nBody.\n")
    write(tmp_path, ".hidden.md", "# Hidden\n\nNot read.\n")
    write(tmp_path, "notes.rst", "ignored")
    documents, warnings = read_corpus(tmp_path)
    assert sorted(d.path for d in documents) == [
        "bom.md", "good.md", "latin.txt", "sub/crlf.txt", "utf16.md"]
    messages = {w.path: w.message for w in warnings}
    assert messages["empty.txt"].startswith("skipped: it has no paragraphs")
    assert messages["only-headings.md"].startswith("skipped: it has no paragraphs")
    assert "binary" in messages["binary.txt"]
    assert messages["latin.txt"].startswith("1 byte sequence(s) that are not UTF-8")
    titles = {d.path: d.title for d in documents}
    assert titles["bom.md"] == "Bom" and titles["utf16.md"] == "Sixteen"
    assert titles["sub/crlf.txt"] == "crlf"
    crlf = next(d for d in documents if d.path == "sub/crlf.txt")
    assert crlf.id == "sub/crlf"
    assert [(s.heading, s.paragraphs) for s in crlf.sections] == [
        ("Heading Here", ("Body line one.",))]


@pytest.mark.unit
def test_same_stem_in_two_formats_gets_two_ids(tmp_path):
    write(tmp_path, "a.md", "Alpha text.\n")
    write(tmp_path, "a.txt", "Alpha text too.\n")
    documents, _ = read_corpus(tmp_path)
    assert sorted(d.id for d in documents) == ["a", "a-txt"]


BLOCK = st.text(st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=80)


@pytest.mark.unit
@settings(max_examples=200, deadline=None)
@given(st.lists(BLOCK, max_size=12))
def test_plain_text_paragraphs_are_exact_slices_in_order_and_keep_every_word(blocks):
    from alliance_qa.documents import clean_text
    text = "\n\n".join(blocks)
    cleaned = clean_text(text)
    _, sections = parse_plain_text(text, "doc")
    position, words = 0, []
    for s in sections:
        words += s.heading.split() if s.level else []
        for paragraph in s.paragraphs:
            found = cleaned.find(paragraph, position)
            assert found >= 0                         # the source's own characters, in order
            position = found + len(paragraph)
            words += paragraph.split()
    assert words == cleaned.split()


@pytest.mark.unit
@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_markdown_parser_never_crashes_and_keeps_ids_unique(text):
    title, sections = parse_markdown(text, "doc")
    slugs = [s.slug for s in sections]
    assert len(slugs) == len(set(slugs))
    assert all(p.strip() for s in sections for p in s.paragraphs)
