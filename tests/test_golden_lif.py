"""LIF and readout arithmetic against trajectories computed by hand from docs/arithmetic.md."""

import numpy as np
import pytest

from golden.manifest import LIF, Integrate
from golden.network import integrate_step, leak, lif_step, saturate


def trajectory(neuron, currents, v=0):
    vs, ss = [], []
    v = np.array([v])
    for i in currents:
        v, s = lif_step(v, np.array([i]), neuron)
        vs.append(int(v[0]))
        ss.append(bool(s[0]))
    return vs, ss


def test_leak_is_an_arithmetic_shift_rounding_up():
    # v - floor(v / 2^k)
    assert leak(np.array([6, 5, 11, 8, -5, -1, -8, 0]), 2).tolist() == [5, 4, 9, 6, -3, 0, -6, 0]
    assert leak(np.array([7, -7]), 0).tolist() == [0, 0]


def test_subtract_reset_is_delayed_one_step_and_threshold_is_not_leaked():
    n = LIF(leak_shift=2, threshold=10, reset="subtract", mem_bits=8)
    # t0: 0 + 6 = 6. t1: 6 - 1 + 6 = 11 > 10 spikes. t2: reset from 11: 11 - 2 + 6 - 10 = 5.
    # t3: 5 - 1 + 0 = 4. t4: 4 - 1 + 7 = 10: equal to the threshold, no spike.
    vs, ss = trajectory(n, [6, 6, 6, 0, 7])
    assert vs == [6, 11, 5, 4, 10]
    assert ss == [False, True, False, False, False]


def test_compare_is_strictly_greater():
    n = LIF(leak_shift=3, threshold=5, reset="subtract", mem_bits=8)
    assert trajectory(n, [5, 1]) == ([5, 6], [False, True])


def test_zero_reset_discards_the_old_membrane():
    n = LIF(leak_shift=2, threshold=10, reset="zero", mem_bits=8)
    # t0: 20 spikes. t1: reset -> 0 + 3 = 3. t2: 3 - 0 + 3 = 6 (3 >> 2 = 0).
    vs, ss = trajectory(n, [20, 3, 3])
    assert vs == [20, 3, 6]
    assert ss == [True, False, False]


def test_repeated_spiking_under_strong_input():
    n = LIF(leak_shift=1, threshold=4, reset="subtract", mem_bits=8)
    # t0: 9 spike. t1: 9 - 4 + 9 - 4 = 10 spike. t2: 10 - 5 + 9 - 4 = 10 spike.
    assert trajectory(n, [9, 9, 9]) == ([9, 10, 10], [True, True, True])


def test_negative_currents_and_floor_of_negative_membranes():
    n = LIF(leak_shift=2, threshold=10, reset="subtract", mem_bits=8)
    # t0: -5. t1: -5 - (-2) + (-3) = -6. t2: -6 - (-2) + 0 = -4. t3: -4 + 1 + 0 = -3
    vs, ss = trajectory(n, [-5, -3, 0, 0])
    assert vs == [-5, -6, -4, -3]
    assert not any(ss)


def test_saturation_at_both_bounds_of_the_membrane_width():
    n = LIF(leak_shift=2, threshold=10, reset="subtract", mem_bits=8)
    # t0: 100 + 100... build up: 100, then 100 - 25 + 100 - 10 = 165 -> 127 (saturated, spiking)
    vs, ss = trajectory(n, [100, 100, 100])
    assert vs == [100, 127, 127]  # 127 - 31 + 100 - 10 = 186 -> 127
    assert ss == [True, True, True]
    # The negative bound: -128 - (-32) - 100 = -196 holds at -128; then recovery: -128 - (-32) + 0 = -96,
    # and -96 - (-24) + 0 = -72.
    vs, ss = trajectory(n, [-300, -100, 0, 0])
    assert vs == [-128, -128, -96, -72]


def test_saturation_is_applied_once_to_the_exact_sum():
    # 120 - 30 + 20 - 10 = 100: the intermediate 140 exceeds 127, but only the final sum is saturated.
    n = LIF(leak_shift=2, threshold=10, reset="subtract", mem_bits=8)
    v, s = lif_step(np.array([120]), np.array([20]), n)
    assert v.tolist() == [100] and s.tolist() == [True]


def test_leak_shift_zero_keeps_no_memory():
    n = LIF(leak_shift=0, threshold=3, reset="subtract", mem_bits=6)
    # beta = 0: v = I - reset * theta.  t1: spike at t0 (5 > 3): 0 + 2 - 3 = -1.
    assert trajectory(n, [5, 2, 2]) == ([5, -1, 2], [True, False, False])


def test_readout_integrates_and_saturates():
    n = Integrate(mem_bits=6)  # -32 ... 31
    r = np.array([0])
    out = []
    for i in [10, 15, 10, -100, 3]:
        r = integrate_step(r, np.array([i]), n)
        out.append(int(r[0]))
    assert out == [10, 25, 31, -32, -29]


@pytest.mark.parametrize("bits,lo,hi", [(2, -2, 1), (8, -128, 127), (20, -524288, 524287)])
def test_saturate_bounds(bits, lo, hi):
    assert saturate(np.array([lo - 1, lo, 0, hi, hi + 1]), bits).tolist() == [lo, lo, 0, hi, hi]
