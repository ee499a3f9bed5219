"""Work done in a process of its own: its result, its stages in order, its errors as raised
there, and a process that dies said in words."""

import os
import signal
import threading
import time
from pathlib import Path

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


def sleeps(folder: str, report) -> None:
    (Path(folder) / "sleeper").write_text(str(os.getpid()))
    time.sleep(120)


def asks_a_sleeper(folder: str, report) -> None:
    (Path(folder) / "asker").write_text(str(os.getpid()))
    run_apart(sleeps, folder)       # as a build's writing process asks for the export


def running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def wait_for(files: list[Path], seconds: float = 60) -> None:
    end = time.monotonic() + seconds
    while not all(f.exists() and f.read_text() for f in files):
        assert time.monotonic() < end, "the processes apart did not start"
        time.sleep(0.1)


def test_work_apart_ends_when_the_process_that_asked_for_it_is_killed(tmp_path):
    ended = []
    thread = threading.Thread(target=lambda: ended.append(
        pytest.raises(ProcessEnded, run_apart, asks_a_sleeper, str(tmp_path))))
    thread.start()
    wait_for([tmp_path / "asker", tmp_path / "sleeper"])
    asker, sleeper = (int((tmp_path / name).read_text()) for name in ("asker", "sleeper"))
    assert running(sleeper)
    os.kill(asker, signal.SIGKILL)
    thread.join(30)
    assert ended and "killed by signal 9" in str(ended[0].value)
    end = time.monotonic() + 10
    while running(sleeper) and time.monotonic() < end:
        time.sleep(0.1)
    assert not running(sleeper)       # it ended itself: nothing else would have
