"""The benchmark: query latency by stage, build time, cold start, app start-up, memory.

Every figure is the median of repeated runs, with its spread; run it on a quiet machine
(anything else running on 2 cores moves medians a lot).
"""

from __future__ import annotations

import importlib.util
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .config import Settings
from .embedding import Embedder

if TYPE_CHECKING:
    from .search import Searcher


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summary(name: str, seconds: list[float], unit: str = "ms") -> str:
    """One line: a named measurement's median, p95, range and count."""
    scale = 1000 if unit == "ms" else 1
    values = [s * scale for s in seconds]
    spread = f"{min(values):.1f}–{max(values):.1f}"
    return (f"{name:34} median {statistics.median(values):8.1f} {unit}   "
            f"p95 {_quantile(values, 0.95):8.1f} {unit}   range {spread} {unit}   n={len(values)}")


def query_latency(searcher: Searcher, questions: list[str], repeats: int) -> list[str]:
    """End to end (question in, passages with citations and highlights out), by stage."""
    from .formats import answer_json
    stages: dict[str, list[float]] = {"encode": [], "search": [], "format": [], "total": []}
    for question in questions[:3]:                       # warm-up
        searcher.search(question)
    for _ in range(repeats):
        for question in questions:
            start = time.perf_counter()
            answer = searcher.search(question)
            searched = time.perf_counter()
            answer_json(answer)
            done = time.perf_counter()
            for stage, seconds in answer.timings:
                stages[stage].append(seconds)
            stages["format"].append(done - searched)
            stages["total"].append(done - start)
    return [summary("query, end to end", stages["total"]),
            summary("  encode (model)", stages["encode"]),
            summary("  search, fuse, highlight, abstain", stages["search"]),
            summary("  formatting (JSON)", stages["format"])]


def build_time(settings: Settings, embedder: Embedder, repeats: int) -> str:
    """Median time of a whole build, the model loaded and its export kept."""
    from .indexing import build_index
    times = []
    with tempfile.TemporaryDirectory() as folder:
        for i in range(repeats):
            start = time.perf_counter()
            build_index(replace(settings, index_dir=Path(folder) / f"i{i}",
                                encoders_dir=settings.encoders), embedder)
            times.append(time.perf_counter() - start)
    return summary("index build (model loaded, exported)", times, "s")


# Runs `alliance-qa …` and then prints the peak memory of it and the processes it started (a
# model's export, Ray workers): the largest sum of their resident memory, sampled every 50
# ms, or the process's own peak if higher. VmHWM counts from exec; getrusage would also
# count the pages the child shared with this process before exec.
RUN_AND_REPORT_PEAK = """
import glob, os, re, runpy, sys, threading, time
def resident_kb(pid):
    try:
        status = open(f"/proc/{pid}/status").read()
        children = [c for f in glob.glob(f"/proc/{pid}/task/*/children")
                    for c in open(f).read().split()]
    except OSError:
        return 0
    found = re.search(r"VmRSS:\\s+(\\d+)", status)
    return (int(found.group(1)) if found else 0) + sum(resident_kb(c) for c in children)
most = [0]
def sample():
    while True:
        most[0] = max(most[0], resident_kb(os.getpid()))
        time.sleep(0.05)
threading.Thread(target=sample, daemon=True).start()
sys.argv = ["alliance-qa", *sys.argv[1:]]
try:
    runpy.run_module("alliance_qa", run_name="__main__")
finally:
    own = int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1))
    print("peak-kb", max(own, most[0]), file=sys.stderr)
"""


def cold_start(settings: Settings, repeats: int, question: str) -> tuple[str, int]:
    """Process start to first answer printed, model and index load included; and the peak
    memory of that process, in KiB."""
    times, peaks = [], []
    env = {**os.environ, **settings.as_env()}
    for _ in range(repeats):
        start = time.perf_counter()
        child = subprocess.run([sys.executable, "-c", RUN_AND_REPORT_PEAK, "ask", question],
                               env=env, capture_output=True, text=True)
        if child.returncode:
            reason = ([line for line in child.stderr.strip().splitlines()
                       if not line.startswith("peak-kb")] or ["no message"])[-1]
            return f"{'cold start to first answer':34} failed: {reason}", 0
        times.append(time.perf_counter() - start)
        peaks += [int(line.split()[1]) for line in child.stderr.splitlines()
                  if line.startswith("peak-kb")]
    return summary("cold start to first answer", times, "s"), max(peaks, default=0)


def synthetic_vectors(count: int, dimension: int = 384, seed: int = 0) -> np.ndarray:
    """Unit vectors in clusters, shaped like sentence embeddings of many related documents."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(max(count // 200, 10), dimension)).astype(np.float32)
    vectors = centers[rng.integers(0, len(centers), count)]
    vectors += rng.normal(0, 0.6, vectors.shape).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def embedding_throughput(embedder: Embedder, texts: list[str], repeats: int) -> str:
    """Texts embedded per second by sentence-transformers, in batches."""
    batch = (texts * (512 // max(len(texts), 1) + 1))[:512]
    rates = []
    for _ in range(max(1, repeats // 2)):
        start = time.perf_counter()
        embedder.encode(batch)
        rates.append(len(batch) / (time.perf_counter() - start))
    return (f"{'embedding throughput':34} median {statistics.median(rates):8.0f} texts/s   "
            f"range {min(rates):.0f}–{max(rates):.0f}   n={len(rates)} × {len(batch)}")


def scale_benchmark(sizes: list[int], plot: Path | None, queries: int = 200) -> list[str]:
    """Vector search latency and memory at growing sizes, exact vs HNSW, through the product's
    own `vector_index` and FAISS search; vectors are synthetic (see `synthetic_vectors`)."""
    import faiss

    from .store import EXACT_LIMIT, vector_index
    rows, lines = [], [f"{'vectors':>9} {'index':8} {'build s':>8} {'median ms':>10} "
                       f"{'p95 ms':>8} {'memory MiB':>11} {'recall@10':>9}"]
    for count in sizes:
        vectors = synthetic_vectors(count)
        probe = synthetic_vectors(queries, seed=1)
        for kind, limit in (("exact", count), ("hnsw", 0)):
            start = time.perf_counter()
            index, info = vector_index(vectors, exact_limit=limit)
            built = time.perf_counter() - start
            latencies = []
            for query in probe:
                t0 = time.perf_counter()
                index.search(query[None, :], 10)
                latencies.append(time.perf_counter() - t0)
            memory = len(faiss.serialize_index(index)) / 2**20
            median_ms = statistics.median(latencies) * 1000
            rows.append((count, kind, median_ms))
            lines.append(f"{count:9,d} {kind:8} {built:8.1f} {median_ms:10.2f} "
                         f"{_quantile(latencies, 0.95) * 1000:8.2f} {memory:11.0f} "
                         f"{info.get('recall_at_10', 1.0):9.3f}")
            del index
    lines.append(f"(the product switches a searched view to HNSW above {EXACT_LIMIT:,} vectors)")
    if plot and importlib.util.find_spec("matplotlib") is None:
        lines.append("plot: skipped: matplotlib is not installed (pip install -e '.[bench]')")
    elif plot:
        _plot(rows, plot)
        lines.append(f"plot: {plot}")
    return lines


def _plot(rows: list[tuple[int, str, float]], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure, axes = plt.subplots(figsize=(6, 4), dpi=120)
    for kind in ("exact", "hnsw"):
        points = [(n, ms) for n, k, ms in rows if k == kind]
        axes.plot(*zip(*points), marker="o", label=kind)
    axes.set(xscale="log", yscale="log", xlabel="vectors in the index",
             ylabel="median search latency (ms)", title="Vector search latency, 384-d, top 10")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def app_timings(settings: Settings, repeats: int) -> list[str]:
    """Start-up to a usable page, Enter to passages visible, and four sessions at once, in
    the real browser against `streamlit run`."""
    from .browser import CHAT_BOX, CHROMIUM, ask_in_page, chromium, concurrent_sessions, running_app
    if importlib.util.find_spec("playwright") is None:
        return [f"{'app timings':34} skipped: Playwright is not installed "
                "(pip install -e '.[test]')"]
    if not Path(CHROMIUM).exists():
        return [f"{'app timings':34} skipped: no Chromium at {CHROMIUM}"]
    env = settings.as_env()
    starts, answers = [], []
    questions = corpus_questions(settings)[:4]
    with chromium() as browser:
        for run in range(max(2, repeats // 2)):
            start = time.perf_counter()
            with running_app(env) as url:
                page = browser.new_page()
                page.goto(url)
                page.locator(CHAT_BOX).wait_for(timeout=90_000)
                ask_in_page(page, questions[0], "relevance")    # a passage card shown
                starts.append(time.perf_counter() - start)
                if run == 0:
                    answers += [ask_in_page(page, f"{questions[1]} ({i})", "relevance")
                                for i in range(repeats * 2)]
                page.close()
        with running_app(env) as url:
            _, latencies, wall = concurrent_sessions(browser, url, questions, rounds=repeats)
    return [summary("app: start to first answer shown", starts, "s"),
            summary("app: Enter to passages shown", answers),
            summary(f"app: {len(questions)} sessions at once", latencies),
            f"{'app: throughput, 4 sessions':34} {len(latencies) / wall:.1f} answers/s"]


def corpus_questions(settings: Settings, count: int = 60) -> list[str]:
    """Questions for any corpus, from the index itself: one about each heading (as the
    page suggests them), then the opening sentences of passages spread over the index."""
    from .store import load_index
    from .ui import example_questions
    index = load_index(settings.index_dir)
    about = example_questions(index.documents, count // 2)
    step = max(1, len(index.chunks) // (count - len(about)))
    openings = [c.text[slice(*c.sentences[0])] for c in index.chunks[::step] if c.sentences]
    return (about + openings)[:count]


def run_benchmark(settings: Settings, repeats: int = 5, browser: bool = True,
                  scale: list[int] | None = None, plot: Path | None = None) -> str:
    """Every measurement, as lines of text."""
    from .service import open_searcher
    lines = [f"alliance-qa benchmark — {os.cpu_count()} cores, python {sys.version.split()[0]}"]
    searcher, _ = open_searcher(settings)
    lines.append(f"questions encoded by {searcher.embedder.runtime}")
    questions = corpus_questions(settings)
    lines += query_latency(searcher, questions, repeats)
    builder = Embedder(settings.model)      # building runs sentence-transformers
    lines.append(build_time(settings, builder, max(3, repeats // 2)))
    lines.append(embedding_throughput(builder, [c.context_text() for c in searcher.chunks],
                                      repeats))
    cold, child_kb = cold_start(settings, max(3, repeats // 2), questions[0])
    lines.append(cold)
    if browser:
        lines += app_timings(settings, repeats)
    own_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    lines.append(f"{'peak memory':34} this process {own_kb / 1024:.0f} MiB; "
                 f"`alliance-qa ask` from cold {child_kb / 1024:.0f} MiB")
    if scale:
        lines += ["", "search at scale (synthetic vectors):"] + scale_benchmark(scale, plot)
    return "\n".join(lines)
