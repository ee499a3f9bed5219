"""The whole method at growing sizes: real indexes of real sentences, built, served and judged.

A scaled corpus holds an evaluation suite's own documents verbatim (so its questions keep
their gold places) among Markdown documents whose paragraphs are real sentences of the
suites' corpora, drawn at random and recombined three to six to a paragraph: token counts
and vocabulary are realistic, and every size is asked the same questions. No sentence of a
gold paragraph is drawn: a copy of the sentence that answers a question would be a right
answer outside its gold place (drawn, they took hit@1 to 0.23 at 10,000 passages). As the
evaluation corpora have few other sentences, the prose of the installed packages'
descriptions is drawn too: real English, on another subject than the questions'. Each
size is built and asked by the command itself in a child process (build time, peak memory,
cold start and resident memory are the program's own), then searched for latency and hit@1
in another child process that loads only what serving loads.
The reference, measured in the same run, is the model's bare encoding of the same paragraphs.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from importlib import metadata
from pathlib import Path

from .bench import RUN_AND_REPORT_PEAK
from .citations import find_section
from .config import Settings
from .corpus import read_documents, scan_corpus
from .embedding import Embedder
from .evaluation import find_suites, load_questions, place_of, resolve_gold
from .sentences import sentence_spans
from .service import open_searcher

PARAGRAPHS_PER_FILE = 50
EDITED_SHARE = 0.01          # the incremental rebuild edits this share of the files



def real_sentences(eval_dir: Path) -> list[str]:
    """Every sentence of the evaluation corpora outside the paragraphs and sections their
    questions name as gold, in reading order."""
    found = []
    for suite in find_suites(eval_dir):
        documents, _ = read_documents(scan_corpus(suite.corpus)[0])
        gold = {(r.section.slug, r.paragraph) for q in load_questions(*suite.question_sets)
                for g in q.gold if (r := find_section(documents, g))}
        for document in documents:
            for section in document.sections:
                if (section.slug, None) in gold:
                    continue
                for number, paragraph in enumerate(section.paragraphs, start=1):
                    if (section.slug, number) not in gold:
                        found += [paragraph[a:b] for a, b in sentence_spans(paragraph)]
    return found + package_prose()


def package_prose() -> list[str]:
    """Sentences of the installed packages' descriptions: paragraphs of prose (not code,
    lists, tables or headings), in a stable order."""
    found = set()
    for distribution in metadata.distributions():
        for block in re.split(r"\n\s*\n", distribution.metadata.get_payload() or ""):
            text = " ".join(block.split())
            if len(text) > 200 and text.count(" ") > 30 and not text.startswith(
                    ("`", "|", "#", "-", "*", ">", "..", "$", ">>>")):
                found.update(text[a:b] for a, b in sentence_spans(text) if 40 < b - a < 400)
    return sorted(found)


def scaled_corpus(folder: Path, paragraphs: int, seed_corpus: Path, sentences: list[str],
                  seed: int = 0) -> int:
    """Write the seed corpus's files, then recombined documents up to `paragraphs`
    paragraphs in all; the number of recombined files."""
    shutil.copytree(seed_corpus, folder, dirs_exist_ok=True)
    seeded = sum(len(s.paragraphs) for d in read_documents(scan_corpus(folder)[0])[0]
                 for s in d.sections)
    chance = random.Random(seed)
    files = 0
    for start in range(seeded, paragraphs, PARAGRAPHS_PER_FILE):
        body = [f"# Recombined notes {files + 1}", ""]
        for number in range(min(PARAGRAPHS_PER_FILE, paragraphs - start)):
            if number % 10 == 0:
                body += [f"## Part {number // 10 + 1}", ""]
            count = min(len(sentences), chance.randint(3, 6))
            body += [" ".join(chance.sample(sentences, count)), ""]
        (folder / "recombined" / f"notes-{files + 1:05d}.md").parent.mkdir(exist_ok=True)
        (folder / "recombined" / f"notes-{files + 1:05d}.md").write_text("\n".join(body))
        files += 1
    return files


def edit_files(folder: Path, share: float, seed: int = 1) -> int:
    """Change one paragraph in `share` of the recombined files; how many were edited."""
    files = sorted((folder / "recombined").glob("*.md"))
    chosen = random.Random(seed).sample(files, max(1, round(share * len(files))))
    for path in chosen:
        text = path.read_text()
        path.write_text(re.sub(r"\n\n([^#\n][^\n]*)\n", r"\n\n\1 This line was edited.\n",
                               text, count=1))
    return len(chosen)


def run_command(settings: Settings, *arguments: str) -> tuple[float, int, str]:
    """Seconds, peak memory (MiB) and output of `alliance-qa ARGUMENTS` in a child process."""
    env = {**os.environ, **settings.as_env()}
    start = time.perf_counter()
    child = subprocess.run([sys.executable, "-c", RUN_AND_REPORT_PEAK, *arguments], env=env,
                           capture_output=True, text=True)
    seconds = time.perf_counter() - start
    peak = max([int(line.split()[1]) for line in child.stderr.splitlines()
                if line.startswith("peak-kb")], default=0)
    if child.returncode:
        raise RuntimeError(f"alliance-qa {' '.join(arguments)} failed: "
                           f"{child.stderr.strip().splitlines()[-2:]}")
    return seconds, peak // 1024, child.stdout


def folder_bytes(folder: Path) -> int:
    """The bytes of every file of the live build."""
    live = folder / (folder / "CURRENT").read_text().strip()
    return sum(p.stat().st_size for p in live.iterdir() if p.is_file())


def bare_encoding_rate(embedder: Embedder, texts: list[str]) -> float:
    """Paragraphs a second the model encodes alone (sentence-transformers, batches of 32)."""
    start = time.perf_counter()
    embedder.encode(texts)
    return len(texts) / (time.perf_counter() - start)


def measure_size(paragraphs: int, settings: Settings, eval_dir: Path, sentences: list[str],
                 embedder: Embedder, suite: str = "squad-dev") -> dict:
    """Every figure of one size (see the module's docstring)."""
    seed = next(s for s in find_suites(eval_dir) if s.name == suite)
    with tempfile.TemporaryDirectory() as work:
        here = replace(settings, corpus_dir=Path(work) / "corpus", index_dir=Path(work) / "index",
                       encoders_dir=settings.encoders)
        scaled_corpus(here.corpus_dir, paragraphs, seed.corpus, sentences)
        build_s, build_mib, output = run_command(here, "build")
        chunks = int(re.search(r"(\d+) chunks", output).group(1))
        sample = [c for c in _paragraphs(here.corpus_dir)[:1000]]
        reference = bare_encoding_rate(embedder, sample)
        cold_s, serve_mib, _ = run_command(here, "ask", "What is the Apollo program?")
        asked = subprocess.run([sys.executable, "-m", __name__, str(eval_dir.resolve()), suite],
                               env={**os.environ, **here.as_env()}, capture_output=True,
                               text=True, check=True)
        size = folder_bytes(here.index_dir)
        edited = edit_files(here.corpus_dir, EDITED_SHARE)
        again_s, _, _ = run_command(here, "build")
    return {"paragraphs": chunks, "build_s": build_s, "chunks_per_s": chunks / build_s,
            "bare_per_s": reference, "build_peak_mib": build_mib,
            "bytes_per_passage": size / chunks, "cold_start_s": cold_s,
            "serving_mib": serve_mib, **json.loads(asked.stdout.splitlines()[-1]),
            "edited_files": edited, "rebuild_s": again_s}


def asking_figures(settings: Settings, eval_dir: Path, suite: str) -> dict:
    """Query latency and hit@1 of the suite's questions on the index as served (run in a
    child process, `python -m alliance_qa.scale EVAL_DIR SUITE`, like a server: without the
    benchmark's PyTorch, whose threads slowed the queries measured beside it)."""
    seed = next(s for s in find_suites(eval_dir) if s.name == suite)
    searcher, _ = open_searcher(settings)
    questions = resolve_gold(load_questions(*seed.question_sets), searcher.index.documents)
    latencies, right = [], []
    for question in questions:
        start = time.perf_counter()
        answer = searcher.search(question.question, k=3)
        latencies.append(time.perf_counter() - start)
        if question.gold:
            right.append(bool(answer.hits) and
                         place_of(answer.hits[0].chunk, question.gold) in question.gold)
    latencies.sort()
    return {"query_p50_ms": 1000 * statistics.median(latencies),
            "query_p95_ms": 1000 * latencies[int(0.95 * (len(latencies) - 1))],
            "hit_at_1": sum(right) / max(len(right), 1)}


def _paragraphs(corpus: Path) -> list[str]:
    documents, _ = read_documents(scan_corpus(corpus)[0])
    return [p for d in documents for s in d.sections for p in s.paragraphs]


TARGETS = {"bytes_per_passage": ("≤", 10 * 1024), "build_ratio": ("≥", 0.5),
           "serving_mib": ("≤", 1536), "cold_start_s": ("≤", 3.0), "query_p95_ms": ("≤", 30.0)}


HEADER = (f"{'passages':>9} {'build s':>8} {'chunks/s':>8} {'÷ bare':>7} {'peak MiB':>8} "
          f"{'KB/psg':>7} {'cold s':>6} {'serve MiB':>9} {'p50 ms':>7} {'p95 ms':>7} "
          f"{'hit@1':>6} {'1% edit s':>9}")


def format_size(r: dict) -> str:
    """One size's figures as the benchmark prints them, under HEADER."""
    return (f"{r['paragraphs']:9,d} {r['build_s']:8.0f} {r['chunks_per_s']:8.1f} "
            f"{r['chunks_per_s'] / r['bare_per_s']:7.2f} {r['build_peak_mib']:8,d} "
            f"{r['bytes_per_passage'] / 1024:7.1f} {r['cold_start_s']:6.1f} "
            f"{r['serving_mib']:9,d} {r['query_p50_ms']:7.1f} {r['query_p95_ms']:7.1f} "
            f"{r['hit_at_1']:6.3f} {r['rebuild_s']:9.0f}")


def build_on_ray(workers: list[int], settings: Settings, eval_dir: Path = Path("eval"),
                 paragraphs: int = 0, suite: str = "squad-dev") -> list[str]:
    """`alliance-qa bench --ray-workers`: the same corpus (the suite's, or scaled to
    `paragraphs`) built plainly and on local Ray Data with each number of workers, each a
    full build in a child process; chunks/s against bare encoding in the same run."""
    seed = next(s for s in find_suites(eval_dir) if s.name == suite)
    lines = [f"{'build':>22} {'seconds':>8} {'chunks/s':>8} {'÷ bare':>7} {'peak MiB':>8}"]
    with tempfile.TemporaryDirectory() as work:
        corpus = Path(work) / "corpus"
        scaled_corpus(corpus, paragraphs, seed.corpus, real_sentences(eval_dir))
        bare = bare_encoding_rate(Embedder(settings.model), _paragraphs(corpus))
        for count in [0, *workers]:
            here = replace(settings, corpus_dir=corpus, index_dir=Path(work) / f"index-{count}",
                           encoders_dir=settings.encoders)
            seconds, peak, output = run_command(
                here, "build", "--quiet", *(["--ray", "--workers", str(count)] if count else []))
            chunks = int(re.search(r"(\d+) chunks", output).group(1))
            label = f"Ray, {count} worker{'s' * (count > 1)}" if count else "plain"
            lines.append(f"{label:>22} {seconds:8.1f} {chunks / seconds:8.2f} "
                         f"{chunks / seconds / bare:7.2f} {peak:8,d}")
    return lines + [f"bare encoding of the same paragraphs: {bare:.1f}/s"]


def scale_of_the_method(sizes: list[int], settings: Settings, eval_dir: Path = Path("eval")
                        ) -> Iterator[str]:
    """`alliance-qa bench --method-scale`: every size's figures, each as soon as it is
    measured (a long run stopped keeps the sizes done), and the targets."""
    embedder = Embedder(settings.model)
    sentences = real_sentences(eval_dir)
    yield HEADER
    for n in sizes:
        yield format_size(measure_size(n, settings, eval_dir, sentences, embedder))
    yield "targets: " + ", ".join(f"{name} {op} {value}" for name, (op, value) in TARGETS.items())


if __name__ == "__main__":
    sys.stdout.write(json.dumps(asking_figures(Settings.from_env(), Path(sys.argv[1]),
                                               sys.argv[2])) + "\n")
