"""A message as typed → one `Question`, read once, that search and abstention both take:
the text as typed and cleaned, misspelt words read as meant, what it asks without the chatter
around it ("Hi! Can you tell me…"), the sentences that ask when others set the scene, the
form it is searched in (a question mark where it asks without one), and whether it asks
what a whole document is about.

Pure: no model, no index (the speller comes in as a function). Refuses what cannot be
searched (nothing but blanks) with a gentle, named error, and shortens what is too long
instead of embedding it for minutes. The English patterns live in `language.py`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from . import language as en
from .errors import AllianceQAError
from .sentences import message_sentences


class EmptyQuestion(AllianceQAError):
    """A message with nothing to search in it."""
    fix = "Type a question about the documents."


@dataclass(frozen=True)
class Prepared:
    """A message cleaned and cut to length, with what was changed."""
    text: str                   # cleaned and cut
    notices: tuple[str, ...]    # what was changed, in words


Corrector = Callable[[str], "tuple[str, tuple[tuple[str, str], ...]]"]


@dataclass(frozen=True)
class Question:
    """A message read once: everything search and abstention need to know of it."""

    typed: str                                  # cleaned and cut, as shown
    asked: str                                  # misspellings read as meant, chatter left out
    asking: str                                 # the sentences that ask, when others set the scene
    searched: str                               # `asked` in the form it is searched in
    focus: str                                  # `asking` in that form ("" without context)
    overview: bool                              # asks what a whole document is about
    corrections: tuple[tuple[str, str], ...]    # (as typed, as read)
    notices: tuple[str, ...]
    context: str = ""                           # the conversation it was read with, if any

    @property
    def checked(self) -> str:
        """What the answer-type checks read: the asking sentences, else the whole question."""
        return self.asking or self.asked


def prepare(raw: str, max_chars: int = 1000) -> Prepared:
    """Clean a typed question: drop control characters and broken surrogates, fold
    compatibility forms (NFKC), collapse blanks, and cut it at `max_chars`."""
    if not isinstance(raw, str):
        raise EmptyQuestion("The question is not text.")
    notices = []
    # Lone surrogates (from a broken paste or a terminal) cannot be encoded: replace them.
    text = raw.encode("utf-8", "replace").decode("utf-8")
    if len(text) > 20 * max_chars:      # cheap cut first, so that huge input costs nothing
        text = text[: 20 * max_chars]
    text = unicodedata.normalize("NFKC", text)
    text = "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in text)
    text = re.sub(r"\s+", " ", text).strip()
    if not text:
        raise EmptyQuestion("The question is empty.")
    if len(text) > max_chars:
        cut = text[:max_chars]
        text = cut[: cut.rfind(" ")] if " " in cut[max_chars // 2:] else cut
        notices.append(f"Your question was {len(raw):,} characters long; only its first "
                       f"{len(text):,} were searched.")
    if not any(c.isalnum() for c in text):
        raise EmptyQuestion("The question has no words in it.")
    return Prepared(text, tuple(notices))


def asks_for_overview(text: str) -> bool:
    """Whether the question asks what a document is about as a whole."""
    return bool(en.SUMMARY_REQUEST.search(text) or en.THE_DOCUMENT.search(text)
                and (en.GIST_AT_END.search(text) or en.GIST_OF_IT.search(text)))


def without_chatter(text: str) -> str:
    """What a message asks, without greetings, thanks or a request frame around it
    ("Hi! Can you tell me what SOFA is? Thanks!" → "What SOFA is?"); a message that is
    nothing but chatter is left as it is."""
    asked = text
    while True:
        shorter = en.THANKS.sub("", en.REQUEST.sub("", en.GREETING.sub("", asked))).strip()
        if shorter == asked:
            break
        asked = shorter
    if not any(c.isalnum() for c in asked):
        return text
    return asked[0].upper() + asked[1:] if text[:1].isupper() else asked


def as_a_question(text: str) -> str:
    """The question with a question mark when it opens like one and ends without one (the
    model reads "why do us troops stay in korea" as a statement)."""
    return text + "?" if en.ASKS.match(text) and not re.search(r"[?.!]\W*$", text) else text


def asking_sentences(text: str) -> str:
    """The sentences of a message that ask, when others only set the scene ("I'm writing a
    report on the alliance. What did the treaty provide?" → the second; when none asks in
    so many words, the last: "I'm writing a report. burden sharing"); "" when the message
    is one sentence or every sentence asks."""
    sentences = message_sentences(text)
    asking = [s for s in sentences if s.endswith("?") or en.ASKS.match(s)] or sentences[-1:]
    return " ".join(asking) if len(asking) < len(sentences) else ""


def spelling_notice(changes: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    """What the person is told of the corrections: one line, or nothing."""
    if not changes:
        return ()
    read = ", ".join(f"“{typed}” as “{meant}”" for typed, meant in changes)
    return (f"Read {read}.",)


def leans_on_context(asked: str) -> bool:
    """Whether a message does not stand alone: it refers back ("its provisions", "why does
    that matter"), continues the last question ("And in the 1980s?", "What about SOFA?"), or
    has no word of its own to search ("Why?", "Tell me more")."""
    words = re.findall(r"[^\W_]+(?:['’][^\W_]+)?", asked.lower())
    return bool(en.REFERS_BACK.search(asked) or en.CONTINUES.match(asked)
                or not any(w not in en.STOPWORDS for w in words))


def read_question(prepared: Prepared, correct: Corrector, context: tuple[str, ...] = ()
                  ) -> Question:
    """A prepared message → the Question that search and abstention take. `context` is
    what the conversation was about (the question that started the subject first); a
    message that leans on it is searched with it, and asks what it asks: its own words are
    the focus, and the answer-type checks read them alone."""
    corrected, corrections = correct(prepared.text)
    asked = without_chatter(corrected)
    notices = prepared.notices + spelling_notice(corrections)
    if context and leans_on_context(asked) and not asks_for_overview(asked):
        before = " ".join(context)
        notices += (f"Read as a follow-up to “{context[0]}”",)
        return Question(prepared.text, asked, asked, f"{before} {as_a_question(asked)}",
                        as_a_question(asked), False, corrections, notices, before)
    asking = asking_sentences(asked)
    return Question(prepared.text, asked, asking, as_a_question(asked),
                    as_a_question(asking) if asking else "", asks_for_overview(asked),
                    corrections, notices)
