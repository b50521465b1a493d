"""Queues between cores: a stream-native FIFO (:class:`Queue`) and a spike-step buffer (:class:`StepBuffer`).

:class:`Queue` is :class:`amaranth.lib.fifo.SyncFIFOBuffered` behind ``i`` / ``o`` stream ports.

The storage is an :class:`amaranth.lib.memory.Memory` with a synchronous read port (it maps to iCE40 block RAM) and
an output register, so the queue takes one transfer and gives one transfer per cycle. Timing, which the cycle model
in ``golden/cycles.py`` relies on: an entry written into an empty queue at cycle ``c`` is offered on ``o`` from cycle
``c + LATENCY``; ``i.ready`` depends only on the fill level, never on ``o.ready``.
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Shape, Signal, Value, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .dense import ebr_blocks
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
    """Spike events of whole time steps in block RAM: always ready on ``i``, one complete step at a time on ``o``.

    The buffer holds a whole sample: one slot of ``rows`` block-RAM words per time step, where the neurons of a step
    form words of ``row`` bits (word ``r`` holds neurons ``r * row ... r * row + row - 1``). It replaces a queue of
    ``T * (n + 1)`` spike events by about ``T * n`` bits of block RAM. A slot has one of two layouts
    (:attr:`listed`):

    - a **list**: the step's words that hold spikes, in ascending order, each with its row number but the top bit
      beside its ``row`` bits; per slot, registers count the words and the words of the lower half of the rows
      (they come first, so a word's top row bit is whether its place is at or past that count). The reader takes
      the words in list order, so that no logic searches for the next one. This is the default where a step has
      more than two words and the row number fits beside the bits without another block RAM
      (:func:`hw.dense.ebr_blocks`): the default network's hidden layer keeps 12 pooled neurons and 4 bits of row
      number in a 16-bit word.
    - a **bitmap**: word ``r`` of a slot at place ``r``, and a flag register per word that says it holds spikes of
      the current sample; the reader fetches the lowest flagged word (a priority encoder, formed one cycle ahead
      from the flags of the next cycle) and clears its flag.

    Writing (ready unless all ``time_steps`` slots hold complete steps not yet read, which cannot happen inside a
    :class:`hw.network.Network`, where a sample starts after the previous result): the events of a step must come
    row by row (all events of one word together, words in ascending order, any order inside a word, each neuron
    once), as a conv core (ascending indices) or an :class:`hw.pool.OrPool` with ``row`` a multiple of its pooled
    row width delivers them. The word being filled is kept in a register and written when the next event belongs to
    another word or at the end-of-step marker.

    Reading: a step is offered once its marker was written. For each word with spikes, in ascending order, one cycle
    fetches it, then its spikes are offered lowest first, one per transfer, from the next cycle on; the cycle after
    the last transfer fetches the next word. When no word is left the marker is offered. The input passes a register
    first (an event taken in cycle ``c`` is written in cycle ``c + 1``), and a written marker takes effect one cycle
    later still (in a bitmap, with the flag of the step's last word), so the reader starts a step three cycles after
    the step's marker was taken, or the cycle after the previous step's marker was transferred, whichever is later;
    ``golden/cycles.py`` follows this timeline (``BUFFER_DELAY``), in both layouts.

    Parameters
    ----------
    neurons : int
        Neurons per step (the flat index range).
    row : int
        Neurons per word (1 ... 64).
    time_steps : int
        Slots, one per step of a sample.
    listed : bool, optional
        The layout of a slot: a list (``True``) or a bitmap (``False``); by default a list where a step has more
        than two words and the list needs no more block RAM than a bitmap.

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

    def __init__(self, *, neurons, row, time_steps, listed=None):
        for name, value, high in (("neurons", neurons, None), ("row", row, 64), ("time_steps", time_steps, 1024)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1 or (high and value > high):
                self._MustUse__silence = True
                bound = f"from 1 to {high}" if high else "of at least 1"
                raise ValueError(f"step buffer {name} must be an integer {bound}, not {value!r}")
        self._neurons, self._row, self._steps = neurons, row, time_steps
        self._rows = -(-neurons // row)
        self._row_bits = (self._rows - 1).bit_length()  # of a row number; 0 for a single word
        self._lo_bits = max(self._row_bits - 1, 0)      # of it kept in a listed word
        depth = time_steps * self._rows
        if listed is None:
            # two flags per slot cost no more than a list's counts
            listed = self._rows > 2 and ebr_blocks(row + self._lo_bits, depth) <= ebr_blocks(row, depth)
        self._listed = bool(listed)
        layout = spike_event(bits_for_count(neurons))
        super().__init__({"i": In(stream.Signature(layout)), "o": Out(stream.Signature(layout))})

    @property
    def rows(self):
        """Words per step."""
        return self._rows

    @property
    def listed(self):
        """Whether the slots are lists of the words with spikes (else bitmaps with a flag register per word)."""
        return self._listed

    @property
    def word_bits(self):
        """Bits of a block-RAM word: ``row``, and in a list the row number but its top bit."""
        return self._row + (self._lo_bits if self._listed else 0)

    @property
    def bits(self):
        """Block-RAM bits: ``time_steps * rows`` words of :attr:`word_bits`."""
        return self._steps * self._rows * self.word_bits

    @property
    def register_bits(self):
        """Bits of the per-slot registers: the word counts and flag of a list, or the word flags of a bitmap."""
        if not self._listed:
            return self._steps * self._rows
        lower = bits_for_count((1 << self._lo_bits) + 1) if self._row_bits else 0
        return self._steps * (bits_for_count(self._rows + 1) + 1 + lower)

    def elaborate(self, platform):
        m = Module()
        n, width, steps, rows = self._neurons, self._row, self._steps, self._rows
        listed, row_bits, lo_bits = self._listed, self._row_bits, self._lo_bits
        half = 1 << lo_bits  # rows whose top bit is 0

        m.submodules.words = words = Memory(shape=unsigned(self.word_bits), depth=steps * rows, init=[])
        wr = words.write_port()
        rd = words.read_port()
        complete = Signal(range(steps + 1))

        def advance(slot):
            return Mux(slot == steps - 1, 0, slot + 1)

        def address(slot, base, word):
            # word ``word`` of slot ``slot``: the two side by side where a power of two allows, else an addition
            if rows & (rows - 1) == 0:
                return Cat(word[:row_bits], slot)
            if steps & (steps - 1) == 0:
                return Cat(slot[:(steps - 1).bit_length()], word)
            return base + word

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
            wr.data.eq(Cat(cur_bits, cur_row[:lo_bits]) if listed else cur_bits),
        ]
        step_end = in_valid & in_end
        new_word = Signal()
        with m.If(in_valid):
            with m.If(in_end):
                m.d.sync += [has.eq(0), w_slot.eq(advance(w_slot)),
                             w_base.eq(Mux(w_slot == steps - 1, 0, w_base + rows))]
            with m.Elif(has & (row == cur_row)):
                m.d.sync += cur_bits.eq(cur_bits | (Const(1, width) << col))
            with m.Else():
                m.d.comb += new_word.eq(1)
                m.d.sync += [has.eq(1), cur_row.eq(row), cur_bits.eq(Const(1, width) << col)]
        flush = (step_end | new_word) & has  # the word held is complete
        m.d.comb += wr.en.eq(flush)

        if listed:
            # per slot: the words of its step, whether there is one, and those of rows below ``half`` (they come
            # first)
            count = Array(Signal(range(rows + 1), name=f"count{t}") for t in range(steps))
            filled = Array(Signal(name=f"filled{t}") for t in range(steps))
            lower = Array(Signal(range(half + 1), name=f"lower{t}") for t in range(steps))
            # The next free place of the slot, and the lower words so far. The word held goes there when the next
            # one starts or at the marker, so that these follow ``has``, not the word arithmetic.
            k = Signal(range(rows + 1))
            k_lower = Signal(range(half + 1))
            m.d.comb += wr.addr.eq(address(w_slot, w_base, k))
            k_lower_next = Mux(has & (cur_row < half), k + 1, k_lower)
            with m.If(step_end):
                # ``has``: the step's last word is still held, so the step has one
                m.d.sync += [count[w_slot].eq(k + has), filled[w_slot].eq(has), lower[w_slot].eq(k_lower_next),
                             k.eq(0), k_lower.eq(0)]
            with m.Elif(new_word):
                m.d.sync += [k.eq(k + has), k_lower.eq(k_lower_next)]
        else:
            m.d.comb += wr.addr.eq(address(w_slot, w_base, cur_row))

        # -- reader ---------------------------------------------------------------------------------------------
        r_slot = Signal(range(steps))
        r_base = Signal(range(steps * rows))
        loaded = Signal()
        word_row = Signal(range(rows))  # the word being offered (its index times ``row`` is formed at the output)
        # The spikes left in that word: the block RAM's output in the cycle after the fetch, then a register that
        # loses the lowest bit at each transfer (``x & (x - 1)``: one carry chain, which also tells the last one).
        first = Signal()
        rest = Signal(width)
        remaining = Signal(width)
        after = Signal(width)
        m.d.comb += [remaining.eq(Mux(first, rd.data[:width], rest)), after.eq(remaining & (remaining - 1))]
        low = Signal(range(width))
        for b in reversed(range(width)):
            with m.If(remaining[b]):
                m.d.comb += low.eq(b)
        active = complete != 0
        more = Signal()  # a register: the step being read has a word left to fetch
        fetch = Signal()
        marker_out = Signal()
        m.d.comb += [
            rd.en.eq(fetch),
            self.o.payload.index.eq(Mux(loaded, word_row * width + low, 0)),
            self.o.payload.end.eq(~loaded),
        ]
        with m.If(active):
            with m.If(loaded):
                m.d.comb += self.o.valid.eq(1)
                with m.If(self.o.ready):
                    m.d.sync += [rest.eq(after), first.eq(0)]
                    with m.If(after == 0):
                        m.d.sync += loaded.eq(0)
            with m.Elif(more):
                m.d.comb += fetch.eq(1)
                m.d.sync += [loaded.eq(1), first.eq(1)]
            with m.Else():
                m.d.comb += [self.o.valid.eq(1), marker_out.eq(self.o.ready)]
                with m.If(self.o.ready):
                    m.d.sync += [r_slot.eq(advance(r_slot)), r_base.eq(Mux(r_slot == steps - 1, 0, r_base + rows))]

        if listed:
            # the next place of the slot being read (compared with each slot's counts, then selected: cheaper than
            # selecting the counts first)
            j = Signal(range(rows + 1))
            m.d.comb += rd.addr.eq(address(r_slot, r_base, j))
            with m.If(fetch):
                m.d.sync += j.eq(j + 1)
            with m.If(marker_out):
                m.d.sync += j.eq(0)
            # ``more`` is formed from this cycle's place and slot: it is stale only in the cycle after a fetch,
            # when the word fetched is offered and it is not used, and after the marker, where the next slot's
            # ``filled`` (written before its step counts as complete) stands in.
            left = Array(j != count[t] for t in range(steps))[r_slot]
            m.d.sync += more.eq(Mux(marker_out, filled[advance(r_slot)], left))
            if row_bits:
                # a word's row: the bits stored with it and a top bit that is set from the place of the slot's
                # first upper word on (``past``: that place was fetched)
                word_top = Signal()
                past = Signal()
                reached = Array(j == lower[t] for t in range(steps))[r_slot] | past
                m.d.comb += word_row.eq(Cat(rd.data[width:width + lo_bits], word_top))
                with m.If(fetch):
                    m.d.sync += [word_top.eq(reached), past.eq(reached)]
                with m.If(marker_out):
                    m.d.sync += past.eq(0)
        else:
            # The lowest flagged word of the slot being read, and whether there is one, are registers: each cycle
            # they are formed from the flags and the slot as they will be in the next cycle (a retiming: the same
            # values as when formed from the current ones, without the priority encoder on the paths that use them).
            flags = [Signal(rows, name=f"flags{t}") for t in range(steps)]
            flags_next = [Signal(rows, name=f"flags_next{t}") for t in range(steps)]
            next_row = Signal(range(rows))
            slot_next = Signal(rows)
            m.d.comb += [
                slot_next.eq(Array(flags_next)[Mux(marker_out, advance(r_slot), r_slot)]),
                rd.addr.eq(address(r_slot, r_base, next_row)),
            ]
            m.d.sync += more.eq(slot_next != 0)
            with m.Switch(slot_next):
                for r in range(rows):
                    with m.Case("-" * (rows - 1 - r) + "1" + "0" * r):
                        m.d.sync += next_row.eq(r)
                with m.Default():
                    m.d.sync += next_row.eq(0)
            with m.If(fetch):
                m.d.sync += word_row.eq(next_row)
            # A flushed word's flag is set, like the marker counted, one cycle later, from registers: the word
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

        # -- the count of complete steps, and ready ---------------------------------------------------------------
        # A taken marker counts one cycle after it was written (with the last word of its step).
        written = Signal()
        m.d.sync += [written.eq(step_end), complete.eq(complete + written - marker_out)]
        # ready: fewer than ``steps`` markers taken and not yet passed on (complete or still on their way in); a
        # register formed for the next cycle from the markers held now, with the marker taken and the marker passed
        # on in this cycle (both late, from the neighbours' handshakes) coming last, past the adder
        held = Signal(range(steps + 2))
        m.d.comb += held.eq(complete + written + step_end)
        taken = self.i.valid & self.i.ready & self.i.payload.end
        m.d.sync += room.eq(Mux(marker_out, ~taken | (held < steps), Mux(taken, held + 1 < steps, held < steps)))
        return m
