"""The step buffer: a reorder buffer of whole time steps between a producer of spike events and a buffered core.

Every buffered kind (dense, readout) reads its input from a :class:`StepBuffer`: it takes a step's spike events as
they come, always ready, and offers the step only when it is complete, ascending. Its layout (:class:`hw.kinds.buffer.
StepBufferPlan`) comes from the plan; its timeline is stated here, beside the RTL that causes it, as
:data:`BUFFER_DELAY`, and read by the buffered kinds' timelines (:func:`hw.dense.timeline`).
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .exclusive import ExclusiveMemory
from .kinds.buffer import StepBufferPlan
from .layouts import spike_event
from .pool import div_const, mul_const

__all__ = ["StepBuffer", "BUFFER_DELAY"]

#: Cycles from a step buffer taking a step's end-of-step marker to the first cycle its reader may start that step
#: (the input register, then the word flags or list counts and the count of complete steps).
BUFFER_DELAY = 3


class StepBuffer(wiring.Component):
    """Spike events of whole time steps in block RAM: always ready on ``i``, one complete step at a time on ``o``.

    The buffer holds a whole sample: one slot of ``rows`` block-RAM words per time step, where the neurons of a step
    form words of ``row`` bits (word ``r`` holds neurons ``r * row ... r * row + row - 1``). It replaces a queue of
    ``T * (n + 1)`` spike events by about ``T * n`` bits of block RAM. A slot has one of two layouts
    (``plan.listed``, chosen by :func:`hw.kinds.buffer.step_buffer`):

    - a **list**: the step's words that hold spikes, in ascending order, each with its row number but the top bit
      beside its ``row`` bits; per slot, registers count the words and the words of the lower half of the rows
      (they come first, so a word's top row bit is whether its place is at or past that count). The reader takes
      the words in list order, so that no logic searches for the next one. This is the default where a step has
      more than two words and the row number fits beside the bits without another block RAM
      on the device: the default network's hidden layer keeps 12 pooled neurons and 4 bits of row
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
    the cycle model (:mod:`hw.cycles`) follows this timeline (:data:`BUFFER_DELAY`), in both layouts.

    Parameters
    ----------
    plan : hw.kinds.buffer.StepBufferPlan
        The layout: ``neurons`` per step, ``row`` neurons per word (word ``r`` holds neurons ``r * row ...
        r * row + row - 1``), ``time_steps`` slots, and whether a slot is a list (``listed``).

    Members
    -------
    i : In(stream.Signature(spike_event(plan.index_bits)))
        Spike events and markers; ``ready`` depends only on the fill level.
    o : Out(stream.Signature(spike_event(plan.index_bits)))
        The same events, ascending within each step, and the markers.
    row, col : Out(range(plan.rows)), Out(range(plan.row))
        Beside an event on ``o``: its word and its place in the word (``index == row * plan.row + col``), for a
        consumer that would otherwise divide the index (:class:`hw.spikeconv.SpikeConvLayer` behind a pool).
    in_row, in_col : In(range(plan.in_rows)), In(range(plan.in_width))
        Only with ``plan.coordinates``: beside an event on ``i``, its row and place in the row, which the producer
        (an :class:`hw.pool.OrPool`, whose rows fill the words whole) knows; the buffer then divides no index.

    Raises
    ------
    TypeError
        If ``plan`` is not a :class:`hw.kinds.buffer.StepBufferPlan`.
    """

    def __init__(self, plan):
        if not isinstance(plan, StepBufferPlan):
            raise TypeError(f"StepBuffer needs a hw.kinds.buffer.StepBufferPlan, not {plan!r}")
        self._plan = plan
        layout = spike_event(plan.index_bits)
        members = {"i": In(stream.Signature(layout)), "o": Out(stream.Signature(layout)),
                   "row": Out(range(max(2, plan.rows))), "col": Out(range(max(2, plan.row)))}
        if plan.coordinates:
            members |= {"in_row": In(range(max(2, plan.in_rows))), "in_col": In(range(max(2, plan.in_width)))}
        super().__init__(members)

    @property
    def plan(self):
        return self._plan

    def elaborate(self, platform):
        m = Module()
        p = self._plan
        n, width, steps, rows = p.neurons, p.row, p.time_steps, p.rows
        listed, row_bits, lo_bits = p.listed, p.row_bits, p.lo_bits
        half = 1 << lo_bits  # rows whose top bit is 0

        # The reader reads complete steps only and the writer fills a later one: never the same word in one cycle.
        m.submodules.words = words = ExclusiveMemory(shape=unsigned(p.word_bits), depth=steps * rows, init=[])
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
        in_end = Signal()
        room = Signal(init=1)
        m.d.comb += self.i.ready.eq(room)
        m.d.sync += [in_valid.eq(self.i.valid & self.i.ready), in_end.eq(self.i.payload.end)]
        row = Signal(range(rows))
        col = Signal(range(width))
        if p.coordinates:
            # the word and the bit from the producer's row number alone, which keeps the division of the whole
            # index off the path to the word comparison below: where a word holds one row, the row and place are
            # the word and the bit (the division by one and the zero-width row within the word add no logic);
            # where it holds a power of two of them, a shift and a constant multiple of the row's low bits
            in_row, in_col = Signal.like(self.in_row), Signal.like(self.in_col)
            m.d.sync += [in_row.eq(self.in_row), in_col.eq(self.in_col)]
            k = p.rows_per_word
            m.d.comb += row.eq(div_const(in_row, k, p.in_rows))
            if k & (k - 1) == 0:
                within = in_row[:(k - 1).bit_length()]  # the producer's row within its word
            else:
                within = (in_row - mul_const(row, k))[:(k - 1).bit_length()]
            m.d.comb += col.eq(mul_const(within, p.in_width) + in_col)
        else:
            in_index = Signal.like(self.i.payload.index)
            m.d.sync += in_index.eq(self.i.payload.index)
            m.d.comb += [row.eq(div_const(in_index, width, n)), col.eq(in_index - row * width)]
        m.d.comb += wr.data.eq(Cat(cur_bits, cur_row[:lo_bits]) if listed else cur_bits)
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
            self.row.eq(word_row),
            self.col.eq(low),
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
