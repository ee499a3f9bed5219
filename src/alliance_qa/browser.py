"""Drive the real app: `streamlit run app.py` on a free local port, and headless Chromium.

Used by the browser tests and the benchmark; it measures nothing itself. Chromium is
Debian's (/usr/bin/chromium); Playwright's own browser download cannot work on these
machines.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:       # Playwright is a test extra, imported where it is used
    from playwright.sync_api import Browser, Page

CHROMIUM = os.environ.get("ALLIANCE_QA_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1"]
APP = Path(__file__).resolve().parents[2] / "app.py"
CHAT_BOX = '[data-testid="stChatInput"] textarea'


def free_port() -> int:
    """A TCP port nothing listens on, for a server of our own."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    os.setsid()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)     # PR_SET_PDEATHSIG


@contextlib.contextmanager
def running_app(env: dict[str, str] | None = None, timeout: float = 60.0
                ) -> Iterator[str]:
    """Start the app as a user would; yield its URL; stop it (and its children) after."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1",
         "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        preexec_fn=_die_with_parent)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"streamlit exited: {process.stderr.read().decode()[-2000:]}")
            with contextlib.suppress(OSError):
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                    break
            time.sleep(0.1)
        else:
            raise TimeoutError("the app did not become healthy in time")
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium browser from Playwright's sync API."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


_SHOWN = """([index, expect]) => {
  const message = document.querySelectorAll('[data-testid="stChatMessage"]')[index];
  return Boolean(message && message.innerText.includes(expect));
}"""


def wait_for_message(page: Page, index: int, expect: str, timeout_ms: int = 60_000) -> None:
    """Wait until chat message `index` shows `expect` (case-sensitive), checking every frame:
    Playwright's own locator waits back off to 500 ms between checks, too coarse to time."""
    page.wait_for_function(_SHOWN, arg=[index, expect], polling="raf", timeout=timeout_ms)


def ask_in_page(page: Page, question: str, expect: str, timeout_ms: int = 60_000) -> float:
    """Type a question, press Enter, and wait until the new answer shows `expect`
    (case-sensitive); seconds from Enter."""
    before = page.locator('[data-testid="stChatMessage"]').count()
    box = page.locator(CHAT_BOX)
    box.fill(question)
    start = time.perf_counter()
    box.press("Enter")
    wait_for_message(page, before + 1, expect, timeout_ms)
    elapsed = time.perf_counter() - start
    wait_until_idle(page, timeout_ms)
    return elapsed


def wait_until_idle(page: Page, timeout_ms: int = 60_000) -> None:
    """Wait for the script run to finish (Streamlit's "running" widget gone)."""
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=timeout_ms)


def top_citation(page: Page, message_index: int) -> str:
    """The citation line of the first passage card of a chat message."""
    message = page.locator('[data-testid="stChatMessage"]').nth(message_index)
    return message.locator(".aqa-cite").first.inner_text()


def concurrent_sessions(browser: Browser, url: str, questions: list[str], rounds: int = 3,
                        timeout_ms: int = 60_000) -> tuple[list[list[str]], list[float], float]:
    """One browser session per question, all pressing Enter together, `rounds` times.

    Returns each session's top citations (one per round), every answer's latency from its
    Enter to its passages showing, and the wall time of all rounds.
    """
    pages = [browser.new_page() for _ in questions]
    for page in pages:
        page.goto(url)
    for page in pages:
        page.locator(CHAT_BOX).wait_for(timeout=90_000)
    citations: list[list[str]] = [[] for _ in questions]
    latencies: list[float] = []
    wall = time.perf_counter()
    for round_number in range(rounds):
        starts = []
        for page, question in zip(pages, questions):
            page.locator(CHAT_BOX).fill(question)
            starts.append(time.perf_counter())
            page.locator(CHAT_BOX).press("Enter")
        for n, (page, start) in enumerate(zip(pages, starts)):
            wait_for_message(page, 2 * round_number + 1, "relevance", timeout_ms)
            latencies.append(time.perf_counter() - start)
            citations[n].append(top_citation(page, 2 * round_number + 1))
        for page in pages:
            wait_until_idle(page, timeout_ms)
    wall = time.perf_counter() - wall
    for page in pages:
        page.close()
    return citations, latencies, wall
