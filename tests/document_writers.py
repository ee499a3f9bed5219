"""Real writers for test documents: a title and sections → PDF (fpdf2, with or without
bookmarks, with a running header and page numbers), Word (python-docx, heading styles) and a
web page (with navigation, a script and a form around the text)."""

from __future__ import annotations

import html
from pathlib import Path

import docx
import matplotlib
from fpdf import FPDF

from alliance_qa.documents import Section

FONTS = Path(matplotlib.get_data_path()) / "fonts" / "ttf"


class _Report(FPDF):
    running_header = ""

    def header(self) -> None:
        self.set_font("dejavu", size=8)
        self.cell(0, 6, self.running_header, align="R")
        self.ln(10)

    def footer(self) -> None:
        self.set_y(-15)
        self.set_font("dejavu", size=8)
        self.cell(0, 10, f"Page {self.page_no()}", align="C")


def write_pdf(path: Path, title: str, sections: tuple[Section, ...],
              bookmarks: bool = True) -> Path:
    pdf = _Report()
    pdf.running_header = title
    pdf.add_font("dejavu", "", str(FONTS / "DejaVuSans.ttf"))
    pdf.add_font("dejavu", "B", str(FONTS / "DejaVuSans-Bold.ttf"))
    pdf.set_title(title)
    pdf.add_page()
    pdf.set_font("dejavu", "B", 20)
    pdf.multi_cell(0, 10, title)
    pdf.ln(4)
    for section in sections:
        if section.level:
            if bookmarks:
                pdf.start_section(section.heading, level=section.level - 1)
            pdf.set_font("dejavu", "B", 16 if section.level == 1 else 13)
            pdf.multi_cell(0, 8, section.heading)
            pdf.ln(2)
        pdf.set_font("dejavu", "", 10)
        for paragraph in section.paragraphs:
            pdf.multi_cell(0, 5, paragraph)
            pdf.ln(4)
    pdf.output(str(path))
    return path


def write_docx(path: Path, title: str, sections: tuple[Section, ...]) -> Path:
    document = docx.Document()
    document.core_properties.title = title
    document.add_heading(title, level=0)
    for section in sections:
        if section.level:
            document.add_heading(section.heading, level=section.level)
        for paragraph in section.paragraphs:
            document.add_paragraph(paragraph)
    document.save(str(path))
    return path


def write_html(path: Path, title: str, sections: tuple[Section, ...]) -> Path:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
             " | Example Site</title><style>p { color: red }</style>"
             "<script>document.write('tracking')</script></head><body>"
             "<nav><a href='/'>Home</a> <a href='/about'>About</a></nav>"
             f"<main><h1>{html.escape(title)}</h1>"]
    for section in sections:
        if section.level:
            tag = f"h{section.level + 1}"
            parts.append(f"<{tag}>{html.escape(section.heading)}</{tag}>")
        parts += [f"<p>{html.escape(p)}</p>" for p in section.paragraphs]
    parts.append("<form><input name='q'><button>Search</button></form></main>"
                 "<footer>© Example Site · <a href='/privacy'>Privacy</a></footer></body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
