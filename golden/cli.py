"""The shared command-line wrapper: one meaning per exit code across every ``python -m ...`` command.

Every command ends with ``sys.exit(run_main(main))``. The wrapper runs ``main()`` and turns what escapes it into an
exit code and a message:

====  ==================================================================================================
code  meaning
====  ==================================================================================================
0     success
1     the command ran and its answer is "no": a mismatch, a failed check, a board that does not answer, a
      tool that failed (the command returns 1 itself, or raises an error of the project's own that is not
      about its input)
2     bad input: a wrong argument (argparse's own code), a file that is missing or refused (a model, a WAV
      file, a data set); one ``error:`` line naming the file and the problem, no traceback
3     internal error: an exception nobody planned for; the traceback and a line saying it is a bug
130   interrupted (Ctrl-C)
====  ==================================================================================================

What counts as bad input: an exception class of the project's own (defined in ``golden``, ``train``, ``hw``,
``flow``, ``spikesmith``, ``sim`` or ``boards``) derived from ``ValueError`` (``ManifestError``, ``FeatureError``, ``FsddError``,
``BudgetError``, ``FitError``, ...), and the ``OSError`` kinds a wrong path gives (missing, a directory, no
permission). The project's other own errors (``BoardError``, ``BuildError``, ``ToolchainError``, ...) exit 1 with
their message. Anything else is an internal error.
"""

from __future__ import annotations

import sys
import traceback

__all__ = ["EXIT_OK", "EXIT_FAILURE", "EXIT_BAD_INPUT", "EXIT_INTERNAL", "EXIT_INTERRUPTED", "InputError",
           "classify", "run_main"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130

_PACKAGES = ("golden", "train", "hw", "sim", "boards", "flow", "spikesmith")
_PATH_ERRORS = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError, FileExistsError)
_BUG = ("this is a bug in spikesmith, not a problem with your input: please report it with the command line and "
        "the traceback above")


class InputError(ValueError):
    """Base for a refusal of the user's input that is not one of the existing error classes."""


def _own(error):
    module = type(error).__module__
    if module == "__main__":  # a class of the module run with ``python -m``: its real name is in its spec
        spec = getattr(sys.modules.get("__main__"), "__spec__", None)
        module = spec.name if spec is not None else module
    return module.split(".")[0] in _PACKAGES


def classify(error):
    """The exit code for an exception that escaped a command's ``main``."""
    if isinstance(error, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(error, InputError) or isinstance(error, _PATH_ERRORS) or (_own(error) and
                                                                            isinstance(error, ValueError)):
        return EXIT_BAD_INPUT
    if _own(error) and isinstance(error, Exception) and not isinstance(error, (AssertionError, TypeError)):
        return EXIT_FAILURE
    return EXIT_INTERNAL


def _say(text):
    """Print ``text`` to stderr even where it holds characters the terminal's encoding lacks."""
    encoding = getattr(sys.stderr, "encoding", None) or "utf-8"
    print(text.encode(encoding, "backslashreplace").decode(encoding), file=sys.stderr)


def _message(error):
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        return f"{error.filename}: {error.strerror}"
    return str(error) or type(error).__name__


def run_main(main, argv=None):
    """Run ``main(argv)`` (or ``main()``) and return the exit code; print one line for a handled error.

    Parameters
    ----------
    main : callable
        A command's entry point returning an exit code (``None`` counts as 0).
    argv : list of str, optional
        Passed on when given.
    """
    try:
        code = main() if argv is None else main(argv)
    except SystemExit as stop:
        code = stop.code
        if code is None or isinstance(code, int):
            return code or 0
        _say(str(code))
        return EXIT_FAILURE
    except BaseException as error:  # noqa: BLE001 - the one place that turns every escape into an exit code
        code = classify(error)
        if code == EXIT_INTERRUPTED:
            _say("interrupted")
        elif code == EXIT_INTERNAL:
            _say("".join(traceback.format_exception(error)).rstrip("\n"))
            _say(f"internal error: {_BUG}")
        else:
            _say(f"error: {_message(error)}")
        return code
    return 0 if code is None else code
