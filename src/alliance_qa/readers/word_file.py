"""Word (.docx) → title and sections, with python-docx (reads the file's XML; no Word needed).

Headings are paragraphs in Word's "Heading N" styles (or with an outline level); the title
is the document's "Title" paragraph, else its properties' title. Body paragraphs, list items
and table rows (cells joined by " | ") are paragraphs in document order; headers, footers,
images and empty paragraphs are not passages.
"""

from __future__ import annotations

import io
import re
import zipfile

import docx
from docx.table import Table
from docx.text.paragraph import Paragraph

from ..documents import Outline, Section, clean_text, one_line

MAX_UNPACKED_BYTES = 200_000_000        # a "zip bomb" is refused before it is unpacked
_HEADING_STYLE = re.compile(r"heading\s*([1-9])", re.IGNORECASE)


class UnreadableWord(ValueError):
    """The file cannot be read as a Word document; the message says why."""


def _open(data: bytes) -> docx.document.Document:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
            if unpacked > MAX_UNPACKED_BYTES:
                raise UnreadableWord(f"it unpacks to {unpacked // 1_000_000:,} MB; at most "
                                     f"{MAX_UNPACKED_BYTES // 1_000_000} MB are read")
        return docx.Document(io.BytesIO(data))
    except UnreadableWord:
        raise
    except Exception as error:          # python-docx raises many kinds on a damaged file
        raise UnreadableWord(f"it is not a readable Word document ({type(error).__name__}: "
                             f"{error})") from error


def _level(paragraph: Paragraph) -> int | None:
    """The heading level of a paragraph, from its style (or its style's ancestors)."""
    style = paragraph.style
    while style is not None:
        match = _HEADING_STYLE.fullmatch((style.name or "").strip())
        if match:
            return int(match.group(1))
        style = style.base_style
    return None


def _is_title(paragraph: Paragraph) -> bool:
    return paragraph.style is not None and (paragraph.style.name or "").strip() == "Title"


def _row_texts(table: Table) -> list[str]:
    rows = []
    for row in table.rows:
        cells = []
        for cell in row.cells:
            text = clean_text(cell.text).strip()
            if text and (not cells or cells[-1] != text):     # merged cells repeat
                cells.append(text)
        if cells:
            rows.append(" | ".join(cells))
    return rows


def read_docx(data: bytes, document: str) -> tuple[str | None, tuple[Section, ...]]:
    """A Word file's bytes → (title or None, sections)."""
    word = _open(data)
    outline = Outline(document)
    title = None
    for block in word.iter_inner_content():
        if isinstance(block, Table):
            for row in _row_texts(block):
                outline.paragraph(row)
            continue
        text = clean_text(block.text).strip()
        if not text:
            continue
        level = _level(block)
        if _is_title(block) and title is None:
            title = one_line(text)
        elif level is not None:
            outline.heading_line(level, one_line(text))
        else:
            outline.paragraph(text)
    title = title or clean_text(word.core_properties.title or "").strip() or None
    return title, outline.finish()
