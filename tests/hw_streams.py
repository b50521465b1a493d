"""Stream helpers for the amaranth.sim testbenches of the hardware tests (one producer, one consumer coroutine).

``stream_put`` offers payloads with random idle cycles between them, ``stream_get`` takes a known number of
transfers with random cycles of backpressure; both hold to the stream rules (valid never waits for ready, the
payload holds until the transfer). Payloads are given and returned as plain integers (``hw.layouts.pack``).
"""

import numpy as np
from amaranth.hdl import Value
from amaranth.sim import Simulator

from hw.exclusive import add_checker, watching


def simulator(dut):
    """An amaranth.sim ``Simulator`` of ``dut`` that fails at the first cycle where one of its exclusive memories
    (:mod:`hw.exclusive`) reads the word it writes."""
    with watching() as memories:
        sim = Simulator(dut)
    add_checker(sim, memories)
    return sim


async def stream_put(ctx, port, payloads, *, rng=None, stall=0.0):
    """Transfer every integer of ``payloads`` on ``port`` (an ``In`` stream of the design)."""
    for payload in payloads:
        while rng is not None and rng.random() < stall:
            await ctx.tick()
        target = Value.cast(port.payload)
        payload = int(payload)
        if target.shape().signed and payload >= 1 << (len(target) - 1):
            payload -= 1 << len(target)
        ctx.set(port.valid, 1)
        ctx.set(target, payload)
        await ctx.tick().until(port.ready)
        ctx.set(port.valid, 0)


async def stream_get(ctx, port, count, *, rng=None, stall=0.0):
    """Take ``count`` transfers from ``port`` (an ``Out`` stream of the design); return their payloads as ints."""
    got = []
    for _ in range(count):
        while rng is not None and rng.random() < stall:
            await ctx.tick()
        ctx.set(port.ready, 1)
        target = Value.cast(port.payload)
        payload, = await ctx.tick().sample(target).until(port.valid)
        ctx.set(port.ready, 0)
        got.append(int(payload) & ((1 << len(target)) - 1))
    return got


def spike_train_events(train):
    """Spike events ``(index, end)`` of a (T, n) bool train: each step's spikes ascending, then a marker."""
    events = []
    for step in np.asarray(train, dtype=bool):
        events += [(int(k), 0) for k in np.flatnonzero(step)]
        events.append((0, 1))
    return events


def run_stream(dut, payloads, count, *, rng=None, stall=0.0, until):
    """Simulate ``dut``: put ``payloads`` into ``dut.i`` and take ``count`` payloads from ``dut.o``, both with
    random stalls, for ``until`` seconds of a 1 MHz clock. Returns the payloads taken."""
    got = []

    async def producer(ctx):
        await stream_put(ctx, dut.i, payloads, rng=rng, stall=stall)

    async def consumer(ctx):
        got.extend(await stream_get(ctx, dut.o, count, rng=rng, stall=stall))

    sim = simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run_until(until)
    return got


def step_lengths(dut, events, in_bits, cycles):
    """Feed spike ``events`` ``(index, end)`` to ``dut.i`` with ``valid`` always high (while any is left) and
    ``dut.o.ready`` always high, for ``cycles`` cycles; return each step's cycles, from its first input transfer (for
    a later step: the cycle after the previous marker's transfer) to its marker's transfer, both counted."""
    from hw.layouts import pack_spike_event

    log = []

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        k = 0
        for cycle in range(cycles):
            if k < len(events):
                ctx.set(dut.i.valid, 1)
                ctx.set(dut.i.payload.as_value(), pack_spike_event(*events[k], in_bits))
            else:
                ctx.set(dut.i.valid, 0)
            if k < len(events) and ctx.get(dut.i.ready):
                log.append((cycle, "in"))
                k += 1
            if ctx.get(dut.o.valid) and ctx.get(dut.o.payload.end):
                log.append((cycle, "marker"))
            await ctx.tick()

    sim = simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    markers = [c for c, kind in log if kind == "marker"]
    firsts = [log[0][0]] + [c + 1 for c in markers[:-1]]
    return [m - f + 1 for f, m in zip(firsts, markers)]
