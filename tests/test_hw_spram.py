# amaranth: UnusedElaboratable=no
"""SPRAM: the behavioural model against a Python model; the iCE40 elaboration is the SB_SPRAM256KA primitive."""

import numpy as np
import pytest
from amaranth.hdl import Fragment, Instance
from amaranth.sim import Simulator

from hw.spram import SPRAM, SPRAM_DEPTH, SPRAMArray, garbage


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


@pytest.mark.parametrize("width,depth", [(15, 300), (20, 40), (16, SPRAM_DEPTH + 50)])
def test_array_reads_what_was_written_over_garbage(width, depth):
    """An SPRAMArray starts from garbage (power_up_seed), reads back what was written, across banks and stacks,
    and holds its output until the next read."""
    dut = SPRAMArray(width=width, depth=depth, power_up_seed=3)
    assert dut.blocks == -(-width // 16) * -(-depth // SPRAM_DEPTH)
    rng = np.random.default_rng(width)
    addrs = sorted({0, depth - 1, *(int(a) for a in rng.integers(0, depth, 30))})
    values = {a: int(rng.integers(0, 1 << width)) for a in addrs}
    seen = []

    async def testbench(ctx):
        for a in addrs[:4]:                      # garbage before anything is written
            ctx.set(dut.addr, a)
            ctx.set(dut.en, 1)
            await ctx.tick()
            seen.append(ctx.get(dut.data_out))
        ctx.set(dut.we, 1)
        for a in addrs:
            ctx.set(dut.addr, a)
            ctx.set(dut.data_in, values[a])
            await ctx.tick()
        ctx.set(dut.we, 0)
        for a in addrs:
            ctx.set(dut.addr, a)
            ctx.set(dut.en, 1)
            await ctx.tick()
            ctx.set(dut.en, 0)
            assert ctx.get(dut.data_out) == values[a]
            await ctx.tick()                     # an idle cycle holds the output
            assert ctx.get(dut.data_out) == values[a]

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert any(seen)


def test_array_refuses_empty():
    with pytest.raises(ValueError, match=r"^an SPRAM array needs a positive width and depth, not 0 x 4$"):
        SPRAMArray(width=0, depth=4)
    with pytest.raises(ValueError, match=r"^power_up must hold at most 16384 words, not 16385$"):
        SPRAM(power_up=[0] * (SPRAM_DEPTH + 1))


def test_garbage_is_fixed_and_differs_by_seed():
    assert garbage(8, 1) == garbage(8, 1) != garbage(8, 2)
    assert all(0 <= w < 1 << 16 for w in garbage(100, 5)) and len(set(garbage(100, 5))) > 90
