"""Progress of the long steps on stderr: a line per step with its elapsed time, and what a running tool is doing.

Every step of a build, the generator and the area run reports through a :class:`Progress`:

- on a terminal, the running step's line is redrawn in place with the elapsed time and the tool's own progress
  (nextpnr's phase, Yosys' pass), and stays as ``name ... done in 12.3 s``;
- elsewhere (a log, CI), the step's start and end are printed, and while it runs a line every
  :data:`HEARTBEAT_S` seconds with the latest news, so that no step longer than a few seconds is silent (a
  background timer keeps this going while the step's own work, say an elaboration, holds the main thread);
- ``Progress(enabled=False)`` (``--quiet``, ``--json``) prints nothing.
"""

import contextlib
import sys
import threading
import time

__all__ = ["Progress", "HEARTBEAT_S", "format_seconds"]

#: Seconds between two progress lines of one step when stderr is not a terminal.
HEARTBEAT_S = 5.0


def format_seconds(seconds):
    """``"4.2 s"``, ``"1 min 05 s"``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes} min {rest:02d} s"


class Progress:
    """Step-by-step progress on a text stream.

    Parameters
    ----------
    enabled : bool
        Print anything at all.
    stream : file, optional
        Default ``sys.stderr``.
    live : bool, optional
        Redraw the running step in place (default: when ``stream`` is a terminal).
    prefix : str
        Put before every line (``"build: "``).
    """

    def __init__(self, *, enabled=True, stream=None, live=None, prefix=""):
        self._stream = sys.stderr if stream is None else stream
        self._enabled = bool(enabled)
        isatty = getattr(self._stream, "isatty", lambda: False)
        self._live = bool(isatty()) if live is None else bool(live)
        self._prefix = prefix
        self._title = None
        self._started = None
        self._news = ""
        self._last = 0.0
        self._drawn = 0
        self._lock = threading.RLock()
        self._stop = None

    @property
    def enabled(self):
        return self._enabled

    def _write(self, text, *, redraw=False):
        if not self._enabled:
            return
        with self._lock:
            if self._live and self._drawn:
                self._stream.write("\r" + " " * self._drawn + "\r")
                self._drawn = 0
            line = self._prefix + text
            if redraw and self._live:
                line = line[:self._width()]
                self._stream.write(line)
                self._drawn = len(line)
            else:
                self._stream.write(line + "\n")
            self._stream.flush()

    @staticmethod
    def _width():
        import shutil

        return max(40, shutil.get_terminal_size((100, 20)).columns - 1)

    def note(self, text):
        """A line of its own (a notice, a warning that cannot wait for the end)."""
        self._write(text)

    @contextlib.contextmanager
    def step(self, title):
        """Time the enclosed work as the step ``title``; print its start and, at the end, its elapsed time."""
        if not self._enabled:
            yield self
            return
        outer = (self._title, self._started, self._news, self._stop)
        with self._lock:
            self._title, self._started, self._news = title, time.monotonic(), ""
            self._last = self._started
        self._write(f"{title} ...", redraw=True)
        self._stop = threading.Event()
        ticker = threading.Thread(target=self._tick, args=(self._stop,), daemon=True)
        ticker.start()
        try:
            yield self
        except BaseException:
            self._end(ticker)
            self._write(f"{title}: failed after {format_seconds(time.monotonic() - self._started)}")
            raise
        else:
            self._end(ticker)
            self._write(f"{title}: done in {format_seconds(time.monotonic() - self._started)}")
        finally:
            self._title, self._started, self._news, self._stop = outer

    def _end(self, ticker):
        self._stop.set()
        ticker.join()

    def _tick(self, stop):
        while not stop.wait(1.0 if self._live else 0.5):
            self._show()

    def update(self, news=""):
        """What the running step is doing now (``news`` may be empty: then only the elapsed time is shown)."""
        if news:
            self._news = news
        self._show()

    def _show(self):
        if self._title is None or not self._enabled:
            return
        with self._lock:
            now = time.monotonic()
            text = f"{self._title} ... {format_seconds(now - self._started)}" + (f": {self._news}" if self._news
                                                                                 else "")
            if self._live:
                self._write(text, redraw=True)
            elif now - self._last >= HEARTBEAT_S:
                self._last = now
                self._write(text)
