"""SPRAM: the behavioural model against a Python model; the iCE40 elaboration is the SB_SPRAM256KA primitive."""

import numpy as np
from amaranth.hdl import Fragment, Instance
from amaranth.sim import Simulator

from hw.spram import SPRAM, SPRAM_DEPTH


def test_model_reads_writes_and_masks():
    dut = SPRAM()
    rng = np.random.default_rng(4)
    shadow = {}
    checks = []

    async def testbench(ctx):
        expected = 0
        for cycle in range(400):
            addr = int(rng.choice([0, 1, 2, 3, SPRAM_DEPTH - 1, int(rng.integers(0, SPRAM_DEPTH))]))
            cs = int(rng.random() < 0.9)
            we = int(rng.random() < 0.5)
            mask = int(rng.integers(0, 16))
            value = int(rng.integers(0, 1 << 16))
            ctx.set(dut.addr, addr)
            ctx.set(dut.cs, cs)
            ctx.set(dut.we, we)
            ctx.set(dut.mask, mask)
            ctx.set(dut.data_in, value)
            await ctx.tick()
            if cs and we:
                old = shadow.get(addr, 0)
                for k in range(4):
                    if mask >> k & 1:
                        old = (old & ~(0xf << 4 * k)) | (value & (0xf << 4 * k))
                shadow[addr] = old
            elif cs:
                expected = shadow.get(addr, 0)
            checks.append((ctx.get(dut.data_out), expected))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert all(got == want for got, want in checks)
    assert len({want for _, want in checks}) > 20


def test_ice40_elaborates_to_primitive():
    from amaranth_boards.icebreaker import ICEBreakerPlatform

    fragment = Fragment.get(SPRAM(), ICEBreakerPlatform())
    found = []

    def walk(frag):
        for sub, _, _ in frag.subfragments:
            if isinstance(sub, Instance):
                found.append(sub.type)
            else:
                walk(sub)

    walk(fragment)
    assert found == ["SB_SPRAM256KA"]
