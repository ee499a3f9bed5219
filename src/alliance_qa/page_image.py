"""A cited PDF page as an image, with the cited passage (and its answering sentence) marked
where it stands on the page. Used by the chat page; pure of Streamlit.

The passage is found again on the page the index recorded: the longest run of the page's
lines (read as the PDF reader reads them) whose joined text is part of the paragraph. The
page is rendered by PDFium; the marks are drawn over it with Pillow.
"""

from __future__ import annotations

import io

import pypdfium2 as pdfium
from PIL import Image, ImageDraw

from .readers.pdf_file import Line, join_lines, open_pdf, page_lines

PASSAGE = (255, 221, 87, 90)        # translucent yellow over the passage's lines
SENTENCE = (255, 140, 0, 110)       # and orange over the answering sentence
MAX_PIXELS = 2000


def _run(lines: list[Line], paragraph: str) -> tuple[list[Line], int]:
    """(the longest run of consecutive lines whose text lies in the paragraph, where the
    run starts in it); ([], -1) when no line of the paragraph is on the page."""
    best: tuple[list[Line], int] = ([], -1)
    best_length = 0
    for i in range(len(lines)):
        for j in range(i + 1, len(lines) + 1):
            text = join_lines([line.text for line in lines[i:j]])
            where = paragraph.find(text)
            if where < 0:
                break
            if len(text) > best_length and len(text) >= min(12, len(paragraph)):
                best, best_length = (lines[i:j], where), len(text)
    return best


def _line_offsets(run: list[Line]) -> list[int]:
    """Where each line of the run starts in the run's joined text."""
    offsets, texts = [], []
    for line in run:
        joined = join_lines(texts)
        offsets.append(len(joined) + (1 if joined and not
                                      join_lines([*texts, line.text]).startswith(
                                          joined + line.text) else 0))
        texts.append(line.text)
    return offsets


def _visual_lines(textpage: pdfium.PdfTextPage, start: int, end: int
                  ) -> list[tuple[float, float, float, float]]:
    """Boxes of the characters start..end, one per line as printed (a line PDFium joined
    across a hyphen spans two)."""
    boxes: list[list[float]] = []
    for index in range(start, end):
        x0, y0, x1, y1 = textpage.get_charbox(index, loose=True)
        if x1 <= x0:                                # a generated space or a hyphen mark
            continue
        if boxes and abs(boxes[-1][1] - y0) < 0.5 * (y1 - y0):
            boxes[-1][2] = max(boxes[-1][2], x1)
        else:
            boxes.append([x0, y0, x1, y1])
    return [tuple(box) for box in boxes]


def cited_page_png(data: bytes, page: int, paragraph: str,
                   sentence: tuple[int, int] | None = None, scale: float = 1.5
                   ) -> tuple[bytes, bool]:
    """(PNG of the 1-based page, whether the passage was found and marked on it);
    `sentence` is a span of the paragraph's text to mark more strongly."""
    pdf = open_pdf(data)
    try:
        pdf_page = pdf[page - 1]
        # A page drawn at most MAX_PIXELS wide or tall, however large the PDF says it is.
        scale = min(scale, MAX_PIXELS / max(pdf_page.get_width(), pdf_page.get_height(), 1))
        textpage = pdf_page.get_textpage()
        run, start = _run(page_lines(textpage, page), paragraph)
        image = pdf_page.render(scale=scale).to_pil().convert("RGBA")
        height = pdf_page.get_height()
        overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
        draw = ImageDraw.Draw(overlay)

        def mark(x0: float, y0: float, x1: float, y1: float,
                 colour: tuple[int, int, int, int]) -> None:
            draw.rectangle((x0 * scale, (height - y1) * scale, x1 * scale,
                            (height - y0) * scale), fill=colour)

        for line, offset in zip(run, _line_offsets(run)):
            mark(line.x0, line.y0, line.x1, line.y1, PASSAGE)
            if sentence is None:
                continue
            first = max(sentence[0] - start - offset, 0)
            last = min(sentence[1] - start - offset, len(line.text))
            for box in _visual_lines(textpage, line.start + first, line.start + last):
                mark(*box, SENTENCE)
        textpage.close()
        pdf_page.close()
    finally:
        pdf.close()
    output = io.BytesIO()
    Image.alpha_composite(image, overlay).convert("RGB").save(output, "PNG", optimize=False)
    return output.getvalue(), bool(run)

