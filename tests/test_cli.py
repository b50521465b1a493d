"""The shared CLI wrapper: distinct exit codes for bad input and internal errors, across the commands."""

import os
import subprocess
import sys

import pytest

from boards.host import BoardError
from golden.cli import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_INTERNAL, EXIT_INTERRUPTED, run_main
from golden.manifest import ManifestError
from train.features import FeatureError


def _raising(error):
    def main(argv=None):
        raise error
    return main


@pytest.mark.parametrize("error,code,text", [
    (ManifestError("layer fc1: acc_bits 3 is too small"), EXIT_BAD_INPUT, "error: layer fc1: acc_bits 3 is too small\n"),
    (FeatureError("a.wav: the audio is silent"), EXIT_BAD_INPUT, "error: a.wav: the audio is silent\n"),
    (FileNotFoundError(2, "No such file or directory", "x.npy"), EXIT_BAD_INPUT,
     "error: x.npy: No such file or directory\n"),
    (BoardError("no reply within 2 s"), EXIT_FAILURE, "error: no reply within 2 s\n"),
    (KeyboardInterrupt(), EXIT_INTERRUPTED, "interrupted\n"),
    (ManifestError("classes[1] '\udc80'"), EXIT_BAD_INPUT, "error: classes[1] '\\udc80'\n"),
])
def test_a_handled_error_is_one_line_without_traceback(capsys, error, code, text):
    assert run_main(_raising(error)) == code
    assert capsys.readouterr().err == text


@pytest.mark.parametrize("error", [ZeroDivisionError("division by zero"), IndexError("index 100"),
                                   ValueError("a builtin ValueError is not a refusal"), MemoryError()])
def test_an_unplanned_exception_is_an_internal_error_with_traceback(capsys, error):
    assert run_main(_raising(error)) == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):")
    assert err.rstrip().endswith("internal error: this is a bug in spikesmith, not a problem with your input: "
                                 "please report it with the command line and the traceback above")


def test_return_codes_and_system_exit_pass_through():
    assert run_main(lambda: None) == 0
    assert run_main(lambda: 1) == 1
    assert run_main(_raising(SystemExit(2))) == 2
    assert run_main(lambda argv: len(argv), ["a", "b"]) == 2


def _run(*args):
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize("args", [
    ("golden", "--model", "no/such/model", "--random", "1"),
    ("train.features", "no-such.wav", "--model", "models/fsdd_scnn"),
    ("train.features", "models/fsdd_scnn/manifest.json", "--model", "models/fsdd_scnn"),
    ("golden", "--model", "models/tiny"),  # argparse: a required option is missing
])
def test_commands_exit_2_on_bad_input_without_traceback(args):
    done = _run(*args)
    assert done.returncode == EXIT_BAD_INPUT, done.stderr
    assert "Traceback" not in done.stderr and "error" in done.stderr
