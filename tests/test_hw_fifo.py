"""Queue under random stalls on both sides: every entry comes out once, in order; its latency is LATENCY. StepBuffer:
the reordering, and both layouts (list and bitmap) cycle by cycle against the documented timeline."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.dense import ebr_blocks
from hw.fifo import LATENCY, Queue, StepBuffer
from hw.layouts import pack_spike_event, spike_event, unpack_spike_event

from hw_streams import run_stream, stream_get, stream_put


@pytest.mark.parametrize("depth,stall_in,stall_out", [(2, 0.0, 0.0), (3, 0.5, 0.1), (5, 0.1, 0.6), (16, 0.3, 0.3)])
def test_queue_in_order_under_stalls(depth, stall_in, stall_out):
    dut = Queue(shape=spike_event(6), depth=depth)
    rng = np.random.default_rng(depth)
    sent = [pack_spike_event(int(k), int(e), 6) for k, e in zip(rng.integers(0, 64, 200), rng.integers(0, 2, 200))]
    got = []

    async def producer(ctx):
        await stream_put(ctx, dut.i, sent, rng=rng, stall=stall_in)

    async def consumer(ctx):
        got.extend(await stream_get(ctx, dut.o, len(sent), rng=rng, stall=stall_out))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run_until(1e-6 * 3000)
    assert got == sent


def test_queue_latency_and_full_rate():
    dut = Queue(shape=8, depth=4)
    seen = []

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        for cycle in range(12):
            ctx.set(dut.i.valid, cycle < 6)
            ctx.set(dut.i.payload, cycle)
            if ctx.get(dut.o.valid):
                seen.append((cycle, ctx.get(dut.o.payload)))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert seen == [(c + LATENCY, c) for c in range(6)]


def test_queue_refuses_small_depth():
    with pytest.raises(ValueError, match="queue depth must be an integer of at least 2, not 1"):
        Queue(shape=8, depth=1)


def _step_events(rng, neurons, row, steps, samples, rate):
    """Input events (rows ascending, any order inside a word) and the expected output (ascending)."""
    sent, expected = [], []
    for _ in range(samples * steps):
        spikes = np.flatnonzero(rng.random(neurons) < rate)
        expected += [(int(k), 0) for k in spikes] + [(0, 1)]
        for word in range(-(-neurons // row)):
            inside = [int(k) for k in spikes if word * row <= k < (word + 1) * row]
            rng.shuffle(inside)
            sent += [(k, 0) for k in inside]
        sent.append((0, 1))
    return sent, expected


@pytest.mark.parametrize("neurons,row,steps,rate,stall", [(20, 4, 3, 0.3, 0.0), (37, 8, 2, 0.6, 0.4),
                                                          (16, 16, 4, 0.1, 0.2), (5, 3, 1, 0.5, 0.5)])
def test_step_buffer_reorders_and_clears(neurons, row, steps, rate, stall):
    dut = StepBuffer(neurons=neurons, row=row, time_steps=steps)
    bits = max(1, (neurons - 1).bit_length())
    rng = np.random.default_rng(neurons)
    sent, expected = _step_events(rng, neurons, row, steps, 3, rate)
    got = run_stream(dut, [pack_spike_event(k, e, bits) for k, e in sent], len(expected), rng=rng, stall=stall,
                     until=1e-6 * (len(sent) * 6 + len(expected) * 6 + 500))
    assert [unpack_spike_event(p, bits) for p in got] == expected


def _offers(dut, events):
    """Drive ``(index, end)`` per cycle (``(None, None)``: idle) with ``o.ready`` high; return the offers of ``o``
    as ``(cycle, index, end)``."""
    offered = []

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        for cycle, (index, end) in enumerate(events):
            ctx.set(dut.i.valid, index is not None)
            if index is not None:
                ctx.set(dut.i.payload.index, index)
                ctx.set(dut.i.payload.end, end)
            if ctx.get(dut.o.valid):
                offered.append((cycle, ctx.get(dut.o.payload.index), ctx.get(dut.o.payload.end)))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return offered


def test_step_buffer_offers_a_step_only_when_complete():
    dut = StepBuffer(neurons=8, row=4, time_steps=2)
    offered = _offers(dut, [(1, 0), (6, 0), (None, None), (0, 1)] + [(None, None)] * 8)
    # marker taken at cycle 3, written at 4 (the input is registered), counted at 5 (with the last flag); fetch of
    # word 0 at 6, spike 1 at 7, fetch of word 1 at 8, spike 6 at 9, marker at 10
    assert offered == [(7, 1, 0), (9, 6, 0), (10, 0, 1)]


def test_step_buffer_refuses_bad_parameters():
    with pytest.raises(ValueError, match="step buffer row must be an integer from 1 to 64, not 65"):
        StepBuffer(neurons=100, row=65, time_steps=2)


# -- the two layouts of a step buffer (a list of the words with spikes, or a bitmap with word flags) -----------------

LAYOUT_CASES = [(384, 12, 4), (28, 16, 4), (40, 8, 3), (100, 16, 4), (17, 16, 2), (31, 1, 2), (70, 10, 3), (9, 4, 1)]


def _bursty_step_events(rng, neurons, row, steps, samples):
    """Input events of ``samples`` samples: dense, sparse, empty and full steps; rows ascending, any order inside a
    word."""
    sent = []
    for _ in range(samples * steps):
        rate = rng.choice([0.3, 0.05, 0.0, 1.0], p=[0.6, 0.2, 0.1, 0.1])
        spikes = np.flatnonzero(rng.random(neurons) < rate)
        for word in range(-(-neurons // row)):
            inside = [int(k) for k in spikes if word * row <= k < (word + 1) * row]
            rng.shuffle(inside)
            sent += [(k, 0) for k in inside]
        sent.append((0, 1))
    return sent


def _trace(dut, sent, ready, gap):
    """Drive ``dut`` for ``len(ready)`` cycles: the input offers ``sent`` in order (idle where ``gap``), the output
    is ready where ``ready``. Returns per cycle ``(i.valid, i.end, i.ready, o.valid, o.ready, o.index, o.end)``, the
    payloads as offered (None when not valid)."""
    rows = []

    async def bench(ctx):
        pos, offering = 0, False
        for cycle in range(len(ready)):
            ctx.set(dut.o.ready, int(ready[cycle]))
            offering = offering or (pos < len(sent) and not gap[cycle])
            ctx.set(dut.i.valid, int(offering))
            if offering:
                ctx.set(dut.i.payload.index, sent[pos][0])
                ctx.set(dut.i.payload.end, sent[pos][1])
            i_ready, o_valid = ctx.get(dut.i.ready), ctx.get(dut.o.valid)
            out = (ctx.get(dut.o.payload.index), ctx.get(dut.o.payload.end)) if o_valid else (None, None)
            rows.append((int(offering), sent[pos][1] if offering else None, i_ready, o_valid, int(ready[cycle])) + out)
            if offering and i_ready:
                pos, offering = pos + 1, False
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return rows


def _documented_timeline(sent, row, steps, rows):
    """What the step buffer must do in each cycle of ``rows`` (a :func:`_trace`), from its docstring (the timeline of
    ``golden.cycles``): ``(i.ready, o.valid, o.index, o.end)`` per cycle."""
    step_words, words = [], {}
    for k, end in sent:
        if end:
            step_words.append([sorted(words[w]) for w in sorted(words)])
            words = {}
        else:
            words.setdefault(k // row, []).append(k)
    taken = [c for c, (valid, end, ready, *_) in enumerate(rows) if valid and ready and end]
    out, step, free, state, held = [], 0, 0, None, 0
    for cycle, (valid, end, _, _, o_ready, _, _) in enumerate(rows):
        i_ready = held < steps  # markers taken and not yet passed on
        if state is None and step < len(taken) and cycle >= max(taken[step] + 3, free):
            state, word = ("fetch" if step_words[step] else "marker"), 0
        if state == "fetch":
            out.append((i_ready, 0, None, None))
            state, spike = "spike", 0
        elif state == "spike":
            out.append((i_ready, 1, step_words[step][word][spike], 0))
            if o_ready:
                spike += 1
                if spike == len(step_words[step][word]):
                    word += 1
                    state = "fetch" if word < len(step_words[step]) else "marker"
        elif state == "marker":
            out.append((i_ready, 1, 0, 1))
            if o_ready:
                state, step, free, held = None, step + 1, cycle + 1, held - 1
        else:
            out.append((i_ready, 0, None, None))
        held += valid and i_ready and end
    return out


@pytest.mark.parametrize("neurons,row,steps", LAYOUT_CASES)
@pytest.mark.parametrize("p_ready,p_gap", [(1.0, 0.0), (0.6, 0.3), (0.3, 0.0)])
def test_step_buffer_layouts_keep_the_timeline(neurons, row, steps, p_ready, p_gap):
    # Both layouts, in every cycle, on both handshakes, against the documented timeline that golden.cycles models
    # (the slow consumer fills all slots, so that ready drops too).
    rng = np.random.default_rng(neurons * 7 + steps)
    sent = _bursty_step_events(rng, neurons, row, steps, 3)
    cycles = int(len(sent) * 1.5 / p_ready) + 300
    ready, gap = rng.random(cycles) < p_ready, rng.random(cycles) < p_gap
    for listed in (False, True):
        rows = _trace(StepBuffer(neurons=neurons, row=row, time_steps=steps, listed=listed), sent, ready, gap)
        got = [(i_ready, o_valid, index, end) for _, _, i_ready, o_valid, _, index, end in rows]
        want = _documented_timeline(sent, row, steps, rows)
        first = next((c for c, (g, w) in enumerate(zip(got, want)) if g != w), None)
        assert first is None, f"listed={listed}, cycle {first}: got {got[first]}, expected {want[first]}"
        markers = sum(1 for _, _, _, valid, o_ready, _, end in rows if valid and o_ready and end)
        assert markers == 3 * steps, f"listed={listed}: {markers} of {3 * steps} steps passed on in {cycles} cycles"
    if p_ready < 0.5 and steps < 3:
        assert not all(r[2] for r in rows), "the buffer never filled up: the ready path went untested"


@pytest.mark.parametrize("neurons,row,steps", LAYOUT_CASES)
@pytest.mark.parametrize("listed", [False, True])
def test_step_buffer_layouts_reorder_and_clear(neurons, row, steps, listed):
    dut = StepBuffer(neurons=neurons, row=row, time_steps=steps, listed=listed)
    assert dut.listed is listed
    bits = max(1, (neurons - 1).bit_length())
    rng = np.random.default_rng(neurons + steps)
    sent, expected = _step_events(rng, neurons, row, steps, 3, 0.3)
    got = run_stream(dut, [pack_spike_event(k, e, bits) for k, e in sent], len(expected), rng=rng, stall=0.3,
                     until=1e-6 * (len(sent) * 6 + len(expected) * 6 + 500))
    assert [unpack_spike_event(p, bits) for p in got] == expected


@pytest.mark.parametrize("listed", [False, True])
def test_step_buffer_layouts_offer_a_step_only_when_complete(listed):
    dut = StepBuffer(neurons=12, row=4, time_steps=2, listed=listed)
    offered = _offers(dut, [(1, 0), (11, 0), (None, None), (0, 1), (None, None), (0, 1)] + [(None, None)] * 10)
    # marker taken at cycle 3, counted at 5; word 0 fetched at 6 (its spike at 7), word 2 at 8 (spike 11 at 9), the
    # marker at 10; the empty second step (marker taken at 5, counted at 7) follows at once: its marker at 11
    assert offered == [(7, 1, 0), (9, 11, 0), (10, 0, 1), (11, 0, 1)]


def _layout(**kwargs):
    dut = StepBuffer(**kwargs)
    dut._MustUse__silence = True  # only asked for its layout
    return dut


def test_step_buffer_default_layout():
    # the hidden layer of the default network: 32 words of 12 pooled neurons, the row number beside them in 16 bits
    fc1 = _layout(neurons=384, row=12, time_steps=4)
    assert (fc1.listed, fc1.rows, fc1.word_bits, fc1.bits) == (True, 32, 16, 2048)
    # four slots of a word count (0 ... 32), a flag and a count of lower words (0 ... 16)
    assert fc1.register_bits == 4 * (6 + 1 + 5)
    # two words a step: a bitmap's two flags per slot are cheaper
    assert not _layout(neurons=28, row=16, time_steps=4).listed
    # 16-bit words leave no room for a row number without a second block RAM
    wide = _layout(neurons=100, row=16, time_steps=4)
    assert (wide.listed, wide.word_bits, wide.register_bits) == (False, 16, 28)
    for neurons, row, steps in LAYOUT_CASES:
        dut = _layout(neurons=neurons, row=row, time_steps=steps)
        depth = steps * dut.rows
        assert ebr_blocks(dut.word_bits, depth) == ebr_blocks(row, depth)
