# amaranth: UnusedElaboratable=no
"""OrPool against golden.network.or_pool, under random stalls, alone and chained."""

import numpy as np
import pytest
from amaranth.hdl import Elaboratable, Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from golden.network import or_pool
from golden.manifest import Pool
from hw.plan import plan_layer
from hw.pool import OrPool, div_const


def make_pool(shape, kernel, steps, registered=False):
    return OrPool(plan_layer(Pool(name="pool1", kernel=tuple(kernel)), shape, steps, on_map=False,
                             options={"registered": registered}))


class _Chain(Elaboratable):
    def __init__(self, first, second):
        self.first, self.second = first, second
        self.i, self.o = first.i, second.o

    def elaborate(self, platform):
        m = Module()
        m.submodules.first, m.submodules.second = self.first, self.second
        wiring.connect(m, self.first.o, self.second.i)
        return m


def simulate(dut, spikes, *, seed, stall_in, stall_out):
    """Feed ``spikes`` (N, T, C*H*W) as ascending events; return the output events [sample][step]."""
    rng = np.random.default_rng(seed)
    n, steps, _ = spikes.shape
    got = [[[] for _ in range(steps)] for _ in range(n)]
    same_cycle = []

    async def producer(ctx):
        for sample in range(n):
            for t in range(steps):
                for index, end in [(int(i), 0) for i in np.flatnonzero(spikes[sample, t])] + [(0, 1)]:
                    while rng.random() < stall_in:
                        await ctx.tick()
                    ctx.set(dut.i.payload, {"index": index, "end": end})
                    ctx.set(dut.i.valid, 1)
                    await ctx.tick().until(dut.i.ready)
                    ctx.set(dut.i.valid, 0)

    async def consumer(ctx):
        for sample in range(n):
            for t in range(steps):
                while True:
                    ready = not rng.random() < stall_out
                    ctx.set(dut.o.ready, ready)
                    _, _, valid, payload, iv, ir = await ctx.tick().sample(dut.o.valid, dut.o.payload,
                                                                           dut.i.valid, dut.i.ready)
                    if valid and ready:
                        same_cycle.append(bool(iv and ir))
                        if payload.end:
                            break
                        got[sample][t].append(int(payload.index))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run()
    if not getattr(dut, "plan", None) or not dut.plan.registered:
        assert all(same_cycle), "an output transfer must take its input in the same cycle"
    return got


def _rows_grouped(indices, width):
    rows = [i // width for i in indices]
    return rows == sorted(rows)


@pytest.mark.parametrize("shape,kernel,density,stall_in,stall_out", [
    ((4, 16, 48), (2, 4), 0.1, 0.0, 0.0),
    ((2, 5, 7), (2, 3), 0.5, 0.3, 0.3),
    ((3, 4, 5), (1, 2), 0.7, 0.2, 0.5),
    ((1, 6, 6), (3, 3), 0.3, 0.5, 0.2),
    ((2, 3, 3), (3, 3), 0.9, 0.1, 0.1),
    ((2, 4, 4), (1, 1), 0.4, 0.2, 0.2),
])
@pytest.mark.parametrize("registered", [False, True])
def test_pool_matches_golden(shape, kernel, density, stall_in, stall_out, registered):
    rng = np.random.default_rng(sum(shape) + sum(kernel))
    n, steps = 2, 3
    spikes = rng.random((n, steps, int(np.prod(shape)))) < density
    dut = make_pool(shape, kernel, steps, registered)
    got = simulate(dut, spikes, seed=1, stall_in=stall_in, stall_out=stall_out)
    pooled = or_pool(spikes.reshape((n * steps,) + shape), kernel).reshape(n, steps, -1)
    wp = shape[2] // kernel[1]
    for sample in range(n):
        for t in range(steps):
            events = got[sample][t]
            assert sorted(events) == np.flatnonzero(pooled[sample, t]).tolist(), f"sample {sample} step {t}"
            assert len(set(events)) == len(events)
            assert _rows_grouped(events, wp)
            if kernel[0] == 1:
                assert events == sorted(events)


def test_pool_chain():
    """A pool after a pool: the first pool's order is a valid input order for the second."""
    shape, k1, k2 = (2, 8, 12), (2, 2), (2, 3)
    first = make_pool(shape, k1, 2)
    second = make_pool(first.out_shape, k2, 2)
    rng = np.random.default_rng(5)
    spikes = rng.random((2, 2, int(np.prod(shape)))) < 0.08
    got = simulate(_Chain(first, second), spikes, seed=2, stall_in=0.3, stall_out=0.3)
    flat = spikes.reshape((4,) + shape)
    want = or_pool(or_pool(flat, k1), k2).reshape(2, 2, -1)
    for sample in range(2):
        for t in range(2):
            assert sorted(got[sample][t]) == np.flatnonzero(want[sample, t]).tolist()


@pytest.mark.parametrize("divisor,limit", [
    (3, 1000), (48, 3072), (7, 4096), (5, 17), (16, 300), (1, 9), (12, 100), (6, 50),
])
def test_div_const(divisor, limit):
    from amaranth.hdl import Signal

    value = Signal(range(limit))
    quotient = div_const(value, divisor, limit)
    results = []
    # Every value of small ranges; for large ones every multiple of the divisor and its neighbours.
    values = list(range(limit)) if limit <= 1024 else \
        sorted({v for q in range(0, limit, divisor) for v in (q - 1, q, q + 1) if 0 <= v < limit}) + [limit - 1]

    async def testbench(ctx):
        for v in values:
            ctx.set(value, v)
            results.append(ctx.get(quotient))

    m = Module()
    m.d.comb += Signal().eq(quotient)
    sim = Simulator(m)
    sim.add_testbench(testbench)
    sim.run()
    assert results == [v // divisor for v in values]


def test_pool_refuses_bad_shapes():
    with pytest.raises(ValueError, match="^layer pool1: pool kernel 3x2 does not fit the 2x5 map$"):
        make_pool((1, 2, 5), (3, 2), 1)
    with pytest.raises(ValueError, match=r"^layer pool1: input dimension must be an integer of at least 1, not 0$"):
        make_pool((1, 0, 5), (1, 1), 1)
    with pytest.raises(TypeError, match="^OrPool needs a hw.kinds.pool.PoolPlan"):
        OrPool((1, 2, 5))


def test_conv_then_pool():
    """The conv core's output through the pool: the pooled events of the golden model, and no extra cycle."""
    from golden.network import run
    from golden.randmodel import random_inputs, random_model
    from hw.conv import ConvLayer, conv_cycles

    model = random_model(8, input_shape=(2, 6, 8), out_channels=2, kernel=(3, 3), stride=(1, 1),
                         padding=(1, 1), pool=(2, 3), time_steps=3)
    conv, pool = model.layers[0], model.layers[1]
    inputs = random_inputs(model, 2, np.random.default_rng(1))
    result = run(model, inputs)
    core = ConvLayer(plan_layer(conv, model.input_shape, 3, on_map=True))
    dut = _Chain(core, make_pool(model.shapes[0][1], pool.kernel, 3))
    rng = np.random.default_rng(2)
    got = [[[] for _ in range(3)] for _ in range(2)]
    ends = []                                   # (cycles so far, output stall cycles so far) per sample

    async def producer(ctx):
        for value in inputs.ravel():
            ctx.set(dut.i.payload, int(value))
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)

    async def consumer(ctx):
        cycle = stalls = 0
        for sample in range(2):
            for t in range(3):
                while True:
                    ready = rng.random() < 0.7
                    ctx.set(dut.o.ready, ready)
                    _, _, valid, payload, conv_valid = await ctx.tick().sample(dut.o.valid, dut.o.payload,
                                                                               core.o.valid)
                    cycle += 1
                    if conv_valid and not ready:
                        stalls += 1
                    if valid and ready:
                        if payload.end:
                            break
                        got[sample][t].append(int(payload.index))
            ends.append((cycle, stalls))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run()
    want = result.spikes[pool.name]
    for sample in range(2):
        for t in range(3):
            assert sorted(got[sample][t]) == np.flatnonzero(want[sample, t]).tolist()
    # No input stall: the first sample ends after the conv core's own cycles plus the output stalls.
    cycles, stalls = ends[0]
    assert stalls > 0
    assert cycles == conv_cycles(core.plan, result.spikes[conv.name][0]) + stalls


def test_registered_pool_is_one_cycle_later():
    """Always ready downstream: the registered pool passes each event and marker one cycle after the plain one."""
    shape, kernel, steps = (2, 4, 6), (2, 2), 2
    rng = np.random.default_rng(3)
    events = []
    for step in rng.random((steps, int(np.prod(shape)))) < 0.4:
        events += [(int(k), 0) for k in np.flatnonzero(step)] + [(0, 1)]
    logs = []
    for registered in (False, True):
        dut = make_pool(shape, kernel, steps, registered)
        log = []

        async def bench(ctx, dut=dut, log=log):
            ctx.set(dut.o.ready, 1)
            k = 0
            for cycle in range(len(events) + 4):
                if k < len(events):
                    ctx.set(dut.i.valid, 1)
                    ctx.set(dut.i.payload.index, events[k][0])
                    ctx.set(dut.i.payload.end, events[k][1])
                else:
                    ctx.set(dut.i.valid, 0)
                assert ctx.get(dut.i.ready)
                if ctx.get(dut.o.valid):
                    log.append((cycle, ctx.get(dut.o.payload.index), ctx.get(dut.o.payload.end)))
                k += k < len(events)
                await ctx.tick()

        sim = Simulator(dut)
        sim.add_clock(1e-6)
        sim.add_testbench(bench)
        sim.run()
        logs.append(log)
    assert logs[1] == [(cycle + 1, index, end) for cycle, index, end in logs[0]]
    from hw.pool import timeline
    markers = np.array([[c for c, _, end in logs[0] if end]])
    plan = make_pool(shape, kernel, steps, True).plan
    assert timeline(plan, markers, None, None)["markers"].tolist() == [[c for c, _, end in logs[1] if end]]
