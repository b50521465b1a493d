# amaranth: UnusedElaboratable=no
"""DenseLayer (zero-skipping accumulator + LIF sweep) against golden.network, with random stalls on both streams."""

import numpy as np
import pytest

from golden.network import dense_current, lif_step
from golden.randmodel import random_model
from hw.dense import DenseLayer, dense_step_cycles, weight_words
from hw.device import get as get_device
from hw.kinds.dense import default_accumulators, default_lanes
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


def _plan(layer, steps, lanes=None, **options):
    if lanes is not None:
        options["lanes"] = lanes
    return plan_layer(layer, (layer.in_features,), steps, on_map=False, options=options)


def _simulate(layer, steps, trains, lanes, seed, stall, **options):
    dut = DenseLayer(_plan(layer, steps, lanes, **options))
    in_bits, out_bits = bits_for_count(layer.in_features), bits_for_count(layer.out_features)
    events = [e for train in trains for e in spike_train_events(train)]
    expected = _golden_events(layer, trains)
    got = run_stream(dut, [pack_spike_event(k, end, in_bits) for k, end in events], len(expected),
                     rng=np.random.default_rng(seed), stall=stall,
                     until=1e-6 * (len(events) * 40 + len(expected) * 8 + 2000))
    return [unpack_spike_event(p, out_bits) for p in got], expected


@pytest.mark.parametrize("accumulators", ["registers", "ram"])
@pytest.mark.parametrize("seed,lanes,stall", [(1, None, 0.0), (2, 1, 0.3), (3, 2, 0.5), (5, 3, 0.2), (8, None, 0.4)])
def test_dense_matches_golden(seed, lanes, stall, accumulators):
    model = random_model(seed, hidden=[int(np.random.default_rng(seed).integers(3, 9))], pool=False,
                         input_shape=(1, 3, 4), time_steps=3)
    layer = model.layers[1]
    rng = np.random.default_rng(seed + 100)
    trains = [rng.random((model.time_steps, layer.in_features)) < p for p in (0.5, 0.9, 0.0)]
    if lanes is not None:
        lanes = min(lanes, layer.out_features)
    got, expected = _simulate(layer, model.time_steps, trains, lanes, seed, stall, accumulators=accumulators)
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


@pytest.mark.parametrize("accumulators", ["registers", "ram"])
@pytest.mark.parametrize("lanes", [1, 2, 5])
def test_dense_step_timing(lanes, accumulators):
    """With input always offered and output always taken, a step takes dense_step_cycles() cycles."""
    model = random_model(3, hidden=[5], pool=False, input_shape=(1, 3, 4), time_steps=2)
    layer = model.layers[1]
    dut = DenseLayer(_plan(layer, 2, lanes, accumulators=accumulators))
    assert dut.plan.accumulators == accumulators
    in_bits = bits_for_count(layer.in_features)
    train = np.zeros((2, layer.in_features), dtype=bool)
    train[0, [1, 4, 7]] = True
    events = spike_train_events(train)
    assert step_lengths(dut, events, in_bits, 200) == \
        [int(dense_step_cycles(e, dut.plan)) for e in (3, 0)]


@pytest.mark.parametrize("accumulators", ["registers", "ram"])
@pytest.mark.parametrize("neurons,stall,reset", [(1, 0.0, "subtract"), (1, 0.4, "zero"), (2, 0.0, "zero"),
                                                 (2, 0.5, "subtract"), (3, 0.3, "subtract")])
def test_dense_tiny_layers(neurons, stall, reset, accumulators):
    """One to three neurons: the membrane memory is read ahead modulo M, where the sweep wraps onto itself."""
    for seed in range(40):  # the first random layer whose neurons spike and also stay silent at times
        model = random_model(seed, hidden=[neurons], pool=False, input_shape=(1, 3, 4), time_steps=4, reset=reset)
        layer = model.layers[1]
        rng = np.random.default_rng(seed)
        trains = [rng.random((model.time_steps, layer.in_features)) < p for p in (0.6, 1.0, 0.0, 0.3)]
        spikes = [end == 0 for _, end in _golden_events(layer, trains)].count(True)
        if 0 < spikes < len(trains) * model.time_steps * neurons:
            break
    got, expected = _simulate(layer, model.time_steps, trains, None, seed, stall, accumulators=accumulators)
    assert got == expected


@pytest.mark.parametrize("neurons,lanes,stall", [
    (6, 6, 0.0),    # G = 1: every event reads the word the previous one writes
    (6, 6, 0.4),
    (7, 3, 0.3),    # lanes not dividing M: G = 3, the last lane holds one neuron, two padding slots
    (5, 2, 0.0),    # G = 3, the last lane one neuron
    (8, 1, 0.5),    # one lane, G = M: every word is reset by its only neuron
    (9, 4, 0.2),    # G = 3, 12 slots for 9 neurons
])
def test_ram_accumulators_match_golden(neurons, lanes, stall):
    """Accumulators in block RAM: back-to-back events (inputs that always spike), lanes not dividing the neurons,
    G = 1, stalls on both streams; every spike equals the golden model's."""
    model = random_model(neurons, hidden=[neurons], pool=False, input_shape=(1, 3, 4), time_steps=3)
    layer = model.layers[1]
    rng = np.random.default_rng(neurons + lanes)
    trains = [rng.random((model.time_steps, layer.in_features)) < p for p in (1.0, 0.5, 0.0, 1.0)]
    got, expected = _simulate(layer, model.time_steps, trains, lanes, neurons, stall, accumulators="ram")
    assert got == expected


def test_ram_accumulators_plan():
    model = random_model(9, hidden=[9], pool=False, input_shape=(1, 3, 4))
    layer = model.layers[1]
    plan = _plan(layer, 2, 4, accumulators="ram")
    mem = next(m for m in plan.memories if m.name == "fc1.accumulators")
    assert (plan.accumulators, mem.kind, mem.width, mem.depth) == ("ram", "ram", 4 * layer.acc_bits, 3)
    assert mem.blocks == -(-4 * layer.acc_bits // 16)  # 16 bits x 256 words per EBR
    plan = _plan(layer, 2, 4, accumulators="registers")
    mem = next(m for m in plan.memories if m.name == "fc1.accumulators")
    assert (plan.accumulators, mem.kind, mem.width, mem.depth) == ("registers", "registers", layer.acc_bits, 9)
    with pytest.raises(ValueError, match=r"^layer fc1: accumulators must be 'registers' or 'ram', not 'bram'$"):
        _plan(layer, 2, 4, accumulators="bram")


def test_default_accumulators_follow_the_device():
    """Block RAM where the chain's flip-flops per block exceed the device's logic cells per block."""
    class Wide:     # models/fsdd_deep's fc1
        in_features, out_features, acc_bits = 384, 128, 15

    class Hidden:   # models/fsdd_scnn's fc1
        in_features, out_features, acc_bits = 384, 28, 14

    ice40 = get_device("iCE40UP5K")
    assert ice40.accumulator_threshold == ice40.cells_per_block == 176
    assert default_accumulators(Wide, 4, ice40) == "ram"          # 4 EBRs for 1,920 flip-flops
    assert default_accumulators(Hidden, 7, ice40) == "registers"  # 7 EBRs for 392
    assert default_accumulators(Hidden, 2, ice40) == "registers"  # 2 EBRs for 392, less 98 cells of RAM logic
    assert default_accumulators(Wide, 128, get_device("LFE5U-85F")) == "registers"  # one word of 1,920 bits
    assert default_accumulators(Wide, 32, get_device("GW1NR-9")) == "registers"
    assert default_accumulators(Wide, 1, get_device("LFE5U-85F")) == "ram"  # 128 x 15 in one block
