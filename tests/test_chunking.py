import pytest

from alliance_qa.chunking import chunk_documents
from alliance_qa.corpus import read_corpus
from alliance_qa.documents import Document, parse_markdown
from conftest import CORPUS, SHIPPED_PARAGRAPHS


def test_the_shipped_document_is_one_chunk_per_paragraph(embedder):
    documents, _ = read_corpus(CORPUS)
    chunks = chunk_documents(documents, embedder.fits)
    assert len(chunks) == SHIPPED_PARAGRAPHS
    assert all(c.part is None for c in chunks)
    assert len({c.id for c in chunks}) == SHIPPED_PARAGRAPHS
    for chunk in chunks:
        section = documents[0].section(chunk.section)
        assert section.paragraphs[chunk.paragraph - 1] == chunk.text


def test_long_paragraph_is_cut_at_sentences_and_nothing_is_lost(embedder):
    sentences = [f"Sentence number {i} talks about the alliance and its long history." for i in
                 range(120)]
    paragraph = " ".join(sentences)
    _, sections = parse_markdown(f"## Long\n\n{paragraph}\n\n## Next\n\nShort.\n", "d")
    document = Document("d", "D", "d.md", "", sections)
    chunks = chunk_documents([document], embedder.fits)
    long_chunks = [c for c in chunks if c.section == "long"]
    assert len(long_chunks) > 1
    assert all(embedder.fits([c.context_text() for c in chunks]))
    assert " ".join(c.text for c in long_chunks) == paragraph
    assert all(c.text.endswith(".") for c in long_chunks)          # cut between sentences
    assert [c.part for c in long_chunks] == list(range(1, len(long_chunks) + 1))
    assert long_chunks[1].id == "d/long#p1.2"
    assert [c.section for c in chunks][-1] == "next"                # never crosses a section


def test_one_enormous_sentence_is_cut_at_words(embedder):
    words = " ".join(f"word{i}" for i in range(2000))
    _, sections = parse_markdown(f"## Huge\n\n{words}\n", "d")
    chunks = chunk_documents([Document("d", "D", "d.md", "", sections)], embedder.fits)
    assert len(chunks) > 1
    assert " ".join(c.text for c in chunks) == words
    assert all(embedder.fits([c.context_text() for c in chunks]))


@pytest.mark.unit
def test_sentence_spans_point_into_the_text():
    documents, _ = read_corpus(CORPUS)
    for chunk in chunk_documents(documents):
        rebuilt = " ".join(chunk.text[s:e] for s, e in chunk.sentences)
        assert rebuilt == chunk.text


@pytest.mark.unit
def test_every_chunk_is_an_exact_slice_of_its_source(tmp_path):
    """Over the shipped corpus, a Wikipedia article without headings and a plain text with
    wrapped lines and quotations, cut small so that most paragraphs are split: every chunk's
    text is the decoded source's own characters, closing quotation marks included."""
    from alliance_qa.corpus import decode
    from alliance_qa.documents import clean_text
    (tmp_path / "notes.txt").write_text(
        "Notes on a Speech\n\nHe told them “Resign.” If they stayed,\nthe vote  would "
        "fail. (It did.) Then\nthey left.\n\nA second paragraph, with 'quotes.' And more.\n")
    squad = sorted((CORPUS.parents[1] / "squad-dev" / "corpus").glob("*.md"))[:2]
    for path in [*CORPUS.glob("*.md"), *squad]:
        (tmp_path / path.name).write_bytes(path.read_bytes())
    documents, _ = read_corpus(tmp_path)
    chunks = chunk_documents(documents, lambda texts: [len(text) < 70 for text in texts])
    assert len(chunks) > sum(len(s.paragraphs) for d in documents for s in d.sections)
    sources = {d.id: clean_text(decode((tmp_path / d.path).read_bytes())[0]) for d in documents}
    for chunk in chunks:
        assert chunk.text in sources[chunk.document], chunk.id
    quoted = [c.text for c in chunks if "Resign" in c.text]
    assert quoted == ["He told them “Resign.”"]


@pytest.mark.unit
def test_paragraphs_are_asked_about_in_batches_and_cut_alike():
    """The model is asked about many paragraphs at once, never more than FITS_AT_ONCE, and
    the chunks are those of asking about each paragraph alone."""
    from alliance_qa.chunking import FITS_AT_ONCE
    paragraphs = [f"Paragraph {i} says something. " * (1 + i % 7)
                  for i in range(2 * FITS_AT_ONCE + 5)]
    _, sections = parse_markdown("## Many\n\n" + "\n\n".join(paragraphs) + "\n", "d")
    document = Document("d", "D", "d.md", "", sections)
    asked = []

    def fits(texts):
        asked.append(len(texts))
        return [len(text) < 120 for text in texts]

    batched = chunk_documents([document], fits)
    alone = chunk_documents([document], lambda texts: [fits([t])[0] for t in texts])
    assert max(asked) == FITS_AT_ONCE
    assert batched == alone
    assert len(batched) > len(paragraphs)             # the long ones were cut


@pytest.mark.unit
def test_a_rebuild_asks_the_model_only_about_paragraphs_that_changed():
    """The previous build's answers are remembered, a cut paragraph's runs of sentences
    included: the chunks are those of asking about everything, and only the changed
    paragraph is asked about again."""
    from alliance_qa.chunking import FitsMemory
    text = ("## Lamps\n\nKeepers trim the wicks at dusk.\n\n"
            + "The lens turns all night. " * 4 + "\n\n## Tides\n\nTides rise twice a day.\n")
    _, sections = parse_markdown(text, "d")
    before = Document("d", "D", "d.md", "", sections)

    def model(texts):
        asked.extend(texts)
        return [len(text) < 80 for text in texts]

    asked, first = [], FitsMemory(model)
    assert any(c.part for c in chunk_documents([before], first))     # the long one was cut
    _, sections = parse_markdown(text.replace("twice a day", "twice daily"), "d")
    after = Document("d", "D", "d.md", "", sections)
    fresh = chunk_documents([after], model)
    asked, again = [], FitsMemory(model, first.answers)
    assert chunk_documents([after], again) == fresh
    assert asked == ["Tides: Tides rise twice daily."]
    unchanged = FitsMemory(lambda texts: pytest.fail(f"asked about {texts}"), again.answers)
    assert chunk_documents([after], unchanged) == fresh
