"""Question → Answer: hybrid retrieval over a stored index, with highlights and abstention.

Each chunk gets one fused score from plain, comparable evidence:
  dense   = w_context·cos(q, heading+chunk) + w_text·cos(q, chunk) + w_sentence·max cos(q, sentence)
  words   = idf-weighted mean over the question's content word pieces of the best cosine with
            a word piece of heading+chunk, both in context (token_match.py)
  keyword = BM25 / (best BM25 for this question + saturation)   — a lone weak keyword match
            stays small instead of being stretched to 1, as rank fusion or max-scaling would
  score   = dense + w_words·words + w_keyword·keyword + w_section·mean score of the chunk's section
Word matching reads a passage's word-piece rows, the costliest step on a large index, so only
the 100 candidates best by the other evidence are matched word by word and scored (hit@1 on
both evaluation corpora unchanged or up; the rows read per question no longer grow with the
corpus). The section term pools evidence: a section whose paragraphs all speak to the question beats
a single paragraph elsewhere that shares a phrase with it. Results are then diversified
(maximal marginal relevance), so the top passages carry different information. A question
about a document as a whole ("What is this text about?") gets the documents' openings first.
Misspelt words are read as the words meant before any of this (spelling.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from threadpoolctl import ThreadpoolController

from . import abstention
from .acronyms import expand
from .chunking import Chunk
from .citations import parse_citation_id
from .embedding import QueryEncoder, QueryEncoding
from .errors import UnknownDocument
from .questions import Question, prepare, read_question
from .spelling import Speller
from .store import Rows, StoredIndex, spans_rows
from .token_match import TokenMatcher

OVERVIEW_NOTICE = "That asks what the documents are about as a whole: here is how they open."


@dataclass(frozen=True)
class Weights:
    """How much each kind of evidence counts in the fused score."""
    context: float = 0.5
    text: float = 1.0
    sentence: float = 0.5
    words: float = 1.0
    keyword: float = 0.3
    keyword_saturation: float = 5.0
    section: float = 0.5
    diversity: float = 0.25        # MMR trade-off: 0 keeps the ranking, 1 only novelty
    candidates: int = 200          # chunks taken from each retriever before fusion
    rerank: int = 100              # of those, the best by the other evidence matched by word


@dataclass(frozen=True)
class Hit:
    """One passage of an answer: its rank, score, chunk and highlighted sentences."""
    rank: int
    score: float
    chunk: Chunk
    highlights: tuple[tuple[int, int], ...]   # character spans of the best sentence(s)
    similarity: float = 1.0    # how close the passage comes to the question: best cosine


@dataclass(frozen=True)
class Answer:
    """The passages that answer a question, or the reason the documents do not."""
    question: str
    hits: tuple[Hit, ...]
    abstained: bool
    confidence: float
    reason: str = ""
    notices: tuple[str, ...] = ()
    evidence: float = 0.0      # the top fused score, which the calibration reads
    timings: tuple[tuple[str, float], ...] = ()    # (stage, seconds), for the benchmark
    searched: str = ""         # the question as searched: spelling and chat rewritten
    fired: tuple[str, ...] = ()    # every answer-type check that found something missing
    context: str = ""          # what the conversation was about, when the question leaned on it


@dataclass(frozen=True)
class Retrieval:
    """One question's scored candidates, before they are chosen and shown."""

    query: np.ndarray          # the question's vector
    pool: np.ndarray           # chunk numbers scored
    score: np.ndarray          # fused score of each
    similarity: np.ndarray     # best cosine of each (passage or sentence)
    encode_seconds: float      # of which the model's encoding took


class Searcher:
    """Answers questions from one loaded index; safe to share between threads (read-only)."""

    def __init__(self, index: StoredIndex, embedder: QueryEncoder, weights: Weights = Weights(),
                 max_question_chars: int = 1000, checks: tuple[str, ...] = abstention.CHECKS,
                 calibration: abstention.Calibration | None = None):
        """`calibration`: the index's own (from its manifest) unless given."""
        self.index, self.embedder, self.weights = index, embedder, weights
        self.max_question_chars = max_question_chars
        self.checks = checks
        self.calibration = calibration or abstention.Calibration.from_manifest(
            index.manifest.calibration or None)
        self.chunks, columns = index.chunks, index.columns
        self.document_number = {d: n for n, d in enumerate(columns.document_ids.tolist())}
        self.acronyms = index.manifest.acronyms
        self.scripts = frozenset(index.manifest.scripts)   # the corpus's letters
        self.text_vectors = Rows(index.views["text"])
        self.context_vectors = Rows(index.views["context"])
        self.sentence_vectors = Rows(index.views["sentences"])
        self.sentence_start = columns.sentence_start()
        self.document_of, self.opening = columns.document, columns.opening
        self.section_of, self.paragraph_of = columns.section, columns.paragraph
        self.tokens = TokenMatcher(index.tokens, index.token_table, len(self.chunks),
                                   index.token_frequency)
        self.keyword = index.keyword
        self.speller = Speller(index.words, also_known=embedder.dictionary(),
                               keywords=self.keyword.vocabulary)
        self._encode_lock = threading.Lock()
        # The products here are small; threads of the BLAS library would only spin on the
        # cores the model's forward pass needs next (7.1 → 8.0 ms a query on 2 cores; with
        # PyTorch it doubled the latency). Held to one thread during a search only.
        self._blas = ThreadpoolController()

    # ------------------------------------------------------------ the steps

    def encode(self, text: str, focus: str = "") -> QueryEncoding:
        """The text's vector and word pieces. With `focus`, the asking sentences of a longer
        message: the mean of both vectors, and the focus's word pieces. The other sentences
        say what "it" is, the asking ones what is asked (alone, a scene-setting sentence
        before each evaluation question took hit@1 from 0.94 to 0.84)."""
        with self._encode_lock:      # one forward pass at a time: 2 cores run no more
            whole = self.embedder.encode_query(expand(text, self.acronyms))
            if not focus:
                return whole
            focused = self.embedder.encode_query(expand(focus, self.acronyms))
        vector = whole.vector + focused.vector
        return QueryEncoding(vector / np.linalg.norm(vector), focused.tokens)

    def candidates(self, query: np.ndarray, bm25: np.ndarray,
                   document: str | None) -> np.ndarray:
        """Chunk numbers worth scoring: the top of each view and of the keyword search
        (`bm25`: every chunk's keyword score)."""
        n = len(self.chunks)
        allowed = (self.document_of == self.document_number[document] if document
                   else np.ones(n, bool))
        if n <= self.weights.candidates:
            return np.flatnonzero(allowed)
        k = self.weights.candidates
        found = [self.index.views[v].search(query[None, :], k)[1][0] for v in ("text", "context")]
        found.append(np.argpartition(-bm25, k)[:k])      # the k best, unordered: O(n)
        pool = np.unique(np.concatenate(found))
        pool = pool[(pool >= 0) & allowed[pool.clip(0)]]
        # a filtered document may have nothing near the top: then score all of its chunks
        return pool if len(pool) else np.flatnonzero(allowed)

    def sentence_scores(self, query: np.ndarray, chunk: int) -> np.ndarray:
        """Each of the chunk's sentences' cosine with the question."""
        start, end = self.sentence_start[chunk], self.sentence_start[chunk + 1]
        return self.sentence_vectors[start:end] @ query

    def best_sentences(self, query: np.ndarray, pool: np.ndarray) -> np.ndarray:
        """Each pooled chunk's best sentence cosine (-1 for a chunk without sentences);
        the pool's sentence rows are read at once."""
        starts, ends = self.sentence_start[pool], self.sentence_start[pool + 1]
        counts = ends - starts
        rows = spans_rows(starts, counts)
        cosines = self.sentence_vectors[rows] @ query if len(rows) else np.zeros(0)
        best = np.full(len(pool), -1.0)
        has = counts > 0
        best[has] = np.maximum.reduceat(cosines, (np.cumsum(counts) - counts)[has])
        return best

    def cosines(self, query: np.ndarray, pool: np.ndarray) -> np.ndarray:
        """The pooled chunks' cosines with the question, by view: rows text, context and
        best sentence (each view's rows read once a question)."""
        return np.stack([self.text_vectors[pool] @ query, self.context_vectors[pool] @ query,
                         self.best_sentences(query, pool)])

    def fuse(self, cosines: np.ndarray, bm25: np.ndarray, pool: np.ndarray,
             words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fused scores of the pooled chunks, and each one's best cosine (its evidence);
        `cosines` (Searcher.cosines), `bm25` and `words` are the pooled chunks' view,
        keyword and word-matching scores."""
        w = self.weights
        text_cos, context_cos, best_sentence = cosines
        keyword = bm25 / (bm25.max(initial=0.0) + w.keyword_saturation)
        score = (w.context * context_cos + w.text * text_cos + w.sentence * best_sentence
                 + w.words * words + w.keyword * keyword)
        sections = self.section_of[pool]
        totals = np.bincount(sections, weights=score, minlength=sections.max() + 1)
        sizes = np.bincount(sections, minlength=sections.max() + 1)
        score = score + w.section * totals[sections] / sizes[sections]
        return score, np.maximum(text_cos, best_sentence)

    def openings_first(self, pool: np.ndarray, score: np.ndarray) -> np.ndarray:
        """Scores that put the documents' openings ahead of everything else, the documents by
        their openings' best score, each opening in reading order (chunks are numbered so)."""
        opening = np.flatnonzero(self.opening[pool])
        documents = self.document_of[pool[opening]].tolist()
        best = {}
        for i, document in zip(opening, documents):
            best[document] = max(best.get(document, -np.inf), score[i])
        lifted, lift = score.copy(), score.max() - score.min() + 1.0   # above any other score
        for i, document in zip(opening, documents):
            lifted[i] = best[document] + lift - 1e-6 * pool[i]
        return lifted

    def diversify(self, pool: np.ndarray, score: np.ndarray, k: int) -> list[int]:
        """Maximal marginal relevance: the best first, then the best of what is new."""
        order = list(pool[np.argsort(-score, kind="stable")])
        by_chunk = dict(zip(pool.tolist(), score.tolist()))
        chosen: list[int] = []
        lam = self.weights.diversity
        paragraphs: set[int] = set()
        while order and len(chosen) < k:
            # parts of one paragraph never take two places of one answer
            order = [c for c in order if self.paragraph_of[c] not in paragraphs]
            if not order:
                break
            if not chosen:
                chosen.append(order.pop(0))
                paragraphs.add(self.paragraph_of[chosen[-1]])
                continue
            near = order[:50]
            similar = (self.text_vectors[near] @ self.text_vectors[chosen].T).max(axis=1)
            novelty = (1 - lam) * np.array([by_chunk[c] for c in near]) - lam * similar
            chosen.append(order.pop(int(np.argmax(novelty))))
            paragraphs.add(self.paragraph_of[chosen[-1]])
        return chosen

    def highlight(self, query: np.ndarray, chunk: int) -> tuple[tuple[int, int], ...]:
        """The sentence that best answers the question, and any a hair behind it."""
        spans = self.chunks[chunk].sentences
        if not spans:
            return ()
        scores = self.sentence_scores(query, chunk)
        best = int(np.argmax(scores))
        return tuple(span for i, (span, s) in enumerate(zip(spans, scores))
                     if i == best or s >= scores[best] - 0.02)

    # ------------------------------------------------------------ the whole path

    def search(self, question: str, k: int = 3, document: str | None = None,
               context: tuple[str, ...] = ()) -> Answer:
        """Answer a question with the k best passages (EmptyQuestion for blank input);
        `context` is what a conversation was about, for a question that leans on it."""
        with self._blas.limit(limits=1, user_api="blas"):
            return self._search(question, k, document, context)

    def read(self, text: str) -> Question:
        """A prepared message read once: spelling, chatter, asking sentences, overview."""
        return read_question(prepare(text, self.max_question_chars), self.speller.correct)

    def retrieve(self, question: Question, document: str | None = None,
                 encoding: QueryEncoding | None = None) -> Retrieval:
        """Score the candidate passages for a question (see the module's formula); with
        `encoding`, the question's vectors as the model already gave them."""
        started = time.perf_counter()
        encoding = encoding or self.encode(question.searched, question.focus)
        encoded = time.perf_counter() - started
        query = encoding.vector
        bm25 = self.keyword.scores(expand(question.searched, self.acronyms))   # once
        pool = self.candidates(query, bm25, document)
        cosines = self.cosines(query, pool)
        if len(pool) > self.weights.rerank:     # word by word only the best by the rest
            partial, _ = self.fuse(cosines, bm25[pool], pool, np.zeros(len(pool), np.float32))
            best = np.argsort(-partial, kind="stable")[:self.weights.rerank]
            pool, cosines = pool[best], cosines[:, best]
        pieces = self.embedder.words(encoding.tokens.ids)
        weights = self.tokens.query_weights(encoding.tokens, pieces)
        words = self.tokens.match(encoding.tokens, weights, pool)
        score, similarity = self.fuse(cosines, bm25[pool], pool, words)
        return Retrieval(query, pool, score, similarity, encoded)

    def probe(self, questions: list[str],
              encode_with_pieces: Callable[[list[str]], tuple[np.ndarray, list]]
              ) -> list[float]:
        """Each question's top fused score: what the build's calibration measures on
        questions about other subjects. The questions are encoded in batches
        (`encode_with_pieces`: the build model's vectors and word-piece vectors of many
        texts), not one forward pass each."""
        read = [self.read(text) for text in questions]
        texts = [expand(q.searched, self.acronyms) for q in read]
        encodings = [QueryEncoding(vector, tokens)
                     for vector, tokens in zip(*encode_with_pieces(texts))]
        with self._blas.limit(limits=1, user_api="blas"):
            return [float(self.retrieve(q, encoding=None if q.focus else e).score.max(
                initial=0.0)) for q, e in zip(read, encodings)]

    def _search(self, question: str, k: int, document: str | None,
                context: tuple[str, ...]) -> Answer:
        prepared = prepare(question, self.max_question_chars)
        cited = self.cited(prepared.text)
        if cited:
            return Answer(prepared.text, cited, False, 1.0, "",
                          prepared.notices + ("That is a citation id; here is the passage it "
                                              "names.",))
        started = time.perf_counter()
        if document is not None and document not in self.document_number:
            raise UnknownDocument(f"There is no document {document!r} in the index.")
        read = read_question(prepared, self.speller.correct, context)
        found = self.retrieve(read, document)
        encoded = started + found.encode_seconds
        pool, score = found.pool, found.score
        top_score = float(score.max())
        if read.overview:    # a document's opening says what it is about: openings first
            score = self.openings_first(pool, score)
        chosen = self.diversify(pool, score, max(1, k))
        by_chunk = dict(zip(pool.tolist(), zip(score.tolist(), found.similarity.tolist())))
        hits = tuple(Hit(rank, round(by_chunk[c][0], 4), self.chunks[c],
                         self.highlight(found.query, c), round(by_chunk[c][1], 4))
                     for rank, c in enumerate(chosen, start=1))
        evidence = abstention.Evidence(
            top_score, [h.chunk.text[a:b] for h in hits[:3] for a, b in h.highlights],
            [h.chunk.text for h in hits[:3]])
        verdict = abstention.decide(read, evidence, self.calibration, self.checks,
                                    self.scripts)
        notices = read.notices + (OVERVIEW_NOTICE,) * read.overview
        timings = (("encode", encoded - started), ("search", time.perf_counter() - encoded))
        return Answer(prepared.text, hits, verdict.abstain, round(verdict.confidence, 4),
                      verdict.reason, notices, round(top_score, 4), timings, read.searched,
                      verdict.fired, read.context)

    def cited(self, text: str) -> tuple[Hit, ...]:
        """The chunks of a pasted citation id, as hits; () when the text is not one."""
        ref = parse_citation_id(text)
        if ref is None or ref.document not in self.document_number:
            return ()
        wanted = text.strip()
        of_document = np.flatnonzero(self.document_of == self.document_number[ref.document])
        chunks = [c for c in map(self.chunks.__getitem__, of_document)
                  if wanted in (c.id, c.paragraph_id)
                  or (ref.paragraph is None and f"{c.document}/{c.section}" == wanted)]
        return tuple(Hit(rank, 1.0, c, ()) for rank, c in enumerate(chunks[:10], start=1))
