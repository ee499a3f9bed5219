"""Readers of documents that are not plain text: PDF, Word and web pages.

Each reader takes a file's bytes and returns (title or None, sections), the same values the
Markdown and plain-text parsers in `documents.py` return; a file it cannot read raises a
`ValueError` whose message says why, which the build shows as a warning and skips.
"""

from __future__ import annotations

from collections.abc import Callable

from ..documents import Section
from .pdf_file import read_pdf
from .web_page import read_html
from .word_file import read_docx

Reader = Callable[[bytes, str], tuple[str | None, tuple[Section, ...]]]

READERS: dict[str, Reader] = {
    ".pdf": read_pdf,
    ".docx": read_docx,
    ".html": read_html,
    ".htm": read_html,
}
