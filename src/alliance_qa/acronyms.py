"""Acronyms a corpus defines itself ("Status of Forces Agreement (SOFA)"), and expansion.

The model lowercases, so "SOFA" reads as furniture and "THAAD" as word pieces; writing the
long form next to the acronym, in questions and passages alike, lets either form match.
Nothing here knows this corpus: definitions are found with a simplified Schwartz–Hearst rule
(the acronym's letters are the initials of the words just before the parenthesis).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

_DEFINITION = re.compile(r"\(([A-Z][A-Za-z]{1,9}s?)\)")
_MINOR = {"of", "and", "the", "for", "to", "in", "on", "de", "&"}


def _long_form(words: list[str], acronym: str) -> str | None:
    """The shortest run of words ending at the parenthesis whose initials give the acronym."""
    letters = acronym.rstrip("s").lower() if acronym.endswith("s") and acronym[:-1].isupper() \
        else acronym.lower()
    for size in range(len(letters), min(len(words), len(letters) + 3) + 1):
        run = words[-size:]
        initials = "".join(w[0].lower() for w in run if w)
        strict = "".join(w[0].lower() for w in run if w and w.lower() not in _MINOR)
        if (initials == letters or strict == letters) and run[0][:1].isupper():
            return " ".join(run)
    return None


def find_acronyms(texts: list[str]) -> dict[str, str]:
    """{ACRONYM: long form} for every definition found in the texts (first one wins)."""
    found: dict[str, str] = {}
    for text in texts:
        for match in _DEFINITION.finditer(text):
            acronym = match.group(1)
            if sum(c.isupper() for c in acronym) < 2:
                continue
            words = re.findall(r"[\w’'-]+", text[: match.start()])[-(len(acronym) + 3):]
            long_form = _long_form(words, acronym)
            if long_form:
                key = acronym[:-1] if acronym.endswith("s") and acronym[:-1].isupper() else acronym
                found.setdefault(key, long_form.rstrip("s") if acronym != key else long_form)
    return found


@dataclass(frozen=True)
class _Patterns:
    any: re.Pattern                  # any of the acronyms as a whole word (plural too)
    each: dict[str, re.Pattern]      # each acronym (plural too), for fullmatch
    by_lower: dict[str, str]         # each acronym by its lower case


@functools.lru_cache(maxsize=16)
def _patterns(acronyms: tuple[str, ...]) -> _Patterns:
    """The patterns and lookup for a corpus's acronyms, made once."""
    each = {a: re.compile(rf"{re.escape(a)}s?", re.IGNORECASE) for a in acronyms}
    longest_first = sorted(map(re.escape, acronyms), key=len, reverse=True)
    return _Patterns(re.compile(rf"\b(?:{'|'.join(longest_first)})s?\b", re.IGNORECASE),
                     each, {a.lower(): a for a in acronyms})


def expand(text: str, acronyms: dict[str, str], among: list[str] | None = None) -> str:
    """Write each acronym's long form beside it, and each long form's acronym beside it.

    Matching is case-insensitive for the acronym (casual questions say "sofa"), but only on
    whole words; a text that already has both forms is left as it is. `among`: the only
    acronyms the text can hold, in the dictionary's order (`mentioned` in a text that
    contains this one), so the others are not looked for.
    """
    additions = [acronyms[a] if short else a
                 for a, short, long in _forms(text, acronyms, among) if short != long]
    return text if not additions else f"{text} ({'; '.join(additions)})"


def mentioned(text: str, acronyms: dict[str, str]) -> list[str]:
    """The acronyms, in the dictionary's order, that the text writes in either form: all
    that any part of it can hold (`expand`'s `among`)."""
    return [a for a, short, long in _forms(text, acronyms) if short or long]


def _forms(text: str, acronyms: dict[str, str], among: list[str] | None = None
           ) -> list[tuple[str, bool, bool]]:
    """Each acronym (of `among`, else all), whether the text writes it, and whether it
    writes its long form (found in one scan of the text)."""
    if not acronyms or among == []:
        return []
    patterns = _patterns(tuple(acronyms))
    present = _acronyms_among(set(patterns.any.findall(text)), patterns)
    lowered = text.lower()
    return [(a, a in present, acronyms[a].lower() in lowered)
            for a in (acronyms if among is None else among)]


def _acronyms_among(words: set[str], patterns: _Patterns) -> set[str]:
    """The acronyms these found words are (an acronym, or its plural, in any case): looked
    up by lower case, as each acronym's own pattern would match them; a word the lookup
    misses (a letter whose case folds otherwise) is matched against every pattern."""
    present = set()
    for word in words:
        lower = word.lower()
        hits = [patterns.by_lower[w] for w in (lower, lower[:-1] if lower.endswith("s")
                                                 else None) if w in patterns.by_lower]
        present.update(hits or [a for a, pattern in patterns.each.items()
                                if pattern.fullmatch(word)])
    return present
