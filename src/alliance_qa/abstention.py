"""Whether the documents answer a question: a confidence calibrated by the index itself, and
answer-type checks that each say, truthfully, what the closest passages lack.

**Calibration.** How high a question's best fused score must be depends on the corpus (a
broad collection comes close to anything) and on the model (each has its own cosine scale),
so no constant decides it. At build time the index scores, with the very searcher that
serves, questions it cannot answer and questions it can. Those it cannot: a bundled set of
general questions about other subjects (`data/reference-questions.txt`), and the same
questions set among the corpus's own names ("… in South Korea?", `near_questions`), which
share the collection's subject words as a question near its subject does ("What currency
does South Korea use?"). Those it can: questions made from its own text, a sentence's words
in their order, as many as a reference question has (`corpus_questions`). A logistic
regression (scikit-learn's) fitted to the two sides' scores gives the threshold, where the
two are equally likely, and the confidence above and below it; the manifest keeps both.
Every rebuild, and every change of model, refits it.

**Checks.** On-topic questions that ask for a kind of fact the text never gives score as high
as answerable ones, so each check below looks for that kind of fact in what was retrieved.
Each is named, can be switched off, and is measured alone by `alliance-qa eval` (what it
catches that nothing else would, and what it wrongly abstains on):
- `time`: a when-question whose first passage and best sentences hold no time expression;
- `quantity`: a how-many (how much, how tall) question whose first passage and best
  sentences hold no figure counting the thing asked;
- `number`: a number in the question that no closest passage mentions;
- `role`: a who/which question naming a role or place ("which city") no passage uses.
"""

from __future__ import annotations

import math
import random
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources

import numpy as np
import Stemmer

from . import language as en
from .errors import IndexCorrupt, IndexStale
from .questions import Question

CHECKS = ("time", "quantity", "number", "role")
CORPUS_QUESTIONS = 500        # questions made from the corpus's own sentences, to calibrate
NAMING_SAMPLE = 2000          # texts whose names are counted (a sample keeps a large build fast)
_STEMMER = Stemmer.Stemmer("english")


def reference_questions() -> list[str]:
    """The bundled general questions about other subjects."""
    text = resources.files(__package__).joinpath("data/reference-questions.txt").read_text(
        encoding="utf-8")
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.startswith("#")]


def corpus_questions(sentences: Sequence[str], lengths: list[int],
                     count: int = CORPUS_QUESTIONS) -> list[str]:
    """Questions the corpus answers, made from its own sentences: each keeps, in their
    order, as many of one sentence's words as one of `lengths` (the reference questions'
    lengths in words), so that they are as short as questions are. The same corpus always
    gives the same questions. `sentences` is read once in order to count their words, then
    only the sentences drawn (it may decode each as it is asked for)."""
    chance = random.Random(0)
    sizes = [len(s.split()) for s in sentences]      # split again only when drawn: all the
    usable = ([i for i, n in enumerate(sizes) if n >= 4]          # words of 400,000
              or [i for i, n in enumerate(sizes) if n])           # sentences held ~250 MB
    if not usable or not lengths:
        return []
    made = []
    for i in range(count):
        words = sentences[chance.choice(usable)].split()
        kept = sorted(chance.sample(range(len(words)), min(lengths[i % len(lengths)],
                                                            len(words))))
        made.append(" ".join(words[j] for j in kept))
    return made


def corpus_names(texts: Sequence[str], sample: int = NAMING_SAMPLE) -> Counter:
    """How many texts name each name (`language.names_in`), over a repeatable sample of
    them; only the texts sampled are read (`texts` may decode each as it is asked for)."""
    chance = random.Random(0)
    count = len(texts)
    chosen = range(count) if count <= sample else chance.sample(range(count), sample)
    counts: Counter = Counter()
    for number in chosen:
        counts.update(dict.fromkeys(en.names_in(texts[number])).keys())  # once a text, in order
    return counts


def near_questions(questions: list[str], names: Counter) -> list[str]:
    """The questions set among the corpus's own names, each name drawn as often as texts name
    it: they use the collection's subject words and still ask what it does not say. The same
    corpus always gives the same questions; a corpus that names nothing gives none."""
    if not names:
        return []
    chance = random.Random(0)
    drawn = chance.choices(list(names), weights=list(names.values()), k=len(questions))
    return [en.asked_in(question, name) for question, name in zip(questions, drawn)]


@dataclass(frozen=True)
class Calibration:
    """What the index learned of its own corpus and model (kept in the manifest)."""

    threshold: float         # top fused score below which the documents do not answer
    scale: float             # how fast confidence rises above it
    reference_questions: int
    corpus_questions: int
    near_questions: int = 0

    @classmethod
    def fit(cls, unanswered: list[float], answered: list[float], near: int = 0
            ) -> Calibration:
        """From the top scores of questions the corpus cannot answer (the reference
        questions, then the `near` of them set among its names) and of questions it can
        (made from its own sentences): a logistic regression of answerability on the score,
        each side weighted alike. Its threshold is where the two are equally likely; its
        scale, how fast the odds change with the score."""
        from sklearn.linear_model import LogisticRegression  # 2 s to import: build only
        scores = np.array(unanswered + answered, dtype=np.float64)
        centre, spread = float(scores.mean()), max(float(scores.std()), 1e-6)
        labels = np.r_[np.zeros(len(unanswered)), np.ones(len(answered))]
        model = LogisticRegression(class_weight="balanced").fit(
            ((scores - centre) / spread)[:, None], labels)
        slope, intercept = float(model.coef_[0, 0]), float(model.intercept_[0])
        counts = (len(unanswered) - near, len(answered), near)
        if slope <= 0:        # the corpus's own questions score no higher: trust no score
            return cls(math.inf, 1.0, *counts)
        return cls(round(centre - intercept * spread / slope, 4), round(spread / slope, 4),
                   *counts)

    @classmethod
    def from_manifest(cls, data: object) -> Calibration:
        """The calibration a manifest stores: IndexStale when it has none (built before
        calibration), IndexCorrupt when it is not of this shape."""
        if data is None:
            raise IndexStale("The index was built before abstention was calibrated.")
        try:
            return cls(float(data["threshold"]), float(data["scale"]),
                       int(data["reference_questions"]), int(data["corpus_questions"]),
                       int(data["near_questions"]))
        except (KeyError, TypeError, ValueError) as error:
            raise IndexCorrupt("The index's abstention calibration is malformed.") from error

    def confidence(self, score: float) -> float:
        """The probability that the documents answer a question of this top score."""
        z = (score - self.threshold) / self.scale
        return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))


# What the build's own searcher uses while it measures the calibration: it never abstains.
UNCALIBRATED = Calibration(-math.inf, 1.0, 0, 0, 0)


@dataclass(frozen=True)
class Evidence:
    """What the search found that abstention reads."""

    score: float                       # the top fused score
    best_sentences: list[str]          # the highlighted sentences of the top passages
    passages: list[str]                # the top passages


@dataclass(frozen=True)
class Verdict:
    """What abstention decided: whether to abstain, how confident, and why."""
    abstain: bool
    confidence: float             # estimated probability that the documents answer it
    reason: str                   # why it abstains, in words ("" when it does not)
    fired: tuple[str, ...] = ()   # every check that found something missing


def _stems(text: str) -> set[str]:
    return set(_STEMMER.stemWords(re.findall(r"[a-z]+", text.lower())))


def _quantities(text: str, of: list[str]) -> list[str]:
    """Numbers that are amounts, not years or decades; with `of`, only those counting one of
    those words (a word of the same stem follows within three words: "both nations")."""
    found = [m for m in en.QUANTITY.finditer(text)
             if not en.TIME_EXPRESSION.fullmatch(m.group(0))]
    if of:
        counted = set(_STEMMER.stemWords([w.lower() for w in of]))
        found = [m for m in found if counted & set(_STEMMER.stemWords(
            [w.lower().strip(".,;:") for w in text[m.end():].split()[:3]]))]
    return [m.group(0) for m in found]


def _counted(question: str) -> list[str]:
    """The words a "how many" question counts ("How many US troops are…" → troops)."""
    match = en.COUNTED.search(question)
    return [w for w in match.group(1).split() if len(w) > 3] if match else []


def missing_time(question: str, best_sentences: list[str]) -> str:
    """Why a question asking when finds no time in its best sentences; "" if it does."""
    if en.ASKS_TIME.search(question) and not en.TIME_EXPRESSION.search(" ".join(best_sentences)):
        return ("The sentences that best answer it give no date or time, so the documents do "
                "not seem to say when.")
    return ""


def missing_quantity(question: str, best_sentences: list[str]) -> str:
    """Why a question asking how many, how much or how tall finds no figure; "" if it
    does."""
    if en.ASKS_QUANTITY.search(question) and not _quantities(" ".join(best_sentences),
                                                             _counted(question)):
        return ("The sentences that best answer it give no figure for that, so the documents "
                "do not seem to say how many or how much.")
    return ""


def _mentions(number: str, passages: str) -> bool:
    """Whether the passages mention a number of the question ("80s" as any year 1980–89)."""
    decade = en.DECADE.fullmatch(number)
    if decade:
        century, digit = decade.group(1), decade.group(2)
        years = rf"{century or '[0-9]{2}'}{digit}[0-9]"
        return bool(re.search(rf"\b{years}s?\b|['’]?\b{digit}0s\b", passages))
    plain = number.replace(",", "").rstrip(".")
    written = {n.replace(",", "").rstrip(".") for n in en.NUMBER.findall(passages)}
    spelled = en.SPELLED.get(int(plain)) if plain.isdigit() else None
    return plain in written or bool(spelled and re.search(rf"\b({spelled})\b", passages,
                                                          re.IGNORECASE))


def missing_number(question: str, passages: list[str]) -> str:
    """Why a number written in the question is in none of the passages; "" if it is."""
    joined = " ".join(passages)
    decades = [m.group(0) for m in en.DECADE.finditer(question)]
    numbers = decades + en.NUMBER.findall(en.DECADE.sub(" ", question))
    absent = [n for n in numbers if not _mentions(n, joined)]
    if absent:
        return (f"The closest passages never mention {absent[0]}, so the documents do not "
                "seem to cover it.")
    return ""


def missing_role(question: str, passages: list[str]) -> str:
    """Why the role or place a question asks about is named in none of the passages."""
    if not en.ASKS_ENTITY.search(question):
        return ""
    known = _stems(" ".join(passages))
    for match in en.ROLE_OR_PLACE.finditer(question):
        noun = match.group(0).lower()
        if not _stems(noun) <= known:
            return (f"The closest passages never mention a {noun}, so the documents do not "
                    "seem to say.")
    return ""


def _reasons(question: str, evidence: Evidence) -> dict[str, str]:
    # A date or a figure may stand in the first passage beside its best sentence ("…began
    # on 1 August 1944. … It lasted 63 days."): it is read whole, the others by their best.
    answering = evidence.best_sentences + evidence.passages[:1]
    return {"time": missing_time(question, answering),
            "quantity": missing_quantity(question, answering),
            "number": missing_number(question, evidence.passages),
            "role": missing_role(question, evidence.passages)}


def script(character: str) -> str:
    """The writing system of a letter, as Unicode names it ("LATIN", "ARABIC", "CJK")."""
    return unicodedata.name(character, "").split(" ")[0]


def scripts_of(texts: Iterable[str]) -> list[str]:
    """Every writing system the texts' letters use (the build stores the corpus's)."""
    characters: set[str] = set()
    for text in texts:      # one at a time (a set of each text at once held ~2 KB a text)
        characters.update(text)
    return sorted({script(c) for c in characters if c.isalpha()} - {""})


def foreign_script(question: str, known: frozenset[str]) -> str:
    """Why a question mostly written in a script the documents never use cannot be
    answered from them ("" when it is not)."""
    letters = [script(c) for c in question if c.isalpha()]
    foreign = Counter(s for s in letters if s not in known)
    if not known or 2 * sum(foreign.values()) <= len(letters):
        return ""
    name = foreign.most_common(1)[0][0]
    return (f"The question is written in {name if name == 'CJK' else name.title()} script, "
            "which the documents do not use.")


def decide(question: Question, evidence: Evidence, calibration: Calibration,
           checks: tuple[str, ...] = CHECKS, scripts: frozenset[str] = frozenset()
           ) -> Verdict:
    """Abstain when the question is written in a script the documents never use, when the
    score is no better than questions about other subjects, or when an enabled check finds
    the kind of fact asked missing. An overview question ("what is this about?") is
    answered by the documents' openings, however little its words match."""
    probability = calibration.confidence(evidence.score)
    foreign = foreign_script(question.typed, scripts)
    if foreign:
        return Verdict(True, min(probability, 0.01), foreign)
    reasons = {name: why for name, why in _reasons(question.checked, evidence).items() if why}
    fired = tuple(reasons)
    if question.overview:
        return Verdict(False, max(probability, 0.5), "", fired)
    if probability < 0.5:
        return Verdict(True, probability, "Nothing in the documents comes close to this "
                                          "question.", fired)
    reason = next((reasons[name] for name in CHECKS if name in checks and name in reasons), "")
    if reason:
        return Verdict(True, min(probability, 0.49), reason, fired)
    return Verdict(False, probability, "", fired)
