"""Queues between cores: a stream-native FIFO (:class:`Queue`) and a spike-step buffer (:class:`StepBuffer`).

:class:`Queue` is :class:`amaranth.lib.fifo.SyncFIFOBuffered` behind ``i`` / ``o`` stream ports.

The storage is an :class:`amaranth.lib.memory.Memory` with a synchronous read port (it maps to iCE40 block RAM) and
an output register, so the queue takes one transfer and gives one transfer per cycle. Timing, which the cycle model
in ``golden/cycles.py`` relies on: an entry written into an empty queue at cycle ``c`` is offered on ``o`` from cycle
``c + LATENCY``; ``i.ready`` depends only on the fill level, never on ``o.ready``.
"""

from amaranth.hdl import Array, Const, Module, Mux, Shape, Signal, Value, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .layouts import bits_for_count, spike_event
from .pool import div_const

__all__ = ["Queue", "StepBuffer", "LATENCY"]

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
    ValueError
        If ``depth`` is not an integer of at least 2.
    """

    def __init__(self, *, shape, depth):
        if not isinstance(depth, int) or isinstance(depth, bool) or depth < 2:
            self._MustUse__silence = True
            raise ValueError(f"queue depth must be an integer of at least 2, not {depth!r}")
        self._shape = shape
        self._depth = depth
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


class StepBuffer(wiring.Component):
    """Spike events of whole time steps, held as a bitmap: always ready on ``i``, one complete step at a time on ``o``.

    The buffer holds a whole sample: one slot of ``rows`` words of ``row`` bits per time step (word ``r`` of a slot
    holds neurons ``r * row ... r * row + row - 1``), and one flag per word that says it holds spikes of the current
    sample. It replaces a queue of ``T * (n + 1)`` spike events by ``T * n`` bits of block RAM.

    Writing (ready unless all ``time_steps`` slots hold complete steps not yet read, which cannot happen inside a
    :class:`hw.network.Network`, where a sample starts after the previous result): the events of a step must come
    row by row (all events of one word together, words in
    ascending order, any order inside a word, each neuron once), as a conv core (ascending indices) or an
    :class:`hw.pool.OrPool` with ``row`` a multiple of its pooled row width delivers them. The word being filled is
    kept in a register and written when the next event belongs to another word or at the end-of-step marker.

    Reading: a step is offered once its marker was written. For each flagged word, in ascending order, one cycle
    fetches it (the flag is cleared), then its spikes are offered lowest first, one per transfer, from the next cycle
    on; the cycle after the last transfer fetches the next word. When no flagged word is left the marker is offered.
    The reader starts a step in the cycle after both the step's marker was written and the previous step's marker was
    transferred; ``golden/cycles.py`` follows this timeline.

    Parameters
    ----------
    neurons : int
        Neurons per step (the flat index range).
    row : int
        Neurons per word (1 ... 64).
    time_steps : int
        Slots, one per step of a sample.

    Members
    -------
    i : In(stream.Signature(spike_event(bits_for_count(neurons))))
        Spike events and markers; ``ready`` depends only on the fill level.
    o : Out(stream.Signature(spike_event(bits_for_count(neurons))))
        The same events, ascending within each step, and the markers.

    Raises
    ------
    ValueError
        If a parameter is not a positive integer or ``row`` exceeds 64.
    """

    def __init__(self, *, neurons, row, time_steps):
        for name, value, high in (("neurons", neurons, None), ("row", row, 64), ("time_steps", time_steps, 1024)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1 or (high and value > high):
                self._MustUse__silence = True
                bound = f"from 1 to {high}" if high else "of at least 1"
                raise ValueError(f"step buffer {name} must be an integer {bound}, not {value!r}")
        self._neurons, self._row, self._steps = neurons, row, time_steps
        self._rows = -(-neurons // row)
        layout = spike_event(bits_for_count(neurons))
        super().__init__({"i": In(stream.Signature(layout)), "o": Out(stream.Signature(layout))})

    @property
    def rows(self):
        """Words per step."""
        return self._rows

    @property
    def bits(self):
        """Bitmap bits (the flags, ``time_steps * rows`` registers, not included)."""
        return self._steps * self._rows * self._row

    def elaborate(self, platform):
        m = Module()
        n, width, steps, rows = self._neurons, self._row, self._steps, self._rows

        m.submodules.bitmap = bitmap = Memory(shape=unsigned(width), depth=steps * rows, init=[])
        wr = bitmap.write_port()
        rd = bitmap.read_port()
        flags = [Signal(rows, name=f"flags{t}") for t in range(steps)]
        complete = Signal(range(steps + 1))

        # -- writer ---------------------------------------------------------------------------------------------
        w_slot = Signal(range(steps))
        w_base = Signal(range(steps * rows))
        has = Signal()
        cur_row = Signal(range(rows))
        cur_bits = Signal(width)
        index = self.i.payload.index
        row = Signal(range(rows))
        col = Signal(range(width))
        m.d.comb += [
            row.eq(div_const(index, width, n)),
            col.eq(index - row * width),
            self.i.ready.eq(complete != steps),
            wr.addr.eq(w_base + cur_row),
            wr.data.eq(cur_bits),
        ]
        flush = Signal()
        with m.If(self.i.valid & self.i.ready):
            with m.If(self.i.payload.end):
                m.d.comb += flush.eq(has)
                m.d.sync += [has.eq(0), w_slot.eq(Mux(w_slot == steps - 1, 0, w_slot + 1)),
                             w_base.eq(Mux(w_slot == steps - 1, 0, w_base + rows))]
            with m.Elif(has & (row == cur_row)):
                m.d.sync += cur_bits.eq(cur_bits | (Const(1, width) << col))
            with m.Else():
                m.d.comb += flush.eq(has)
                m.d.sync += [has.eq(1), cur_row.eq(row), cur_bits.eq(Const(1, width) << col)]
        m.d.comb += wr.en.eq(flush)

        # -- reader ---------------------------------------------------------------------------------------------
        r_slot = Signal(range(steps))
        r_base = Signal(range(steps * rows))
        loaded = Signal()
        cleared = Signal(width)
        word_base = Signal(range(rows * width))
        slot_flags = Signal(rows)
        m.d.comb += slot_flags.eq(Array(flags)[r_slot])
        next_row = Signal(range(rows))
        for r in reversed(range(rows)):
            with m.If(slot_flags[r]):
                m.d.comb += next_row.eq(r)
        remaining = Signal(width)
        m.d.comb += remaining.eq(Mux(loaded, rd.data & ~cleared, 0))
        low = Signal(range(width))
        for b in reversed(range(width)):
            with m.If(remaining[b]):
                m.d.comb += low.eq(b)
        active = complete != 0
        fetch = Signal()
        marker_out = Signal()
        m.d.comb += [
            rd.addr.eq(r_base + next_row),
            rd.en.eq(fetch),
            self.o.payload.index.eq(Mux(loaded, word_base + low, 0)),
            self.o.payload.end.eq(~loaded),
        ]
        with m.If(active):
            with m.If(loaded):
                m.d.comb += self.o.valid.eq(1)
                with m.If(self.o.ready):
                    m.d.sync += cleared.eq(cleared | (Const(1, width) << low))
                    with m.If((remaining & (remaining - 1)) == 0):
                        m.d.sync += loaded.eq(0)
            with m.Elif(slot_flags != 0):
                m.d.comb += fetch.eq(1)
                m.d.sync += [loaded.eq(1), cleared.eq(0), word_base.eq(next_row * width)]
            with m.Else():
                m.d.comb += [self.o.valid.eq(1), marker_out.eq(self.o.ready)]
                with m.If(self.o.ready):
                    m.d.sync += [r_slot.eq(Mux(r_slot == steps - 1, 0, r_slot + 1)),
                                 r_base.eq(Mux(r_slot == steps - 1, 0, r_base + rows))]

        # -- flags and the count of complete steps ---------------------------------------------------------------
        for t in range(steps):
            set_mask = Mux(flush & (w_slot == t), Const(1, rows) << cur_row, 0)
            clear_mask = Mux(fetch & (r_slot == t), Const(1, rows) << next_row, 0)
            m.d.sync += flags[t].eq((flags[t] | set_mask) & ~clear_mask)
        written = self.i.valid & self.i.ready & self.i.payload.end
        m.d.sync += complete.eq(complete + written - marker_out)
        return m
