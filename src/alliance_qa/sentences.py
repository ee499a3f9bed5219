"""Sentence boundaries: as character spans of a document's text, so a highlight points into
the original; and as the sentences of a typed message."""

from __future__ import annotations

import re

# A sentence ends at . ! ? and the closing quotes or brackets after it, before a space and a
# capital, a digit or an opening quote; "U.S. Army" style initials do not end one.
_BOUNDARY = re.compile(r"(?<=[.!?])(?P<close>[\"'”’)\]]*)(?<![A-Z]\.[A-Z]\.)\s+"
                       r"(?=[A-Z0-9\"“‘(\[])")
# A typed message's sentences may start in lower case ("I'm writing a report. burden
# sharing"): there, any word after the end of one starts the next.
_MESSAGE_BOUNDARY = re.compile(r"(?<=[.!?])(?<![A-Z]\.[A-Z]\.)\s+(?=\S)")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence in text, whitespace excluded, in order."""
    spans, start = [], 0
    for match in _BOUNDARY.finditer(text):
        spans.append((start, match.end("close")))
        start = match.end()
    spans.append((start, len(text.rstrip())))
    return [(s, e) for s, e in spans if e > s]


def message_sentences(text: str) -> list[str]:
    """The sentences of a typed message, in order (blank ones left out)."""
    return [s for s in _MESSAGE_BOUNDARY.split(text) if s.strip()]
