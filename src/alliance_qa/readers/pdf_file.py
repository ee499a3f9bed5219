"""PDF → title and sections with the page of every paragraph, from the text layer.

Read with pypdfium2 (PDFium, the engine Chrome uses: fast, fuzzed, no network, boxes for
every character). The text comes out as lines in reading order; this module rebuilds the
document from them:
- **Outline**: the PDF's bookmarks when it has any (a bookmark's title is matched to its line
  on its page); else lines set larger than the body text (or bold at body size, standing
  alone) are headings, ranked by size. The title: the single largest line of the first page,
  else the metadata title, else the file name.
- **Page furniture** is dropped: a line at the top or bottom of the page that recurs (digits
  aside) on at least half the pages, and page numbers.
- **Paragraphs** end at a wider gap than the line spacing, a short line ending a sentence, or
  an indented line; a paragraph without a sentence end continues on the next page (or
  column). A word broken at a line's end is joined ("inter-" + "national").
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from dataclasses import dataclass

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from ..documents import Outline, Section, clean_text, one_line

MAX_PAGES = 5_000
_SENTENCE_END = (".", "!", "?", ":", ";", "\"", "”", "’", ")", "]")
_BREAK_MARKS = ("-", "\u00ad", "\x02", "\ufffe")       # a word cut at a line's end
_ROMAN = r"(?=[ivxlc])c{0,3}(x[cl]|l?x{0,3})(i[xv]|v?i{0,3})"     # i … cccxcix, not "civil"
_PAGE_NUMBER = re.compile(rf"(page\s+)?([0-9]+|{_ROMAN})(\s*(/|of)\s*[0-9]+)?|"
                          r"[-–—]\s*[0-9]+\s*[-–—]", re.IGNORECASE)


class UnreadablePdf(ValueError):
    """The file cannot be read as a PDF with text; the message says why."""


@dataclass(frozen=True)
class Line:
    """One line of a PDF page as PDFium gives it, with its box and type."""
    page: int            # 1-based
    text: str
    start: int           # index of its first character in the page's text
    x0: float
    y0: float            # bottom
    x1: float
    y1: float            # top
    size: float
    weight: int
    first_word: float    # width of its first word: would it have fitted on the line before?


def open_pdf(data: bytes) -> pdfium.PdfDocument:
    """The PDF of these bytes; UnreadablePdf when it is encrypted or damaged."""
    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as error:
        if "password" in str(error).lower():
            raise UnreadablePdf("it is encrypted with a password") from error
        raise UnreadablePdf(f"it is not a readable PDF ({error})") from error


def page_lines(textpage: pdfium.PdfTextPage, page: int) -> list[Line]:
    """The page's non-blank lines as PDFium orders them, each with its box and font."""
    text = textpage.get_text_range()
    lines = []
    for match in re.finditer(r"[^\r\n]+", text):
        stripped = match.group().strip()
        if not stripped:
            continue
        start = match.start() + match.group().index(stripped)
        end = start + len(stripped) - 1
        boxes = [textpage.get_charbox(i, loose=True) for i in (start, (start + end) // 2, end)]
        sizes = sorted(pdfium_c.FPDFText_GetFontSize(textpage, i) for i in (start, end))
        word_end = textpage.get_charbox(start + len(stripped.split()[0]) - 1, loose=True)
        x0 = min(b[0] for b in boxes)
        lines.append(Line(page, stripped, start, x0, min(b[1] for b in boxes),
                          max(b[2] for b in boxes), max(b[3] for b in boxes),
                          round(sizes[-1] * 2) / 2,
                          pdfium_c.FPDFText_GetFontWeight(textpage, start), word_end[2] - x0))
    return lines


def _key(text: str) -> str:
    return one_line(re.sub(r"[0-9]+", "#", text)).casefold()


def _furniture(pages: list[list[Line]], gap: float) -> set[tuple[int, int]]:
    """(page, start) of running headers, footers and page numbers: lines among the first or
    last two of a page, set apart from the text by more than a line's gap, that are a page
    number or recur at the same height (digits aside) on at least half of 3+ pages."""
    edge = []
    for lines in pages:
        for i in (0, 1):
            if i + 1 < len(lines) and lines[i].y0 - lines[i + 1].y1 > gap:
                edge.append(lines[i])
            if len(lines) > i + 1 and lines[-2 - i].y0 - lines[-1 - i].y1 > gap:
                edge.append(lines[-1 - i])
    key = lambda line: (_key(line.text), round(line.y1 / 4))  # noqa: E731
    counts = Counter(key(line) for line in set(edge))
    repeated = {k for k, n in counts.items() if len(pages) >= 3 and n >= len(pages) / 2}
    return {(line.page, line.start) for line in edge
            if key(line) in repeated or _PAGE_NUMBER.fullmatch(line.text)}


def _bookmarks(document: pdfium.PdfDocument) -> list[tuple[int, str, int, float | None]]:
    """(level, title, page index, y or None) of every bookmark that points at a page."""
    marks = []
    for bookmark in document.get_toc(max_depth=8):
        destination = bookmark.get_dest()
        index = destination.get_index() if destination else None
        title = one_line(bookmark.get_title() or "")
        if index is None or not title or not 0 <= index < len(document):
            continue
        mode, position = destination.get_view()
        y = position[1] if mode == 1 and len(position) > 1 and position[1] else None
        marks.append((bookmark.level + 1, title, index, y))
    return marks


def _norm(text: str) -> str:
    return one_line(text).casefold()


def _match_bookmarks(marks: list[tuple[int, str, int, float | None]], pages: list[list[Line]]
                     ) -> dict[tuple[int, int], tuple[int, str]]:
    """(page, start) of the line where each bookmark's heading stands → (level, title); a
    bookmark whose title is on no line is placed at the first line below its position.
    Bookmarks whose titles are mostly on no line do not describe this text: {}."""
    placed: dict[tuple[int, int], tuple[int, str]] = {}
    matched = 0
    for level, title, index, y in marks:
        lines = [line for line in pages[index] if (line.page, line.start) not in placed]
        wanted = _norm(title)
        found = [line for line in lines
                 if _norm(line.text) == wanted or _norm(line.text).endswith(" " + wanted)
                 or (wanted.startswith(_norm(line.text)) and len(line.text) >= 4)]
        matched += bool(found)
        if y is not None:
            found.sort(key=lambda line: abs(line.y1 - y))
        if not found and lines and y is None:
            found = lines[:1]
        if not found and lines:
            found = [next((line for line in lines if line.y1 <= y + 2), lines[-1])]
        if found:
            placed[(found[0].page, found[0].start)] = (level, title)
    return placed if matched >= len(marks) / 2 else {}


def _size_headings(lines: list[Line]) -> dict[tuple[int, int], tuple[int, str]]:
    """Lines set larger than the body (or bold at its size, alone) → (level, text)."""
    weights: Counter[float] = Counter()
    for line in lines:
        weights[line.size] += len(line.text)
    if not weights:
        return {}
    body = weights.most_common(1)[0][0]
    body_weight = statistics.median(line.weight for line in lines if line.size == body)

    def heading_like(line: Line) -> bool:
        return (len(line.text.split()) <= 16 and not line.text.endswith((".", ",", ";"))
                and any(c.isalpha() for c in line.text))

    large = [line for line in lines if heading_like(line) and (
        line.size >= 1.3 * body or (line.size >= 1.15 * body and line.weight >= body_weight + 100))]
    bold = [line for i, line in enumerate(lines) if heading_like(line) and line.size == body
            and line.weight >= body_weight + 150 and len(line.text.split()) <= 12
            and 0 < i < len(lines) - 1 and lines[i + 1].weight < body_weight + 150]
    ranks = {size: r + 1 for r, size in enumerate(sorted({line.size for line in large},
                                                         reverse=True))}
    headings = {(line.page, line.start): (ranks[line.size], line.text) for line in large}
    headings.update({(line.page, line.start): (len(ranks) + 1, line.text) for line in bold})
    return headings


def _title(lines: list[Line], headings: dict, metadata_title: str
           ) -> tuple[str | None, set[tuple[int, int]]]:
    """(title, its lines): the largest lines of the first page, one after another, when no
    other line is as large; else the metadata's title unless it is a file name, and the
    first lines when they spell it."""
    first_page = [line for line in lines if line.page == lines[0].page]
    size = max(line.size for line in first_page)
    largest = [i for i, line in enumerate(lines) if line.size == size]
    if largest == list(range(largest[0], largest[-1] + 1)) and len(largest) <= 3 and \
            (lines[largest[0]].page, lines[largest[0]].start) in headings:
        chosen = [lines[i] for i in largest]
        text = " ".join(line.text for line in chosen)
        if len(text.split()) <= 30:
            return text, {(line.page, line.start) for line in chosen}
    junk = re.compile(r"(untitled|.*\.(docx?|pdf|tex|odt|indd|qxd)|microsoft word.*)",
                      re.IGNORECASE)
    title = one_line(metadata_title or "")
    if not title or junk.fullmatch(title):
        return None, set()
    spelled, text = set(), ""
    for line in lines[:3]:
        text = f"{text} {line.text}".strip()
        if not _norm(title).startswith(_norm(text)):
            break
        spelled.add((line.page, line.start))
        if _norm(text) == _norm(title):
            return title, spelled
    return title, set()


def join_lines(texts: list[str]) -> str:
    """Lines → one paragraph: a word cut at a line's end is joined, else a space."""
    text = ""
    for line in texts:
        if text.endswith(_BREAK_MARKS) and len(text) > 1 and text[-2].isalpha() and \
                line[:1].islower():
            text = text[:-1] + line
        else:
            text = f"{text} {line}" if text else line
    return text.replace("\ufffe", "").replace("\x02", "")


def _ends_sentence(text: str) -> bool:
    return text.rstrip().endswith(_SENTENCE_END)


def read_pdf(data: bytes, document: str) -> tuple[str | None, tuple[Section, ...]]:
    """A PDF's bytes → (title or None, sections with each paragraph's pages)."""
    pdf = open_pdf(data)
    try:
        if len(pdf) > MAX_PAGES:
            raise UnreadablePdf(f"it has {len(pdf):,} pages; at most {MAX_PAGES:,} are read")
        pages = []
        for index in range(len(pdf)):
            page = pdf[index]
            textpage = page.get_textpage()
            pages.append(page_lines(textpage, index + 1))
            textpage.close()
            page.close()
        if not any(pages):
            raise UnreadablePdf("it has no text layer (a scan?); OCR is not supported")
        dropped = _furniture(pages, 1.5 * _gap([line for page in pages for line in page]))
        pages = [[line for line in lines if (line.page, line.start) not in dropped]
                 for lines in pages]
        lines = [line for page in pages for line in page]
        if not lines:               # nothing but running headers: no paragraphs
            return None, ()
        marked = _match_bookmarks(_bookmarks(pdf), pages)
        by_size = _size_headings(lines)
        title, title_lines = _title(lines, by_size,
                                    clean_text(pdf.get_metadata_dict().get("Title", "")))
        headings = {key: value for key, value in (marked or by_size).items()
                    if key not in title_lines}
        ranks = {level: r + 1 for r, level in enumerate(sorted({v[0] for v in headings.values()}))}
        headings = {key: (ranks[level], text) for key, (level, text) in headings.items()}
        return title, _assemble(document, lines, headings, not marked, title_lines)
    finally:
        pdf.close()


def _assemble(document: str, lines: list[Line], headings: dict, continued: bool,
              skipped: set[tuple[int, int]]) -> tuple[Section, ...]:
    """Lines → sections. A heading set over several lines is one heading: the lines after a
    heading line in its type are its continuation (joined when `continued`, that is when the
    headings are the lines themselves rather than bookmarks)."""
    outline = Outline(document)
    gap = _gap(lines)
    on_page: dict[int, list[Line]] = {}
    for line in lines:
        on_page.setdefault(line.page, []).append(line)
    paragraph: list[Line] = []
    heading: list = []                 # [level, text, line] of a heading not yet opened

    def close() -> None:
        if heading:
            outline.heading_line(heading[0], heading[1])
            heading.clear()
        if paragraph:
            outline.paragraph(join_lines([line.text for line in paragraph]),
                              (paragraph[0].page, paragraph[-1].page))
            paragraph.clear()

    for line in lines:
        key = (line.page, line.start)
        if key in skipped:
            continue
        same_type = heading and (line.size, line.weight) == (heading[2].size, heading[2].weight)
        if same_type and line.page == heading[2].page and (
                key in headings if continued else key not in headings):
            heading[1] += " " + line.text if continued else ""
            heading[2] = line
            continue
        if key in headings:
            close()
            heading[:] = [*headings[key], line]
            continue
        if heading:
            close()
        elif paragraph and _starts_paragraph(paragraph[-1], line, on_page[paragraph[-1].page],
                                             gap):
            close()
        paragraph.append(line)
    close()
    return outline.finish()


def _gap(lines: list[Line]) -> float:
    """The usual white space between consecutive lines of one paragraph."""
    gaps = [a.y0 - b.y1 for a, b in zip(lines, lines[1:])
            if a.page == b.page and a.size == b.size and -a.size < a.y0 - b.y1 < 2 * a.size]
    return max(statistics.median(gaps), 0.0) if gaps else 0.0


def _starts_paragraph(previous: Line, line: Line, page: list[Line], gap: float) -> bool:
    """Whether `line` begins a new paragraph after `previous` (the lines of whose `page`
    show where its column ends)."""
    column = [x.x1 for x in page if abs(x.x0 - previous.x0) < 40]
    right = max(column) if column else previous.x1
    # A line ended short of the column, or before a word that would have fitted on it,
    # ended where its writer ended it.
    short = previous.x1 < right - max(3 * previous.size, 0.1 * (right - previous.x0)) or \
        previous.x1 + line.first_word + 0.5 * line.size < right
    ended = short and _ends_sentence(previous.text)
    if line.page != previous.page or line.y1 > previous.y1 + 1:    # a new page or column
        return ended or (_ends_sentence(previous.text) and line.x0 > previous.x0 + line.size)
    if previous.y0 - line.y1 > gap + 0.4 * line.size:
        return True
    if abs(line.size - previous.size) > 0.5:
        return True
    return ended or (line.x0 > previous.x0 + 0.8 * line.size and not short)
