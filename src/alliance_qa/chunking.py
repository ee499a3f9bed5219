"""Paragraphs → chunks along the document's own structure; a chunk never crosses a section.

A paragraph is one chunk unless it is longer than the model can read; then it is cut at
sentence boundaries (and a single over-long sentence at word boundaries), so that nothing
is ever silently truncated by the model.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .citations import citation_id, label
from .documents import Document, Section
from .sentences import sentence_spans


@dataclass(frozen=True)
class Chunk:
    """A passage to embed and cite; its text is the document's own words."""

    id: str                      # citation id, with `.part` for a cut paragraph
    document: str
    document_title: str
    section: str                 # section slug
    section_number: str
    heading: str
    breadcrumb: tuple[str, ...]  # headings from the top-level section down to this one
    paragraph: int               # 1-based
    part: int | None
    text: str
    sentences: tuple[tuple[int, int], ...]
    pages: tuple[int, int] | None = None     # first and last page of its paragraph (PDF)

    @property
    def citation(self) -> str:
        """The label a person reads: '§1.2 Key provisions of the treaty, ¶2 (part 1)'."""
        text = label(self.section_number, self.heading, self.paragraph, self.pages)
        return text + (f" (part {self.part})" if self.part else "")

    @property
    def paragraph_id(self) -> str:
        """The id of the whole paragraph, without a part."""
        return self.id.split(".")[0] if self.part else self.id

    def context_text(self) -> str:
        """The text the model embeds: heading path, then the passage."""
        return context_prefix(self.breadcrumb) + self.text


def context_prefix(path: tuple[str, ...]) -> str:
    """What comes before a passage in the text the model embeds: its heading path."""
    return f"{' › '.join(path)}: "


def breadcrumb(document: Document, section: Section) -> tuple[str, ...]:
    """The headings from the top-level section down to this one."""
    by_slug = {s.slug: s for s in document.sections}
    path, current = [], section
    while current is not None:
        path.append(current.heading)
        current = by_slug.get(current.parent) if current.parent else None
    return tuple(reversed(path))


Fits = Callable[[list[str]], list[bool]]     # whether the model reads each text whole
FITS_AT_ONCE = 1024     # texts a model is asked about in one call (the tokenizer's batches)


def _pieces(text: str, fits: Callable[[str], bool]) -> list[str]:
    """Cut text into the fewest runs of whole sentences (else words) that each fit; each
    piece is an exact slice of the text (its own spacing and punctuation kept)."""
    return [text[start:end] for start, end in _spans(text, 0, len(text), fits)]


def _spans(text: str, start: int, end: int, fits: Callable[[str], bool]) -> list[tuple[int, int]]:
    if fits(text[start:end]):
        return [(start, end)]
    units = [(start + a, start + b) for a, b in sentence_spans(text[start:end])]
    if len(units) == 1:
        units = [(start + m.start(), start + m.end())
                 for m in re.finditer(r"\S+", text[start:end])]
        if len(units) == 1:      # one enormous "word": cut by characters
            return [(i, min(i + 200, end)) for i in range(start, end, 200)]
    pieces: list[tuple[int, int]] = []
    first, last = units[0]
    for unit_start, unit_end in units[1:]:
        if not fits(text[first:unit_end]):
            pieces.append((first, last))
            first = unit_start
        last = unit_end
    pieces.append((first, last))
    if len(pieces) == 1:
        return pieces
    return [span for a, b in pieces for span in _spans(text, a, b, fits)]


class FitsMemory:
    """`fits`, remembered: it answers about a text whose digest it was told (`known`: what
    a previous build of the same code and model was answered, by 16-byte BLAKE2 digest) and
    asks the model only about the rest; `answers` holds every answer it gave, for the next
    build. A rebuild thus counts again only the word pieces of paragraphs that changed, and
    does not try again the runs of sentences a long paragraph was cut into."""

    def __init__(self, fits: Fits, known: Mapping[bytes, bool] | None = None):
        self.fits, self.known = fits, known or {}
        self.answers: dict[bytes, bool] = {}

    def __call__(self, texts: list[str]) -> list[bool]:
        """Whether the model reads each text whole."""
        digests = [_digest(text) for text in texts]
        answers = [self.known.get(digest) for digest in digests]
        unknown = [i for i, answer in enumerate(answers) if answer is None]
        for i, answer in zip(unknown, self.fits([texts[i] for i in unknown]) if unknown else ()):
            answers[i] = bool(answer)
        self.answers.update(zip(digests, answers))
        return answers


DIGEST = 16     # bytes of a text's digest in FitsMemory


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=DIGEST).digest()


def chunk_documents(documents: list[Document],
                    fits: Fits = lambda texts: [True] * len(texts)) -> list[Chunk]:
    """Every paragraph of every section as chunks; `fits` says which texts fit the model.
    Paragraphs are asked about FITS_AT_ONCE at a time (a fast tokenizer counts a batch on
    every core); only those too long are cut, asking about one piece at a time."""
    places = [(document, section, path, context_prefix(path))
              for document in documents for section in document.sections
              for path in [breadcrumb(document, section)]]
    paragraphs = [(place, number, paragraph) for place in places
                  for number, paragraph in enumerate(place[1].paragraphs, start=1)]
    chunks = []
    for start in range(0, len(paragraphs), FITS_AT_ONCE):
        batch = paragraphs[start:start + FITS_AT_ONCE]
        whole = fits([place[3] + paragraph for place, _, paragraph in batch])
        for ((document, section, path, prefix), number, paragraph), fit in zip(batch, whole):
            pieces = [paragraph] if fit else _pieces(
                paragraph, lambda text, prefix=prefix: fits([prefix + text])[0])
            for part, text in enumerate(pieces, start=1):
                part_no = part if len(pieces) > 1 else None
                chunks.append(Chunk(
                    citation_id(section, number, part_no), document.id, document.title,
                    section.slug, section.number, section.heading, path, number, part_no,
                    text, tuple(sentence_spans(text)), section.paragraph_pages(number)))
    return chunks
