"""The iCE40UP single-port RAM (``SB_SPRAM256KA``, 16K x 16), with a behavioural model for other platforms.

Yosys does not infer the UltraPlus SPRAM and the bitstream does not initialize it, so a design that wants one
instantiates it. :class:`SPRAM` does so when elaborated for an iCE40 platform and elaborates into an equivalent
:class:`amaranth.lib.memory.Memory` elsewhere (simulation, Verilog for Verilator), with the same ports and timing:

- one port, one access per cycle: a write when ``cs & we`` (the nibbles whose ``mask`` bit is set), a read when
  ``cs & ~we``;
- a read returns ``data_out`` at the next cycle and ``data_out`` holds it until the next read (a write or an idle
  cycle leaves it alone in the model; do not rely on ``data_out`` after a write on silicon);
- the contents after configuration are undefined: a user writes before it reads (the model starts at zero, or at
  the ``power_up`` words it is given, so that a simulation can show a design does not read what it never wrote).

:class:`SPRAMArray` puts a single-port RAM of any width and depth on as many of them as it needs (banks side by side
for the width, stacked for the depth), the way a core keeps writable state there (:mod:`hw.sweep`).

The low-power controls are tied off (``STANDBY = SLEEP = 0``, ``POWEROFF = 1``, i.e. powered).
"""

from amaranth.hdl import Array, Cat, ClockSignal, Const, Instance, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["SPRAM", "SPRAMArray", "SPRAM_DEPTH", "SPRAM_WIDTH", "garbage"]

SPRAM_DEPTH = 16384
SPRAM_WIDTH = 16


def _is_ice40(platform):
    from amaranth.vendor import LatticeICE40Platform

    return isinstance(platform, LatticeICE40Platform)


def garbage(words, seed):
    """``words`` fixed pseudo-random 16-bit words (``seed`` picks the pattern): the contents a simulation model
    gives an SPRAM at power-up to stand for the undefined contents of the silicon."""
    state = (seed * 0x9E3779B1 + 0x7F4A7C15) & 0xFFFFFFFF or 1
    out = []
    for _ in range(words):
        state ^= (state << 13) & 0xFFFFFFFF
        state ^= state >> 17
        state ^= (state << 5) & 0xFFFFFFFF
        out.append(state & 0xFFFF)
    return out


class SPRAM(wiring.Component):
    """One 16K x 16 single-port RAM of the iCE40UP family.

    Parameters
    ----------
    power_up : sequence of int, optional
        The behavioural model's contents at power-up, from word 0 (the rest zero); ignored on an iCE40, whose
        contents are undefined.

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

    def __init__(self, *, power_up=()):
        self._power_up = [int(w) & 0xFFFF for w in power_up]
        if len(self._power_up) > SPRAM_DEPTH:
            raise ValueError(f"power_up must hold at most {SPRAM_DEPTH} words, not {len(self._power_up)}")
        super().__init__()

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

        m.submodules.mem = mem = Memory(shape=SPRAM_WIDTH, depth=SPRAM_DEPTH, init=self._power_up)
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


class SPRAMArray(wiring.Component):
    """A single-port RAM of ``width`` x ``depth`` on :class:`SPRAM` blocks: ``ceil(width / 16)`` banks side by side,
    each ``ceil(depth / 16384)`` blocks deep, every access on all banks of one stack at once.

    Parameters
    ----------
    width, depth : int
    power_up_seed : int or None
        Give the behavioural models fixed pseudo-random contents at power-up (:func:`garbage`), a pattern per
        block; ``None``: zero.

    Members
    -------
    addr : In(range(depth))
    data_in : In(width)
    we : In(1)
        Write (1) or read (0).
    en : In(1)
        Access this cycle.
    data_out : Out(width)
        The word read at the last read access (held until the next one).

    Raises
    ------
    ValueError
        If ``width`` or ``depth`` is not positive.
    """

    def __init__(self, *, width, depth, power_up_seed=None):
        if int(width) < 1 or int(depth) < 1:
            raise ValueError(f"an SPRAM array needs a positive width and depth, not {width} x {depth}")
        self._width, self._depth, self._seed = int(width), int(depth), power_up_seed
        self._banks = -(-self._width // SPRAM_WIDTH)
        self._stacks = -(-self._depth // SPRAM_DEPTH)
        super().__init__({
            "addr": In(range(max(2, self._depth))),
            "data_in": In(self._width),
            "we": In(1),
            "en": In(1),
            "data_out": Out(self._width),
        })

    @property
    def blocks(self):
        """The SPRAMs it takes."""
        return self._banks * self._stacks

    def elaborate(self, platform):
        m = Module()
        low = (SPRAM_DEPTH - 1).bit_length()
        stack = Signal(range(max(2, self._stacks)))   # the stack of the last read, whose outputs are shown
        here = [Const(1)] if self._stacks == 1 else [self.addr[low:] == s for s in range(self._stacks)]
        if self._stacks > 1:
            with m.If(self.en & ~self.we):
                m.d.sync += stack.eq(self.addr[low:])
        outs = []
        for s in range(self._stacks):
            row = []
            for b in range(self._banks):
                words = min(SPRAM_DEPTH, self._depth - s * SPRAM_DEPTH)
                init = () if self._seed is None else garbage(words, self._seed * 64 + s * self._banks + b)
                m.submodules[f"spram{s}_{b}"] = spram = SPRAM(power_up=init)
                m.d.comb += [
                    spram.addr.eq(self.addr[:low]),
                    spram.data_in.eq(self.data_in[SPRAM_WIDTH * b:SPRAM_WIDTH * (b + 1)]),
                    spram.mask.eq(0xF),
                    spram.we.eq(self.we),
                    spram.cs.eq(self.en & here[s]),
                ]
                row.append(spram.data_out)
            outs.append(Cat(*row))
        m.d.comb += self.data_out.eq(Array(outs)[stack] if self._stacks > 1 else outs[0])
        return m
