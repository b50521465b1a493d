"""Training and bit-true evaluation as functions: the code behind ``python -m train`` and ``python -m
train.evaluate``, called with keyword arguments instead of a command line."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["train", "evaluate", "options_to_argv"]


def options_to_argv(parser, options):
    """Command-line words for ``options`` (keyword arguments named like the parser's options, ``qat_epochs`` for
    ``--qat-epochs``): ``True`` is a bare flag, ``False``/``None`` leave the option out, lists give several values.

    Raises
    ------
    TypeError
        If an option is not one of the parser's.
    """
    known = {a.dest: a for a in parser._actions if a.option_strings}
    argv = []
    for name, value in options.items():
        action = known.get(name)
        if action is None or name == "help":
            raise TypeError(f"unknown option {name!r} (known: {', '.join(sorted(k for k in known if k != 'help'))})")
        flag = action.option_strings[-1]
        if value is None or value is False:
            continue
        if value is True:
            argv.append(flag)
        elif isinstance(value, (list, tuple)):
            argv += [flag, *map(str, value)]
        else:
            argv += [flag, str(value)]
    return argv


def _parse(parser, argv):
    parser.exit_on_error = False
    try:
        return parser.parse_args(argv)
    except argparse.ArgumentError as error:
        raise ValueError(str(error)) from None


def train(out, *, data=None, progress=True, **options):
    """Train a model with the recipe of ``python -m train`` and export it to ``out``.

    Parameters
    ----------
    out : path
        Model directory to write (atomically).
    data : path, optional
        FSDD recordings (default: ``$SPIKESMITH_DATA``, then the download location; see ``train.datadir``).
    progress : bool
        Progress bars on stderr.
    **options
        Any option of ``python -m train --help``, named with underscores: ``epochs=3``, ``qat_epochs=1``,
        ``hidden=[16]``, ``limit_train=300``, ``seed=0`` ...

    Returns
    -------
    dict
        The run's figures (also in ``RUN_DIR/metrics.json``): ``float_accuracy``, ``bit_true_accuracy``,
        ``weights``, ``model_dir``, ``run_dir`` ...

    Raises
    ------
    TypeError
        For an unknown option.
    ValueError
        For a value the trainer refuses (train.fsdd.FsddError, train.features.FeatureError, ... are ValueErrors).
    """
    from train.datadir import find_data, search_text
    from train.fsdd import FsddError
    from train.trainer import build_parser
    from train.trainer import train as run

    found = find_data(data)
    if found is None:
        raise FsddError(f"no FSDD recordings found: give {search_text()}")
    parser = build_parser()
    argv = ["--data", str(found), "--out", str(Path(out))] + options_to_argv(parser, options)
    if not progress:
        argv.append("--quiet")
    return run(_parse(parser, argv))


def evaluate(model_dir, *, data=None, split="official", progress=True):
    """Bit-true accuracy of a saved model on the test side of an FSDD split (the golden model, equal to the RTL).

    Returns
    -------
    dict
        ``accuracy``, ``samples``, ``correct``, ``per_class_accuracy``, ``confusion``, ``errors`` (file names),
        ``model_hash``.
    """
    from train.datadir import find_data, search_text
    from train.evaluate import evaluate as run
    from train.fsdd import FsddError

    found = find_data(data)
    if found is None:
        raise FsddError(f"no FSDD recordings found: give {search_text()}")
    return run(model_dir, found, split, progress=progress)
