"""Citation ids and labels: make them, parse them, resolve them back to text. Pure.

An id is `<document>/<section-slug>#p<paragraph>`; a chunk cut from a long paragraph adds
`.<part>` (`…#p3.2`). A label is what a person reads: `§1.2 Key provisions of the treaty, ¶2`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .documents import Document, Section

ID_PATTERN = re.compile(r"^(?P<document>[a-z0-9]+(?:[-/][a-z0-9]+)*)"
                        r"/(?P<section>[a-z0-9]+(?:-[a-z0-9]+)*)"
                        r"(?:#p(?P<paragraph>[1-9][0-9]{0,5})(?:\.(?P<part>[1-9][0-9]{0,3}))?)?$")


@dataclass(frozen=True)
class CitationRef:
    """A parsed citation id: document, section, and optionally paragraph and part."""
    document: str
    section: str
    paragraph: int | None = None   # 1-based; None cites the whole section
    part: int | None = None        # 1-based part of a split paragraph


@dataclass(frozen=True)
class Resolved:
    """What an id points at: the document, its section and (optionally) one paragraph."""

    document: Document
    section: Section
    paragraph: int | None

    @property
    def text(self) -> str:
        """The paragraph's text, or the whole section's."""
        if self.paragraph is None:
            return "\n\n".join(self.section.paragraphs)
        return self.section.paragraphs[self.paragraph - 1]

    @property
    def id(self) -> str:
        """The citation id of what was resolved."""
        return citation_id(self.section, self.paragraph)

    @property
    def label(self) -> str:
        """The label of what was resolved, as answers show it."""
        return citation_label(self.section, self.paragraph)


def citation_id(section: Section, paragraph: int | None = None, part: int | None = None) -> str:
    """'<document>/<section>#p<paragraph>[.<part>]', or the section's id alone."""
    base = f"{section.document}/{section.slug}"
    if paragraph is None:
        return base
    return f"{base}#p{paragraph}" + (f".{part}" if part else "")


def page_label(pages: tuple[int, int] | None) -> str:
    """'p. 4', 'pp. 4–5'; '' for a document without pages."""
    if not pages:
        return ""
    return f"p. {pages[0]}" if pages[0] == pages[1] else f"pp. {pages[0]}–{pages[1]}"


def label(number: str, heading: str, paragraph: int | None = None,
          pages: tuple[int, int] | None = None) -> str:
    """'§1.2 Key provisions of the treaty, ¶2' ('…, p. 4 ¶2' in a PDF); the introduction has
    no number."""
    text = f"§{number} {heading}" if number else heading
    if paragraph is None:
        return text
    return f"{text}, {page_label(pages)} ¶{paragraph}" if pages else f"{text}, ¶{paragraph}"


def section_label(section: Section) -> str:
    """A section's label without a paragraph: '§1.2 Key provisions of the treaty'."""
    return label(section.number, section.heading)


def citation_label(section: Section, paragraph: int | None = None) -> str:
    """A paragraph's label, with its pages in a PDF."""
    pages = section.paragraph_pages(paragraph) if paragraph else None
    return label(section.number, section.heading, paragraph, pages)


def parse_citation_id(text: str) -> CitationRef | None:
    """Parse an id; None when it is not one (anything odd, `../` included, is refused)."""
    match = ID_PATTERN.match(text.strip()) if len(text) < 500 else None
    if not match:
        return None
    number = lambda key: int(match.group(key)) if match.group(key) else None  # noqa: E731
    return CitationRef(match.group("document"), match.group("section"),
                       number("paragraph"), number("part"))


def resolve(documents: list[Document], text: str) -> Resolved | None:
    """Id → the section and paragraph it names, or None when there is no such place."""
    ref = parse_citation_id(text)
    if ref is None:
        return None
    document = next((d for d in documents if d.id == ref.document), None)
    section = document.section(ref.section) if document else None
    if section is None:
        return None
    if ref.paragraph is not None and ref.paragraph > len(section.paragraphs):
        return None
    return Resolved(document, section, ref.paragraph)


def find_section(documents: list[Document], query: str) -> Resolved | None:
    """A citation id, an outline number ('1.2') or a heading (case-insensitive) → section;
    also a citation label as the answers show it ('§1.2 Key provisions of the treaty, ¶2')."""
    query = query.strip()
    if not query:
        return None
    resolved = resolve(documents, query)
    if resolved:
        return resolved
    wanted = query.lstrip("§").strip().casefold()
    label = _LABEL.match(wanted)
    for document in documents:
        for section in document.sections:
            if wanted in (section.number, section.heading.casefold(), section.slug):
                return Resolved(document, section, None)
            if label and (label["number"] or "", label["heading"]) == (
                    section.number, section.heading.casefold()):
                paragraph = int(label["paragraph"]) if label["paragraph"] else None
                if paragraph is None or 1 <= paragraph <= len(section.paragraphs):
                    return Resolved(document, section, paragraph)
    return None


_LABEL = re.compile(r"((?P<number>[0-9]+(\.[0-9]+)*) )?(?P<heading>.+?)"
                    r"(, (pp?\. [0-9]+(–[0-9]+)? )?¶(?P<paragraph>[0-9]+))?$")
# a label(), lowercased, § taken off
