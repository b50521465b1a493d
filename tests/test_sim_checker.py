"""The reference side of the RTL testbench without a simulator: expectations, the in-order checker, pauses."""

import numpy as np
import pytest

from sim.checker import Checker, Expectation, expect
from sim.stimulus import EXTREMES, extreme_inputs, mixed, random_inputs, random_params
from sim.streams import Pauses


@pytest.fixture(scope="module")
def expectation(tiny_shipped):
    x = mixed(tiny_shipped, samples=6, seed=5).x
    from hw.plan import plan
    return expect(tiny_shipped, x, plan=plan(tiny_shipped))


def _feed_events(checker, expectation, rng=None):
    """All expected events, layer streams interleaved, neurons shuffled within each (sample, step)."""
    rng = rng or np.random.default_rng(0)
    streams = []
    for layer in expectation.layers:
        ev = expectation.events[layer].copy()
        keys = ev[:, 0] * 4096 + ev[:, 1]
        order = np.lexsort((rng.random(len(ev)), keys))
        streams.append([(layer, int(s), int(t), int(n)) for s, t, n in ev[order]])
    while any(streams):
        k = int(rng.integers(len(streams)))
        if streams[k]:
            layer, _, step, neuron = streams[k].pop(0)
            checker.event(layer, step, neuron)


def _feed_results(checker, expectation):
    for k in range(expectation.samples):
        checker.result(expectation.classes[k], expectation.cycles[k], expectation.readout[k].tolist())


def test_expectation_matches_golden(tiny_shipped, expectation):
    from golden.network import run
    x = mixed(tiny_shipped, samples=6, seed=5).x
    result = run(tiny_shipped, x)
    assert expectation.layer_names == ["conv1", "fc1"]
    for layer, name in zip(expectation.layers, expectation.layer_names):
        assert len(expectation.events[layer]) == int(result.spikes[name].sum())
    assert (expectation.readout == result.readout).all()
    assert (expectation.cycles > 0).all()


def test_expectation_round_trips(tmp_path, expectation):
    expectation.save(tmp_path / "e.npz")
    back = Expectation.load(tmp_path / "e.npz")
    assert back.layers == expectation.layers and back.layer_names == expectation.layer_names
    for layer in expectation.layers:
        assert (back.events[layer] == expectation.events[layer]).all()
    assert (back.cycles == expectation.cycles).all() and (back.readout == expectation.readout).all()


def test_correct_transactions_pass(expectation):
    checker = Checker(expectation)
    _feed_events(checker, expectation)
    _feed_results(checker, expectation)
    checker.finish()
    assert checker.mismatch_count == 0, checker.first_mismatch
    assert checker.events_compared == expectation.event_count > 0


def test_wrong_neuron_is_named(expectation):
    layer = expectation.layers[0]
    sample, step, neuron = (int(v) for v in expectation.events[layer][-1])
    checker = Checker(expectation)
    for s, t, n in expectation.events[layer][:-1]:
        checker.event(layer, int(t), int(n))
    wrong = neuron + 1 if neuron + 1 not in expectation.events[layer][-5:, 2] else neuron + 7
    checker.event(layer, step, wrong)
    first = checker.first_mismatch
    assert first.kind == "spike" and first.sample == sample and first.layer == "conv1"
    assert first.step == step and first.neuron == wrong and str(neuron) in first.expected
    assert f"sample {sample}, layer conv1, step {step}, neuron {wrong}" in str(first)


def test_missing_spikes_are_reported(expectation):
    layer = expectation.layers[1]
    checker = Checker(expectation)
    ev = expectation.events[layer]
    drop = len(ev) // 2
    for other in expectation.layers:
        for k, (s, t, n) in enumerate(expectation.events[other]):
            if other == layer and k == drop:
                continue
            checker.event(other, int(t), int(n))
    _feed_results(checker, expectation)
    checker.finish()
    assert checker.mismatch_count >= 1
    first = checker.first_mismatch
    assert first.kind == "missing" and first.layer == "fc1" and first.sample == int(ev[drop, 0])
    assert first.step == int(ev[drop, 1])


def test_wrong_readout_class_and_cycles(expectation):
    checker = Checker(expectation)
    _feed_events(checker, expectation)
    readout = expectation.readout[2].tolist()
    readout[1] += 1
    for k in range(expectation.samples):
        if k == 2:
            checker.result((int(expectation.classes[k]) + 1) % 4, int(expectation.cycles[k]) + 3, readout)
        else:
            checker.result(expectation.classes[k], expectation.cycles[k], expectation.readout[k].tolist())
    checker.finish()
    kinds = {(m.kind, m.sample) for m in checker.mismatches}
    assert kinds == {("readout", 2), ("class", 2), ("cycles", 2)}
    cyc = next(m for m in checker.mismatches if m.kind == "cycles")
    assert cyc.expected == str(int(expectation.cycles[2])) and cyc.got == str(int(expectation.cycles[2]) + 3)


def test_surplus_and_missing_results(expectation):
    checker = Checker(expectation)
    _feed_events(checker, expectation)
    _feed_results(checker, expectation)
    checker.result(0, 1, [0] * expectation.readout.shape[1])
    assert checker.first_mismatch.kind == "result"
    short = Checker(expectation)
    _feed_events(short, expectation)
    short.finish()
    assert short.first_mismatch.kind == "result" and short.first_mismatch.got == "0"


def test_pauses_are_a_function_of_the_cycle():
    a, b = Pauses(0.3, seed=7), Pauses(0.3, seed=7)
    cycles = [5, 99, 70000, 3, 5]
    assert [a(c) for c in cycles] == [b(c) for c in reversed(cycles)][::-1]
    share = sum(a(c) for c in range(20000)) / 20000
    assert 0.27 < share < 0.33
    assert not any(Pauses(0.0, seed=1)(c) for c in range(100))
    with pytest.raises(ValueError, match=r"pause probability must be in \[0, 1\), not 1.0"):
        Pauses(1.0, seed=0)


def test_extremes_and_random_inputs(tiny_shipped):
    ext = extreme_inputs(tiny_shipped)
    assert [n.split(":")[1] for n in ext.names] == list(EXTREMES)
    assert ext.x.dtype == np.int8 and ext.x.shape == (5, 1, 8, 12)
    assert (ext.x[1] == 127).all() and (ext.x[2] == -128).all() and not ext.x[0].any()
    flat = ext.x[3].reshape(-1)
    assert (flat[::2] == 127).all() and (flat[1::2] == -128).all()
    assert (ext.x[4] == -1 - ext.x[3]).all()
    r1, r2 = random_inputs(tiny_shipped, 3, seed=4), random_inputs(tiny_shipped, 3, seed=4)
    assert (r1.x == r2.x).all()
    run = mixed(tiny_shipped, samples=7, seed=1)
    assert len(run) == 7 and run.names[:5] == ext.names


def test_random_params_are_valid(tiny_shipped):
    from hw.plan import plan
    for seed in range(5):
        plan(tiny_shipped, params=random_params(tiny_shipped, seed))
