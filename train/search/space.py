"""The search space of :mod:`train.search`: what it varies, read from a TOML file, and how a point becomes the
trainer's options.

A space file holds one key per varied quantity; the value says how it varies::

    channels = [2, 4, 6, 8]             # a list: one of these
    threshold = {low = 0.5, high = 2.0} # a table: a range (integers when both ends are; log = true: log scale)
    qat_epochs = 3                      # a single value: fixed

The keys (:data:`KEYS`) are the trainer's options (``python -m train --help``):

- neuron: ``leak_shift`` (k, beta = 1 - 2^-k), ``threshold``, ``reset`` (``"subtract"`` or ``"zero"``), ``time_steps``;
- layer stack: either ``layers`` (whole stacks in the trainer's text form, ``"c4k3,p2x4,d28"``) or its parts
  ``channels`` and ``kernel`` (the first conv2d), ``pool`` (``"HxW"``) and ``hidden`` (dense sizes, ``"28"`` or
  ``"32,16"``), which make the stack ``c{channels}k{kernel},p{pool},d{hidden}...``;
- recipe: ``epochs`` (float), ``qat_epochs``, ``shift`` (the augmentation: random time shift in frames), ``lr``.

A key left out takes :data:`DEFAULT_SPACE`'s entry (stack parts only when ``layers`` is not given). The default space
stays within what the hardware generator builds today: one convolution on the input map, an OR-pool, dense layers.
"""

from __future__ import annotations

import math
import tomllib

__all__ = ["KEYS", "DEFAULT_SPACE", "BASELINE", "SpaceError", "Space", "load_space", "stack_of", "trainer_argv"]


class SpaceError(ValueError):
    """A search space file or entry that cannot be used."""


#: Every key a space may hold, with its trainer option (None: part of ``--layers``) and the Python type of a value.
KEYS = {
    "leak_shift": ("--leak-shift", int), "threshold": ("--threshold", float), "reset": ("--reset", str),
    "time_steps": ("--time-steps", int), "layers": ("--layers", str), "channels": (None, int),
    "kernel": (None, int), "pool": (None, str), "hidden": (None, str), "epochs": ("--epochs", int),
    "qat_epochs": ("--qat-epochs", int), "shift": ("--shift", int), "lr": ("--lr", float),
}
_STACK_PARTS = ("channels", "kernel", "pool", "hidden")

#: The space searched when no ``--space`` is given (24 trials took 29 minutes on a shared 2-core machine, README).
DEFAULT_SPACE = {
    "channels": [2, 3, 4, 6],
    "kernel": 3,  # a 5x5 first convolution alone takes about 3,400 logic cells: none fits the iCE40UP5K's 5,280
    "pool": ["2x4", "4x4", "2x8", "4x8"],
    "hidden": ["16", "28", "40", "28,16"],
    "time_steps": [2, 3, 4, 6],
    "leak_shift": [2, 3, 4],
    "threshold": {"low": 0.5, "high": 2.0},
    "reset": ["subtract", "zero"],
    "shift": [0, 2, 4, 6],
    "epochs": [24, 32],
    "qat_epochs": 4,
}

#: The shipped default network and its neuron and augmentation options (``python -m train`` without options): the
#: point every search measures first, at the space's largest epoch counts, to compare the others with.
BASELINE = {"channels": 4, "kernel": 3, "pool": "2x4", "hidden": "28", "time_steps": 4, "leak_shift": 3,
            "threshold": 1.0, "reset": "subtract", "shift": 4}


def _entry(key, value):
    """A checked entry: ``("choice", [values])``, ``("range", low, high, log)`` or ``("fixed", value)``."""
    kind = KEYS[key][1]

    def check(v):
        ok = isinstance(v, kind) and not isinstance(v, bool) or (kind is float and isinstance(v, int)
                                                                 and not isinstance(v, bool))
        if not ok:
            raise SpaceError(f"space key {key!r}: values must be of type {kind.__name__}, not {v!r}")
        return kind(v)
    if isinstance(value, list):
        if not value:
            raise SpaceError(f"space key {key!r}: a list of choices must not be empty")
        values = [check(v) for v in value]
        if len(set(values)) != len(values):
            raise SpaceError(f"space key {key!r}: choices repeat ({value!r})")
        return ("choice", values)
    if isinstance(value, dict):
        if kind is str or set(value) - {"low", "high", "log"} or not {"low", "high"} <= set(value):
            raise SpaceError(f"space key {key!r}: a range is {{low = A, high = B[, log = true]}} of numbers, "
                             f"not {value!r}")
        low, high = check(value["low"]), check(value["high"])
        log = bool(value.get("log", False))
        if not low < high or (log and low <= 0):
            raise SpaceError(f"space key {key!r}: range needs low < high (and low > 0 with log), not {value!r}")
        return ("range", low, high, log)
    return ("fixed", check(value))


class Space:
    """A checked search space.

    Members
    -------
    entries : dict of str to tuple
        Per key, ``("choice", values)``, ``("range", low, high, log)`` or ``("fixed", value)``.
    """

    def __init__(self, entries):
        if not isinstance(entries, dict):
            raise SpaceError(f"a search space is a table of keys, not {entries!r}")
        unknown = sorted(set(entries) - set(KEYS))
        if unknown:
            raise SpaceError(f"unknown space keys {unknown} (known: {', '.join(KEYS)})")
        merged = dict(entries)
        for key, value in DEFAULT_SPACE.items():
            if key not in merged and not (key in _STACK_PARTS and "layers" in entries):
                merged[key] = value
        if "layers" in merged and set(_STACK_PARTS) & set(entries):
            raise SpaceError(f"space keys 'layers' and {sorted(set(_STACK_PARTS) & set(entries))} both give the "
                             f"layer stack; use one")
        self.entries = {key: _entry(key, value) for key, value in merged.items()}
        for value in self._values("layers"):
            from train.arch import parse_layers
            try:
                parse_layers(value)
            except ValueError as error:
                raise SpaceError(f"space key 'layers': {error}") from None
        for value in self._values("pool"):
            if len(value.split("x")) != 2 or not all(p.isdigit() and int(p) > 0 for p in value.split("x")):
                raise SpaceError(f"space key 'pool': a window is 'HxW' such as '2x4', not {value!r}")
        for value in self._values("hidden"):
            if not all(p.strip().isdigit() and int(p) > 0 for p in value.split(",")):
                raise SpaceError(f"space key 'hidden': dense sizes are '28' or '32,16', not {value!r}")

    def _values(self, key):
        entry = self.entries.get(key)
        if entry is None:
            return []
        return entry[1] if entry[0] == "choice" else [entry[1]] if entry[0] == "fixed" else []

    def to_dict(self):
        """The space as it would be written in a TOML file (for the run record)."""
        out = {}
        for key, entry in self.entries.items():
            if entry[0] == "choice":
                out[key] = list(entry[1])
            elif entry[0] == "range":
                out[key] = {"low": entry[1], "high": entry[2], **({"log": True} if entry[3] else {})}
            else:
                out[key] = entry[1]
        return out

    @property
    def fixed(self):
        """The fixed keys and their values."""
        return {key: entry[1] for key, entry in self.entries.items() if entry[0] == "fixed"}

    def tune_space(self):
        """The varied keys as Ray Tune search-space domains."""
        from ray import tune
        out = {}
        for key, entry in self.entries.items():
            if entry[0] == "choice":
                out[key] = tune.choice(entry[1])
            elif entry[0] == "range":
                _, low, high, log = entry
                if isinstance(low, int) and KEYS[key][1] is int:
                    out[key] = tune.lograndint(low, high + 1) if log else tune.randint(low, high + 1)
                else:
                    out[key] = tune.loguniform(low, high) if log else tune.uniform(low, high)
        return out

    def contains(self, point):
        """Whether every varied key of the space can take the value ``point`` gives it."""
        for key, entry in self.entries.items():
            if key not in point:
                return False
            value = point[key]
            if entry[0] == "choice" and value not in entry[1]:
                return False
            if entry[0] == "range" and not entry[1] <= value <= entry[2]:
                return False
            if entry[0] == "fixed" and value != entry[1]:
                return False
        return True

    def baseline(self):
        """The shipped default (:data:`BASELINE`) as a point of this space at its largest epoch counts, or None when
        the space cannot express it (another stack form, a value outside a choice)."""
        point = dict(BASELINE)
        for key in ("epochs", "qat_epochs"):
            entry = self.entries[key]
            point[key] = max(entry[1]) if entry[0] == "choice" else entry[2] if entry[0] == "range" else entry[1]
        for key, entry in self.entries.items():
            if key not in point and entry[0] == "fixed":
                point[key] = entry[1]
        if "layers" in self.entries:
            return None
        point = {key: value for key, value in point.items() if key in self.entries}
        if not self.contains(point):
            return None
        return {key: value for key, value in point.items() if self.entries[key][0] != "fixed"}

    def max_epochs(self):
        """The largest ``epochs + qat_epochs`` a trial of this space can run."""
        total = 0
        for key in ("epochs", "qat_epochs"):
            entry = self.entries[key]
            total += max(entry[1]) if entry[0] == "choice" else entry[2] if entry[0] == "range" else entry[1]
        return total


def load_space(path=None):
    """The :class:`Space` of a TOML file, or the default space when ``path`` is None.

    Raises
    ------
    SpaceError
        When the file cannot be read or parsed, or an entry is not usable (the message names the key).
    """
    if path is None:
        return Space({})
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as error:
        raise SpaceError(f"--space {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise SpaceError(f"--space {path}: not valid TOML ({error})") from None
    return Space(data)


def stack_of(point):
    """The layer stack text of a point: its ``layers`` or the stack its parts make."""
    if "layers" in point:
        return point["layers"]
    hidden = ",".join(f"d{int(h)}" for h in str(point["hidden"]).split(","))
    return f"c{point['channels']}k{point['kernel']},p{point['pool']},{hidden}"


def trainer_argv(point):
    """The ``python -m train`` options of a point of the space (all keys given, fixed ones included)."""
    argv = ["--layers", stack_of(point)]
    for key, (option, _) in KEYS.items():
        if option is None or key == "layers" or key not in point:
            continue
        value = point[key]
        if isinstance(value, float) and not math.isfinite(value):
            raise SpaceError(f"space key {key!r}: {value!r} is not a finite number")
        argv += [option, str(value)]
    return argv
