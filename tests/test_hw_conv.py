# amaranth: UnusedElaboratable=no
"""ConvLayer against the golden model: every spike event, the markers, and the exact cycle model."""

import numpy as np
import pytest
from amaranth.hdl import Module, Signal, signed
from amaranth.sim import Simulator

from golden.manifest import LIF, Conv2d
from golden.network import conv2d_current, lif_step, run
from golden.randmodel import random_inputs, random_model
from hw.conv import ConvLayer, compute_cycles, conv_cycles, conv_schedule, shift_add_multiply
from hw.plan import plan_layer
from hw_streams import simulator


def simulate(layer, in_shape, time_steps, inputs, *, lanes=None, word_bits=16, input_memory="bram",
             dsp_multipliers=8, spike_logic=None, seed=0, stall_in=0.0, stall_out=0.0, device=None):
    """Run ``inputs`` (N, C, H, W) back to back; return per sample the events per step and the busy cycles."""
    options = dict(word_bits=word_bits, input_memory=input_memory, dsp_multipliers=dsp_multipliers)
    options.update({} if lanes is None else {"lanes": lanes})
    options.update({} if spike_logic is None else {"spike_logic": spike_logic})
    dut = ConvLayer(plan_layer(layer, in_shape, time_steps, on_map=True, device=device, options=options))
    if spike_logic is not None:
        assert (dut.plan.table is not None) == (spike_logic == "table") == (dut.plan.spike_logic == "table")
    rng = np.random.default_rng(seed)
    n = len(inputs)
    events = [[[] for _ in range(time_steps)] for _ in range(n)]
    busy = []

    async def producer(ctx):
        for x in inputs:
            for value in np.asarray(x).ravel():
                while rng.random() < stall_in:
                    await ctx.tick()
                ctx.set(dut.i.payload, int(value))
                ctx.set(dut.i.valid, 1)
                await ctx.tick().until(dut.i.ready)
                ctx.set(dut.i.valid, 0)

    async def consumer(ctx):
        for sample in range(n):
            for t in range(time_steps):
                while True:
                    ready = not rng.random() < stall_out
                    ctx.set(dut.o.ready, ready)
                    _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
                    if valid and ready:
                        if payload.end:
                            assert payload.index == 0
                            break
                        events[sample][t].append(int(payload.index))
        ctx.set(dut.o.ready, 0)

    async def monitor(ctx):
        counting, count, markers = False, 0, 0
        async for _, _, iv, ir, ov, ordy, end in ctx.tick().sample(dut.i.valid, dut.i.ready, dut.o.valid,
                                                                    dut.o.ready, dut.o.payload.end):
            if not counting and iv and ir:
                counting, count, markers = True, 0, 0
            if counting:
                if not ((ir and not iv) or (ov and not ordy)):
                    count += 1
                if ov and ordy and end:
                    markers += 1
                    if markers == time_steps:
                        busy.append(count)
                        counting = False

    sim = simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.add_testbench(monitor, background=True)
    sim.run()
    return dut, events, busy


def layer_spikes(layer, inputs, time_steps):
    """The golden spikes (N, T, neurons) of a conv layer alone, from the golden primitives."""
    current = conv2d_current(inputs, layer).reshape(len(inputs), -1)
    v = np.zeros_like(current)
    steps = []
    for _ in range(time_steps):
        v, s = lif_step(v, current, layer.neuron)
        steps.append(s)
    return np.stack(steps, axis=1)


def check(model, inputs, layer=None, **kwargs):
    """Simulate the first layer of ``model`` (or ``layer`` in its place) and compare with the golden model."""
    if layer is None:
        layer = model.layers[0]
        spikes = run(model, inputs).spikes[layer.name]
        assert np.array_equal(spikes, layer_spikes(layer, inputs, model.time_steps))
    else:
        spikes = layer_spikes(layer, inputs, model.time_steps)
    dut, events, busy = simulate(layer, model.input_shape, model.time_steps, inputs, **kwargs)
    for sample in range(len(inputs)):
        for t in range(model.time_steps):
            want = np.flatnonzero(spikes[sample, t]).tolist()
            assert events[sample][t] == want, f"sample {sample} step {t}"
        assert busy[sample] == conv_cycles(dut.plan, spikes[sample]), f"sample {sample} cycles"
    return spikes


@pytest.mark.parametrize("seed,lanes,word_bits,memory,stall_in,stall_out,logic", [
    (1, None, 16, "bram", 0.0, 0.0, "table"),
    (1, None, 16, "bram", 0.0, 0.0, "pipeline"),
    (2, 2, 4, "spram", 0.3, 0.3, "table"),
    (3, 1, 8, "bram", 0.0, 0.5, "pipeline"),
    (4, 3, 16, "spram", 0.5, 0.0, "table"),
    (5, 2, 1, "bram", 0.2, 0.2, "pipeline"),
    (6, 1, 5, "spram", 0.2, 0.4, "table"),
    (1, 2, 8, "spram", 0.4, 0.3, "pipeline"),
])
def test_random_models(seed, lanes, word_bits, memory, stall_in, stall_out, logic):
    """Both ways of forming the spikes: the spike table (one stage) and the pipeline of T LIF units."""
    model = random_model(seed)
    co = model.layers[0].out_channels
    lanes = None if lanes is None else min(lanes, co)
    inputs = random_inputs(model, 3, np.random.default_rng(seed))
    spikes = check(model, inputs, lanes=lanes, word_bits=word_bits, input_memory=memory,
                   dsp_multipliers=seed % 3 * 4, spike_logic=logic, seed=seed, stall_in=stall_in,
                   stall_out=stall_out)
    assert spikes.any(), "the test model should spike"


@pytest.mark.parametrize("overrides,memory", [
    (dict(input_shape=(3, 5, 6), kernel=(3, 2), stride=(2, 1), padding=(1, 1), out_channels=3, time_steps=3),
     "spram"),
    (dict(input_shape=(2, 4, 7), kernel=(2, 3), stride=(1, 3), padding=(0, 2), out_channels=4, time_steps=2,
          reset="zero"), "bram"),
    (dict(input_shape=(1, 3, 3), kernel=(3, 3), stride=(1, 1), padding=(0, 0), out_channels=2, time_steps=5),
     "spram"),
    (dict(input_shape=(2, 6, 1), kernel=(2, 1), stride=(2, 1), padding=(1, 0), out_channels=1, time_steps=4),
     "bram"),
    (dict(input_shape=(5, 3, 4), kernel=(2, 2), stride=(1, 2), padding=(1, 0), out_channels=2, time_steps=2),
     "spram"),
])
def test_shapes(overrides, memory):
    model = random_model(11, **overrides)
    inputs = random_inputs(model, 2, np.random.default_rng(3))
    check(model, inputs, lanes=min(2, model.layers[0].out_channels), word_bits=4, input_memory=memory, seed=5,
          stall_in=0.2, stall_out=0.2)


@pytest.mark.parametrize("memory", ["bram", "spram"])
def test_streaming_several_passes(memory):
    """One input channel, several passes: later passes read the map the first pass streamed in, sample after sample."""
    model = random_model(12, input_shape=(1, 5, 6), out_channels=3, kernel=(2, 3), stride=(1, 1), padding=(1, 1),
                         time_steps=3)
    assert plan_layer(model.layers[0], model.input_shape, 3, on_map=True, options={"lanes": 1}).streaming
    inputs = random_inputs(model, 4, np.random.default_rng(12))
    inputs[:, :, 0, 0] = np.array([120, -128, 0, 77])[:, None]
    check(model, inputs, lanes=1, word_bits=8, input_memory=memory, seed=4, stall_in=0.3, stall_out=0.3)


def test_saturating_membranes():
    """Extreme inputs and weights drive the 6-bit membranes into both bounds."""
    rng = np.random.default_rng(9)
    weights = rng.choice([-128, 127, 0, 1], size=(2, 1, 2, 2)).astype(np.int8)
    layer = Conv2d(name="conv1", in_channels=1, out_channels=2, kernel=(2, 2), stride=(1, 1), padding=(1, 1),
                   weights=weights, bias=np.array([3, -3]), bias_bits=4, acc_bits=18,
                   neuron=LIF(leak_shift=1, threshold=20, reset="subtract", mem_bits=6))
    model = random_model(2, input_shape=(1, 4, 4), out_channels=2, kernel=(2, 2), time_steps=3)
    inputs = rng.choice([-128, 127, 0, -1, 1], size=(3, 1, 4, 4)).astype(np.int8)
    spikes = check(model, inputs, layer=layer, lanes=2, word_bits=3, dsp_multipliers=0, seed=1, stall_out=0.3,
                   spike_logic="pipeline")
    check(model, inputs, layer=layer, lanes=1, word_bits=5, seed=2, stall_in=0.2, spike_logic="table")
    current = conv2d_current(inputs, layer)
    assert current.max() > 31 * 2 and current.min() < -32 * 2, "the currents should saturate the membranes"
    assert spikes.any() and not spikes.all()


def test_default_geometry():
    """The default model's first layer (1x16x48, 4 channels 3x3, padding 1, T=4), one sample, no stalls."""
    model = random_model(21, input_shape=(1, 16, 48), out_channels=4, kernel=(3, 3), stride=(1, 1),
                         padding=(1, 1), time_steps=4, pool=(2, 4), hidden=[6], classes=3)
    inputs = random_inputs(model, 1, np.random.default_rng(0))
    check(model, inputs, lanes=4, dsp_multipliers=36, spike_logic="table")
    check(model, inputs, lanes=2, dsp_multipliers=18, spike_logic="pipeline")
    pipeline = plan_layer(model.layers[0], model.input_shape, 4, on_map=True, options={"lanes": 4, "spike_logic": "pipeline"})
    table = plan_layer(model.layers[0], model.input_shape, 4, on_map=True, options={"lanes": 4, "spike_logic": "table"})
    assert compute_cycles(pipeline) == 18 * 50 + 4 + 4 and compute_cycles(table) == 18 * 50 + 1 + 4


def test_shift_add_multiply():
    a, b = Signal(signed(8)), Signal(signed(8))
    product = shift_add_multiply(a, b)
    values = [-128, -127, -64, -1, 0, 1, 2, 63, 126, 127] + list(range(-128, 128, 7))
    got = []

    async def testbench(ctx):
        for x in values:
            for y in values:
                ctx.set(a, x)
                ctx.set(b, y)
                got.append((x, y, ctx.get(product)))

    m = Module()
    m.d.comb += Signal(signed(16)).eq(product)
    sim = simulator(m)
    sim.add_testbench(testbench)
    sim.run()
    assert all(p == x * y for x, y, p in got)


def test_schedule_counts_words():
    model = random_model(1, input_shape=(1, 3, 4), out_channels=2, kernel=(1, 1), stride=(1, 1), padding=(0, 0),
                         time_steps=2)
    geom = plan_layer(model.layers[0], model.input_shape, 2, on_map=True, options={"word_bits": 8, "spike_logic": "pipeline"})
    spikes = np.zeros((2, 24), dtype=bool)
    spikes[0, [0, 1, 9]] = True
    s = conv_schedule(geom, spikes)
    # Step 0: the fetch cycle, then word (0, 1), word (9), two empty words of channel 1, the marker.
    # Step 1: four empty words, the marker.
    assert s["gaps"] == [2, 1, 1, 3, 5]
    # One input channel: the first pass streams the map, so the load phase is the first value only.
    assert geom.streaming and s["load"] == 1 and s["compute"] == 2 * 3 * 4 + 2 + 4 and s["tail"] == 1


def test_refuses_bad_parameters():
    """The plan refuses, naming the layer, the bound and what to change; the core only takes a plan."""
    model = random_model(1, input_shape=(2, 4, 4), out_channels=2)
    layer = model.layers[0]

    def refused(error, message, in_shape=(2, 4, 4), steps=2, layer=layer, **options):
        with pytest.raises(error, match=message):
            plan_layer(layer, in_shape, steps, on_map=True, options=options)

    refused(ValueError, r"^layer conv1: lanes must be an integer from 1 to 2, not 3$", lanes=3)
    refused(ValueError, r"^layer conv1: word_bits must be an integer, not 8.0$", word_bits=8.0)
    refused(ValueError, r"^layer conv1: in_channels 2 does not match the input's 1 channels$", in_shape=(1, 4, 4))
    refused(ValueError, r"^layer conv1: input_memory must be 'bram' or 'spram', not 'flash'$", input_memory="flash")
    refused(ValueError, r"^layer conv1: spike_logic must be 'table' or 'pipeline', not 'lut'$", spike_logic="lut")
    refused(ValueError, r"^layer conv1: a spike table of 1024 steps over \d+-bit currents is too large \(time_steps "
                        r"\* 2\*\*acc_bits above 2\*\*22, or more than 256 breakpoints\): use spike_logic 'pipeline'$",
            steps=1024, spike_logic="table")
    big = random_model(1, input_shape=(1, 130, 130), out_channels=1, kernel=(1, 1), pool=False, hidden=[])
    refused(ValueError, r"^layer conv1: an input map of 1x130x130 needs 1 SPRAMs of 16,900 words; the iCE40UP5K "
                        r"has 4 SPRAMs of 16,384 words \(use input_memory 'bram'\)$",
            in_shape=(1, 130, 130), steps=1, layer=big.layers[0], input_memory="spram")
    with pytest.raises(TypeError, match=r"^ConvLayer needs a hw.kinds.conv2d.ConvPlan, not "):
        ConvLayer(layer)


def test_many_taps_elaborate():
    """A lane of 40 channels x a 1x9 kernel (360 taps, 40 MFCC bins as channels): the current is chains of adders
    joined by a tree, not one nesting as deep as the taps are many (which overflowed Python's recursion limit)."""
    from amaranth.back import rtlil

    model = random_model(4, input_shape=(40, 1, 12), out_channels=1, kernel=(1, 9), stride=(1, 1),
                         padding=(0, 0), pool=False, hidden=[], time_steps=2)
    dut = ConvLayer(plan_layer(model.layers[0], model.input_shape, 2, on_map=True, options={"dsp_multipliers": 0}))
    assert dut.plan.channels * dut.plan.taps == 360
    assert "module" in rtlil.convert(dut, name="conv")


def test_converts_to_verilog():
    """The core goes through Yosys (both input memories), with the iCE40 SPRAM primitive on an iCE40 platform."""
    from amaranth.back import verilog
    from amaranth_boards.icebreaker import ICEBreakerPlatform

    model = random_model(3, input_shape=(2, 5, 6), out_channels=3, kernel=(3, 3), padding=(1, 1), time_steps=3)
    layer = model.layers[0]
    text = verilog.convert(ConvLayer(plan_layer(layer, (2, 5, 6), 3, on_map=True, options={"lanes": 2})), name="conv")
    assert "module conv" in text and "i__payload" in text and "o__payload" in text
    dut = ConvLayer(plan_layer(layer, (2, 5, 6), 3, on_map=True, options={"input_memory": "spram"}))
    assert dut.plan.spram_blocks == 1
    text = verilog.convert(dut, name="conv", platform=ICEBreakerPlatform())
    assert "SB_SPRAM256KA" in text
