"""Test helpers: a virtual board (``python -m boards.virtual``) behind a pseudo-terminal, and the host tool."""

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def virtual_board(run_dir, *args):
    """Start a virtual iCEBreaker with the extra command-line ``args`` (``--model DIR``, ``--params JSON`` ...);
    yield its port name; stop it cleanly afterwards (and check that it ended well)."""
    proc = subprocess.Popen([sys.executable, "-m", "boards.virtual", "--board", "icebreaker", "--run-dir",
                             str(run_dir), *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        line = proc.stdout.readline().strip()
        if not line.startswith("/dev/"):
            proc.kill()
            pytest.fail(f"no port from boards.virtual: {line!r} {proc.stderr.read()}")
        yield line
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, proc.stderr.read()


def host(*args):
    """Run ``python -m boards.host`` with ``args``; return the completed process."""
    return subprocess.run([sys.executable, "-m", "boards.host", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
