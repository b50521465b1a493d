# amaranth: UnusedElaboratable=no
"""Queue under random stalls on both sides: every entry comes out once, in order; its latency is LATENCY."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.fifo import LATENCY, Queue
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
