"""Retrieval quality on a question set with gold sections: hit@1, hit@3, MRR, abstention.

The product's searcher is measured beside two baselines in the same run, on the same
chunks: plain BM25 over paragraphs and plain dense retrieval (paragraphs, the same model).
A passage counts as right when its section is one of the question's gold sections.
"""

from __future__ import annotations

import json
import random
import re
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from statistics import mean, pstdev

import numpy as np

from .citations import citation_id, find_section
from .errors import QuestionSetInvalid
from .keyword import KeywordIndex
from .search import Searcher
from .stopwords import STOPWORDS

EVAL_DIR = Path(__file__).resolve().parents[2] / "eval"     # the repository's question sets


@dataclass(frozen=True)
class EvalQuestion:
    id: str
    kind: str
    question: str
    gold: tuple[str, ...]       # section ids; empty when the corpus does not answer it
    source: str = ""            # the question set (file name) it comes from


@dataclass
class Scores:
    hit1: float
    hit3: float
    mrr: float
    count: int
    by_kind: dict = field(default_factory=dict)


def load_questions(*paths: Path) -> list[EvalQuestion]:
    """The questions of one or more JSON-lines files, each tagged with its file's name."""
    questions = []
    for path in paths:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise QuestionSetInvalid(f"The question set {path} cannot be read "
                                     f"({getattr(error, 'strerror', None) or error}).") from error
        for number, line in enumerate(lines, start=1):
            if line.strip():
                questions.append(_question(line, f"{path.name}:{number}", path.name))
    if not questions:
        raise QuestionSetInvalid("The question sets hold no questions.")
    return questions


def _question(line: str, where: str, source: str) -> EvalQuestion:
    try:
        row = json.loads(line)
        gold = row["gold"]
        if not isinstance(row["question"], str) or not isinstance(gold, list):
            raise TypeError
        return EvalQuestion(str(row.get("id", where)), str(row.get("kind", "unlabelled")),
                            row["question"], tuple(map(str, gold)), source)
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise QuestionSetInvalid(f"Line {where} is not a question.") from error


def resolve_gold(questions: list[EvalQuestion], documents: list) -> list[EvalQuestion]:
    """Gold sections as section ids, from anything that names one: its id, a paragraph's id,
    its outline number ("1.2") or its heading. One the index does not have is refused: it
    would never be hit and would quietly lower every figure."""
    resolved = []
    for q in questions:
        sections = []
        for gold in q.gold:
            found = find_section(documents, gold)
            if found is None:
                raise QuestionSetInvalid(f"Question {q.id} ({q.source}) names a gold section "
                                         f"the index does not have: {gold!r}.")
            sections.append(citation_id(found.section))
        resolved.append(replace(q, gold=tuple(sections)))
    return resolved


def first_right_rank(sections: list[str], gold: tuple[str, ...]) -> int | None:
    """0-based rank of the first right section among distinct sections, or None."""
    distinct = list(dict.fromkeys(sections))
    return next((r for r, s in enumerate(distinct) if s in gold), None)


def score_rankings(questions: list[EvalQuestion], rankings: list[list[str]]) -> Scores:
    ranks, kinds = [], {}
    for q, sections in zip(questions, rankings):
        r = first_right_rank(sections, q.gold)
        ranks.append(r)
        kinds.setdefault(q.kind, []).append(r == 0)
    n = max(len(ranks), 1)
    return Scores(sum(r == 0 for r in ranks) / n, sum(r is not None and r < 3 for r in ranks) / n,
                  sum(1 / (r + 1) for r in ranks if r is not None) / n, len(ranks),
                  {k: round(mean(v), 3) for k, v in kinds.items()})


def section_of(chunk) -> str:
    return f"{chunk.document}/{chunk.section}"


def baseline_rankings(searcher: Searcher, questions: list[EvalQuestion]) -> dict[str, list]:
    """Plain BM25 and plain dense over the same paragraphs, no expansion or fusion."""
    chunks = searcher.chunks
    keyword = KeywordIndex([c.text for c in chunks])
    vectors = searcher.embedder.encode([c.text for c in chunks])
    queries = searcher.embedder.encode([q.question for q in questions])
    bm25, dense = [], []
    for q, vector in zip(questions, queries):
        bm25.append([section_of(chunks[i]) for i in np.argsort(-keyword.scores(q.question),
                                                                kind="stable")])
        dense.append([section_of(chunks[i]) for i in np.argsort(-(vectors @ vector),
                                                                 kind="stable")])
    return {"bm25": bm25, "dense": dense}


def typed_casually(question: str) -> str:
    """The question as typed in a hurry: lower case, no punctuation but apostrophes."""
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s'’]", " ", question.lower())).strip()


def in_a_chat(question: str) -> str:
    """The question inside a chat message's greeting, request and thanks."""
    return f"Hi! Can you tell me {question[:1].lower()}{question[1:]} Thanks!"


def after_context(question: str) -> str:
    """The question after a sentence that only sets the scene."""
    return f"I am reading about this alliance for a class. {question}"


def with_a_slip(question: str, seed: str) -> str:
    """The question with one letter slip (two swapped, one dropped or one doubled) in one
    of its content words of five letters or more; the seed (the question's id) picks which,
    so every run makes the same slips."""
    chance = random.Random(zlib.crc32(seed.encode()))
    words = [m for m in re.finditer(r"[A-Za-z]{5,}", question)
             if m.group(0).lower() not in STOPWORDS]
    if not words:
        return question
    word = chance.choice(words)
    w, i = word.group(0), chance.randrange(1, len(word.group(0)) - 2)
    slipped = chance.choice([w[:i] + w[i + 1] + w[i] + w[i + 2:], w[:i] + w[i + 1:],
                             w[:i] + w[i] + w[i:]])
    return question[:word.start()] + slipped + question[word.end():]


def robustness(searcher: Searcher, questions: list[EvalQuestion], depth: int) -> dict:
    """The product's figures on the same questions typed casually, in a chat message, after
    a sentence of context, and with a slip."""
    retyped = {"typed_casually": lambda q: typed_casually(q.question),
               "in_a_chat": lambda q: in_a_chat(q.question),
               "after_context": lambda q: after_context(q.question),
               "one_letter_slip": lambda q: with_a_slip(q.question, q.id)}
    report = {}
    for name, retype in retyped.items():
        answers = [searcher.search(retype(q), k=depth) for q in questions]
        answerable = [(q, a) for q, a in zip(questions, answers) if q.gold]
        scores = score_rankings([q for q, _ in answerable],
                                [[section_of(h.chunk) for h in a.hits] for _, a in answerable])
        report[name] = vars(scores) | {"abstention": abstention_scores(
            questions, [a.abstained for a in answers])}
    return report


def abstention_scores(questions: list[EvalQuestion], abstained: list[bool]) -> dict:
    unanswerable = [a for q, a in zip(questions, abstained) if not q.gold]
    answerable = [a for q, a in zip(questions, abstained) if q.gold]
    abstentions = sum(abstained)
    right = sum(unanswerable)
    return {
        "recall": round(right / max(len(unanswerable), 1), 3),
        "precision": round(right / abstentions, 3) if abstentions else 1.0,
        "false_abstention": round(sum(answerable) / max(len(answerable), 1), 3),
        "by_kind": {kind: round(mean(a for q, a in zip(questions, abstained) if q.kind == kind), 3)
                    for kind in sorted({q.kind for q in questions if not q.gold})},
    }


def fit_logistic(x: list[float], y: list[int], steps: int = 200) -> tuple[float, float]:
    """(slope, center) of P(y=1) = 1/(1+exp(-slope·(x-center))), by Newton's method."""
    X = np.column_stack([np.ones(len(x)), np.asarray(x)])
    t = np.asarray(y, float)
    beta = np.zeros(2)
    for _ in range(steps):
        p = 1 / (1 + np.exp(-X @ beta))
        gradient = X.T @ (t - p) - 1e-3 * beta
        hessian = -(X.T * (p * (1 - p))) @ X - 1e-3 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if np.abs(step).max() < 1e-9:
            break
    return float(beta[1]), float(-beta[0] / beta[1]) if beta[1] else 0.0


def cross_validate_threshold(evidence: list[float], answerable: list[int], folds: int = 5,
                             seed: int = 0) -> dict:
    """Fit the calibration on k-1 folds, test abstention on the held-out fold.

    Pass only answerable and off-topic questions: the score cannot tell on-topic questions
    the corpus does not answer from answerable ones (that is the answer-type check's job).
    """
    order = list(range(len(evidence)))
    random.Random(seed).shuffle(order)
    results = []
    for f in range(folds):
        test = set(order[f::folds])
        train = [i for i in order if i not in test]
        slope, center = fit_logistic([evidence[i] for i in train], [answerable[i] for i in train])
        wrong_answerable = [evidence[i] < center for i in test if answerable[i]]
        right_unanswerable = [evidence[i] < center for i in test if not answerable[i]]
        results.append((center, slope, mean(wrong_answerable or [0]),
                        mean(right_unanswerable or [1])))
    centers = [r[0] for r in results]
    return {
        "folds": folds,
        "center_mean": round(mean(centers), 3), "center_spread": round(pstdev(centers), 3),
        "slope_mean": round(mean(r[1] for r in results), 1),
        "held_out_false_abstention": round(mean(r[2] for r in results), 3),
        "held_out_recall_by_score_alone": round(mean(r[3] for r in results), 3),
    }


def evaluate(searcher: Searcher, questions: list[EvalQuestion], depth: int = 10) -> dict:
    """Every metric for the product and the baselines, as one plain dict."""
    questions = resolve_gold(questions, searcher.index.documents)
    answers = [searcher.search(q.question, k=depth) for q in questions]
    # (question, answer, sections in rank order) for each answerable question
    ranked = [(q, a, [section_of(h.chunk) for h in a.hits])
              for q, a in zip(questions, answers) if q.gold]
    answerable = [q for q, _, _ in ranked]

    def product(rows: list) -> Scores:
        return score_rankings([q for q, _, _ in rows], [sections for _, _, sections in rows])

    systems = {"product": product(ranked)}
    systems.update({name: score_rankings(answerable, ranking)
                    for name, ranking in baseline_rankings(searcher, answerable).items()})
    evidence = [a.evidence for a in answers]
    return {
        "questions": len(questions), "answerable": len(answerable),
        "systems": {name: vars(s) for name, s in systems.items()},
        "product_by_set": {source: vars(product([row for row in ranked
                                                  if row[0].source == source]))
                           for source in dict.fromkeys(q.source for q in answerable)},
        "robustness": robustness(searcher, questions, depth),
        "abstention": abstention_scores(questions, [a.abstained for a in answers]),
        "calibration": cross_validate_threshold(
            [e for e, q in zip(evidence, questions) if q.gold or q.kind == "off-topic"],
            [int(bool(q.gold)) for q in questions if q.gold or q.kind == "off-topic"]),
        "failures": [{"id": q.id, "kind": q.kind, "question": q.question,
                      "first": sections[0] if sections else None, "gold": list(q.gold)}
                     for q, a, sections in ranked if first_right_rank(sections, q.gold) != 0],
        "wrong_abstentions": [{"id": q.id, "question": q.question, "reason": a.reason}
                              for q, a in zip(questions, answers) if a.abstained != (not q.gold)],
    }


def format_report(report: dict) -> str:
    lines = [f"{report['questions']} questions, {report['answerable']} answerable", "",
             f"{'system':10} {'hit@1':>6} {'hit@3':>6} {'MRR':>6}   hit@1 by kind"]
    for name, s in report["systems"].items():
        kinds = "  ".join(f"{k} {v:.2f}" for k, v in sorted(s["by_kind"].items()))
        lines.append(f"{name:10} {s['hit1']:6.3f} {s['hit3']:6.3f} {s['mrr']:6.3f}   {kinds}")
    if len(report["product_by_set"]) > 1:
        lines += ["", "product by question set:"]
        lines += [f"  {source:24} {s['hit1']:6.3f} {s['hit3']:6.3f} {s['mrr']:6.3f}   "
                  f"({s['count']} answerable)" for source, s in report["product_by_set"].items()]
    lines += ["", "product on the same questions, typed otherwise:"]
    lines += [f"  {name.replace('_', ' '):24} {s['hit1']:6.3f} {s['hit3']:6.3f} {s['mrr']:6.3f}"
              f"   abstention recall {s['abstention']['recall']:.3f}, false abstention "
              f"{s['abstention']['false_abstention']:.3f}"
              for name, s in report["robustness"].items()]
    a, c = report["abstention"], report["calibration"]
    lines += ["", f"abstention: recall {a['recall']:.3f}, precision {a['precision']:.3f}, "
                  f"false abstention on answerable {a['false_abstention']:.3f}",
              "  recall by kind: " + ", ".join(f"{k} {v:.2f}" for k, v in a["by_kind"].items()),
              f"calibration ({c['folds']}-fold): threshold {c['center_mean']:.3f} ± "
              f"{c['center_spread']:.3f}, slope {c['slope_mean']}; held-out false abstention "
              f"{c['held_out_false_abstention']:.3f}, off-topic caught by score alone "
              f"{c['held_out_recall_by_score_alone']:.3f}"]
    if report["failures"]:
        lines += ["", "first passage from a wrong section:"]
        lines += [f"  [{f['kind']}] {f['question']} → {f['first'].split('/')[-1]}"
                  for f in report["failures"]]
    if report["wrong_abstentions"]:
        lines += ["", "wrong abstention decisions:"]
        lines += [f"  {w['question']} ({w['reason'] or 'answered'})"
                  for w in report["wrong_abstentions"]]
    return "\n".join(lines)
