"""Retrieval quality on question sets with gold places: hit@1, hit@3, MRR, abstention.

An evaluation suite is a folder of `eval/` holding a `corpus/` and question sets (JSON
lines); each suite is measured on its own index. The product's searcher is measured beside
two baselines in the same run, on the same chunks: plain BM25 over paragraphs and plain
dense retrieval (paragraphs, the same model). A passage counts as right when its section is
a gold section, or, for a gold paragraph, when it is that paragraph. Each answer-type check
is measured alone: what it catches that nothing else would, and what it wrongly abstains on.
A suite's `conversations.jsonl` holds conversations (turns that may lean on the ones before),
scored per turn: each follow-up as asked in the conversation, beside the same question
written out in full and asked alone.
"""

from __future__ import annotations

import json
import random
import re
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from statistics import mean

import numpy as np

from .abstention import CHECKS
from .chunking import Chunk
from .citations import citation_id, find_section
from .errors import QuestionSetInvalid
from .keyword import KeywordIndex
from .language import STOPWORDS
from .search import Answer, Searcher

EVAL_DIR = Path("eval")       # the evaluation suites, relative to the working folder


@dataclass(frozen=True)
class Suite:
    """A corpus and the question sets written about it."""

    name: str
    corpus: Path
    question_sets: tuple[Path, ...]
    conversations: Path | None = None


CONVERSATIONS = "conversations.jsonl"


def find_suites(eval_dir: Path = EVAL_DIR) -> list[Suite]:
    """Every folder of `eval_dir` that holds a `corpus/` folder and question sets."""
    suites = []
    for folder in sorted(p for p in eval_dir.glob("*") if (p / "corpus").is_dir()):
        sets = tuple(sorted(p for p in folder.glob("*.jsonl") if p.name != CONVERSATIONS))
        if sets:
            talks = folder / CONVERSATIONS
            suites.append(Suite(folder.name, folder / "corpus", sets,
                                talks if talks.is_file() else None))
    return suites


def load_conversations(path: Path) -> list[list[dict]]:
    """Conversations: each line `{"id", "turns": [{"question", "gold", "kind", "full"?}]}`;
    a follow-up's `full` is the same question written to stand alone."""
    conversations = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            turns = json.loads(line)["turns"]
            for turn in turns:
                if not isinstance(turn["question"], str) or not isinstance(turn["gold"], list):
                    raise TypeError
        except (ValueError, KeyError, TypeError) as error:
            raise QuestionSetInvalid(f"Line {path.name}:{number} is not a conversation.",
                                     'Each line is {"id": …, "turns": [{"question": …, '
                                     '"gold": [...]}, …]}.') from error
        conversations.append(turns)
    return conversations


def evaluate_conversations(searcher: Searcher, conversations: list[list[dict]]) -> dict:
    """hit@1 per kind of turn: as asked in the conversation, and asked alone (for a
    follow-up, also written out in full); how many answerable turns were abstained."""
    from .conversation import Conversation
    documents = searcher.index.documents
    rows: dict[str, list[tuple[bool, bool, bool, bool]]] = {}
    for turns in conversations:
        conversation = Conversation()
        for turn in turns:
            gold = resolve_gold([EvalQuestion("", "", turn["question"],
                                              tuple(turn["gold"]))], documents)[0].gold
            asked = searcher.search(turn["question"], k=1, context=conversation.context)
            conversation = conversation.after(asked)
            alone = searcher.search(turn["question"], k=1)
            full = searcher.search(turn["full"], k=1) if turn.get("full") else alone

            def right(answer: Answer, gold: tuple[str, ...] = gold) -> bool:
                return bool(answer.hits) and place_of(answer.hits[0].chunk, gold) in gold

            kind = "follow-up" if turn.get("full") else turn.get("kind", "standalone")
            rows.setdefault(kind, []).append((right(asked), right(alone), right(full),
                                              asked.abstained and bool(gold)))
    return {kind: {"turns": len(r), "hit1": mean(x[0] for x in r),
                   "hit1_alone": mean(x[1] for x in r), "hit1_written_out": mean(x[2] for x in r),
                   "wrongly_abstained": sum(x[3] for x in r)} for kind, r in rows.items()}


@dataclass(frozen=True)
class EvalQuestion:
    """A question with its gold places (empty when the documents do not answer it)."""
    id: str
    kind: str
    question: str
    gold: tuple[str, ...]       # section ids; empty when the corpus does not answer it
    source: str = ""            # the question set (file name) it comes from


@dataclass
class Scores:
    """hit@1, hit@3 and MRR over a set of questions, and hit@1 by kind."""
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
    """Gold places as ids: a section from its id, outline number ("1.2"), heading or label;
    a paragraph from its id or label. One the index does not have is refused: it would
    never be hit and would quietly lower every figure."""
    resolved = []
    for q in questions:
        sections = []
        for gold in q.gold:
            found = find_section(documents, gold)
            if found is None:
                raise QuestionSetInvalid(f"Question {q.id} ({q.source}) names a gold section "
                                         f"the index does not have: {gold!r}.")
            sections.append(citation_id(found.section, found.paragraph))
        resolved.append(replace(q, gold=tuple(sections)))
    return resolved


def first_right_rank(places: list[str], gold: tuple[str, ...]) -> int | None:
    """0-based rank of the first right place among distinct places, or None."""
    distinct = list(dict.fromkeys(places))
    return next((r for r, s in enumerate(distinct) if s in gold), None)


def place_of(chunk: Chunk, gold: tuple[str, ...]) -> str:
    """What a passage is judged by: its paragraph for paragraph-level gold, else its section."""
    return chunk.paragraph_id if any("#p" in g for g in gold) else section_of(chunk)


def score_rankings(questions: list[EvalQuestion], rankings: list[list[str]]) -> Scores:
    """Scores of rankings (each a list of places, best first) against the gold places."""
    ranks, kinds = [], {}
    for q, sections in zip(questions, rankings):
        r = first_right_rank(sections, q.gold)
        ranks.append(r)
        kinds.setdefault(q.kind, []).append(r == 0)
    n = max(len(ranks), 1)
    return Scores(sum(r == 0 for r in ranks) / n, sum(r is not None and r < 3 for r in ranks) / n,
                  sum(1 / (r + 1) for r in ranks if r is not None) / n, len(ranks),
                  {k: round(mean(v), 3) for k, v in kinds.items()})


def section_of(chunk: Chunk) -> str:
    """The id of a chunk's section."""
    return f"{chunk.document}/{chunk.section}"


def baseline_rankings(searcher: Searcher, questions: list[EvalQuestion]) -> dict[str, list]:
    """Plain BM25 and plain dense over the same paragraphs, no expansion or fusion."""
    chunks = searcher.chunks
    keyword = KeywordIndex.from_texts([c.text for c in chunks])
    vectors = searcher.embedder.encode([c.text for c in chunks])
    queries = searcher.embedder.encode([q.question for q in questions])
    bm25, dense = [], []
    for q, vector in zip(questions, queries):
        bm25.append([place_of(chunks[i], q.gold) for i in np.argsort(
            -keyword.scores(q.question), kind="stable")[:50]])
        dense.append([place_of(chunks[i], q.gold) for i in np.argsort(
            -(vectors @ vector), kind="stable")[:50]])
    return {"bm25": bm25, "dense": dense}


def typed_casually(question: str) -> str:
    """The question as typed in a hurry: lower case, no punctuation but apostrophes."""
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s'’]", " ", question.lower())).strip()


def in_a_chat(question: str) -> str:
    """The question inside a chat message's greeting, request and thanks."""
    return f"Hi! Can you tell me {question[:1].lower()}{question[1:]} Thanks!"


def after_context(question: str) -> str:
    """The question after a sentence that only sets the scene."""
    return f"I am reading about this for a class. {question}"


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


def robustness(searcher: Searcher, questions: list[EvalQuestion], depth: int
               ) -> tuple[dict, list[list]]:
    """The product's figures on the same questions typed casually, in a chat message, after
    a sentence of context, and with a slip; and each retyped run's answers."""
    retyped = {"typed_casually": lambda q: typed_casually(q.question),
               "in_a_chat": lambda q: in_a_chat(q.question),
               "after_context": lambda q: after_context(q.question),
               "one_letter_slip": lambda q: with_a_slip(q.question, q.id)}
    report, runs = {}, []
    for name, retype in retyped.items():
        answers = [searcher.search(retype(q), k=depth) for q in questions]
        runs.append(answers)
        answerable = [(q, a) for q, a in zip(questions, answers) if q.gold]
        scores = score_rankings([q for q, _ in answerable],
                                [[place_of(h.chunk, q.gold) for h in a.hits]
                                 for q, a in answerable])
        report[name] = vars(scores) | {"abstention": abstention_scores(
            questions, [a.abstained for a in answers])}
    return report, runs


def abstention_scores(questions: list[EvalQuestion], abstained: list[bool]) -> dict:
    """Recall, precision and false abstention, and recall by kind of question."""
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


def reliability(confidence: list[float], answerable: list[bool], bins: int = 5) -> dict:
    """How well the confidence tells answerable from unanswerable questions: per bin of
    confidence, the share that the documents answer; and the expected calibration error."""
    rows, error = [], 0.0
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        inside = [a for c, a in zip(confidence, answerable)
                  if low <= c < high or (b == bins - 1 and c == 1.0)]
        if inside:
            mean_confidence = mean(c for c in confidence
                                   if low <= c < high or (b == bins - 1 and c == 1.0))
            rows.append({"bin": f"{low:.1f}-{high:.1f}", "questions": len(inside),
                         "answerable": round(mean(inside), 3)})
            error += len(inside) / len(confidence) * abs(mean(inside) - mean_confidence)
    return {"bins": rows, "expected_calibration_error": round(error, 3)}


def check_effects(questions: list[EvalQuestion], runs: list[list]) -> dict:
    """Per check, over every run of the questions (as written and retyped): unanswerable
    questions it alone abstains on (gain), and answerable ones (cost)."""
    effects = {name: {"gain": 0, "cost": 0} for name in CHECKS}
    for answers in runs:
        for q, a in zip(questions, answers):
            if a.reason == WEAK:      # the score alone abstains: no check decides it
                continue
            fired = [name for name in CHECKS if name in a.fired]
            if len(fired) == 1:
                effects[fired[0]]["cost" if q.gold else "gain"] += 1
    return effects


WEAK = "Nothing in the documents comes close to this question."


def evaluate(searcher: Searcher, questions: list[EvalQuestion], depth: int = 10) -> dict:
    """Every metric for the product and the baselines, as one plain dict."""
    questions = resolve_gold(questions, searcher.index.documents)
    answers = [searcher.search(q.question, k=depth) for q in questions]
    # (question, answer, places in rank order) for each answerable question
    ranked = [(q, a, [place_of(h.chunk, q.gold) for h in a.hits])
              for q, a in zip(questions, answers) if q.gold]
    answerable = [q for q, _, _ in ranked]

    def product(rows: list) -> Scores:
        return score_rankings([q for q, _, _ in rows], [places for _, _, places in rows])

    systems = {"product": product(ranked)}
    systems.update({name: score_rankings(answerable, ranking)
                    for name, ranking in baseline_rankings(searcher, answerable).items()})
    retyped, retyped_runs = robustness(searcher, questions, depth)
    runs = [answers, *retyped_runs]
    return {
        "questions": len(questions), "answerable": len(answerable),
        "systems": {name: vars(s) for name, s in systems.items()},
        "product_by_set": {source: vars(product([row for row in ranked
                                                  if row[0].source == source]))
                           for source in dict.fromkeys(q.source for q in answerable)},
        "robustness": retyped,
        "abstention": abstention_scores(questions, [a.abstained for a in answers]),
        "calibration": {**vars(searcher.calibration), **reliability(
            [a.confidence for a in answers], [bool(q.gold) for q in questions])},
        "checks": {"enabled": list(searcher.checks), **check_effects(questions, runs)},
        "failures": [{"id": q.id, "kind": q.kind, "question": q.question,
                      "first": places[0] if places else None, "gold": list(q.gold)}
                     for q, a, places in ranked if first_right_rank(places, q.gold) != 0],
        "wrong_abstentions": [{"id": q.id, "question": q.question, "reason": a.reason}
                              for q, a in zip(questions, answers) if a.abstained != (not q.gold)],
    }


def format_report(report: dict) -> str:
    """A report as the text `alliance-qa eval` prints."""
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
              f"calibration learned by the build from {c['reference_questions']} questions "
              f"about other subjects (and {c['near_questions']} of them set among its names) "
              f"and {c['corpus_questions']} made from its own sentences: "
              f"threshold {c['threshold']:.3f}, scale {c['scale']:.3f}",
              "  reliability (confidence → share answerable): " + ", ".join(
                  f"{b['bin']} {b['answerable']:.2f} (n={b['questions']})" for b in c["bins"])
              + f"; expected calibration error {c['expected_calibration_error']:.3f}",
              "checks (alone, over the questions as written and retyped: unanswerable caught "
              "/ answerable wrongly abstained):",
              "  " + ", ".join(f"{name}{'' if name in report['checks']['enabled'] else ' (off)'}"
                               f" +{e['gain']}/-{e['cost']}"
                               for name, e in report["checks"].items() if name != "enabled")]
    if report.get("conversations"):
        lines += ["", "conversations, per turn (hit@1 as asked in the conversation / the "
                      "question alone / written out in full):"]
        lines += [f"  {kind:15} {c['hit1']:.3f} / {c['hit1_alone']:.3f} / "
                  f"{c['hit1_written_out']:.3f}   ({c['turns']} turns, "
                  f"{c['wrongly_abstained']} answerable abstained)"
                  for kind, c in report["conversations"].items()]
    if report["failures"]:
        lines += ["", "first passage from a wrong section:"]
        lines += [f"  [{f['kind']}] {f['question']} → {(f['first'] or '-').split('/')[-1]}"
                  for f in report["failures"]]
    if report["wrong_abstentions"]:
        lines += ["", "wrong abstention decisions:"]
        lines += [f"  {w['question']} ({w['reason'] or 'answered'})"
                  for w in report["wrong_abstentions"]]
    return "\n".join(lines)
