"""How a snapshot run by the CLI ends early: on SIGINT or SIGTERM, or when its Prefect API goes
away.

The flow runs in a thread of its own while the main thread waits and watches: Prefect then
leaves the process's signals alone (it installs its SIGTERM handler in the main thread only),
and a signal is handled at once whatever the flow is doing, downloads stuck included. Ending
early never waits for those threads: files reach the store only by an atomic link and the URL
index commits whole transactions, so the stored state is consistent at every instant, and the
next run adopts what staging holds. So the run ends with one line on stderr and ``os._exit``
(the interpreter would otherwise wait for the task runner's non-daemon threads, and a second
Ctrl-C would print ``threading._shutdown``'s traceback).
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import IO, NoReturn, TypeVar

import requests

from gallery_snapshot.escaping import one_line

T = TypeVar("T")

EXIT_FAILED = 1
EXIT_SIGNALS = {signal.SIGINT: 130, signal.SIGTERM: 143}  # 128 + the signal's number
POLL_SECONDS = 2.0
LOST_AFTER_SECONDS = 15.0  # the API failed every health check for this long: it is gone
FINAL_WORDS_SECONDS = 3.0  # the most ending early waits for ``on_stop`` (say, a state change)


def error_line(message: str) -> str:
    """One line, whatever ``message`` holds (a server's words, a file name)."""
    return f"gallery-snapshot: error: {one_line(message)}\n"


def end_now(message: str, code: int, stderr: int = 2) -> NoReturn:
    """One line on stderr (the file descriptor ``stderr``), then exit without waiting for any
    thread."""
    sys.stdout.flush()
    # On a line of its own: a thread may have left half a line (Prefect prints "All
    # connection attempts failed" without a newline when the API goes away).
    os.write(stderr, ("\n" + error_line(message)).encode(errors="replace"))
    os._exit(code)


def bounded(action: Callable[[], object], seconds: float = FINAL_WORDS_SECONDS) -> None:
    """Run ``action`` in a daemon thread for at most ``seconds``, ignoring its errors."""

    def attempt() -> None:
        try:
            action()
        except Exception:  # best effort: the run ends anyway
            return

    thread = threading.Thread(target=attempt, name="final-words", daemon=True)
    thread.start()
    thread.join(seconds)


def stop_on_signals(on_stop: Callable[[], object] | None = None) -> None:
    """SIGINT and SIGTERM end the process at once: ``on_stop`` (bounded), one line, 130/143."""

    def handler(signum: int, frame: object) -> None:
        for number in EXIT_SIGNALS:
            signal.signal(number, signal.SIG_IGN)  # a second Ctrl-C changes nothing
        if on_stop is not None:
            bounded(on_stop)
        name = signal.Signals(signum).name
        end_now(
            f"interrupted ({name}); stored images are intact, run the command again to finish",
            EXIT_SIGNALS[signal.Signals(signum)],
        )

    for number in EXIT_SIGNALS:
        signal.signal(number, handler)


class ApiWatch:
    """Health checks of the Prefect API while a run uses it. While they fail, stderr goes to a
    buffer (Prefect's clients print an error per event they cannot send): replayed if the API
    comes back, dropped when the run ends with one line, "lost the Prefect API at URL"."""

    def __init__(self, api_url: str) -> None:
        self.api_url = api_url
        self.failing_since: float | None = None
        self.saved_stderr: int | None = None
        self.buffer: IO[bytes] | None = None

    def healthy(self) -> bool:
        try:
            return requests.get(f"{self.api_url}/health", timeout=POLL_SECONDS).ok
        except requests.RequestException:
            return False

    def check(self) -> None:
        if self.healthy():
            self.failing_since = None
            self.restore_stderr()
            return
        now = time.monotonic()
        if self.failing_since is None:
            self.failing_since = now
            self._buffer_stderr()
        elif now - self.failing_since >= LOST_AFTER_SECONDS:
            self.end()

    def end(self) -> NoReturn:
        # Straight to the real stderr: other threads go on writing to the buffer meanwhile,
        # so no half-written line of theirs can precede ours.
        end_now(
            f"lost the Prefect API at {self.api_url}; stored images are intact, run the same "
            "command again once the server is back to finish",
            EXIT_FAILED,
            stderr=2 if self.saved_stderr is None else self.saved_stderr,
        )

    def _buffer_stderr(self) -> None:
        sys.stderr.flush()
        self.buffer = tempfile.TemporaryFile()  # noqa: SIM115 - closed by restore_stderr
        self.saved_stderr = os.dup(2)
        os.dup2(self.buffer.fileno(), 2)

    def restore_stderr(self) -> None:
        if self.saved_stderr is None or self.buffer is None:
            return
        sys.stderr.flush()
        os.dup2(self.saved_stderr, 2)
        os.close(self.saved_stderr)
        self.buffer.seek(0)
        sys.stderr.buffer.write(self.buffer.read())
        sys.stderr.flush()
        self.buffer.close()
        self.saved_stderr, self.buffer = None, None


def run_watched(work: Callable[[], T], api_url: str) -> T:
    """``work()`` in a thread of its own, while the main thread handles signals and watches
    the API; its result, or its exception raised here (or the one line of a lost API)."""
    outcome: list[T] = []
    failure: list[BaseException] = []
    done = threading.Event()

    def target() -> None:
        try:
            outcome.append(work())
        except BaseException as exc:  # handed to the main thread
            failure.append(exc)
        finally:
            done.set()

    threading.Thread(target=target, name="snapshot-flow", daemon=True).start()
    watch = ApiWatch(api_url)
    while not done.wait(POLL_SECONDS):
        watch.check()
    if failure and not watch.healthy():  # the run failed because the API went away
        watch.end()
    watch.restore_stderr()
    if failure:
        raise failure[0]
    return outcome[0]
