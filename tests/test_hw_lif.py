# amaranth: UnusedElaboratable=no
"""LIFUnit against golden.network.lif_step / integrate_step on every edge case of docs/arithmetic.md."""

import itertools

import numpy as np
import pytest
from amaranth.sim import Simulator

from golden.manifest import LIF, Integrate
from golden.network import integrate_step, lif_step
from hw.lif import LIFUnit


def _edge_values(bits, theta=None):
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    values = {low, low + 1, low // 2, -2, -1, 0, 1, 2, high // 2, high - 1, high}
    if theta is not None:
        values |= {theta - 1, theta, theta + 1, -theta, 2 * theta, theta // 2}
    return sorted(v for v in values if low <= v <= high)


def _run(unit, vectors):
    """Drive (v, current) pairs through ``unit``; return the (v_next, spike) pairs it produced."""
    got = []

    async def testbench(ctx):
        for v, current in vectors:
            ctx.set(unit.v, int(v))
            ctx.set(unit.current, int(current))
            if hasattr(unit, "fired"):
                ctx.set(unit.fired, int(v > unit.neuron.threshold))
            got.append((ctx.get(unit.v_next), ctx.get(unit.spike)))

    sim = Simulator(unit)
    sim.add_testbench(testbench)
    sim.run()
    return got


LIF_CASES = [
    # (mem_bits, acc_bits, leak_shift, threshold, reset)
    (3, 3, 0, 1, "subtract"),
    (4, 6, 1, 6, "zero"),
    (8, 10, 0, 5, "subtract"),
    (8, 10, 3, 100, "zero"),
    (8, 6, 7, 126, "subtract"),
    (12, 16, 2, 37, "subtract"),
    (20, 15, 3, 1000, "subtract"),
    (20, 24, 19, 1, "zero"),
    (32, 33, 5, (1 << 31) - 2, "subtract"),
]


@pytest.mark.parametrize("fired_input", [False, True])
@pytest.mark.parametrize("mem_bits,acc_bits,leak_shift,threshold,reset", LIF_CASES)
def test_lif_matches_golden(mem_bits, acc_bits, leak_shift, threshold, reset, fired_input):
    neuron = LIF(leak_shift=leak_shift, threshold=threshold, reset=reset, mem_bits=mem_bits)
    unit = LIFUnit(neuron, acc_bits, fired_input=fired_input)
    vs = _edge_values(mem_bits, threshold)
    currents = _edge_values(acc_bits, threshold)
    rng = np.random.default_rng(mem_bits * 1000 + acc_bits)
    vectors = list(itertools.product(vs, currents))
    a_lo, a_hi = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1
    m_lo, m_hi = -(1 << (mem_bits - 1)), (1 << (mem_bits - 1)) - 1
    vectors += [(int(rng.integers(m_lo, m_hi + 1)), int(rng.integers(a_lo, a_hi + 1))) for _ in range(200)]

    got = _run(unit, vectors)
    v = np.array([p[0] for p in vectors], dtype=np.int64)
    i = np.array([p[1] for p in vectors], dtype=np.int64)
    want_v, want_s = lif_step(v, i, neuron)
    for (vi, ii), (gv, gs), wv, ws in zip(vectors, got, want_v, want_s):
        assert (gv, gs) == (int(wv), int(ws)), f"v={vi} I={ii}: got ({gv}, {gs}), want ({int(wv)}, {int(ws)})"


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_lif_sequences(reset):
    """Membranes fed back over many steps (the delayed reset must come from the previous membrane)."""
    neuron = LIF(leak_shift=2, threshold=20, reset=reset, mem_bits=7)
    unit = LIFUnit(neuron, 8)
    rng = np.random.default_rng(7)
    currents = rng.integers(-128, 128, size=300)
    currents[::7] = 21  # threshold crossings just above theta
    currents[3::11] = 20
    got_v, got_s = [], []

    async def testbench(ctx):
        v = 0
        for current in currents:
            ctx.set(unit.v, v)
            ctx.set(unit.current, int(current))
            v = ctx.get(unit.v_next)
            got_v.append(v)
            got_s.append(ctx.get(unit.spike))

    sim = Simulator(unit)
    sim.add_testbench(testbench)
    sim.run()

    v = np.zeros(1, dtype=np.int64)
    for step, current in enumerate(currents):
        v, s = lif_step(v, [current], neuron)
        assert (got_v[step], got_s[step]) == (int(v[0]), int(s[0])), f"step {step}"
    assert 0 < sum(got_s) < len(currents)


def test_integrate_matches_golden():
    neuron = Integrate(mem_bits=9)
    unit = LIFUnit(neuron, 12)
    vectors = list(itertools.product(_edge_values(9), _edge_values(12)))
    got = _run(unit, vectors)
    v = np.array([p[0] for p in vectors], dtype=np.int64)
    i = np.array([p[1] for p in vectors], dtype=np.int64)
    want = integrate_step(v, i, neuron)
    assert [g[0] for g in got] == [int(w) for w in want]
    assert all(g[1] == 0 for g in got)


@pytest.mark.parametrize("neuron,acc_bits,message", [
    (LIF(leak_shift=0, threshold=1, reset="zero", mem_bits=2), 8,
     r"^neuron mem_bits must be at least 3 for a LIF neuron, not 2: the threshold must lie in 1 \.\.\. "
     r"2\*\*\(mem_bits-1\) - 2, which is empty below 3 bits"),
    (LIF(leak_shift=8, threshold=5, reset="subtract", mem_bits=8), 8, "leak_shift must be an integer from 0 to 7"),
    (LIF(leak_shift=1, threshold=127, reset="subtract", mem_bits=8), 8, "threshold must be an integer from 1 to 126"),
    (LIF(leak_shift=1, threshold=5, reset="hold", mem_bits=8), 8, "reset must be 'subtract' or 'zero'"),
    (LIF(leak_shift=1, threshold=5, reset="zero", mem_bits=40), 8, "mem_bits must be an integer from 2 to 32"),
    (LIF(leak_shift=1, threshold=5, reset="zero", mem_bits=8), 0, "acc_bits must be an integer from 2 to 64"),
])
def test_lif_refuses_bad_parameters(neuron, acc_bits, message):
    with pytest.raises(ValueError, match=message):
        LIFUnit(neuron, acc_bits)


def test_lif_refuses_other_objects():
    with pytest.raises(TypeError, match="golden.manifest.LIF or Integrate"):
        LIFUnit(object(), 8)
