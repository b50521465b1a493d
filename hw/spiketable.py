"""The spike train of a LIF neuron under a constant current, as a table of current thresholds.

With direct encoding the first layer sees the same input map at every step, so a conv neuron's current ``I`` is the
same at all ``T`` steps and its whole spike train (``T`` bits) is a function of ``I`` alone. That function is
piecewise constant: it changes only at a few values of ``I`` (10 for the default model's conv1, ``T = 4``). This
module finds those *breakpoints* by running the golden LIF update (``golden.network.lif_step``, the specification)
over every current the layer's accumulator can hold, so the table is exact by construction, not an approximation.

In hardware the train is then ``base ^ XOR_k ([I >= b_k] ? delta_k : 0)``: one comparison with a constant per
breakpoint and their XOR (:func:`hw.trees.chained`), in place of ``T`` chained LIF updates (for the default model 10 comparators
of 17 bits instead of four 20-bit LIF stages and their pipeline registers).

The table is bounded, and so is the cost of deciding on it: :func:`spike_table` enumerates at most
:data:`MAX_WORK` neuron updates, in slices, and stops as soon as it has found more breakpoints than asked for
(at most :data:`MAX_BREAKPOINTS`), returning ``None``; the conv plan then uses the pipeline of LIF units.
:func:`prefer_table` asks only for as many breakpoints as would make the table the smaller circuit.
"""

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from golden.network import lif_step

__all__ = ["SpikeTable", "spike_table", "prefer_table", "table_spikes", "MAX_WORK", "MAX_BREAKPOINTS"]

#: Largest ``T * 2**acc_bits`` that :func:`spike_table` enumerates (well under a second of NumPy).
MAX_WORK = 1 << 22
#: Most breakpoints of a table (comparators in hardware).
MAX_BREAKPOINTS = 256
#: Currents per slice of the enumeration (bounds its memory).
_SLICE = 1 << 16


@dataclass(frozen=True)
class SpikeTable:
    """The spike train of ``T`` steps as a function of a constant current.

    Attributes
    ----------
    time_steps : int
    acc_bits : int
        Width of the signed current.
    base : int
        The train (bit ``t`` = spike at step ``t``) of the lowest current, ``-2**(acc_bits-1)``.
    breakpoints : tuple of (int, int)
        ``(b, delta)`` in ascending ``b``: from current ``b`` on, the train is the previous one XOR ``delta``.
    """
    time_steps: int
    acc_bits: int
    base: int
    breakpoints: tuple

    def train(self, current):
        """The train of an integer current, read from the table (a reference for checks)."""
        bits = self.base
        for b, delta in self.breakpoints:
            if current >= b:
                bits ^= delta
        return bits


def _trains(neuron, current, time_steps):
    v = np.zeros_like(current)
    train = np.zeros_like(current)
    for t in range(time_steps):
        v, spikes = lif_step(v, current, neuron)
        train |= spikes.astype(np.int64) << t
    return train


@lru_cache(maxsize=64)
def _table(neuron, acc_bits, time_steps, limit):
    low, high = -(1 << (acc_bits - 1)), 1 << (acc_bits - 1)
    base = previous = None
    points = []
    for start in range(low, high, _SLICE):
        current = np.arange(start, min(start + _SLICE, high), dtype=np.int64)
        train = _trains(neuron, current, time_steps)
        if base is None:
            base = previous = int(train[0])
        joined = np.concatenate([[previous], train])
        change = np.flatnonzero(joined[1:] != joined[:-1])
        points += [(int(current[k]), int(joined[k + 1] ^ joined[k])) for k in change]
        if len(points) > limit:
            return None
        previous = int(train[-1])
    return SpikeTable(time_steps, acc_bits, base, tuple(points))


def spike_table(neuron, acc_bits, time_steps, *, limit=MAX_BREAKPOINTS):
    """The :class:`SpikeTable` of a LIF neuron, or ``None`` if it is too costly to find or to build.

    Parameters
    ----------
    neuron : golden.manifest.LIF
    acc_bits : int
        Width of the signed current (every value of that width is covered).
    time_steps : int
    limit : int
        Most breakpoints accepted (at most :data:`MAX_BREAKPOINTS`).

    Returns
    -------
    SpikeTable or None
        ``None`` when ``time_steps * 2**acc_bits`` exceeds :data:`MAX_WORK` or the table has more than ``limit``
        breakpoints.
    """
    if time_steps << acc_bits > MAX_WORK:
        return None
    return _table(neuron, acc_bits, time_steps, min(limit, MAX_BREAKPOINTS))


def prefer_table(neuron, acc_bits, time_steps):
    """Whether the table is the smaller circuit: its comparators (``acc_bits`` cells each) against ``T`` LIF stages
    (about ``4 * mem_bits`` cells each, their pipeline registers included). Costs one bounded enumeration."""
    limit = time_steps * 4 * neuron.mem_bits // acc_bits
    return spike_table(neuron, acc_bits, time_steps, limit=limit) is not None


def table_spikes(table, current):
    """The train of ``current`` (a signed Amaranth value of ``table.acc_bits`` bits) as a ``T``-bit value.

    A comparison with a constant per breakpoint, the terms joined by XORs in :func:`hw.trees.chained` form (so
    that elaboration does not nest as deep as the breakpoints are many); bit ``t`` is the spike of step ``t``.
    """
    import operator

    from amaranth.hdl import Const

    from hw.trees import chained

    steps = table.time_steps
    terms = [Const(table.base, steps)]
    terms += [(current >= b).replicate(steps) & Const(delta, steps) for b, delta in table.breakpoints]
    return chained(terms, operator.xor)
