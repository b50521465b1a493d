# amaranth: UnusedElaboratable=no
"""DenseLayer (zero-skipping accumulator + LIF sweep) against golden.network, with random stalls on both streams."""

import numpy as np
import pytest

from golden.network import dense_current, lif_step
from golden.randmodel import random_model
from hw.dense import DenseLayer, dense_step_cycles, weight_words
from hw.device import get as get_device
from hw.kinds.dense import default_lanes
from hw.plan import plan_layer
from hw.layouts import bits_for_count, pack_spike_event, unpack_spike_event

from hw_streams import run_stream, spike_train_events, step_lengths


def _golden_events(layer, trains):
    """Expected output events of ``layer`` for a list of (T, N) input trains (one per sample)."""
    out = []
    for train in trains:
        v = np.zeros(layer.out_features, dtype=np.int64)
        for s in train:
            v, spikes = lif_step(v, dense_current(s[None], layer)[0], layer.neuron)
            out += [(int(k), 0) for k in np.flatnonzero(spikes)]
            out.append((0, 1))
    return out


def _plan(layer, steps, lanes=None):
    return plan_layer(layer, (layer.in_features,), steps, on_map=False, options={} if lanes is None else {"lanes": lanes})


def _simulate(layer, steps, trains, lanes, seed, stall):
    dut = DenseLayer(_plan(layer, steps, lanes))
    in_bits, out_bits = bits_for_count(layer.in_features), bits_for_count(layer.out_features)
    events = [e for train in trains for e in spike_train_events(train)]
    expected = _golden_events(layer, trains)
    got = run_stream(dut, [pack_spike_event(k, end, in_bits) for k, end in events], len(expected),
                     rng=np.random.default_rng(seed), stall=stall,
                     until=1e-6 * (len(events) * 40 + len(expected) * 8 + 2000))
    return [unpack_spike_event(p, out_bits) for p in got], expected


@pytest.mark.parametrize("seed,lanes,stall", [(1, None, 0.0), (2, 1, 0.3), (3, 2, 0.5), (5, 3, 0.2), (8, None, 0.4)])
def test_dense_matches_golden(seed, lanes, stall):
    model = random_model(seed, hidden=[int(np.random.default_rng(seed).integers(3, 9))], pool=False,
                         input_shape=(1, 3, 4), time_steps=3)
    layer = model.layers[1]
    rng = np.random.default_rng(seed + 100)
    trains = [rng.random((model.time_steps, layer.in_features)) < p for p in (0.5, 0.9, 0.0)]
    if lanes is not None:
        lanes = min(lanes, layer.out_features)
    got, expected = _simulate(layer, model.time_steps, trains, lanes, seed, stall)
    assert got == expected


def test_weight_words_layout():
    model = random_model(3, hidden=[5], pool=False, input_shape=(1, 3, 3))
    layer = model.layers[1]
    words = weight_words(_plan(layer, 1, 2))
    groups, stride = 3, 4  # a row takes 4 words (a power of two), the last one zero
    assert len(words) == layer.in_features * stride
    for n in range(layer.in_features):
        for g in range(stride):
            for lane in range(2):
                out = lane * groups + g  # lane l serves neurons l*G ... l*G+G-1
                expect = int(layer.weights[out, n]) if out < 5 and g < groups else 0
                assert words[n * stride + g][lane] == expect


def test_lane_choice_fills_ebrs():
    # 384 x 28 INT8 weights (86 kbit) need 21 EBRs at least; 7 lanes reach it with 4 groups per event (14 lanes
    # too, with twice the adders); a 28 x 10 readout fits one EBR with 1 or 2 lanes, and 2 take fewer cycles.
    class Layer:
        in_features, out_features = 384, 28

    class Readout:
        in_features, out_features = 28, 10
    device = get_device("iCE40UP5K")
    ebr_blocks = device.block_ram.blocks
    assert ebr_blocks(8 * 14, 384 * 2) == 21 and ebr_blocks(8 * 7, 384 * 4) == 21
    assert default_lanes(Layer, device) == 7
    assert default_lanes(Readout, device) == 2
    assert ebr_blocks(8 * 28, 384) == 28
    assert ebr_blocks(0, 10) == 0


def test_refuses_bad_parameters():
    model = random_model(2, hidden=[4], pool=False, input_shape=(1, 3, 3))
    with pytest.raises(ValueError, match=r"^layer fc1: lanes must be an integer from 1 to 4, not 5$"):
        _plan(model.layers[1], 2, 5)
    with pytest.raises(TypeError, match="^DenseLayer needs the hw.kinds.dense.DensePlan of a dense LIF layer"):
        DenseLayer(_plan(model.layers[-1], 2))
    with pytest.raises(ValueError, match=r"^time_steps must be an integer from 1 to 1024, not 0$"):
        _plan(model.layers[1], 0)


@pytest.mark.parametrize("lanes", [1, 2, 5])
def test_dense_step_timing(lanes):
    """With input always offered and output always taken, a step takes dense_step_cycles() cycles."""
    model = random_model(3, hidden=[5], pool=False, input_shape=(1, 3, 4), time_steps=2)
    layer = model.layers[1]
    dut = DenseLayer(_plan(layer, 2, lanes))
    in_bits = bits_for_count(layer.in_features)
    train = np.zeros((2, layer.in_features), dtype=bool)
    train[0, [1, 4, 7]] = True
    events = spike_train_events(train)
    assert step_lengths(dut, events, in_bits, 200) == \
        [int(dense_step_cycles(e, dut.plan)) for e in (3, 0)]


@pytest.mark.parametrize("neurons,stall,reset", [(1, 0.0, "subtract"), (1, 0.4, "zero"), (2, 0.0, "zero"),
                                                 (2, 0.5, "subtract"), (3, 0.3, "subtract")])
def test_dense_tiny_layers(neurons, stall, reset):
    """One to three neurons: the membrane memory is read ahead modulo M, where the sweep wraps onto itself."""
    for seed in range(40):  # the first random layer whose neurons spike and also stay silent at times
        model = random_model(seed, hidden=[neurons], pool=False, input_shape=(1, 3, 4), time_steps=4, reset=reset)
        layer = model.layers[1]
        rng = np.random.default_rng(seed)
        trains = [rng.random((model.time_steps, layer.in_features)) < p for p in (0.6, 1.0, 0.0, 0.3)]
        spikes = [end == 0 for _, end in _golden_events(layer, trains)].count(True)
        if 0 < spikes < len(trains) * model.time_steps * neurons:
            break
    got, expected = _simulate(layer, model.time_steps, trains, None, seed, stall)
    assert got == expected
