"""Work done in a freshly started Python process, so that the memory it takes is the
system's again when it ends.

A build's stages hold what the process keeps after they end: PyTorch, once imported, and
the freed memory the allocator does not hand back. The model's export and the writing of
an index therefore each run apart, in a new interpreter (`python -c`, not a fork of this
one), and report their stages here as they reach them. The new process is given this
one's module path, the function and its arguments, pickled, on its standard input, and
answers through a pipe of its own; it never imports the program that asked (as
`multiprocessing`'s "spawn" does, which runs a script's top level again unless the script
guards it). It ends when the process that asked for it ends, however that one ended.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any, BinaryIO

Progress = Callable[[str, float], None] | None   # (stage, fraction done)
_START = ("import sys; from alliance_qa.processes import _serve; "
          "_serve(int(sys.argv[1]), int(sys.argv[2]))")
ORPHANED = 70          # the exit code of a process apart whose asker has ended



class ProcessEnded(RuntimeError):
    """The process ended without giving its result (killed, or out of memory); `code` is
    its exit code, negative for the signal that ended it."""

    def __init__(self, code: int):
        super().__init__(f"its process was killed by signal {-code}" if code < 0 else
                         f"its process ended with exit code {code}")
        self.code = code


def run_apart(function: Callable[..., Any], *arguments: Any, on_progress: Progress = None
              ) -> Any:
    """`function(*arguments, report)` in a new process: its result, or its exception
    raised here; each `report(stage, done)` it makes is passed to `on_progress` here, in
    this thread. If this side is interrupted, the process is ended."""
    answers, answering = os.pipe()
    worker = subprocess.Popen([sys.executable, "-c", _START, str(answering), str(os.getpid())],
                              stdin=subprocess.PIPE, pass_fds=(answering,))
    os.close(answering)
    finished = False
    try:
        with os.fdopen(answers, "rb") as messages:
            try:
                pickle.dump(sys.path, worker.stdin)       # so that `function` can be found
                pickle.dump((function, arguments), worker.stdin)
                worker.stdin.close()
            except BrokenPipeError:        # it ended at once: said as it ended, below
                pass
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
            worker.kill()
        worker.wait()


def _next(messages: BinaryIO, worker: subprocess.Popen) -> tuple:
    try:
        return pickle.load(messages)
    except EOFError:            # every end of the pipe it held is closed: it has ended
        raise ProcessEnded(worker.wait()) from None


def _serve(answering: int, asker: int) -> None:
    """The new process: read the work from standard input, do it, send the answers; end
    as soon as the process that asked for it (`asker`) has ended."""
    threading.Thread(target=_end_with, args=(asker,), daemon=True).start()
    sys.path[:] = pickle.load(sys.stdin.buffer)
    with os.fdopen(answering, "wb") as answers:
        def send(message: tuple) -> None:
            pickle.dump(message, answers)
            answers.flush()

        try:
            function, arguments = pickle.load(sys.stdin.buffer)
            send(("done", function(*arguments, lambda stage, done: send(("stage", stage,
                                                                          done)))))
        except BaseException as error:    # sent back whole when it can be, else in words
            error.add_note(f"In the process apart:\n{traceback.format_exc()}")
            try:
                pickle.dumps(error)
            except Exception:
                error = RuntimeError(f"{type(error).__name__}: {error}")
            send(("failed", error))


def _end_with(asker: int) -> None:
    """End this process once the one that asked for it has ended: killed, that one could
    not end it, and nothing would take its work (a build's writing process killed in the
    middle of the model's export left the export running on)."""
    while os.getppid() == asker:
        time.sleep(0.5)
    os._exit(ORPHANED)
