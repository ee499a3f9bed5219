"""An Answer as the programs hand it on: the JSON of `ask --json` (and of the benchmark),
the terminal's text, and the chat page's Markdown transcript. Pure functions of an Answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:       # the command line imports this before any model or index loads
    from .search import Answer


def answer_json(answer: Answer) -> dict:
    """The stable JSON shape of an answer (see README)."""
    return {
        "question": answer.question,
        "searched": answer.searched,
        "abstained": answer.abstained,
        "confidence": answer.confidence,
        "reason": answer.reason,
        "notices": list(answer.notices),
        "passages": [{
            "rank": h.rank, "score": h.score, "citation": h.chunk.citation, "id": h.chunk.id,
            "document": h.chunk.document, "document_title": h.chunk.document_title,
            "section": h.chunk.heading, "section_number": h.chunk.section_number,
            "paragraph": h.chunk.paragraph,
            "page": h.chunk.pages[0] if h.chunk.pages else None,
            "pages": list(h.chunk.pages) if h.chunk.pages else None,
            "text": h.chunk.text,
            "highlights": [list(span) for span in h.highlights],
        } for h in answer.hits],
    }


def format_answer(answer: Answer) -> str:
    """The answer as `alliance-qa ask` prints it: the best sentences between » and «."""
    lines = [f"note: {n}" for n in answer.notices]
    if answer.abstained:
        lines.append(f"The documents do not appear to answer this. {answer.reason}")
        lines.append("Nearest passages (low confidence):")
    for h in answer.hits:
        text = h.chunk.text
        for start, end in reversed(h.highlights):
            text = f"{text[:start]}»{text[start:end]}«{text[end:]}"
        lines += ["", f"[{h.rank}] {h.chunk.citation}   score {h.score:.3f}",
                  f"    {h.chunk.document_title} · {h.chunk.id}", f"    {text}"]
    return "\n".join(lines)


def transcript_markdown(messages: list[dict]) -> str:
    """The chat as Markdown, with each passage's citation and id."""
    lines = ["# alliance-qa conversation", ""]
    for message in messages:
        if message["role"] == "user":
            lines += [f"## Q: {message['content']}", ""]
            continue
        answer: Answer = message["answer"]
        if answer.abstained:
            lines += [f"_The documents do not appear to answer this. {answer.reason}_", ""]
        for hit in answer.hits:
            lines += [f"**[{hit.rank}] {hit.chunk.citation}** — {hit.chunk.document_title} "
                      f"(`{hit.chunk.id}`)", "", f"> {hit.chunk.text}", ""]
    return "\n".join(lines)
