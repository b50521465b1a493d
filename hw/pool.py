"""OR-pooling on spike-event streams (docs/arithmetic.md section 3, ``pool``).

:class:`OrPool` maps a spike at ``(c, y, x)`` of a ``(C, H, W)`` map to the pooled neuron
``(c, y // Kh, x // Kw)`` of the ``(C, H // Kh, W // Kw)`` map and emits each pooled neuron at most once per step.
Spikes in the remainder rows and columns that do not fill a window are dropped, as the specification says.

It is a combinational filter with no latency: ``i.ready`` is ``o.ready``; a spike that becomes a pooled event passes
through in the cycle it is offered (``o.valid`` follows ``i.valid``), a spike that is dropped (already pooled in this
step, or in the remainder) is taken without output in a cycle where ``o.ready`` is high, and an end-of-step marker
passes through. It therefore adds no cycle to the timeline of its producer as long as its consumer is ready, and
``i.ready`` does not depend on the payload (the index decoding stays out of the producer's handshake path).

Order
-----
The filter remembers which pooled neurons of the *current pooled row* ``(c, y // Kh)`` it has emitted (``W // Kw``
bits) and starts afresh when the row changes or a marker passes. This is exact when, within a step, the input
events of one pooled row arrive together and the pooled rows in ascending order, which holds for ascending flat
indices (the conv core's order) and for this core's own output. The output has the same property: within a step,
pooled rows in ascending order; inside a row, pooled neurons in the order of their first input spike (ascending
``x // Kw`` when ``Kh = 1``, not necessarily otherwise).
"""

import numpy as np
from amaranth.hdl import Array, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hw.kinds.pool import PoolPlan
from hw.layouts import bits_for_count, spike_event
from hw.plan import count

__all__ = ["OrPool", "div_const", "mul_const", "timeline"]


#: Dividends below this bound (after the divisor's factors of two are shifted out) are divided by a table of at most
#: six inputs per bit. Larger ones take the reciprocal multiply: an 8-bit dividend's table is several LUT levels deep
#: and wide (fsdd_deep2's pools: 191 and 134 LUT4s with tables up to 256 entries, 145 and 97 with the multiply, whose
#: adders run on the carry chains; the table was its longest path at 21.5 MHz).
SMALL_DIVIDEND = 64


def mul_const(value, factor):
    """``value * factor`` for a non-negative constant ``factor``, as a sum of shifted copies of ``value``.

    Written out so that the synthesizer sees adders, not a multiplier it would map to a DSP block (the conv core
    needs all of them on the iCE40UP5K).
    """
    if factor == 0:
        return Const(0, 1)
    terms = [value << k for k in range(factor.bit_length()) if factor >> k & 1]
    while len(terms) > 1:  # a balanced tree of adders
        terms = [terms[k] + terms[k + 1] if k + 1 < len(terms) else terms[k] for k in range(0, len(terms), 2)]
    return terms[0]


def div_const(value, divisor, limit):
    """``floor(value / divisor)`` for ``0 <= value < limit``.

    The divisor's factors of two become a shift; what remains is a table lookup for small dividends
    (``SMALL_DIVIDEND``) or a multiply by a reciprocal constant and a shift (the multiply written out as adders by
    :func:`mul_const`).

    Parameters
    ----------
    value : amaranth Value
        Unsigned.
    divisor : int
        Positive constant.
    limit : int
        Exclusive upper bound of ``value``.

    Returns
    -------
    amaranth Value
    """
    zeros = (divisor & -divisor).bit_length() - 1  # floor(v / (2**z * d)) == floor((v >> z) / d)
    if zeros:
        value, divisor, limit = value >> zeros, divisor >> zeros, -(-limit // (1 << zeros))
    if divisor == 1:
        return value
    if limit <= SMALL_DIVIDEND:
        width = max(1, ((limit - 1) // divisor).bit_length())
        return Array(Const(v // divisor, width) for v in range(limit))[value]
    bits = max(1, (limit - 1).bit_length())
    shift = bits + (divisor - 1).bit_length()
    factor = -(-(1 << shift) // divisor)
    if limit <= 1 << 22:  # the bound is a theorem (Granlund & Montgomery 1994); check it where it is cheap
        n = np.arange(limit, dtype=object if shift + bits > 62 else np.int64)
        assert np.array_equal((n * factor) >> shift, n // divisor)
    return mul_const(value, factor) >> shift


def timeline(plan, markers, inputs, outputs):
    """The core's part of the cycle model (:func:`hw.cycles.cycles`): a combinational filter adds no cycle, so its
    end-of-step markers leave in the cycles its producer's arrive (with ``plan.registered`` one cycle later: the
    step buffer behind it is always ready, so the register never holds its producer up); it is never busy on its
    own."""
    markers = markers + int(plan.registered)
    done = markers[:, -1] + 1
    return {"markers": markers, "busy": np.zeros_like(done), "finish": done}


class OrPool(wiring.Component):
    """OR-pooling of spike events (see the module docstring for timing and order).

    Parameters
    ----------
    plan : hw.kinds.pool.PoolPlan
        The input map ``(C, H, W)``, the kernel ``(Kh, Kw)`` (the stride equals the kernel) and the pooled map.

    Members
    -------
    i : In(stream.Signature(spike_event(bits_for_count(C*H*W))))
    o : Out(stream.Signature(spike_event(bits_for_count(C*(H//Kh)*(W//Kw)))))
    row, col : Out(range(C*(H//Kh))), Out(range(W//Kw))
        Beside an event on ``o``: its pooled row ``c * (H // Kh) + y // Kh`` and column ``x // Kw``.

    Raises
    ------
    TypeError
        If ``plan`` is not a :class:`hw.kinds.pool.PoolPlan`.
    """

    def __init__(self, plan):
        if not isinstance(plan, PoolPlan):
            raise TypeError(f"OrPool needs a hw.kinds.pool.PoolPlan, not {plan!r}")
        self._plan = plan
        c, h, w = plan.in_shape
        super().__init__({
            "i": In(stream.Signature(spike_event(bits_for_count(c * h * w)))),
            "o": Out(stream.Signature(spike_event(bits_for_count(count(plan.out_shape))))),
            "row": Out(range(max(2, plan.out_shape[0] * plan.out_shape[1]))),
            "col": Out(range(max(2, plan.out_shape[2]))),
        })

    @property
    def plan(self):
        return self._plan

    @property
    def out_shape(self):
        return self._plan.out_shape

    def elaborate(self, platform):
        m = Module()
        c, h, w = self._plan.in_shape
        kh, kw = self._plan.kernel
        _, hp, wp = self._plan.out_shape

        # -- decode the flat index into the pooled row and column -------------------------------------------------
        # the event being filtered: the input itself, or (registered) the input taken into a register, which is
        # taken (forwarded or dropped) when the output is ready and refilled in the same cycle
        if self._plan.registered:
            src_valid, src_index, src_end = Signal(), Signal.like(self.i.payload.index), Signal()
            m.d.comb += self.i.ready.eq(~src_valid | self.o.ready)
            with m.If(self.i.ready):
                m.d.sync += [src_valid.eq(self.i.valid), src_index.eq(self.i.payload.index),
                             src_end.eq(self.i.payload.end)]
        else:
            src_valid, src_index, src_end = self.i.valid, self.i.payload.index, self.i.payload.end
            m.d.comb += self.i.ready.eq(self.o.ready)
        index = src_index
        row = Signal(range(max(2, c * h)))               # c * H + y
        col = Signal(range(max(2, w)))
        m.d.comb += [
            row.eq(div_const(index, w, c * h * w)),
            col.eq(index - mul_const(row, w)),
        ]
        pooled_row = Signal(range(max(2, c * hp)))
        pooled_col = Signal(range(max(2, wp)))
        m.d.comb += pooled_col.eq(div_const(col, kw, w))
        if h % kh == 0:
            # (c * H + y) // Kh == c * Hp + y // Kh, and no row is left over
            m.d.comb += pooled_row.eq(div_const(row, kh, c * h))
            in_rows = Const(1)
        else:
            channel = Signal(range(max(2, c)))
            y = Signal(range(max(2, h)))
            m.d.comb += [
                channel.eq(div_const(row, h, c * h)),
                y.eq(row - mul_const(channel, h)),
                pooled_row.eq(mul_const(channel, hp) + div_const(y, kh, h)),
            ]
            in_rows = y < hp * kh
        in_range = in_rows & (col < wp * kw)

        # -- the pooled neurons of the current row already emitted -----------------------------------------------
        current_row = Signal.like(pooled_row)
        row_open = Signal()
        seen = Signal(wp)
        same_row = row_open & (current_row == pooled_row)
        already = same_row & seen.bit_select(pooled_col, 1)
        end = src_end
        forward = end | (in_range & ~already)

        m.d.comb += [
            self.o.valid.eq(src_valid & forward),
            self.o.payload.end.eq(end),
            self.o.payload.index.eq(0),
        ]
        with m.If(~end):
            m.d.comb += self.o.payload.index.eq(mul_const(pooled_row, wp) + pooled_col)
        m.d.comb += [self.row.eq(pooled_row), self.col.eq(pooled_col)]

        with m.If(src_valid & self.o.ready):
            with m.If(end):
                m.d.sync += row_open.eq(0)
            with m.Elif(in_range):
                bit = Const(1, wp) << pooled_col
                m.d.sync += [row_open.eq(1), current_row.eq(pooled_row)]
                with m.If(same_row):
                    m.d.sync += seen.eq(seen | bit)
                with m.Else():
                    m.d.sync += seen.eq(bit)
        return m
