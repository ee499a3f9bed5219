"""Work done in a freshly started Python process, so that the memory it takes is the
system's again when it ends.

A build's stages hold what the process keeps after they end: PyTorch, once imported, and
the freed memory the allocator does not hand back. The model's export and the writing of
an index therefore each run apart (`multiprocessing` with "spawn": a new interpreter, not
a copy of this one), and report their stages here as they reach them.
"""

from __future__ import annotations

import multiprocessing
import pickle
import queue
import traceback
from collections.abc import Callable
from typing import Any

Progress = Callable[[str, float], None] | None   # (stage, fraction done)


class ProcessEnded(RuntimeError):
    """The process ended without giving its result (killed, or out of memory)."""


def run_apart(function: Callable[..., Any], *arguments: Any, on_progress: Progress = None
              ) -> Any:
    """`function(*arguments, report)` in a new process: its result, or its exception
    raised here; each `report(stage, done)` it makes is passed to `on_progress` here, in
    this thread. If this side is interrupted, the process is ended."""
    context = multiprocessing.get_context("spawn")
    messages = context.Queue()
    worker = context.Process(target=_work, args=(messages, function, arguments))
    worker.start()
    finished = False
    try:
        while True:
            kind, *content = _next(messages, worker)
            if kind == "stage":
                if on_progress is not None:
                    on_progress(*content)
                continue
            finished = True
            if kind == "failed":
                raise content[0]
            return content[0]
    finally:
        if not finished:
            worker.terminate()
        worker.join()


def _next(messages: Any, worker: Any) -> tuple:
    while True:
        try:
            return messages.get(timeout=0.2)
        except queue.Empty:
            if worker.is_alive():
                continue
        try:                 # it ended: what it sent last may still be on its way
            return messages.get(timeout=1.0)
        except queue.Empty:
            raise ProcessEnded(f"its process ended with exit code {worker.exitcode}") from None


def _work(messages: Any, function: Callable[..., Any], arguments: tuple) -> None:
    def report(stage: str, done: float) -> None:
        messages.put(("stage", stage, done))

    try:
        messages.put(("done", function(*arguments, report)))
    except BaseException as error:        # sent back whole when it can be, else in words
        error.add_note(f"In the process apart:\n{traceback.format_exc()}")
        try:
            pickle.dumps(error)
        except Exception:
            error = RuntimeError(f"{type(error).__name__}: {error}")
        messages.put(("failed", error))
