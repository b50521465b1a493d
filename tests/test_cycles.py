"""hw.cycles: the conv timeline against hw.conv's own schedule, the dense schedule, the lower bound, and the
prediction against the RTL cycle counter of the whole Network."""

import numpy as np
import pytest

from golden.network import run
from golden.randmodel import random_inputs, random_model
from hw.conv import conv_schedule, timeline
from hw.cycles import cycles, dense_cycles, lower_bound, predict
from hw.plan import plan

from test_hw_network import check


@pytest.mark.parametrize("seed,params", [(1, {}), (2, {"conv1": {"lanes": 2, "word_bits": 5}}),
                                         (3, {"conv1": {"word_bits": 3, "spike_logic": "pipeline"}})])
def test_conv_markers_follow_conv_schedule(seed, params):
    model = random_model(seed, input_shape=(2, 6, 7), out_channels=3, time_steps=3)
    geom = plan(model, params=params).layers[0]
    rng = np.random.default_rng(seed)
    spikes = rng.random((4, model.time_steps, geom.neurons)) < rng.uniform(0, 1, size=(4, 1, 1))
    got = timeline(geom, None, None, spikes)["markers"]
    for n in range(len(spikes)):
        s = conv_schedule(geom, spikes[n])
        times = s["load"] + s["compute"] - 1 + np.cumsum(s["gaps"])
        # the markers are the last transfer of each step: T of them, one after each step's spikes
        counts = spikes[n].sum(axis=1)
        ends = np.cumsum(counts + 1) - 1
        assert got[n].tolist() == times[ends].tolist()


def test_dense_schedule_is_the_all_active_timeline():
    model = random_model(5, input_shape=(1, 6, 8), time_steps=3, hidden=[5], pool=(2, 2))
    p = plan(model)
    x = random_inputs(model, 6, np.random.default_rng(5))
    zero_skip = predict(model, x)
    dense = dense_cycles(p, samples=2)
    assert dense.total[0] == dense.total[1]
    assert np.all(dense.total[0] >= zero_skip.total)
    # A network where every neuron spikes at every step takes exactly the dense schedule's cycles.
    shapes = model.shapes
    ones = {layer.name: np.ones((1, model.time_steps, int(np.prod(out))), dtype=bool)
            for layer, (_, out) in zip(model.layers, shapes)}
    assert cycles(p, ones).total[0] == dense.total[0]


def test_report_per_layer():
    model = random_model(6, input_shape=(1, 6, 8), time_steps=2, hidden=[4], pool=(1, 2))
    p = plan(model)
    x = random_inputs(model, 3, np.random.default_rng(6))
    golden = run(model, x)
    report = cycles(p, golden.spikes)
    assert set(report.layers) == {layer.name for layer in model.layers}
    assert np.all(report.layers["out"]["finish"] + 1 == report.total)
    g = p.layer("fc1").groups
    events = golden.spikes["pool1"].sum(axis=(1, 2))
    assert report.layers["fc1"]["busy"].tolist() == (events * g + model.time_steps * (4 + 2)).tolist()


def test_lower_bound_counts_operations_over_units():
    model = random_model(7, input_shape=(1, 5, 6), time_steps=2, hidden=[6], pool=False, kernel=(3, 3))
    p = plan(model, params={"fc1": {"lanes": 3}, "out": {"lanes": 1}})
    x = random_inputs(model, 2, np.random.default_rng(7))
    golden = run(model, x)
    conv, fc1, out = model.layers
    ops = golden.ops
    expected = np.maximum(np.maximum(-(-ops["conv1"]["event_ops"] // 9), ops["conv1"]["neuron_updates"] // 2), 30)
    expected = expected + -(-ops["fc1"]["event_ops"] // 3) + ops["fc1"]["neuron_updates"]
    expected = expected + ops["out"]["event_ops"] + ops["out"]["neuron_updates"]
    assert lower_bound(p, golden).tolist() == expected.tolist()


def test_spikes_must_match_the_plan():
    a = random_model(8, input_shape=(1, 4, 4), hidden=[3])
    b = random_model(9, input_shape=(1, 4, 4), hidden=[3, 3])
    spikes = dict(run(b, random_inputs(b, 1, np.random.default_rng(0))).spikes)
    del spikes["fc2"]
    with pytest.raises(ValueError, match="^spikes of layer fc2 missing"):
        cycles(plan(b), spikes)
    with pytest.raises(ValueError, match=r"^spikes of layer conv1 must have shape \(N, 3, 96\), not \(1, 5, 16\)"):
        cycles(plan(b), run(a, random_inputs(a, 1, np.random.default_rng(0))).spikes)


@pytest.mark.parametrize("seed", [31, 32])
def test_prediction_equals_rtl_counter_back_to_back(seed):
    model = random_model(seed, input_shape=(1, 4, 8), time_steps=2, hidden=[5])
    x = random_inputs(model, 5, np.random.default_rng(seed))
    check(model, x, seed=seed, stall=0.6, debug=False)
