"""The reference side of the testbench: expected transactions from the golden model, and an in-order checker.

:func:`expect` runs the bit-true golden model (:func:`golden.network.run`) and, where it is available, the cycle
model (``hw.cycles``) on a batch of input maps, and returns an :class:`Expectation`: per LIF layer, every spike
event ``(sample, step, neuron)``; per sample, the readout values, the class and the cycle count. It round-trips
through a ``.npz`` file (:meth:`Expectation.save` / :meth:`Expectation.load`), which is how the runner hands it to
the cocotb test module.

:class:`Checker` consumes what the DUT produced, as it arrives, and compares it with the expectation:

- spike events, per layer, in order of samples and time steps: the neurons of one ``(sample, step)`` may arrive in
  any order (parallel lanes), but each must be expected there and all must arrive before the next step's;
- the result of each sample, in order: class, every readout value and the cycle count.

Every difference becomes a :class:`Mismatch` naming the sample, the layer, the time step, the neuron, the expected
and the observed value; the first one is what a person reads first.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["Expectation", "Mismatch", "Checker", "expect", "debug_layers"]


def debug_layers(model) -> list[int]:
    """Indices in ``model.layers`` of the layers whose spikes the debug stream carries (the LIF layers)."""
    from hw.layouts import lif_layer_indices
    return list(lif_layer_indices(model))


@dataclass
class Expectation:
    """What the DUT must produce for a batch of samples.

    Members
    -------
    layers : list of int
        Indices (in ``model.layers``) of the layers of the debug stream.
    layer_names : list of str
        Their names, for messages.
    events : dict of int to ndarray (k, 3) int64
        Per layer index, the spike events ``(sample, step, neuron)`` sorted by sample, step, neuron.
    readout : ndarray (N, K) int64
        Readout values after the last time step.
    classes : ndarray (N,) int64
    cycles : ndarray (N,) int64
        Cycles per inference predicted by the cycle model; ``-1`` where no plan was given.
    """

    layers: list
    layer_names: list
    events: dict
    readout: np.ndarray
    classes: np.ndarray
    cycles: np.ndarray

    @property
    def samples(self) -> int:
        return int(self.readout.shape[0])

    @property
    def event_count(self) -> int:
        return int(sum(len(e) for e in self.events.values()))

    def save(self, path: Path | str) -> None:
        """Write to ``path`` (``.npz``), atomically."""
        path = Path(path)
        arrays = {"layers": np.asarray(self.layers, dtype=np.int64),
                  "layer_names": np.asarray(self.layer_names, dtype=str),
                  "readout": self.readout, "classes": self.classes, "cycles": self.cycles}
        for layer, events in self.events.items():
            arrays[f"events_{layer}"] = events
        tmp = path.with_name(path.name + f".tmp{os.getpid()}.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path | str) -> "Expectation":
        with np.load(path) as f:
            layers = [int(v) for v in f["layers"]]
            return cls(layers=layers, layer_names=[str(v) for v in f["layer_names"]],
                       events={layer: f[f"events_{layer}"] for layer in layers},
                       readout=f["readout"], classes=f["classes"], cycles=f["cycles"])


def expect(model, x, *, plan=None) -> Expectation:
    """Expected transactions of ``model`` on the input maps ``x`` (N, C, H, W).

    Parameters
    ----------
    model : golden.manifest.Model
    x : array of int
        Input maps in -128 ... 127.
    plan : hw.plan.Plan, optional
        The hardware plan; with it the cycle counts come from the cycle model (``hw.cycles``), without it
        they are left unchecked (``-1``).
    """
    from golden.network import run
    result = run(model, x)
    layers = debug_layers(model)
    events = {}
    for index in layers:
        train = result.spikes[model.layers[index].name]  # (N, T, n) bool
        sample, step, neuron = np.nonzero(train)  # row-major: sorted by sample, step, neuron
        events[index] = np.stack([sample, step, neuron], axis=1).astype(np.int64)
    n = result.readout.shape[0]
    if plan is None:
        cycles = np.full(n, -1, dtype=np.int64)
    else:
        from hw.cycles import cycles as cycle_model
        cycles = np.asarray(cycle_model(plan, result.spikes).total, dtype=np.int64).reshape(n)
    return Expectation(layers=layers, layer_names=[model.layers[i].name for i in layers], events=events,
                       readout=np.asarray(result.readout, dtype=np.int64),
                       classes=np.asarray(result.classes, dtype=np.int64), cycles=cycles)


@dataclass(frozen=True)
class Mismatch:
    """One difference between the DUT and the reference.

    Members
    -------
    kind : str
        ``"spike"`` (a spike event that is not expected there), ``"missing"`` (an expected spike that did not
        come), ``"class"``, ``"readout"``, ``"cycles"``, ``"result"`` (a result that should not exist) or
        ``"protocol"``.
    sample : int
        Index of the sample in the run (-1 when it cannot be told).
    layer : str or None
        Layer name.
    step : int or None
        Time step.
    neuron : int or None
        Flat neuron index (for a readout, the class index).
    expected, got : str
        The two values, as text.
    """

    kind: str
    sample: int
    layer: str | None = None
    step: int | None = None
    neuron: int | None = None
    expected: str = ""
    got: str = ""

    def __str__(self):
        where = [f"sample {self.sample}"]
        if self.layer is not None:
            where.append(f"layer {self.layer}")
        if self.step is not None:
            where.append(f"step {self.step}")
        if self.neuron is not None:
            where.append(("class " if self.kind == "readout" else "neuron ") + str(self.neuron))
        return f"{self.kind} mismatch at {', '.join(where)}: expected {self.expected}, got {self.got}"

    def as_dict(self) -> dict:
        return asdict(self) | {"text": str(self)}


@dataclass
class _LayerCursor:
    """Position of one layer's stream in its expected events."""
    name: str
    events: np.ndarray  # (k, 3) sample, step, neuron
    groups: list = field(default_factory=list)  # (start, end) row ranges of equal (sample, step)
    group: int = 0
    pending: set = field(default_factory=set)

    def __post_init__(self):
        if len(self.events):
            keys = self.events[:, 0] * (1 << 20) + self.events[:, 1]
            cuts = np.flatnonzero(np.diff(keys)) + 1
            starts = np.concatenate([[0], cuts])
            ends = np.concatenate([cuts, [len(self.events)]])
            self.groups = list(zip(starts.tolist(), ends.tolist()))
        self._load()

    def _load(self):
        if self.group < len(self.groups):
            start, end = self.groups[self.group]
            self.pending = set(self.events[start:end, 2].tolist())
        else:
            self.pending = set()

    @property
    def where(self):
        """(sample, step) of the group being consumed, or None at the end."""
        if self.group >= len(self.groups):
            return None
        row = self.events[self.groups[self.group][0]]
        return int(row[0]), int(row[1])

    def advance(self):
        self.group += 1
        self._load()


class Checker:
    """Compares the DUT's transactions with an :class:`Expectation`, as they arrive.

    Parameters
    ----------
    expectation : Expectation
    limit : int
        Keep at most this many mismatches (the count goes on).

    Members
    -------
    mismatches : list of Mismatch
    mismatch_count : int
    kinds : dict of str to int
        Mismatches per kind.
    events_compared : int
        Spike events received and compared.
    results : list of dict
        The results received: ``cls``, ``cycles``, ``readout``.
    """

    def __init__(self, expectation: Expectation, *, limit: int = 50):
        self.expectation = expectation
        self.limit = limit
        self.mismatches: list[Mismatch] = []
        self.mismatch_count = 0
        self.events_compared = 0
        self.results: list[dict] = []
        self.events_checked = True
        self.kinds: dict[str, int] = {}
        self._cursors = {layer: _LayerCursor(name, expectation.events[layer])
                         for layer, name in zip(expectation.layers, expectation.layer_names)}

    @property
    def first_mismatch(self) -> Mismatch | None:
        return self.mismatches[0] if self.mismatches else None

    @property
    def done(self) -> bool:
        """Whether every expected result has arrived."""
        return len(self.results) >= self.expectation.samples

    def _report(self, mismatch: Mismatch):
        self.mismatch_count += 1
        self.kinds[mismatch.kind] = self.kinds.get(mismatch.kind, 0) + 1
        if len(self.mismatches) < self.limit:
            self.mismatches.append(mismatch)

    def ignore_events(self):
        """Compare no spike events (a design built without the debug stream)."""
        self._cursors = {}
        self.events_checked = False

    def protocol(self, message: str, sample: int = -1):
        """Record a broken stream rule (from :class:`sim.streams.ProtocolError`) seen while ``sample`` ran."""
        self._report(Mismatch("protocol", sample, expected="the stream rules kept", got=message))

    def event(self, layer: int, step: int, neuron: int):
        """A spike event of the debug stream."""
        self.events_compared += 1
        cursor = self._cursors.get(layer)
        if cursor is None:
            self._report(Mismatch("spike", len(self.results), layer=f"#{layer}", step=step, neuron=neuron,
                                  expected=f"no events of layer index {layer} (debug layers: "
                                           f"{sorted(self._cursors)})", got="a spike"))
            return
        where = cursor.where
        if where is None:
            self._report(Mismatch("spike", -1, layer=cursor.name, step=step, neuron=neuron,
                                  expected="no more spikes in this layer", got="a spike"))
            return
        sample, expected_step = where
        if step == expected_step and neuron in cursor.pending:
            cursor.pending.discard(neuron)
            if not cursor.pending:
                cursor.advance()
            return
        if step == expected_step:
            self._report(Mismatch("spike", sample, layer=cursor.name, step=step, neuron=neuron,
                                  expected=f"spikes of neurons {_some(cursor.pending)}",
                                  got=f"a spike of neuron {neuron}"))
            return
        # A step ended early or late: the pending neurons are missing (or this spike is extra).
        self._report(Mismatch("missing", sample, layer=cursor.name, step=expected_step,
                              neuron=min(cursor.pending),
                              expected=f"spikes of neurons {_some(cursor.pending)} at step {expected_step}",
                              got=f"a spike of neuron {neuron} at step {step}"))
        # Resynchronize: skip to the next group with this step, where the spike may belong.
        while cursor.where is not None and cursor.where[1] != step:
            cursor.advance()
        if cursor.where is not None and neuron in cursor.pending:
            cursor.pending.discard(neuron)
            if not cursor.pending:
                cursor.advance()

    def result(self, cls: int, cycles: int, readout):
        """The result of the next sample."""
        exp = self.expectation
        sample = len(self.results)
        self.results.append({"cls": int(cls), "cycles": int(cycles), "readout": [int(v) for v in readout]})
        if sample >= exp.samples:
            self._report(Mismatch("result", sample, expected=f"{exp.samples} results", got="one more"))
            return
        for k, (e, g) in enumerate(zip(exp.readout[sample].tolist(), readout)):
            if int(e) != int(g):
                self._report(Mismatch("readout", sample, layer="readout", neuron=k, expected=str(e), got=str(g)))
        if int(exp.classes[sample]) != int(cls):
            self._report(Mismatch("class", sample, expected=str(int(exp.classes[sample])), got=str(int(cls))))
        expected_cycles = int(exp.cycles[sample])
        if expected_cycles >= 0 and expected_cycles != int(cycles):
            self._report(Mismatch("cycles", sample, expected=str(expected_cycles), got=str(int(cycles))))

    def finish(self):
        """End of the run: every expected event and result must have arrived."""
        for cursor in self._cursors.values():
            if cursor.where is not None:
                sample, step = cursor.where
                missing = len(cursor.pending) + sum(e - s for s, e in cursor.groups[cursor.group + 1:])
                self._report(Mismatch("missing", sample, layer=cursor.name, step=step,
                                      neuron=min(cursor.pending),
                                      expected=f"{missing} more spike(s), first neurons {_some(cursor.pending)}",
                                      got="end of the run"))
        if len(self.results) < self.expectation.samples:
            self._report(Mismatch("result", len(self.results), expected=f"{self.expectation.samples} results",
                                  got=f"{len(self.results)}"))

    def summary(self) -> dict:
        cycles = [r["cycles"] for r in self.results]
        return {
            "samples": self.expectation.samples,
            "results": len(self.results),
            "events_expected": self.expectation.event_count if self.events_checked else 0,
            "events_checked": self.events_checked,
            "events_compared": self.events_compared,
            "mismatches": self.mismatch_count,
            "mismatch_kinds": dict(self.kinds),
            "first_mismatch": str(self.first_mismatch) if self.first_mismatch else None,
            "mismatch_list": [m.as_dict() for m in self.mismatches],
            "cycles": cycles,
            "classes": [r["cls"] for r in self.results],
        }


def _some(neurons, count: int = 8) -> str:
    items = sorted(neurons)
    text = ", ".join(str(n) for n in items[:count])
    return "{" + text + (", ..." if len(items) > count else "") + "}"
