"""Work done in a process of its own: its result, its stages in order, its errors as raised
there, and a process that dies said in words."""

import os
import signal
import time

import pytest

from alliance_qa.errors import CorpusEmpty
from alliance_qa.processes import ProcessEnded, run_apart


def three_stages(base: int, report) -> tuple[int, int]:
    for number in range(3):
        report(f"stage {number}", number / 3)
    return base, os.getpid()


def no_documents(report) -> None:
    report("Reading the corpus…", 0.0)
    raise CorpusEmpty("No usable documents in x.")


def killed(report) -> None:
    report("about to be killed", 0.5)
    time.sleep(1)                   # what it sent is on its way before it dies
    os.kill(os.getpid(), signal.SIGKILL)


def test_the_result_comes_back_with_each_stage_reported_here_in_order():
    seen = []
    value, pid = run_apart(three_stages, 7, on_progress=lambda *stage: seen.append(stage))
    assert value == 7 and pid != os.getpid()
    assert seen == [("stage 0", 0.0), ("stage 1", 1 / 3), ("stage 2", 2 / 3)]


def test_an_error_there_is_raised_here_as_itself():
    with pytest.raises(CorpusEmpty) as raised:
        run_apart(no_documents)
    assert str(raised.value).startswith("No usable documents in x. Add documents")


def test_a_process_that_dies_is_said_and_nothing_waits_for_it():
    seen = []
    with pytest.raises(ProcessEnded, match="killed by signal 9"):
        run_apart(killed, on_progress=lambda *stage: seen.append(stage))
    assert seen == [("about to be killed", 0.5)]
