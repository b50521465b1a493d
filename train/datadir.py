"""Where the FSDD recordings are: the one rule every command (and the test suite) follows.

1. the ``--data DIR`` argument, when given;
2. else the environment variable ``SPIKESMITH_DATA``;
3. else the place ``python -m train.fsdd download`` writes to by default: ``$XDG_DATA_HOME/spikesmith/fsdd``
   (``~/.local/share/spikesmith/fsdd`` when ``XDG_DATA_HOME`` is not set), whose ``recordings`` folder holds the WAVs.

Nothing here depends on where this repository is checked out.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ENV", "download_dir", "find_data", "search_text"]

#: Environment variable naming the FSDD recordings directory.
ENV = "SPIKESMITH_DATA"


def download_dir() -> Path:
    """The default target of ``python -m train.fsdd download``."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "spikesmith" / "fsdd"


def find_data(data=None):
    """The FSDD directory to use, or ``None`` when none is given and none is installed.

    Parameters
    ----------
    data : str or Path, optional
        The user's ``--data``; returned as it is (a missing directory is reported where it is read, naming it).

    Returns
    -------
    Path or None
        ``data``, else ``$SPIKESMITH_DATA``, else the default download location if it holds recordings.
    """
    if data:
        return Path(data)
    env = os.environ.get(ENV)
    if env:
        return Path(env)
    default = download_dir() / "recordings"
    return default if default.is_dir() else None


def search_text():
    """Where :func:`find_data` looks, for messages that say why no recordings were used."""
    return (f"--data DIR, ${ENV}, or {download_dir()} (written by `python -m train.fsdd download`)")
