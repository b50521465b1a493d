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

__all__ = ["ReplayReport", "Vectors", "load_vectors", "replay"]


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


@dataclass
class Vectors:
    """Input maps to replay: ``x`` (N, C, H, W) int8, a name per map, and where they come from."""
    x: np.ndarray
    names: list
    source: str


def load_vectors(model, *, data=None, files=(), progress=False):
    """The input maps to replay: ``.npy`` files, else the FSDD test split from ``data``, else the test vectors the
    model carries (``golden.vectors``).

    Raises
    ------
    ValueError
        When none is there, or a file's maps do not have the model's input shape or are not INT8.
    """
    shape = tuple(int(d) for d in model.input_shape)
    if files:
        maps, names = [], []
        for path in files:
            try:
                x = np.load(path, allow_pickle=False)
            except (OSError, ValueError, EOFError) as error:
                raise ValueError(f"{path}: not a .npy file of input maps ({error})") from None
            if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.integer):
                raise ValueError(f"{path}: input maps must be an integer array, not {getattr(x, 'dtype', x)!r}")
            if x.shape == shape:
                x = x[None]
            if x.shape[1:] != shape:
                raise ValueError(f"{path}: input maps of shape {x.shape[1:]}, model {model.name} takes {shape}")
            if x.min(initial=0) < -128 or x.max(initial=0) > 127:
                raise ValueError(f"{path}: input values must be INT8 (-128 ... 127)")
            maps.append(x.astype(np.int8))
            names += [f"{Path(path).name}[{k}]" for k in range(len(x))]
        return Vectors(np.concatenate(maps), names, f"input maps from {len(files)} .npy file(s)")
    if data is not None:
        from sim.stimulus import fsdd_test_inputs
        stimulus = fsdd_test_inputs(model, data, progress=progress)
        return Vectors(stimulus.x, stimulus.names, f"FSDD test recordings from {data}")
    if model.test_vectors is not None:
        vectors = model.test_vectors
        return Vectors(vectors.x, list(vectors.names), f"test vectors of model {model.name} ({vectors.source})")
    raise ValueError(f"model {model.name} carries no test vectors: give --data DIR (the FSDD recordings) or .npy "
                     f"files of input maps")


def replay(client, model, x, names, *, out=sys.stdout, check_cycles=True, params=None) -> ReplayReport:
    """Send every map of ``x`` through ``client`` (a :class:`boards.host.BoardClient`) and compare the replies
    (the cycle counts with the cycle model of the plan made with ``params``, the build's).

    Raises
    ------
    boards.host.BoardError
        When the board stops answering.
    """
    from sim.checker import expect
    from sim.verify import hardware_plan

    expectation = expect(model, x, plan=hardware_plan(model, params) if check_cycles else None)
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
