"""A saved web page (.html, .htm) → title and sections, with lxml's HTML parser.

What is read is the page's main text: `<main>` (or the only `<article>`) when the page has
one, else `<body>`; navigation, headers, footers, asides, forms, scripts, styles and hidden
elements are left out, as are elements whose class or id names them as page furniture (the
patterns Mozilla's Readability uses: menu, sidebar, comments, tables of contents, "edit"
links…) and short blocks that are mostly links (a list of links is navigation).
`h1`–`h6` are headings (a single `h1` is the title, as `#` is in Markdown; else `<title>`);
paragraphs, list items, quotations, definitions and table rows (cells joined by " | ") are
paragraphs. Text is taken as a browser lays it out: runs of white
space are one space, except in `<pre>`. Nothing of the markup is kept, so nothing of it can
ever be rendered.
"""

from __future__ import annotations

import re

import lxml.etree
import lxml.html
from lxml.html import HtmlElement

from ..documents import Outline, Section, clean_text, one_line

_LEFT_OUT = ("script", "style", "noscript", "template", "nav", "header", "footer", "aside",
             "form", "iframe", "svg", "math", "button", "select", "textarea", "head", "object")
_FURNITURE = re.compile(
    r"(^|[-_ ])(ad|ads|banner|breadcrumbs?|combx|comments?|community|cookie|disqus|footer|gdpr|"
    r"header|masthead|menu|mw-editsection|editsection|navbox|navbar|nav|noprint|pager|"
    r"pagination|popup|related|share|sharing|shoutbox|sidebar|skip|social|sponsor|toc|"
    r"catlinks|mw-jump|jump-to-nav|printfooter)($|[-_ ])", re.IGNORECASE)
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_PARAGRAPHS = {"p", "li", "blockquote", "pre", "dd", "dt", "figcaption", "caption",
               "address", "summary", "td", "th"}
_BLOCKS = _PARAGRAPHS | set(_HEADINGS) | {
    "div", "section", "article", "main", "ul", "ol", "dl", "table", "thead", "tbody", "tfoot",
    "tr", "figure", "details", "fieldset", "hr", "br", "body", "html", "center"}


class UnreadablePage(ValueError):
    """The file cannot be read as a web page; the message says why."""


def _spaced(text: str) -> str:
    return one_line(clean_text(text))


def _left_out(element: HtmlElement) -> bool:
    """Hidden, or named as page furniture by its class, id or role."""
    style = (element.get("style") or "").replace(" ", "").lower()
    names = f"{element.get('class') or ''} {element.get('id') or ''}"
    return (element.get("hidden") is not None or element.get("aria-hidden") == "true"
            or "display:none" in style or element.get("role") in ("navigation", "banner")
            or bool(_FURNITURE.search(names)))


def _mostly_links(element: HtmlElement) -> bool:
    """A short block whose text is mostly the text of its links: navigation."""
    text = _spaced(element.text_content())
    links = sum(len(_spaced(a.text_content())) for a in element.iter("a"))
    return bool(text) and len(text.split()) <= 12 and links >= 0.6 * len(text)


class _Reader:
    """Walks the tree in document order, gathering inline text into paragraphs."""

    def __init__(self, outline: Outline, heading_rank: dict[int, int]):
        self.outline, self.rank, self.inline = outline, heading_rank, []

    def flush(self) -> None:
        text = _spaced("".join(self.inline))
        self.inline = []
        if text:
            self.outline.paragraph(text)

    def walk(self, element: HtmlElement) -> None:
        tag = element.tag if isinstance(element.tag, str) else ""
        if tag in _HEADINGS:
            self.flush()
            text = _spaced(element.text_content())
            if text and _HEADINGS[tag] in self.rank:
                self.outline.heading_line(self.rank[_HEADINGS[tag]], text)
            self.inline.append(element.tail or "")
            return
        if tag == "tr":
            self.flush()
            cells = [_spaced(cell.text_content()) for cell in element
                     if isinstance(cell.tag, str) and cell.tag in ("td", "th")]
            row = " | ".join(cell for cell in cells if cell)
            if row and not _mostly_links(element):
                self.outline.paragraph(row)
            self.inline.append(element.tail or "")
            return
        if tag == "pre":
            self.flush()
            text = clean_text(element.text_content()).strip("\n")
            if text.strip():
                self.outline.paragraph(text)
            self.inline.append(element.tail or "")
            return
        block = tag in _BLOCKS
        if block:
            self.flush()
        if tag in _PARAGRAPHS and _mostly_links(element):
            self.inline.append(element.tail or "")
            return
        self.inline.append(element.text or "" if tag else "")
        for child in element:
            self.walk(child)
        if block:
            self.flush()
        self.inline.append(element.tail or "")


def read_html(data: bytes, document: str) -> tuple[str | None, tuple[Section, ...]]:
    """A web page's bytes → (title or None, sections)."""
    try:
        root = lxml.html.document_fromstring(data)
    except (lxml.etree.ParserError, ValueError) as error:
        raise UnreadablePage(f"it is not a readable web page ({error})") from error
    page_title = _spaced(root.findtext(".//title") or "")
    for element in list(root.iter()):
        tag = element.tag if isinstance(element.tag, str) else None
        if element.getparent() is not None and (
                tag is None or tag.lower() in _LEFT_OUT
                or (tag not in ("body", "main", "article") and _left_out(element))):
            element.drop_tree()
    mains = root.findall(".//main") or (root.findall(".//article")
                                        if len(root.findall(".//article")) == 1 else [])
    body = mains[0] if mains else (root.find(".//body") if root.find(".//body") is not None
                                   else root)
    levels = sorted({_HEADINGS[e.tag] for e in body.iter() if e.tag in _HEADINGS
                     and _spaced(e.text_content())})
    h1s = [e for e in body.iter("h1") if _spaced(e.text_content())]
    title = None
    if len(h1s) == 1:
        title = _spaced(h1s[0].text_content())
        h1s[0].drop_tree()
        levels = [level for level in levels if level > 1]
    reader = _Reader(Outline(document), {level: r + 1 for r, level in enumerate(levels)})
    reader.walk(body)
    reader.flush()
    return title or page_title or None, reader.outline.finish()
