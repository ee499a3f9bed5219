"""What people say about answers, kept on this machine: one JSON line per choice.

Under an answer, a person may say which passage answered the question ("this answered it")
or that none did. Recording is off unless the server is started with a feedback file
(`ALLIANCE_QA_FEEDBACK`); nothing leaves the machine. `alliance-qa eval --feedback FILE`
scores the current index on the recorded choices, so the evaluation grows from real
questions. Pure but for `record`, which appends one line.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .errors import QuestionSetInvalid
from .search import Answer

NONE_OF_THESE = "none"
FILE_FIX = ('Give the file the chat page writes when started with ALLIANCE_QA_FEEDBACK: one '
            'JSON object per line with "question", "shown" and "chosen".')


@dataclass(frozen=True)
class Choice:
    """What a person said of one answer."""
    question: str
    context: tuple[str, ...]     # the conversation the question was read with
    shown: tuple[str, ...]       # paragraph ids of the passages shown, in rank order
    chosen: str                  # the paragraph id that answered it, or NONE_OF_THESE


def choice_for(answer: Answer, context: tuple[str, ...], chosen: str) -> Choice:
    """The choice made under an answer, with the passages it showed."""
    return Choice(answer.question, context, tuple(h.chunk.paragraph_id for h in answer.hits),
                  chosen)


def record(path: Path, choice: Choice) -> None:
    """Append the choice as one JSON line (one write, so lines never interleave)."""
    line = json.dumps({"at": datetime.now(UTC).isoformat(timespec="seconds"),
                       "question": choice.question, "context": list(choice.context),
                       "shown": list(choice.shown), "chosen": choice.chosen},
                      ensure_ascii=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(descriptor, line.encode())
    finally:
        os.close(descriptor)


def load(path: Path) -> list[Choice]:
    """The recorded choices of a feedback file."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise QuestionSetInvalid(f"The feedback file {path} cannot be read "
                                 f"({getattr(error, 'strerror', None) or error}).",
                                 FILE_FIX) from error
    choices = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            choices.append(Choice(str(row["question"]), tuple(map(str, row.get("context", []))),
                                  tuple(map(str, row["shown"])), str(row["chosen"])))
        except (ValueError, KeyError, TypeError) as error:
            raise QuestionSetInvalid(f"Line {path.name}:{number} is not a recorded "
                                     "choice.", FILE_FIX) from error
    return choices


def score(choices: list[Choice], answers: list[Answer]) -> dict:
    """The current index on recorded choices: for questions a passage answered, whether that
    paragraph now comes first or in the top three; for those none answered, how many the
    index now abstains on, and how many it answers first with a passage that was refused."""
    chosen = [(c, a) for c, a in zip(choices, answers) if c.chosen != NONE_OF_THESE]
    refused = [(c, a) for c, a in zip(choices, answers) if c.chosen == NONE_OF_THESE]

    def rank(choice: Choice, answer: Answer) -> int | None:
        ids = [h.chunk.paragraph_id for h in answer.hits]
        return ids.index(choice.chosen) if choice.chosen in ids else None

    ranks = [rank(c, a) for c, a in chosen]
    return {
        "choices": len(choices),
        "answered": {"questions": len(chosen),
                     "hit1": sum(r == 0 for r in ranks) / len(chosen) if chosen else None,
                     "hit3": sum(r is not None and r < 3 for r in ranks) / len(chosen)
                     if chosen else None},
        "none_answered": {"questions": len(refused),
                          "abstained_now": sum(a.abstained for _, a in refused),
                          "refused_passage_first": sum(
                              bool(a.hits) and a.hits[0].chunk.paragraph_id in c.shown
                              for c, a in refused)},
    }
