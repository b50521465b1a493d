"""Memories whose read port never reads the word being written: said to synthesis, checked in simulation.

An Amaranth memory's read port that is not transparent reads the *old* word when a write to the same address happens
in the same cycle. The iCE40's block RAM promises nothing in that case, so Yosys keeps the promise with logic of its
own for every such port: a register of the write data, a register of the read data, an address comparator and a
multiplexer. For a 16-bit word that is 32 flip-flops, nearly all of them in logic cells of their own (nextpnr packs a
flip-flop with the LUT in front of it only where that LUT drives nothing else), and a few dozen LUTs. Measured on
``models/fsdd_deep2`` (11 such ports): 239 LUT4 and 346 flip-flops, 522 of its 5,999 logic cells.

Most cores never read and write one word in the same cycle: a step buffer reads a complete step while its writer
fills a later one, a convolution writes its spike bitmaps while it computes and reads them while it emits, a sweep
writes neuron ``n`` while it reads ``n + 1`` or ``n + 2``. For those the bypass is waste. :class:`ExclusiveMemory`
is such a memory, one read port and one write port, marked with the attribute :data:`ATTRIBUTE`;
:data:`SYNTHESIS_SCRIPT`, which the build flow runs right after reading the design (``script_after_read``), tells
Yosys that a read meeting a write on a marked memory may return anything, so it builds no bypass.

The promise is checked, not trusted: inside :func:`watching`, every :class:`ExclusiveMemory` that is elaborated
is recorded, and :func:`add_checker` adds an amaranth.sim process that fails on any clock edge at which a recorded
memory's read port is enabled on the address its write port writes. The testbenches of the cores and of whole
networks (``tests/hw_streams.py``) run under that check, so a core whose memory is marked wrongly fails its tests.
"""

from contextlib import contextmanager

from amaranth.hdl import Value
from amaranth.lib.memory import Memory

__all__ = ["ATTRIBUTE", "SYNTHESIS_SCRIPT", "ExclusiveMemory", "watching", "add_checker", "CollisionError"]

#: The RTLIL attribute of a memory whose read port never reads the word its write port writes in the same cycle.
ATTRIBUTE = "spikesmith_exclusive"

#: Yosys commands run after reading the design: processes to netlists (``memory_collect`` skips a module that still
#: has processes), each memory gathered into one cell (it keeps the memory's attributes) and, on the marked ones (one
#: read and one write port: one bit of collision mask), a read that meets a write made undefined, so that no bypass
#: is built. Unmarked memories keep Amaranth's read-old-data meaning.
SYNTHESIS_SCRIPT = f"proc\nmemory_collect\nsetparam -set RD_COLLISION_X_MASK 1'1 t:$mem_v2 a:{ATTRIBUTE} %i"


class CollisionError(AssertionError):
    """A marked memory read the word being written (raised by the :func:`add_checker` process)."""


_recorders = []


class ExclusiveMemory(Memory):
    """A :class:`amaranth.lib.memory.Memory` with the attribute :data:`ATTRIBUTE`: its user promises one write port
    and one synchronous read port, never enabled on the address being written in the same cycle. Elaborated inside
    :func:`watching`, it records itself for :func:`add_checker`.

    Raises
    ------
    ValueError
        At elaboration, if it has other than one write port and one synchronous read port.
    """

    def __init__(self, *, shape, depth, init):
        super().__init__(shape=shape, depth=depth, init=init, attrs={ATTRIBUTE: 1}, src_loc_at=1)

    def elaborate(self, platform):
        reads, writes = self.read_ports, self.write_ports
        if len(reads) != 1 or len(writes) != 1 or reads[0].domain == "comb":
            raise ValueError(f"an exclusive memory needs one write port and one synchronous read port, not "
                             f"{len(writes)} write and {len(reads)} read ports")
        for record in _recorders:
            record(self)
        return super().elaborate(platform)


@contextmanager
def watching():
    """Record every :class:`ExclusiveMemory` elaborated in the block (build the simulator inside it: it elaborates
    the design); yields the list they are appended to."""
    found = []
    _recorders.append(found.append)
    try:
        yield found
    finally:
        _recorders.remove(found.append)


def add_checker(sim, memories, *, domain="sync"):
    """Add a process to the amaranth.sim ``sim`` that raises :class:`CollisionError` at the first active edge of
    ``domain`` where one of ``memories`` (from :func:`watching`) reads the address its write port writes (a
    background testbench: it never keeps the simulation running)."""
    if not memories:
        return
    ports = [(mem, mem.read_ports[0], mem.write_ports[0]) for mem in memories]
    signals = []
    for _, rd, wr in ports:
        signals += [rd.en, rd.addr, Value.cast(wr.en).any(), wr.addr]

    async def checker(ctx):
        async for values in ctx.tick(domain).sample(*signals):
            sampled = values[-len(signals):]
            for k, (mem, _, _) in enumerate(ports):
                rd_en, rd_addr, wr_en, wr_addr = sampled[4 * k:4 * k + 4]
                if rd_en and wr_en and rd_addr == wr_addr:
                    raise CollisionError(f"exclusive memory {mem!r} ({mem.src_loc[0]}:{mem.src_loc[1]}) read "
                                         f"address {rd_addr} while writing it")

    sim.add_testbench(checker, background=True)
