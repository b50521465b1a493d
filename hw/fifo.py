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
    The input passes a register first (an event taken in cycle ``c`` is written in cycle ``c + 1``), and a written
    word's flag and a written marker take effect one cycle later still, so the reader starts a step three cycles
    after the step's marker was taken, or the cycle after the previous step's marker was transferred, whichever is
    later; ``golden/cycles.py`` follows this timeline (``BUFFER_DELAY``).

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
        # The input is registered first (the writer works on the event taken in the previous cycle), so that no
        # path runs from the producer's output through the word arithmetic below.
        in_valid = Signal()
        in_index = Signal.like(self.i.payload.index)
        in_end = Signal()
        written = Signal()  # a marker was written in the previous cycle; its step counts as complete from now
        # ready: fewer than ``steps`` complete steps, counting the markers still on their way in; a register formed
        # from the next cycle's values (a retiming, so that no adder lies on the handshake path)
        room = Signal(init=1)
        m.d.comb += self.i.ready.eq(room)
        m.d.sync += [in_valid.eq(self.i.valid & self.i.ready), in_index.eq(self.i.payload.index),
                     in_end.eq(self.i.payload.end)]
        index = in_index
        row = Signal(range(rows))
        col = Signal(range(width))
        m.d.comb += [
            row.eq(div_const(index, width, n)),
            col.eq(index - row * width),
            wr.addr.eq(w_base + cur_row),
            wr.data.eq(cur_bits),
        ]
        flush = Signal()
        with m.If(in_valid):
            with m.If(in_end):
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
        word_row = Signal(range(rows))  # the word being offered (its index times ``row`` is formed at the output)
        # The lowest flagged word of the slot being read, and whether there is one, are registers: each cycle they
        # are formed from the flags and the slot as they will be in the next cycle (a retiming: the same values
        # as when formed from the current ones, without the priority encoder on the paths that use them).
        next_row = Signal(range(rows))
        any_flag = Signal()
        r_slot_next = Signal.like(r_slot)
        flags_next = [Signal(rows, name=f"flags_next{t}") for t in range(steps)]
        slot_next = Signal(rows)
        m.d.comb += slot_next.eq(Array(flags_next)[r_slot_next])
        m.d.sync += any_flag.eq(slot_next != 0)
        with m.Switch(slot_next):
            for r in range(rows):
                with m.Case("-" * (rows - 1 - r) + "1" + "0" * r):
                    m.d.sync += next_row.eq(r)
            with m.Default():
                m.d.sync += next_row.eq(0)
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
            self.o.payload.index.eq(Mux(loaded, word_row * width + low, 0)),
            self.o.payload.end.eq(~loaded),
        ]
        with m.If(active):
            with m.If(loaded):
                m.d.comb += self.o.valid.eq(1)
                with m.If(self.o.ready):
                    m.d.sync += cleared.eq(cleared | (Const(1, width) << low))
                    with m.If((remaining & (remaining - 1)) == 0):
                        m.d.sync += loaded.eq(0)
            with m.Elif(any_flag):
                m.d.comb += fetch.eq(1)
                m.d.sync += [loaded.eq(1), cleared.eq(0), word_row.eq(next_row)]
            with m.Else():
                m.d.comb += [self.o.valid.eq(1), marker_out.eq(self.o.ready)]
                with m.If(self.o.ready):
                    m.d.sync += r_base.eq(Mux(r_slot == steps - 1, 0, r_base + rows))
        m.d.comb += r_slot_next.eq(Mux(marker_out, Mux(r_slot == steps - 1, 0, r_slot + 1), r_slot))
        m.d.sync += r_slot.eq(r_slot_next)

        # -- flags and the count of complete steps ---------------------------------------------------------------
        # A flushed word's flag is set, and a taken marker counted, one cycle later, from registers: the word
        # arithmetic of the writer and the flag encoding of the reader then never meet on one path.
        set_valid = Signal()
        set_slot = Signal.like(w_slot)
        set_row = Signal.like(cur_row)
        m.d.sync += [set_valid.eq(flush), set_slot.eq(w_slot), set_row.eq(cur_row)]
        for t in range(steps):
            set_mask = Mux(set_valid & (set_slot == t), Const(1, rows) << set_row, 0)
            clear_mask = Mux(fetch & (r_slot == t), Const(1, rows) << next_row, 0)
            m.d.comb += flags_next[t].eq((flags[t] | set_mask) & ~clear_mask)
            m.d.sync += flags[t].eq(flags_next[t])
        m.d.sync += written.eq(in_valid & in_end)
        complete_next = complete + written - marker_out
        m.d.sync += complete.eq(complete_next)
        taken_marker = self.i.valid & self.i.ready & self.i.payload.end
        m.d.sync += room.eq(complete_next + (in_valid & in_end) + taken_marker < steps)
        return m
