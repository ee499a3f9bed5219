"""Sentence boundaries as character spans, so a highlight points into the original text."""

from __future__ import annotations

import re

# A sentence ends at . ! ? (with closing quotes/brackets) before a space and a capital,
# a digit or an opening quote; "U.S. Army" style initials do not end one.
_BOUNDARY = re.compile(r"(?<=[.!?])[\"'”’)\]]*(?<![A-Z]\.[A-Z]\.)\s+(?=[A-Z0-9\"“‘(\[])")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence in text, whitespace excluded, in order."""
    spans, start = [], 0
    for match in _BOUNDARY.finditer(text):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text.rstrip())))
    return [(s, e) for s, e in spans if e > s]
