"""Documents → sections → numbered paragraphs: the values every reader produces, and the
readers of Markdown and plain text (PDF, Word and web pages are read in `readers/`).

Parsing takes a string and returns plain values; reading the corpus folder is `corpus.py`'s
job. Citations (ids and labels) are made in `citations.py`, not here.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace
from pathlib import Path

from anyascii import anyascii

INTRODUCTION = "Introduction"

_ATX_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
_SENTENCE_END = ".!?…:;,"


@dataclass(frozen=True)
class Section:
    """A heading and the paragraphs under it, up to the next heading."""

    document: str          # id of the document
    slug: str              # unique within the document
    number: str            # outline number, "1", "1.2"; "" for the introduction
    heading: str
    level: int             # 0 introduction, 1 top-level, 2 sub-section, ...
    parent: str | None     # slug of the enclosing section
    paragraphs: tuple[str, ...]
    pages: tuple[tuple[int, int], ...] = ()   # each paragraph's first and last page (PDF)

    def paragraph_pages(self, paragraph: int) -> tuple[int, int] | None:
        """The pages a 1-based paragraph stands on; None for a document without pages."""
        return self.pages[paragraph - 1] if self.pages else None


@dataclass(frozen=True)
class Document:
    """A file of the corpus, read: its id, title, path, hash and sections."""
    id: str
    title: str
    path: str              # relative to the corpus folder, with "/" separators
    sha256: str
    sections: tuple[Section, ...]

    def section(self, slug: str) -> Section | None:
        """The section with this slug, or None."""
        return next((s for s in self.sections if s.slug == slug), None)


def _ascii(character: str) -> str:
    """A character in ASCII: its accent dropped ("é" → "e"); a letter or digit of another
    script transliterated ("한" → "Han"); anything else (punctuation, ’) dropped."""
    plain = unicodedata.normalize("NFKD", character).encode("ascii", "ignore").decode()
    return plain if plain or not character.isalnum() else anyascii(character)


def slugify(text: str, fallback: str = "section") -> str:
    """Lowercase ASCII words joined by '-' ("U.S. military" → "u-s-military", "Korea’s" →
    "koreas", "한미동맹" → "hanmidongmaeng"); `fallback` when nothing is left."""
    ascii_text = "".join(map(_ascii, text)) if not text.isascii() else text
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug or fallback


# Unicode's control characters (category Cc: U+0000–U+001F, U+007F–U+009F) but the
# newline and the tab, and lone surrogates (Cs).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def clean_text(text: str) -> str:
    """Normalize newlines, drop a BOM and control characters, keep every word."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    return _CONTROL.sub("", text)


def _blocks(lines: list[str]) -> list[list[str]]:
    """Runs of non-blank lines, as they stand."""
    blocks, current = [], []
    for line in lines:
        if line.strip():
            current.append(line)
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


def one_line(text: str) -> str:
    """Text with every run of white space made one space, trimmed: how a heading or a title
    is kept, whichever reader found it."""
    return re.sub(r"\s+", " ", text).strip()


def _join(lines: list[str]) -> str:
    """A heading's words on one line."""
    return one_line(" ".join(lines))


def _verbatim(lines: list[str]) -> str:
    """A paragraph exactly as the source has it (consecutive lines, line breaks kept), so
    that every character shown as evidence is the document's own."""
    return "\n".join(lines).strip()


class Outline:
    """Collects sections in reading order, numbering and nesting them by heading level."""

    def __init__(self, document: str):
        self.document = document
        self.sections: list[Section] = []
        self.counters: list[int] = []
        self.stack: list[tuple[int, str]] = []     # (level, slug) of open ancestors
        self.slugs: set[str] = set()
        self.heading, self.level, self.number, self.parent = INTRODUCTION, 0, "", None
        self.paragraphs: list[str] = []
        self.pages: list[tuple[int, int]] = []

    def _unique(self, slug: str) -> str:
        candidate, n = slug, 2
        while candidate in self.slugs:
            candidate, n = f"{slug}-{n}", n + 1
        self.slugs.add(candidate)
        return candidate

    def _close(self) -> None:
        is_empty_intro = self.level == 0 and not self.paragraphs
        if not is_empty_intro:
            slug = self._unique(slugify(self.heading) if self.level else "introduction")
            self.sections.append(Section(self.document, slug, self.number, self.heading,
                                         self.level, self.parent, tuple(self.paragraphs),
                                         tuple(self.pages)))
            if self.level:
                self.stack.append((self.level, slug))
        self.paragraphs, self.pages = [], []

    def heading_line(self, level: int, heading: str) -> None:
        """A heading at `level` (1 is top): closes the section before, opens a new one."""
        self._close()
        while self.stack and self.stack[-1][0] >= level:
            self.stack.pop()
        depth = len(self.stack)
        del self.counters[depth + 1:]
        self.counters += [0] * (depth + 1 - len(self.counters))
        self.counters[depth] += 1
        self.heading, self.level = heading, depth + 1
        self.number = ".".join(map(str, self.counters))
        self.parent = self.stack[-1][1] if self.stack else None

    def paragraph(self, text: str, pages: tuple[int, int] | None = None) -> None:
        """A paragraph of the current section; a paged document gives its pages."""
        if text:
            self.paragraphs.append(text)
            if pages:
                self.pages.append(pages)

    def finish(self) -> tuple[Section, ...]:
        """The sections, in reading order."""
        self._close()
        return tuple(self.sections)


def parse_markdown(text: str, document: str) -> tuple[str | None, tuple[Section, ...]]:
    """Markdown → (title from the first '#' heading, sections from '##' and deeper).

    Blank lines separate paragraphs; text before the first section heading is the
    introduction. A document with no '#' title uses its first heading level as top level.
    """
    lines = clean_text(text).split("\n")
    headings = [(i, _ATX_HEADING.match(line)) for i, line in enumerate(lines)]
    headings = [(i, m) for i, m in headings if m]
    title = None
    levels = sorted({len(m.group(1)) for _, m in headings})
    if headings and len(headings[0][1].group(1)) == 1 and sum(
            len(m.group(1)) == 1 for _, m in headings) == 1:
        title = _join([headings[0][1].group(2)])
        lines[headings[0][0]] = ""
        levels = [lvl for lvl in levels if lvl > 1]
    rank = {lvl: r + 1 for r, lvl in enumerate(levels)}
    outline = Outline(document)
    paragraph: list[str] = []
    for line in lines:
        match = _ATX_HEADING.match(line)
        if match or not line.strip():
            outline.paragraph(_verbatim(paragraph))
            paragraph = []
            if match:
                outline.heading_line(rank[len(match.group(1))], _join([match.group(2)]))
        else:
            paragraph.append(line)
    outline.paragraph(_verbatim(paragraph))
    return title, outline.finish()


def is_plain_heading(line: str) -> bool:
    """A short line without closing sentence punctuation, starting like a title."""
    line = line.strip()
    words = line.split()
    return (0 < len(words) <= 16 and len(line) <= 120 and line[-1] not in _SENTENCE_END
            and (line[0].isupper() or line[0].isdigit()))


def parse_plain_text(text: str, document: str) -> tuple[None, tuple[Section, ...]]:
    """Plain text → flat sections; a short unpunctuated line between paragraphs is a heading.

    With blank lines in the file, a paragraph is a run of lines between them; without any,
    each line is a paragraph.
    """
    lines = clean_text(text).split("\n")
    has_blank_lines = any(not line.strip() for line in lines[:-1]) if lines else False
    blocks = _blocks(lines) if has_blank_lines else [[line] for line in lines if line.strip()]
    outline = Outline(document)
    for i, block in enumerate(blocks):
        next_is_body = i + 1 < len(blocks) and not (
            len(blocks[i + 1]) == 1 and is_plain_heading(blocks[i + 1][0]))
        if len(block) == 1 and is_plain_heading(block[0]) and next_is_body:
            outline.heading_line(1, _join(block))
        else:
            outline.paragraph(_verbatim(block))
    return None, outline.finish()


def parse_document(text: str, relative_path: str, document_id: str, sha256: str) -> Document:
    """One file's text → Document; Markdown by suffix, else plain text."""
    parse = parse_markdown if relative_path.endswith((".md", ".markdown")) else parse_plain_text
    return make_document(*parse(text, document_id), relative_path, document_id, sha256)


def make_document(title: str | None, sections: tuple[Section, ...], relative_path: str,
                  document_id: str, sha256: str) -> Document:
    """A reader's title and sections → Document, titled by its file name when untitled."""
    fallback = Path(relative_path).stem.replace("-", " ").replace("_", " ").strip()
    title = title or fallback or document_id
    # The text before the first heading is cited by the document's own title ("Apollo
    # program, ¶11"); its id keeps the slug "introduction".
    sections = tuple(replace(s, heading=title) if s.level == 0 else s for s in sections)
    return Document(document_id, title, relative_path, sha256, sections)
