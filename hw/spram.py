"""The iCE40UP single-port RAM (``SB_SPRAM256KA``, 16K x 16), with a behavioural model for other platforms.

Yosys does not infer the UltraPlus SPRAM and the bitstream does not initialize it, so a design that wants one
instantiates it. :class:`SPRAM` does so when elaborated for an iCE40 platform and elaborates into an equivalent
:class:`amaranth.lib.memory.Memory` elsewhere (simulation, Verilog for Verilator), with the same ports and timing:

- one port, one access per cycle: a write when ``cs & we`` (the nibbles whose ``mask`` bit is set), a read when
  ``cs & ~we``;
- a read returns ``data_out`` at the next cycle and ``data_out`` holds it until the next read (a write or an idle
  cycle leaves it alone in the model; do not rely on ``data_out`` after a write on silicon);
- the contents after configuration are undefined: a user writes before it reads (the model starts at zero).

The low-power controls are tied off (``STANDBY = SLEEP = 0``, ``POWEROFF = 1``, i.e. powered).
"""

from amaranth.hdl import ClockSignal, Instance, Module, Mux
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["SPRAM", "SPRAM_DEPTH", "SPRAM_WIDTH"]

SPRAM_DEPTH = 16384
SPRAM_WIDTH = 16


def _is_ice40(platform):
    from amaranth.vendor import LatticeICE40Platform

    return isinstance(platform, LatticeICE40Platform)


class SPRAM(wiring.Component):
    """One 16K x 16 single-port RAM of the iCE40UP family.

    Members
    -------
    addr : In(14)
        Word address.
    data_in : In(16)
        Write data.
    mask : In(4)
        Nibble write enables (bit ``k`` writes ``data_in[4k:4k+4]``).
    we : In(1)
        Write (1) or read (0).
    cs : In(1)
        Access this cycle.
    data_out : Out(16)
        Word read at the previous access.
    """

    addr: In(14)
    data_in: In(SPRAM_WIDTH)
    mask: In(4)
    we: In(1)
    cs: In(1)
    data_out: Out(SPRAM_WIDTH)

    def elaborate(self, platform):
        m = Module()
        if _is_ice40(platform):
            m.submodules.spram = Instance(
                "SB_SPRAM256KA",
                i_ADDRESS=self.addr,
                i_DATAIN=self.data_in,
                i_MASKWREN=self.mask,
                i_WREN=self.we,
                i_CHIPSELECT=self.cs,
                i_CLOCK=ClockSignal(),
                i_STANDBY=0,
                i_SLEEP=0,
                i_POWEROFF=1,
                o_DATAOUT=self.data_out,
            )
            return m

        m.submodules.mem = mem = Memory(shape=SPRAM_WIDTH, depth=SPRAM_DEPTH, init=[])
        wr = mem.write_port(granularity=4)
        rd = mem.read_port()
        m.d.comb += [
            wr.addr.eq(self.addr),
            wr.data.eq(self.data_in),
            wr.en.eq(Mux(self.cs & self.we, self.mask, 0)),
            rd.addr.eq(self.addr),
            rd.en.eq(self.cs & ~self.we),
            self.data_out.eq(rd.data),
        ]
        return m
