# amaranth: UnusedElaboratable=no
"""SpikeConvLayer (event-driven convolution on spike maps) against golden.network, with random stalls on both
streams; its reach tables against a brute force; its step timing against hw.spikeconv.step_cycles."""

import numpy as np
import pytest

from golden.manifest import LIF, Conv2d
from golden.network import conv2d_current, lif_step
from hw.kinds.spikeconv import reach, visits
from hw.layouts import bits_for_count, pack_spike_event, unpack_spike_event
from hw.plan import plan_layer
from hw.spikeconv import SpikeConvLayer, step_cycles, weight_words

from hw_streams import run_stream, spike_train_events, step_lengths


def _layer(rng, ci, co, kernel, stride, padding, reset="subtract"):
    weights = rng.integers(-128, 128, size=(co, ci) + tuple(kernel))
    bias = rng.integers(-60, 60, size=co)
    return Conv2d(name="conv2", in_channels=ci, out_channels=co, kernel=tuple(kernel), stride=tuple(stride),
                  padding=tuple(padding), weights=weights, bias=bias, bias_bits=8, acc_bits=16,
                  neuron=LIF(leak_shift=2, threshold=150, reset=reset, mem_bits=14))


def _golden_events(layer, shape, trains):
    out = []
    for train in trains:
        v = None
        for s in train:
            cur = conv2d_current(s.reshape((1,) + shape), layer).reshape(-1)
            v, spikes = lif_step(np.zeros_like(cur) if v is None else v, cur, layer.neuron)
            out += [(int(k), 0) for k in np.flatnonzero(spikes)]
            out.append((0, 1))
    return out


CASES = [
    # seed, (Ci, H, W), Co, kernel, stride, padding, lanes, stall
    (1, (2, 5, 6), 3, (3, 3), (1, 1), (1, 1), None, 0.0),
    (2, (1, 6, 5), 4, (2, 3), (2, 1), (0, 2), 2, 0.3),
    (3, (3, 4, 4), 2, (3, 2), (2, 2), (2, 0), 1, 0.5),
    (4, (2, 7, 3), 5, (1, 1), (2, 2), (0, 0), 3, 0.2),
    (5, (1, 3, 8), 1, (3, 3), (1, 2), (2, 1), 1, 0.4),
    (6, (2, 4, 5), 4, (3, 3), (1, 1), (0, 0), 4, 0.1),
]


@pytest.mark.parametrize("state", ["bram", "spram"])
@pytest.mark.parametrize("seed,shape,co,kernel,stride,padding,lanes,stall", CASES)
def test_spikeconv_matches_golden(seed, shape, co, kernel, stride, padding, lanes, stall, state):
    """Four samples back to back (the membranes in SPRAM start from garbage, hw.spram.garbage)."""
    rng = np.random.default_rng(seed)
    layer = _layer(rng, shape[0], co, kernel, stride, padding, reset="zero" if seed % 2 else "subtract")
    steps = 3
    options = {"state": state} | ({} if lanes is None else {"lanes": lanes})
    plan = plan_layer(layer, shape, steps, on_map=False, options=options)
    assert plan.state == state
    n_in = int(np.prod(shape))
    trains = [rng.random((steps, n_in)) < p for p in (0.4, 1.0, 0.0, 0.15)]
    expected = _golden_events(layer, shape, trains)
    assert 0 < sum(1 for _, end in expected if not end) < len(expected)
    events = [e for train in trains for e in spike_train_events(train)]
    dut = SpikeConvLayer(plan)
    in_bits, out_bits = bits_for_count(n_in), bits_for_count(plan.neurons)
    budget = int(step_cycles(plan, np.concatenate(trains)).sum() * (1 + 4 * stall)) + 40 * len(events) + 2000
    got = run_stream(dut, [pack_spike_event(k, end, in_bits) for k, end in events], len(expected),
                     rng=np.random.default_rng(seed), stall=stall, until=1e-6 * budget)
    assert [unpack_spike_event(p, out_bits) for p in got] == expected


@pytest.mark.parametrize("size,kernel,stride,padding", [(5, 3, 1, 1), (6, 3, 2, 0), (7, 2, 2, 2), (4, 1, 2, 0),
                                                        (3, 3, 1, 2), (9, 3, 2, 1)])
def test_reach_is_every_tap_that_lands(size, kernel, stride, padding):
    out_size = (size + 2 * padding - kernel) // stride + 1
    for y, (k0, o0, n) in enumerate(reach(size, kernel, stride, padding, out_size)):
        brute = sorted((k, o) for o in range(out_size) for k in range(kernel) if o * stride - padding + k == y)
        assert [(k0 + j * stride, o0 - j) for j in range(n)] == brute


def test_weight_words_layout():
    rng = np.random.default_rng(0)
    layer = _layer(rng, 2, 5, (2, 3), (1, 1), (0, 0))
    plan = plan_layer(layer, (2, 4, 5), 1, on_map=False, options={"lanes": 2})
    assert (plan.groups, plan.stride) == (3, 4)
    words = weight_words(plan)
    assert len(words) == 2 * 2 * 3 * 4
    for c in range(2):
        for ky in range(2):
            for kx in range(3):
                tap = (c * 2 + ky) * 3 + kx
                for g in range(4):
                    for lane in range(2):
                        o = g * 2 + lane  # lane l of group g is channel g * lanes + l
                        want = int(layer.weights[o, c, ky, kx]) if g < 3 and o < 5 else 0
                        assert words[tap * 4 + g][lane] == want


@pytest.mark.parametrize("state", ["bram", "spram"])
@pytest.mark.parametrize("lanes", [1, 3])
def test_step_timing(lanes, state):
    """Input always offered, output always taken: a step takes step_cycles() cycles, from its first input transfer
    to its marker's transfer."""
    rng = np.random.default_rng(7)
    shape = (2, 4, 5)
    layer = _layer(rng, 2, 3, (3, 3), (2, 1), (1, 0))
    plan = plan_layer(layer, shape, 2, on_map=False, options={"lanes": lanes, "state": state})
    dut = SpikeConvLayer(plan)
    n_in = int(np.prod(shape))
    train = np.zeros((2, n_in), dtype=bool)
    train[0, [0, 3, 7, 19, 20, 39]] = True
    events = spike_train_events(train)
    assert step_lengths(dut, events, bits_for_count(n_in), 1500) == step_cycles(plan, train).tolist()
    assert visits(plan)[0] == max(1, 1 * 1 * plan.groups)  # (0, 0): kernel row 1 and column 0 only


def test_refuses_bad_parameters():
    rng = np.random.default_rng(1)
    layer = _layer(rng, 2, 3, (3, 3), (1, 1), (1, 1))
    with pytest.raises(ValueError, match=r"^layer conv2: lanes must be an integer from 1 to 3, not 4$"):
        plan_layer(layer, (2, 4, 4), 2, on_map=False, options={"lanes": 4})
    with pytest.raises(ValueError, match=r"^layer conv2: in_channels 2 does not match the input's 3 channels$"):
        plan_layer(layer, (3, 4, 4), 2, on_map=False)
    with pytest.raises(TypeError, match=r"^SpikeConvLayer needs a hw.kinds.spikeconv.SpikeConvPlan, not 3$"):
        SpikeConvLayer(3)
    with pytest.raises(ValueError, match=r"^layer conv2: state must be 'bram' or 'spram', not 'ebr'$"):
        plan_layer(layer, (2, 4, 4), 2, on_map=False, options={"state": "ebr"})
    with pytest.raises(ValueError, match=r"^layer conv2: state 'spram' needs a device with SPRAM; the LFE5U-85F has "
                                         r"none \(use 'bram'\)$"):
        plan_layer(layer, (2, 4, 4), 2, on_map=False, device="LFE5U-85F", options={"state": "spram"})


def test_state_memory_in_spram():
    rng = np.random.default_rng(1)
    layer = _layer(rng, 2, 3, (3, 3), (1, 1), (1, 1))
    plan = plan_layer(layer, (2, 4, 4), 2, on_map=False, options={"state": "spram"})
    mems = {mem.name: mem for mem in plan.memories}
    assert (mems["conv2.membranes"].kind, mems["conv2.membranes"].sprams, mems["conv2.membranes"].blocks) == \
        ("spram", 1, 0)
    assert mems["conv2.currents"].kind == "ram" and mems["conv2.currents"].blocks == 1
    assert plan_layer(layer, (2, 4, 4), 2, on_map=False).state == "bram"


@pytest.mark.parametrize("shape, co, stride, lanes, steps, state, coordinates", [
    ((4, 8, 24), 16, 2, 1, 4, "bram", True),      # fsdd_deep2's conv2
    ((8, 8, 12), 16, 1, 2, 6, "bram", False),     # the flat index divided by W = 12
    ((4, 16, 24), 32, 1, 8, 4, "spram", True),
])
def test_logic_estimate_tracks_synthesis(tmp_path, shape, co, stride, lanes, steps, state, coordinates):
    """hw.kinds.spikeconv.logic, the step buffer's share taken off, against Yosys's LUT4s of the core alone: within
    the band of its fit (0.80-1.26x) with a margin; the old count (a constant and an adder per lane) was 0.6x of the
    first case's."""
    import dataclasses

    from amaranth.back import rtlil

    from flow.area import synthesize
    from flow.tools import toolchain_env
    from hw.device import get
    from hw.kinds.buffer import logic as buffer_logic
    from hw.kinds.spikeconv import logic

    layer = _layer(np.random.default_rng(3), shape[0], co, (3, 3), (stride, stride), (1, 1))
    p = plan_layer(layer, shape, steps, on_map=False, options={"lanes": lanes, "state": state})
    if coordinates:   # as behind an OR-pool whose rows are the buffer's words
        p = dataclasses.replace(p, buffer=dataclasses.replace(p.buffer, coordinates=True, in_width=p.buffer.row))
    assert p.coordinates == coordinates
    (tmp_path / "top.il").write_text(rtlil.convert(SpikeConvLayer(p), name="top"))
    device = get("iCE40UP5K")
    cells = synthesize(tmp_path, "top", toolchain_env(device.tools), device=device)
    estimate = logic(p) - buffer_logic(p)
    assert 0.75 < cells["lut4"] / estimate < 1.35
