"""The benchmark: query latency by stage, build time, cold start, app start-up, memory.

Every figure is the median of repeated runs, with its spread; run it on a quiet machine
(anything else running on 2 cores moves medians a lot).
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from .config import Settings


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summary(name: str, seconds: list[float], unit: str = "ms") -> str:
    scale = 1000 if unit == "ms" else 1
    values = [s * scale for s in seconds]
    spread = f"{min(values):.1f}–{max(values):.1f}"
    return (f"{name:34} median {statistics.median(values):8.1f} {unit}   "
            f"p95 {_quantile(values, 0.95):8.1f} {unit}   range {spread} {unit}   n={len(values)}")


def query_latency(searcher, questions: list[str], repeats: int) -> list[str]:
    """End to end (question in, passages with citations and highlights out), by stage."""
    from .cli import answer_json
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


def build_time(settings: Settings, embedder, repeats: int) -> str:
    from .indexing import build_index
    times = []
    with tempfile.TemporaryDirectory() as folder:
        for i in range(repeats):
            start = time.perf_counter()
            build_index(replace(settings, index_dir=Path(folder) / f"i{i}"), embedder)
            times.append(time.perf_counter() - start)
    return summary("index build (model loaded)", times, "s")


def cold_start(settings: Settings, repeats: int) -> tuple[str, int]:
    """Process start to first answer printed, model and index load included."""
    times = []
    env = {**os.environ, "ALLIANCE_QA_INDEX": str(settings.index_dir),
           "ALLIANCE_QA_CORPUS": str(settings.corpus_dir), "ALLIANCE_QA_MODEL": settings.model}
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "alliance_qa", "ask", "What is THAAD?"], env=env,
                       check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    child_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return summary("cold start to first answer", times, "s"), child_kb


def run_benchmark(settings: Settings, repeats: int = 5, browser: bool = True) -> str:
    from .evaluation import load_questions
    from .service import open_searcher
    lines = [f"alliance-qa benchmark — {os.cpu_count()} cores, python {sys.version.split()[0]}"]
    searcher = open_searcher(settings)
    questions = [q.question for q in load_questions(
        Path(__file__).resolve().parents[2] / "eval" / "questions.jsonl")]
    lines += query_latency(searcher, questions, repeats)
    lines.append(build_time(settings, searcher.embedder, max(3, repeats // 2)))
    cold, child_kb = cold_start(settings, max(3, repeats // 2))
    lines.append(cold)
    if browser:
        from .browser import app_timings
        lines += app_timings(settings, repeats)
    own_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    lines.append(f"{'peak memory':34} this process {own_kb / 1024:.0f} MiB; "
                 f"largest child {child_kb / 1024:.0f} MiB")
    return "\n".join(lines)
