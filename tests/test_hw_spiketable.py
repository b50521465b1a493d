"""The spike table against the golden LIF update, over every current, and its circuit in simulation."""

import numpy as np
import pytest
from amaranth.hdl import Module, Signal, signed
from amaranth.sim import Simulator

from golden.manifest import LIF, load
from golden.network import lif_step
from hw.spiketable import MAX_BREAKPOINTS, prefer_table, spike_table, table_spikes


def golden_trains(neuron, currents, steps):
    v = np.zeros_like(currents)
    train = np.zeros_like(currents)
    for t in range(steps):
        v, s = lif_step(v, currents, neuron)
        train |= s.astype(np.int64) << t
    return train


NEURONS = [
    (LIF(leak_shift=3, threshold=9527, reset="subtract", mem_bits=20), 17, 4),
    (LIF(leak_shift=1, threshold=20, reset="subtract", mem_bits=6), 12, 5),     # saturates at both bounds
    (LIF(leak_shift=0, threshold=7, reset="zero", mem_bits=8), 10, 6),         # no memory of the membrane
    (LIF(leak_shift=4, threshold=300, reset="zero", mem_bits=12), 14, 9),
]


@pytest.mark.parametrize("neuron,acc_bits,steps", NEURONS)
def test_table_is_the_golden_train_for_every_current(neuron, acc_bits, steps):
    table = spike_table(neuron, acc_bits, steps)
    currents = np.arange(-(1 << (acc_bits - 1)), 1 << (acc_bits - 1), dtype=np.int64)
    want = golden_trains(neuron, currents, steps)
    got = np.full_like(currents, table.base)
    for b, delta in table.breakpoints:
        got ^= np.where(currents >= b, delta, 0)
    assert np.array_equal(got, want)
    assert [b for b, _ in table.breakpoints] == sorted({b for b, _ in table.breakpoints})
    assert all(delta != 0 for _, delta in table.breakpoints)
    assert table.train(int(currents[-1])) == int(want[-1])


def test_default_model_conv1_prefers_the_table():
    layer = load("models/fsdd_scnn").layers[0]
    table = spike_table(layer.neuron, layer.acc_bits, 4)
    # ten changes of the 4-step train between 2,878 and 10,477; no spike at all below, all four above
    assert len(table.breakpoints) == 10 and table.base == 0 and table.train(10_477) == 0b1111
    assert table.breakpoints[0] == (2878, 0b1000) and table.train(2877) == 0
    assert prefer_table(layer.neuron, layer.acc_bits, 4)


def test_too_large_to_enumerate():
    neuron = LIF(leak_shift=2, threshold=100, reset="subtract", mem_bits=16)
    assert spike_table(neuron, 24, 4) is None and not prefer_table(neuron, 24, 4)


def test_bounded_and_cheap():
    """A table is refused past its bound of breakpoints, and the enumeration stops there (issue 11: T = 50 with a
    32-bit membrane made ~350 chained XORs; T = 1 over 25-bit currents took 20 s and 1.4 GB to decide)."""
    import time

    neuron = LIF(leak_shift=5, threshold=2000, reset="subtract", mem_bits=32)
    start = time.perf_counter()
    assert spike_table(neuron, 16, 50) is None            # more than MAX_BREAKPOINTS
    assert spike_table(neuron, 16, 50, limit=20) is None and not prefer_table(neuron, 16, 50)
    assert spike_table(neuron, 25, 1) is None and not prefer_table(neuron, 25, 1)
    assert time.perf_counter() - start < 5
    few = LIF(leak_shift=0, threshold=5000, reset="subtract", mem_bits=32)
    assert 0 < len(spike_table(few, 16, 50).breakpoints) <= MAX_BREAKPOINTS


def test_circuit():
    """``table_spikes`` in simulation, at every breakpoint and on both sides of it."""
    neuron, acc_bits, steps = NEURONS[1]
    table = spike_table(neuron, acc_bits, steps)
    current = Signal(signed(acc_bits))
    train = Signal(steps)
    m = Module()
    m.d.comb += train.eq(table_spikes(table, current))
    probes = sorted({-(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1, 0}
                    | {b + d for b, _ in table.breakpoints for d in (-1, 0, 1)
                       if -(1 << (acc_bits - 1)) <= b + d < 1 << (acc_bits - 1)})
    want = golden_trains(neuron, np.array(probes, dtype=np.int64), steps)

    async def testbench(ctx):
        for value, expected in zip(probes, want):
            ctx.set(current, value)
            assert ctx.get(train) == expected, f"current {value}"

    sim = Simulator(m)
    sim.add_testbench(testbench)
    sim.run()
