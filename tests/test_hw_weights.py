# amaranth: UnusedElaboratable=no
"""hw.weights: one read port whether the weights are in block RAM or SPRAM, the load port, the image of a plan,
and the cores with their weights in SPRAM (loaded: equal to golden; not loaded: not)."""

import numpy as np
import pytest
from amaranth.hdl import Value
from amaranth.sim import Simulator

from golden.randmodel import random_model
from hw.dense import DenseLayer, weight_words
from hw.layouts import bits_for_count, pack_spike_event, unpack_spike_event
from hw.plan import plan, plan_layer
from hw.weights import WeightMemory, image, image_crc, image_words

from hw_streams import spike_train_events, stream_put
from test_hw_dense import _golden_events


def test_image_words_splits_rows_into_banks():
    assert image_words(40, 2, [0x12_3456_789A, 0xFF_0000_0001]) == [0x789A, 0x3456, 0x12, 0x0001, 0x0000, 0xFF]
    with pytest.raises(ValueError, match=r"^word 256 does not fit 8 unsigned bits$"):
        image_words(8, 1, [256])
    with pytest.raises(ValueError, match=r"^a memory of depth 2 needs 2 words, not 1$"):
        image_words(8, 2, [1])


def test_weight_memory_refuses():
    with pytest.raises(ValueError, match=r"^place must be 'rom' or 'spram_rom', not 'flash'$"):
        WeightMemory(shape=8, depth=2, init=[1, 2], place="flash")
    with pytest.raises(ValueError, match=r"^init has 1 words, the memory 2$"):
        WeightMemory(shape=8, depth=2, init=[1], place="rom")


async def _load(ctx, port, words, *, rng=None):
    """Restart the load, then offer ``words`` with random gaps; return whether ``full`` rose with the last."""
    ctx.set(port.restart, 1)
    await ctx.tick()
    ctx.set(port.restart, 0)
    for word in words:
        while rng is not None and rng.random() < 0.3:
            await ctx.tick()
        ctx.set(port.words.valid, 1)
        ctx.set(port.words.payload, word)
        await ctx.tick()
        ctx.set(port.words.valid, 0)
    return ctx.get(port.full)


def _read_all(width, depth, init, place, load, seed=0):
    """Read every word of a WeightMemory (random order, ``en`` dropping at random) after an optional load."""
    dut = WeightMemory(shape=width, depth=depth, init=init, place=place)
    rng = np.random.default_rng(seed)
    got, full = {}, []

    async def bench(ctx):
        full.append(ctx.get(dut.load.full))
        if load:
            full.append(await _load(ctx, dut.load, image_words(width, depth, init), rng=rng))
        last = None
        for addr in rng.permutation(depth):
            if last is not None and rng.random() < 0.3:
                ctx.set(dut.read.en, 0)           # the data holds while en is low
                ctx.set(dut.read.addr, int(addr))
                await ctx.tick()
                assert ctx.get(dut.read.data) == got[last]
                ctx.set(dut.read.en, 1)
            ctx.set(dut.read.addr, int(addr))
            await ctx.tick()                      # the word is there one cycle after the address
            got[int(addr)] = last_value = ctx.get(dut.read.data)
            last = int(addr)
            assert got[last] == last_value

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return [got[a] for a in range(depth)], full


@pytest.mark.parametrize("width,depth", [(8, 7), (16, 5), (40, 9), (24, 16384 + 3)])
def test_weight_memory_spram_equals_rom_after_load(width, depth):
    rng = np.random.default_rng(width + depth)
    init = [int(v) for v in rng.integers(1, 1 << width, size=depth, dtype=np.int64)]
    if depth > 100:  # stacked SPRAMs: read a few words only (a full pass is slow in amaranth.sim)
        return _stacked(width, depth, init)
    rom, full = _read_all(width, depth, init, "rom", load=False)
    assert rom == init and full == [1]
    loaded, full = _read_all(width, depth, init, "spram_rom", load=True)
    assert loaded == init and full == [0, 1]
    # the SPRAM model starts empty: without the load every word reads zero
    empty, _ = _read_all(width, depth, init, "spram_rom", load=False)
    assert empty == [0] * depth


def _stacked(width, depth, init):
    dut = WeightMemory(shape=width, depth=depth, init=init, place="spram_rom")
    assert dut.sprams == 2 * 2
    probe = [0, 1, 16383, 16384, 16385, depth - 1]
    got = []

    async def bench(ctx):
        assert await _load(ctx, dut.load, image_words(width, depth, init)) == 1
        for addr in probe:
            ctx.set(dut.read.addr, addr)
            await ctx.tick()
            got.append(ctx.get(dut.read.data))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert got == [init[a] for a in probe]


def _run_dense(layer, steps, trains, *, lanes, load, seed):
    p = plan_layer(layer, (layer.in_features,), steps, on_map=False, options={"lanes": lanes, "weights": "spram"})
    assert p.weights == "spram" and p.weight_memory.kind == "spram_rom"
    dut = DenseLayer(p)
    words = image_words(p.weight_memory.width, p.weight_memory.depth,
                        [sum((v & 0xFF) << (8 * k) for k, v in enumerate(w)) for w in weight_words(p)])
    in_bits, out_bits = bits_for_count(layer.in_features), bits_for_count(layer.out_features)
    events = [pack_spike_event(k, end, in_bits) for train in trains for k, end in spike_train_events(train)]
    expected = _golden_events(layer, trains)
    rng = np.random.default_rng(seed)
    got = []

    async def producer(ctx):
        if load:
            assert await _load(ctx, dut.load, words, rng=rng) == 1
        await stream_put(ctx, dut.i, events, rng=rng, stall=0.3)

    cycles = len(words) * 2 + len(events) * 60 + len(expected) * 8 + 2000

    async def consumer(ctx):
        # takes whatever comes, with random backpressure, for a fixed time (an unloaded core may emit anything)
        for _ in range(cycles):
            ready = rng.random() >= 0.3
            ctx.set(dut.o.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, Value.cast(dut.o.payload))
            if ready and valid:
                got.append(payload)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(producer, background=True)
    sim.add_testbench(consumer)
    sim.run()
    return [unpack_spike_event(x, out_bits) for x in got], expected


@pytest.mark.parametrize("seed,lanes", [(1, 1), (2, 2), (4, 3)])
def test_dense_with_weights_in_spram(seed, lanes):
    model = random_model(seed, hidden=[6], pool=False, input_shape=(1, 3, 4), time_steps=3)
    layer = model.layers[1]
    rng = np.random.default_rng(seed + 10)
    trains = [rng.random((model.time_steps, layer.in_features)) < p for p in (0.5, 0.9)]
    got, expected = _run_dense(layer, model.time_steps, trains, lanes=lanes, load=True, seed=seed)
    assert got == expected
    got, expected = _run_dense(layer, model.time_steps, trains, lanes=lanes, load=False, seed=seed)
    assert got != expected  # zero weights: the bias alone decides, which is not this layer


def test_image_of_a_plan():
    model = random_model(3, hidden=[5], pool=False, input_shape=(1, 3, 3), classes=4)
    assert image(plan(model)) == []
    p = plan(model, params={"fc1": {"weights": "spram", "lanes": 3}, "out": {"weights": "spram", "lanes": 1}})
    fc1, out = p.layer("fc1"), p.layer("out")
    expect = []
    for lp in (fc1, out):
        packed = [sum((v & 0xFF) << (8 * k) for k, v in enumerate(w)) for w in weight_words(lp)]
        expect += image_words(8 * lp.lanes, len(packed), packed)
    words = image(p)
    assert words == expect and len(words) == 2 * fc1.weight_memory.depth + out.weight_memory.depth
    assert image_crc(words) == image_crc(list(expect)) and 0 <= image_crc(words) <= 0xFFFF
