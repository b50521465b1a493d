"""A core's constant memory (its weights) in block RAM or in SPRAM, behind one read port, and its start-up load.

A core asks :class:`WeightMemory` for a ROM and reads it through ``read``, which behaves exactly as the read port of
an :class:`amaranth.lib.memory.Memory` (``read.addr`` in, ``read.data`` one cycle later, held while ``read.en`` is
low), wherever the plan put it (:attr:`hw.kinds.memory.Memory.kind`):

- ``"rom"``: an initialized ``Memory``; block RAM (or logic), set by the bitstream;
- ``"spram_rom"``: the device's SPRAMs (:class:`hw.spram.SPRAM`, 16-bit words), ``ceil(width / 16)`` banks side by
  side, each ``ceil(depth / 16384)`` SPRAMs deep. The bitstream does not initialize an SPRAM (the simulation model
  starts at zero), so the words arrive after configuration through ``load``, 16 bits at a time.

**The load port** (:data:`LOAD_SIGNATURE`, seen from the loader): ``words`` carries the memory's image, its rows
in address order and each row's banks from the least significant (:func:`image_words`); every word offered is
taken (``ready`` is always high) until the memory is ``full``; ``restart`` (one cycle) empties it to be loaded
again. A block-RAM memory is always ``full`` and takes no word. The ports of several memories are chained by
:func:`chain_loads`: the words go to the first memory that is not full, so the image of a design is the images of
its SPRAM-resident memories one after the other, in the order of the chain (:func:`image`).

A core whose plan holds a ``"spram_rom"`` memory has a member ``load: In(LOAD_SIGNATURE)``;
:class:`hw.network.Network` chains those of its cores in layer order and offers the result as its own ``load``;
:class:`boards.engine.ProtocolEngine` feeds it from the ``load`` command of the host protocol (docs/protocol.md).
"""

from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory, ReadPort
from amaranth.lib.wiring import In, Out

from .spram import SPRAM, SPRAM_DEPTH, SPRAM_WIDTH

__all__ = ["LOAD_SIGNATURE", "WeightMemory", "chain_loads", "image_words", "image", "image_crc", "IMAGE_WORD_BYTES"]

#: The load port, as the loader sees it: 16-bit words out, a restart pulse out, the memory's ``full`` in.
LOAD_SIGNATURE = wiring.Signature({
    "words": Out(stream.Signature(SPRAM_WIDTH)),
    "restart": Out(1),
    "full": In(1),
})

#: Bytes of one word of a weight image (sent least significant byte first).
IMAGE_WORD_BYTES = SPRAM_WIDTH // 8


def _banks(width):
    return -(-width // SPRAM_WIDTH)


def image_words(width, depth, words):
    """The load image of one memory: for each of the ``depth`` words (integers of ``width`` bits, two's
    complement is the caller's business), its ``ceil(width / 16)`` 16-bit slices from the least significant."""
    if len(words) != depth:
        raise ValueError(f"a memory of depth {depth} needs {depth} words, not {len(words)}")
    out = []
    for word in words:
        word = int(word)
        if not 0 <= word < 1 << width:
            raise ValueError(f"word {word} does not fit {width} unsigned bits")
        out += [(word >> (SPRAM_WIDTH * b)) & 0xFFFF for b in range(_banks(width))]
    return out


def image(plan):
    """The weight image of a plan: the 16-bit words of every ``"spram_rom"`` memory, in layer order (the order of
    :class:`hw.network.Network`'s load chain); an empty list when the plan keeps every constant in block RAM.

    Each kind that puts a memory there says what it holds (:attr:`hw.kinds.Kind.rom_words`)."""
    out = []
    for lp in plan.layers:
        for mem in lp.memories:
            if mem.kind == "spram_rom":
                out += image_words(mem.width, mem.depth, plan.kind(lp).rom_words(lp, mem.name))
    return out


def image_crc(words):
    """CRC-16/CCITT-FALSE of an image's bytes (``boards.protocol.crc16``; each word least significant byte first)."""
    from boards.protocol import crc16

    return crc16(bytes(b for w in words for b in (w & 0xFF, w >> 8)))


class WeightMemory(wiring.Component):
    """A ROM of ``depth`` words of ``shape``, in block RAM or in SPRAM, with the read port of a ``Memory``.

    Parameters
    ----------
    shape : ShapeCastable
        The word (an ``ArrayLayout`` of lanes, say).
    depth : int
    init : list of int
        The ``depth`` words as raw unsigned integers of ``Shape.cast(shape).width`` bits.
    place : str
        ``"rom"`` (an initialized ``Memory``) or ``"spram_rom"`` (SPRAMs, loaded through ``load``).

    Members
    -------
    read : Out(ReadPort.Signature(addr_width, shape))
        ``addr``, ``en`` (default 1) in, ``data`` out: the word at ``addr`` of the last cycle with ``en`` high.
    load : In(LOAD_SIGNATURE)
        The memory's image in, 16 bits a word (see the module docstring).

    Raises
    ------
    ValueError
        If ``place`` is unknown, ``depth`` is not positive or ``init`` does not have ``depth`` words.
    """

    def __init__(self, *, shape, depth, init, place):
        if place not in ("rom", "spram_rom"):
            raise ValueError(f"place must be 'rom' or 'spram_rom', not {place!r}")
        if not isinstance(depth, int) or depth < 1:
            raise ValueError(f"depth must be a positive integer, not {depth!r}")
        init = [int(word) for word in init]
        if len(init) != depth:
            raise ValueError(f"init has {len(init)} words, the memory {depth}")
        self._shape, self._depth, self._init, self._place = shape, depth, init, place
        super().__init__({
            "read": Out(ReadPort.Signature(addr_width=max(1, (depth - 1).bit_length()), shape=shape)),
            "load": In(LOAD_SIGNATURE),
        })

    @property
    def place(self):
        return self._place

    @property
    def width(self):
        return Shape.cast(self._shape).width

    @property
    def sprams(self):
        """SPRAMs it takes (0 in block RAM)."""
        if self._place == "rom":
            return 0
        return _banks(self.width) * -(-self._depth // SPRAM_DEPTH)

    def elaborate(self, platform):
        m = Module()
        width, depth = self.width, self._depth
        if self._place == "rom":
            m.submodules.rom = rom = Memory(shape=width, depth=depth, init=self._init)
            rd = rom.read_port()
            m.d.comb += [rd.addr.eq(self.read.addr), rd.en.eq(self.read.en), self.read.data.eq(rd.data),
                         self.load.full.eq(1)]
            return m

        banks, stacks = _banks(width), -(-depth // SPRAM_DEPTH)
        low = (SPRAM_DEPTH - 1).bit_length()

        # -- load: 16-bit words fill bank 0, 1, ... of row 0, then row 1, ...; full after the last -----------------
        full = Signal()
        bank = Signal(range(banks))
        row = Signal(range(depth))
        write = Signal()
        m.d.comb += [self.load.full.eq(full), self.load.words.ready.eq(1),
                     write.eq(self.load.words.valid & ~full)]
        with m.If(self.load.restart):
            m.d.sync += [full.eq(0), bank.eq(0), row.eq(0)]
        with m.Elif(write):
            with m.If(bank == banks - 1):
                m.d.sync += bank.eq(0)
                with m.If(row == depth - 1):
                    m.d.sync += full.eq(1)
                with m.Else():
                    m.d.sync += row.eq(row + 1)
            with m.Else():
                m.d.sync += bank.eq(bank + 1)

        # -- the SPRAMs: stack s holds rows s * 16384 ..., bank b bits 16b ... 16b + 15 ----------------------------
        addr = Mux(write, row, self.read.addr)
        stack_sel = Signal(range(max(2, stacks)))     # the stack of the last read
        with m.If(self.read.en & ~write):
            m.d.sync += stack_sel.eq(self.read.addr[low:] if stacks > 1 else 0)
        rows = []
        for s in range(stacks):
            here = (addr[low:] == s) if stacks > 1 else Const(1)
            outs = []
            for b in range(banks):
                m.submodules[f"spram{s}_{b}"] = spram = SPRAM()
                m.d.comb += [
                    spram.addr.eq(addr[:low]),
                    spram.data_in.eq(self.load.words.payload),
                    spram.mask.eq(0xF),
                    spram.we.eq(write & (bank == b)),
                    spram.cs.eq(here & Mux(write, bank == b, self.read.en)),
                ]
                outs.append(spram.data_out)
            rows.append(Cat(*outs)[:width])
        data = rows[0]
        for s in range(1, stacks):
            data = Mux(stack_sel == s, rows[s], data)
        m.d.comb += self.read.data.eq(data)
        return m


def chain_loads(m, source, ports):
    """Chain the load ports ``ports`` (each ``In(LOAD_SIGNATURE)`` of a submodule) behind ``source`` (the loader's
    side, ``In(LOAD_SIGNATURE)`` flipped: the enclosing component's own ``load``): the words go to the first port
    that is not full and are dropped once all are; ``restart`` reaches every port; ``full`` when all are."""
    before = Const(1)
    for port in ports:
        m.d.comb += [
            port.words.valid.eq(source.words.valid & before),
            port.words.payload.eq(source.words.payload),
            port.restart.eq(source.restart),
        ]
        before = before & port.full
    m.d.comb += [source.words.ready.eq(1), source.full.eq(before)]
