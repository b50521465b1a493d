"""Replay test vectors on a board and check every reply bit for bit: ``python -m boards.host --verify``.

Examples::

    python -m boards.host --port /dev/ttyUSB1 --verify --data DIR        # the 300 FSDD test maps
    python -m boards.host --port /dev/pts/7 --verify maps.npy            # given INT8 input maps

The vectors are the FSDD official test split made into INT8 maps by the model's own front-end
(``train.features``, from the recordings in ``--data``), or ``.npy`` files of input maps (one map ``(C, H, W)`` or a
batch ``(N, C, H, W)``). For each one the board's class, every readout value and its cycle count must equal the
golden model's and the cycle model's (through :func:`sim.checker.expect`, the same reference as the RTL
simulation). :func:`replay` prints one line per difference and a summary (samples, mismatches, inferences per
second over the link); the command's exit status is 1 on any difference.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["ReplayReport", "load_vectors", "replay", "run_verify"]


@dataclass
class ReplayReport:
    """What a replay compared.

    Members
    -------
    samples : int
    mismatches : list of str
        One line per difference: the sample, the field, expected and got.
    seconds : float
        Wall time of the requests (identify excluded).
    cycle_model : bool
        Whether the cycle counts were compared.
    """

    samples: int = 0
    mismatches: list = field(default_factory=list)
    seconds: float = 0.0
    cycle_model: bool = True

    @property
    def inferences_per_second(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        return (f"samples {self.samples:,}; mismatches {len(self.mismatches):,} (class, readout values"
                f"{', cycle count' if self.cycle_model else ''}); {self.inferences_per_second:.2f} inferences/s "
                f"over the link")


def load_vectors(model, *, data=None, files=(), progress=False):
    """The input maps to replay and a name for each: ``.npy`` files, else the FSDD test split from ``data``.

    Raises
    ------
    ValueError
        When neither is given, or a file's maps do not have the model's input shape.
    """
    shape = tuple(int(d) for d in model.input_shape)
    if files:
        maps, names = [], []
        for path in files:
            x = np.load(path)
            if x.shape == shape:
                x = x[None]
            if x.shape[1:] != shape:
                raise ValueError(f"{path}: input maps of shape {x.shape[1:]}, model {model.name} takes {shape}")
            if x.min(initial=0) < -128 or x.max(initial=0) > 127:
                raise ValueError(f"{path}: input values must be INT8 (-128 ... 127)")
            maps.append(x.astype(np.int8))
            names += [f"{Path(path).name}[{k}]" for k in range(len(x))]
        return np.concatenate(maps), names
    if data is None:
        raise ValueError("give --data DIR (the FSDD recordings) or .npy files of input maps")
    from sim.stimulus import fsdd_test_inputs
    stimulus = fsdd_test_inputs(model, data, progress=progress)
    return stimulus.x, stimulus.names


def replay(client, model, x, names, *, out=sys.stdout, check_cycles=True) -> ReplayReport:
    """Send every map of ``x`` through ``client`` (a :class:`boards.host.BoardClient`) and compare the replies.

    Raises
    ------
    boards.host.BoardError
        When the board stops answering.
    """
    from sim.checker import expect
    from sim.verify import hardware_plan

    expectation = expect(model, x, plan=hardware_plan(model) if check_cycles else None)
    report = ReplayReport(cycle_model=check_cycles)
    started = time.perf_counter()
    for k, name in enumerate(names):
        result = client.infer(x[k])
        report.samples += 1
        found = []
        if result.cls != int(expectation.classes[k]):
            found.append(f"class: expected {int(expectation.classes[k])}, got {result.cls}")
        for j, (e, g) in enumerate(zip(expectation.readout[k].tolist(), result.readout)):
            if int(e) != int(g):
                found.append(f"readout {j}: expected {int(e)}, got {int(g)}")
        if len(result.readout) != expectation.readout.shape[1]:
            found.append(f"readout: expected {expectation.readout.shape[1]} values, got {len(result.readout)}")
        if check_cycles and result.cycles != int(expectation.cycles[k]):
            found.append(f"cycles: expected {int(expectation.cycles[k])}, got {result.cycles}")
        for line in found:
            text = f"sample {k} ({name}): {line}"
            report.mismatches.append(text)
            print(f"mismatch: {text}", file=out)
    report.seconds = time.perf_counter() - started
    print(report.summary(), file=out)
    return report


def run_verify(client, model, args) -> int:
    """``python -m boards.host --verify``: the vectors of ``args`` (``data``, ``wav`` as ``.npy`` files) through
    ``client``; exit status 0 when every reply equals the reference, 1 otherwise, 2 for bad vectors."""
    from .host import BoardError

    try:
        x, names = load_vectors(model, data=args.data, files=args.wav, progress=sys.stderr.isatty())
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        report = replay(client, model, x, names)
    except BoardError as error:
        print(f"error: the board stopped answering: {error}", file=sys.stderr)
        return 1
    return 0 if not report.mismatches else 1
