"""Queue under random stalls on both sides: every entry comes out once, in order; its latency is LATENCY."""

import numpy as np
import pytest
from amaranth.sim import Simulator

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


def test_step_buffer_offers_a_step_only_when_complete():
    dut = StepBuffer(neurons=8, row=4, time_steps=2)
    offered = []

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        for cycle, (index, end) in enumerate([(1, 0), (6, 0), (None, None), (0, 1)] + [(None, None)] * 8):
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
    # marker taken at cycle 3, written at 4 (the input is registered), counted at 5 (with the last flag); fetch of
    # word 0 at 6, spike 1 at 7, fetch of word 1 at 8, spike 6 at 9, marker at 10
    assert offered == [(7, 1, 0), (9, 6, 0), (10, 0, 1)]


def test_step_buffer_refuses_bad_parameters():
    with pytest.raises(ValueError, match="step buffer row must be an integer from 1 to 64, not 65"):
        StepBuffer(neurons=100, row=65, time_steps=2)
