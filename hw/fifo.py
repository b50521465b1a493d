"""A stream-native FIFO: :class:`amaranth.lib.fifo.SyncFIFOBuffered` behind ``i`` / ``o`` stream ports.

The storage is an :class:`amaranth.lib.memory.Memory` with a synchronous read port (it maps to block RAM) and an
output register, so the queue takes one transfer and gives one transfer per cycle. Timing: an entry written into an
empty queue at cycle ``c`` is offered on ``o`` from cycle ``c + LATENCY``; ``i.ready`` depends only on the fill
level, never on ``o.ready``. The network's debug stream uses one per LIF layer. (The step buffer between cores is a
reorder buffer, not a FIFO: :mod:`hw.stepbuffer`.)
"""

from amaranth.hdl import Module, Shape, Value
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from golden.checks import check_int

__all__ = ["Queue", "LATENCY"]

#: Cycles from a write into an empty queue to the entry being offered on ``o``.
LATENCY = 2


class Queue(wiring.Component):
    """First-in first-out queue of stream transfers.

    Parameters
    ----------
    shape : shape-like
        Payload shape or layout (for example ``hw.layouts.spike_event(9)``).
    depth : int
        Number of entries it holds, at least 2.

    Members
    -------
    i : In(stream.Signature(shape))
        Entries in; ``ready`` while not full.
    o : Out(stream.Signature(shape))
        Entries out, in order; ``valid`` while not empty (after ``LATENCY`` cycles).
    level : Out(range(depth + 1))
        Number of entries held.

    Raises
    ------
    TypeError, ValueError
        If ``depth`` is not an integer of at least 2.
    """

    def __init__(self, *, shape, depth):
        self._depth = check_int("queue depth", depth, 2)
        self._shape = shape
        super().__init__({
            "i": In(stream.Signature(shape)),
            "o": Out(stream.Signature(shape)),
            "level": Out(range(depth + 1)),
        })

    @property
    def depth(self):
        return self._depth

    @property
    def bits(self):
        """Storage bits: ``depth * width`` (the output register included)."""
        return self._depth * Shape.cast(self._shape).width

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=Shape.cast(self._shape).width, depth=self._depth)
        m.d.comb += [
            fifo.w_data.eq(Value.cast(self.i.payload)),
            fifo.w_en.eq(self.i.valid),
            self.i.ready.eq(fifo.w_rdy),
            Value.cast(self.o.payload).eq(fifo.r_data),
            self.o.valid.eq(fifo.r_rdy),
            fifo.r_en.eq(self.o.ready),
            self.level.eq(fifo.level),
        ]
        return m
