"""The spike train of a LIF neuron under a constant current, as a table of current thresholds.

With direct encoding the first layer sees the same input map at every step, so a conv neuron's current ``I`` is the
same at all ``T`` steps and its whole spike train (``T`` bits) is a function of ``I`` alone. That function is
piecewise constant: it changes only at a few values of ``I`` (10 for the default model's conv1, ``T = 4``). This
module finds those *breakpoints* by running the golden LIF update (``golden.network.lif_step``, the specification)
over every current the layer's accumulator can hold, so the table is exact by construction, not an approximation.

In hardware the train is then ``base ^ XOR_k ([I >= b_k] ? delta_k : 0)``: one comparison with a constant per
breakpoint and an XOR per spike bit, in place of ``T`` chained LIF updates (for the default model 10 comparators of
17 bits instead of four 20-bit LIF stages and their pipeline registers).

:func:`spike_table` returns ``None`` where enumerating the accumulator range would take too long
(``T * 2**acc_bits`` above :data:`MAX_WORK`); :func:`prefer_table` says whether the table is the smaller circuit.
"""

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from amaranth.hdl import Const

from golden.network import lif_step

__all__ = ["SpikeTable", "spike_table", "prefer_table", "table_spikes", "MAX_WORK"]

#: Largest ``T * 2**acc_bits`` that :func:`spike_table` enumerates (a fraction of a second of NumPy).
MAX_WORK = 1 << 25


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


@lru_cache(maxsize=64)
def _table(neuron, acc_bits, time_steps):
    current = np.arange(-(1 << (acc_bits - 1)), 1 << (acc_bits - 1), dtype=np.int64)
    v = np.zeros_like(current)
    train = np.zeros_like(current)
    for t in range(time_steps):
        v, spikes = lif_step(v, current, neuron)
        train |= spikes.astype(np.int64) << t
    change = np.flatnonzero(train[1:] != train[:-1]) + 1
    points = tuple((int(current[k]), int(train[k] ^ train[k - 1])) for k in change)
    return SpikeTable(time_steps, acc_bits, int(train[0]), points)


def spike_table(neuron, acc_bits, time_steps):
    """The :class:`SpikeTable` of a LIF neuron, or ``None`` if its accumulator range is too large to enumerate.

    Parameters
    ----------
    neuron : golden.manifest.LIF
    acc_bits : int
        Width of the signed current (every value of that width is covered).
    time_steps : int

    Returns
    -------
    SpikeTable or None
    """
    if time_steps << acc_bits > MAX_WORK:
        return None
    return _table(neuron, acc_bits, time_steps)


def prefer_table(table, neuron):
    """Whether the table is the smaller circuit: its comparators (``acc_bits`` cells each) against ``T`` LIF
    stages (about ``4 * mem_bits`` cells each, their pipeline registers included)."""
    if table is None:
        return False
    return len(table.breakpoints) * table.acc_bits <= table.time_steps * 4 * neuron.mem_bits


def table_spikes(table, current):
    """The train of ``current`` (a signed Amaranth value of ``table.acc_bits`` bits) as a ``T``-bit value.

    A comparison with a constant and an XOR per breakpoint; bit ``t`` is the spike of step ``t``.
    """
    bits = Const(table.base, table.time_steps)
    for b, delta in table.breakpoints:
        bits = bits ^ ((current >= b).replicate(table.time_steps) & Const(delta, table.time_steps))
    return bits
