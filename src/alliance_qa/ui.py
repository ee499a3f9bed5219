"""What the chat page shows, as strings: passage cards, sections, status, the transcript.

Pure functions, so the app stays a thin layer of widgets. Every piece of document or user
text goes through `escape`, which leaves nothing for HTML, Markdown or LaTeX to interpret:
the page shows the document's own words, never live markup.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from .chunking import Chunk
from .citations import citation_id, citation_label, page_label
from .documents import Document, Section
from .search import Answer, Hit

# Paragraphs an answer's fold shows on each side of the cited one; the whole section is a
# link away. Whole sections made an answer ~130 KB of HTML on long sections (docs/speed.md).
AROUND = 2
# Up to this many documents the outline lists them all; past it, one chosen document's.
OUTLINE_DOCUMENTS = 20

# Characters that HTML, Markdown or LaTeX ($) would act on, as numeric entities.
_ACTIVE = {c: f"&#{ord(c)};" for c in "&<>\"'\\`*_{}[]()#+-!|$~:"}

STYLE = """<style>
.aqa-card{border:1px solid rgba(128,128,128,.25);border-radius:.6rem;padding:.75rem .95rem;
  margin:.35rem 0 .5rem 0;background:rgba(128,128,128,.04)}
.aqa-card.low{border-style:dashed;opacity:.9}
.aqa-head{display:flex;gap:.6rem;align-items:baseline;flex-wrap:wrap;margin-bottom:.15rem}
.aqa-rank{font-weight:700;color:#fff;background:#3b6ea5;border-radius:1rem;padding:0 .5rem;
  font-size:.8rem}
.aqa-cite{font-weight:600}
.aqa-crumb{color:rgba(110,110,110,1);font-size:.82rem;margin-bottom:.35rem}
.aqa-meter{margin-left:auto;font-size:.78rem;color:rgba(110,110,110,1);white-space:nowrap}
.aqa-bar{display:inline-block;width:4.5rem;height:.42rem;border-radius:.3rem;
  background:rgba(128,128,128,.25);vertical-align:middle;margin-left:.3rem;overflow:hidden}
.aqa-bar>span{display:block;height:100%;background:#3b8a5a}
.aqa-text{line-height:1.55}
.aqa-text mark{background:#fff1a8;color:inherit;padding:0 .1rem;border-radius:.2rem}
.aqa-low{font-size:.75rem;color:#a05a00;font-weight:600;text-transform:uppercase}
.aqa-para{margin:.3rem 0 .6rem 0;line-height:1.55}
.aqa-para.cited{border-left:4px solid #e0b400;padding-left:.6rem;background:rgba(255,241,168,.35)}
.aqa-num{color:rgba(110,110,110,1);font-size:.8rem;margin-right:.35rem}
.aqa-open{margin-top:.55rem;border-top:1px solid rgba(128,128,128,.2);padding-top:.4rem}
.aqa-open summary{cursor:pointer;color:#3b6ea5;font-size:.9rem}
.aqa-id{font-size:.8rem;color:rgba(110,110,110,1);margin-top:.2rem}
.aqa-abstain{border-left:4px solid #d08a00;padding:.35rem .7rem;background:rgba(208,138,0,.08)}
.aqa-alert{border-radius:.5rem;padding:.75rem 1rem;margin:.25rem 0 .75rem 0;line-height:1.5}
.aqa-alert.error{background:rgba(255,43,43,.09);color:#7d353b}
.aqa-alert.warning{background:rgba(255,227,18,.12);color:#926c05}
.aqa-alert.info{background:rgba(28,131,225,.1);color:#004280}
.aqa-alert.success{background:rgba(33,195,84,.1);color:#177233}
</style>"""


def escape(text: str) -> str:
    """Text → HTML that displays exactly that text and nothing else."""
    return "".join(_ACTIVE.get(c, c) for c in text).replace("\n", " ")


def alert_html(kind: str, text: str) -> str:
    """A message box as an HTML block, its text escaped line by line: Markdown never runs
    inside an HTML block, so URL-like text stays text (Streamlit's st.error would link it)."""
    lines = "<br>".join(escape(line) for line in text.splitlines())
    return f'<div class="aqa-alert {kind}" role="alert">{lines}</div>'


def question_html(question: str, limit: int = 2000) -> str:
    """The asker's words in an HTML block, where Markdown (autolinks included) never runs;
    a paste longer than `limit` characters is shown cut, with an ellipsis."""
    shown = question if len(question) <= limit else question[:limit] + " …"
    return f'<div class="aqa-question">{escape(shown) or "&nbsp;"}</div>'


LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def host_allowed(host: str, server_address: str | None) -> bool:
    """Whether a page requested with this Host header may be served. A server listening on
    this machine only (the default) answers only to this machine's names, so that a web
    page elsewhere cannot reach it through a name of its own (DNS rebinding); one started
    on a network address on purpose answers to any name. No header at all is an in-process
    run, not a browser."""
    if not host or (server_address or "127.0.0.1") not in ("127.0.0.1", "localhost", "::1"):
        return True
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1:host.find("]")]
    name = name.lower().rstrip(".")
    return name in LOOPBACK_NAMES or name.endswith(".localhost")


def marked(text: str, spans: tuple[tuple[int, int], ...]) -> str:
    """Escaped text with the given character spans wrapped in <mark>."""
    out, position = [], 0
    for start, end in sorted(spans):
        out += [escape(text[position:start]), "<mark>", escape(text[start:end]), "</mark>"]
        position = end
    out.append(escape(text[position:]))
    return "".join(out)


def relevance_meter(similarity: float) -> str:
    """A small bar showing how close a passage comes to the question."""
    percent = max(0, min(100, round(similarity * 100)))
    return (f'<span class="aqa-meter" title="how close this passage comes to the question">'
            f'relevance {similarity:.2f}<span class="aqa-bar"><span style="width:{percent}%">'
            f"</span></span></span>")


def breadcrumb_text(chunk: Chunk, show_document: bool) -> str:
    """The heading path of a passage, with its document's title when several are indexed."""
    parts = ([chunk.document_title] if show_document else []) + list(chunk.breadcrumb)
    return " › ".join(parts)


def hit_card(hit: Hit, section: Section | None = None, low_confidence: bool = False,
             show_document: bool = True) -> str:
    """One passage as a card: rank, citation, breadcrumb, relevance, text with highlight, and
    (given its section) an "Open" fold with the cited paragraph among its neighbours, the
    id, a share link and, when the fold shows only part of it, a link to the whole section."""
    chunk = hit.chunk
    low = '<span class="aqa-low">low confidence</span>' if low_confidence else ""
    fold = ""
    if section is not None:
        heading = escape(chunk.citation.split(",")[0])
        emphasis = paragraph_span(section, chunk, hit.highlights)
        where = "the page" if chunk.pages else "this passage"
        count = len(section.paragraphs)
        shown = min(count, chunk.paragraph + AROUND) - max(1, chunk.paragraph - AROUND) + 1
        whole = (f' · <a href="{share_link(citation_id(section))}" target="_self">the whole '
                 f"section ({count} paragraphs)</a>" if shown < count else "")
        fold = (f'<details class="aqa-open"><summary>Open {heading}</summary>'
                f"{section_html(section, chunk.paragraph, emphasis, AROUND)}"
                f'<div class="aqa-id">Citation id <code>{escape(chunk.paragraph_id)}</code> · '
                f'<a href="{share_link(chunk.paragraph_id, emphasis)}" target="_self">link to '
                f"{where}</a>{whole}</div></details>")
    return (f'<div class="aqa-card{" low" if low_confidence else ""}">'
            f'<div class="aqa-head"><span class="aqa-rank">{hit.rank}</span>'
            f'<span class="aqa-cite">{escape(chunk.citation)}</span>{low}'
            f"{relevance_meter(hit.similarity)}</div>"
            f'<div class="aqa-crumb">{escape(breadcrumb_text(chunk, show_document))}</div>'
            f'<div class="aqa-text">{marked(chunk.text, hit.highlights)}</div>{fold}</div>')


def answer_html(answer: Answer, sections: list[Section | None],
                show_document: bool = True) -> str:
    """A whole answer as one block: the abstention notice first, then the passage cards."""
    notice = ""
    if answer.abstained:
        notice = (f'<p class="aqa-abstain"><b>The documents do not appear to answer this.</b> '
                  f"{escape(answer.reason)} The nearest passages are below, marked as low "
                  "confidence.</p>")
    cards = "".join(hit_card(hit, section, answer.abstained, show_document)
                    for hit, section in zip(answer.hits, sections))
    return f'<div class="aqa-answer">{notice}{cards}</div>'


def paragraph_span(section: Section, chunk: Chunk, highlights: tuple[tuple[int, int], ...]
                   ) -> tuple[int, int] | None:
    """The passage's highlighted sentences as one span of its whole paragraph's text."""
    paragraph = section.paragraphs[chunk.paragraph - 1] if \
        0 < chunk.paragraph <= len(section.paragraphs) else ""
    offset = paragraph.find(chunk.text)
    if offset < 0 or not highlights:
        return None
    return offset + min(a for a, _ in highlights), offset + max(b for _, b in highlights)


def section_html(section: Section, cited_paragraph: int | None = None,
                 emphasis: tuple[int, int] | None = None, around: int | None = None) -> str:
    """A section, paragraph by paragraph (with its page in a PDF), the cited one marked,
    and in it the `emphasis` span (the answering sentences): all of it, or with `around`
    the cited paragraph and that many on each side."""
    first, last = 1, len(section.paragraphs)
    if around is not None and cited_paragraph:
        first, last = max(first, cited_paragraph - around), min(last, cited_paragraph + around)
    rows = []
    for number in range(first, last + 1):
        paragraph = section.paragraphs[number - 1]
        cited = " cited" if number == cited_paragraph else ""
        text = marked(paragraph, (emphasis,)) if cited and emphasis else escape(paragraph)
        pages = page_label(section.paragraph_pages(number))
        rows.append(f'<div class="aqa-para{cited}" id="p{number}"><span class="aqa-num">'
                    f"{pages + ' ' if pages else ''}¶{number}</span>{text}</div>")
    return "".join(rows) or '<div class="aqa-para"><em>This section has no text.</em></div>'


def outline_html(document: Document) -> str:
    """A document's outline: every section, indented by level, each a link that opens it."""
    rows = [f"<div><b>{escape(document.title)}</b></div>"]
    for section in document.sections:
        indent = 0.9 * max(section.level - 1, 0)
        rows.append(f'<div style="margin-left:{indent}rem"><a href="'
                    f'{share_link(citation_id(section))}" target="_self">'
                    f"{escape(citation_label(section))}</a></div>")
    return f'<div class="aqa-outline">{"".join(rows)}</div>'


_PLAIN_HEADING = re.compile(r"[\w ,.'’&–-]{3,80}")


def example_questions(documents: list[Document], count: int = 3) -> list[str]:
    """Questions to try, made from the documents' own headings (spread over the outline;
    document titles for documents without any), so that they fit whatever is indexed.
    Only headings of plain words are used: a button label is Markdown."""
    headings = [s.heading for d in documents for s in d.sections
                if s.level and s.paragraphs and _PLAIN_HEADING.fullmatch(s.heading)]
    headings = headings or [d.title for d in documents if _PLAIN_HEADING.fullmatch(d.title)]
    chosen = headings[::max(1, len(headings) // count)][:count]
    return [f"What do the documents say about “{heading}”?" for heading in chosen]


def share_link(citation_id: str, emphasis: tuple[int, int] | None = None) -> str:
    """A relative link that opens the app on this citation (and marks the answering
    sentences, a span of the paragraph's text)."""
    link = "?cite=" + quote(citation_id, safe="/")
    return link + (f"&amp;hl={emphasis[0]}-{emphasis[1]}" if emphasis else "")


def emphasis_from(value: str | None, paragraph: str) -> tuple[int, int] | None:
    """A link's `hl=START-END` as a span inside the paragraph; None for anything else."""
    match = re.fullmatch(r"([0-9]{1,7})-([0-9]{1,7})", value or "")
    if not match:
        return None
    start, end = int(match.group(1)), min(int(match.group(2)), len(paragraph))
    return (start, end) if start < end else None
