"""Event-driven convolution on spike maps: work per input spike, only on the output neurons in its reach.

A ``conv2d`` layer after the first one (kind ``spikeconv``, plan :class:`hw.kinds.spikeconv.SpikeConvPlan`) reads
the spikes of a ``(Ci, H, W)`` map, one step at a time, from a step buffer (ascending flat indices ``(c, y, x)``),
and has ``Co x Ho x Wo`` LIF neurons whose membranes carry across the steps of a sample (docs/arithmetic.md).

Accumulate
----------
The currents of the step (one per output neuron, starting at the channel's bias) live in a memory of
``G * Ho * Wo`` words of ``lanes`` currents (``G = ceil(Co / lanes)`` lane groups; word ``g * Ho*Wo + oy * Wo + ox``
holds channels ``g * lanes ... g * lanes + lanes - 1`` at ``(oy, ox)``). An input spike at ``(c, y, x)`` reaches
the outputs ``(oy, ox)`` with ``oy * Sh - Ph + ky == y`` and ``ox * Sw - Pw + kx == x`` for kernel taps
``(ky, kx)`` inside the kernel and outputs inside the map; per axis these are ``n`` taps ``k0, k0 + S, ...`` on
outputs ``o0, o0 - 1, ...`` (the plan's ``row_reach``, ``col_reach``, small tables indexed by ``y`` and ``x``). The
core visits exactly those, ``G`` words each, one word per cycle: it reads the weight word of tap ``(c, ky, kx)``
and group ``g`` (a ROM of ``Ci*Kh*Kw * S`` words of ``lanes`` INT8 weights, ``S`` the row stride) and the current
word, and writes their lane-wise sum back in the next cycle. The current memory's read port is transparent for its
write port, so a visit that reads the word written in the same cycle (the same output reached by two consecutive
spikes) gets the new value. No multiplier: a spike is 0 or 1, so a visit only adds the weights.

A spike is held in a register from the cycle after it is taken; the visits run from that cycle on, and the next
spike (or the marker) is taken in the cycle of the last visit: a spike costs ``max(1, ny * nx * G)`` cycles
(:func:`hw.kinds.spikeconv.visits`; one for a spike that reaches no output).

Sweep
-----
At the end-of-step marker (taken at cycle ``X``) the core's :class:`hw.sweep.LIFSweep`, which holds the currents and
the membranes, sweeps the ``M = Co*Ho*Wo`` neurons in ascending flat order ``(o, oy, ox)`` through one LIF update (:func:`hw.lif.membrane_base`, :func:`hw.lif.saturate`, the arithmetic
of :class:`hw.dense.DenseLayer`): neuron ``n`` is read (its current word and its membrane) in cycle ``X + 1 + n``
and updated in ``X + 3 + n`` (after a register stage), where its spike is offered on ``o``, its membrane written
back (cleared at the last step of a sample) and its current reset to the channel's bias (one lane of the word,
through byte enables). The end-of-step marker follows at ``X + M + 3``; the core takes input again from the cycle
after its transfer. An output not ready holds the sweep (the read ports keep their data). With the membranes in
SPRAM (plan option ``state``), the single port reads neuron ``n`` in ``X + 1 + 2n`` and writes it back in
``X + 4 + 2n``: the marker follows at ``X + 2M + 3`` (:func:`hw.sweep.sweep_cycles`).

Timing with an always-valid input and an always-ready output, for a step whose spikes cost ``V`` cycles in all:
``1 + V`` cycles to take the events and the marker (the first spike is held from the cycle after its transfer),
``M + 2`` cycles of sweep (``2M + 2`` with the membranes in SPRAM), ``1`` cycle for the output marker
(:func:`hw.sweep.sweep_cycles`). :func:`timeline` is the core's part of the cycle model
(:mod:`hw.cycles`), behind the step buffer that feeds it (:func:`hw.dense.back_end_timeline` with the cost of each
input neuron's spike).
"""

import numpy as np
from amaranth.hdl import Array, Cat, Const, Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .dense import back_end_timeline
from .kinds.spikeconv import SpikeConvPlan, visits
from .layouts import bits_for_count, spike_event
from .pool import div_const, mul_const
from .sweep import LIFSweep, sweep_cycles

__all__ = ["SpikeConvLayer", "weight_words", "timeline", "step_cycles", "weight_rom"]


def weight_words(plan):
    """The weight ROM as a list of ``Ci*Kh*Kw * S`` words of ``lanes`` INT8 values: word ``tap * S + g`` holds
    ``w[g * lanes + l, c, ky, kx]`` in lane ``l`` (``tap = (c * Kh + ky) * Kw + kx``), zero past ``Co`` and
    past ``G``."""
    weights = np.asarray(plan.layer.weights)
    co = weights.shape[0]
    words = []
    for tap in weights.reshape(co, -1).T:
        for g in range(plan.stride):
            words.append([int(tap[g * plan.lanes + l]) if g < plan.groups and g * plan.lanes + l < co else 0
                          for l in range(plan.lanes)])
    return words


def weight_rom(plan):
    """The weight ROM of a spike convolution or a dense first layer (:func:`weight_words`): block RAM, initialized
    by the bitstream. (One place to change where the weights are kept.)"""
    words = weight_words(plan)
    return Memory(shape=data.ArrayLayout(signed(8), plan.lanes), depth=len(words), init=words)


def step_cycles(plan, spikes):
    """Cycles of one step (ideal environment): ``1 + V + M + 3`` (``1 + V + 2M + 3`` with the membranes in SPRAM),
    ``V`` the cost of the step's input spikes (:func:`hw.kinds.spikeconv.visits`). ``spikes``: (..., Ci*H*W) bool;
    the result has the leading shape."""
    spent = np.asarray(spikes, dtype=bool).astype(np.int64) @ visits(plan)
    return spent + 1 + sweep_cycles(plan.neurons, plan.state)


def timeline(plan, markers, inputs, outputs):
    """The core's part of the cycle model (:func:`hw.cycles.cycles`): :func:`hw.dense.back_end_timeline` with the
    cost of every input neuron's spike; the core writes its output marker at ``X + M + 3`` and takes input again from
    ``X + M + 4`` (``X + 2M + 3`` and ``X + 2M + 4`` with the membranes in SPRAM: :func:`hw.sweep.sweep_cycles`).

    Returns
    -------
    dict
        ``markers`` (N, T): the cycle each output marker is transferred; ``busy`` (N,): the step times
        (:func:`step_cycles`) summed; ``finish`` (N,): the cycle after its last step.
    """
    sweep = sweep_cycles(plan.neurons, plan.state)
    take, spent = back_end_timeline(plan, markers, inputs, after_sweep=sweep + 1 - plan.neurons, cost=visits(plan))
    out = take + sweep
    busy = spent + plan.time_steps * (1 + sweep)
    return {"markers": out, "busy": busy, "finish": out[:, -1] + 1}


def _table(values, width_of):
    return Array(Const(v, range(max(2, width_of + 1))) for v in values)


class SpikeConvLayer(wiring.Component):
    """A convolution of LIF neurons on spike events (see the module docstring).

    Parameters
    ----------
    plan : hw.kinds.spikeconv.SpikeConvPlan
        The layer, its lanes and groups, the reach tables and ``T`` (the membranes are cleared after every ``T``
        steps, one sample).

    Members
    -------
    i : In(stream.Signature(spike_event(bits_for_count(Ci*H*W))))
        Input spike events, ascending within a step, each step closed by one marker.
    o : Out(stream.Signature(spike_event(bits_for_count(Co*Ho*Wo))))
        Output spike events in ascending flat order, each step closed by one marker.

    Raises
    ------
    TypeError
        If ``plan`` is not a :class:`hw.kinds.spikeconv.SpikeConvPlan`.
    """

    def __init__(self, plan):
        if not isinstance(plan, SpikeConvPlan):
            raise TypeError(f"SpikeConvLayer needs a hw.kinds.spikeconv.SpikeConvPlan, not {plan!r}")
        self._plan = plan
        ci, h, w = plan.in_shape
        members = {
            "i": In(stream.Signature(spike_event(bits_for_count(ci * h * w)))),
            "o": Out(stream.Signature(spike_event(bits_for_count(plan.neurons)))),
        }
        if plan.coordinates:
            members |= {"row": In(range(max(2, ci * h))), "col": In(range(max(2, w)))}
        super().__init__(members)

    @property
    def plan(self):
        return self._plan

    def elaborate(self, platform):
        m = Module()
        p = self._plan
        layer, neuron = p.layer, p.layer.neuron
        ci, h, w = p.in_shape
        co, ho, wo = p.out_shape
        (kh, kw), (sh, sw) = layer.kernel, layer.stride
        lanes, groups, steps = p.lanes, p.groups, p.time_steps
        positions, n_out = p.positions, p.neurons
        acc_bits, bits = layer.acc_bits, neuron.mem_bits
        bias = [int(b) for b in layer.bias]

        m.submodules.weights = rom = weight_rom(p)
        w_rd = rom.read_port()
        m.submodules.state = state = LIFSweep(neuron=neuron, acc_bits=acc_bits, bias=layer.bias,
                                              positions=positions, lanes=lanes, time_steps=steps, repeat=1,
                                              reset_every_step=True, state=p.state)
        wiring.connect(m, state.o, wiring.flipped(self.o))

        # -- the spike held: its coordinates and reach ----------------------------------------------------------
        held = Signal()
        index = Signal.like(self.i.payload.index)
        line = Signal(range(max(2, ci * h)))             # c * H + y
        c = Signal(range(max(2, ci)))
        y = Signal(range(max(2, h)))
        x = Signal(range(max(2, w)))
        if p.coordinates:
            # the buffer's word is the row c * H + y, the place in it x: held as they come, no division
            held_line, held_x = Signal.like(line), Signal.like(x)
            m.d.comb += [line.eq(held_line), x.eq(held_x)]
        else:
            m.d.comb += [
                line.eq(div_const(index, w, ci * h * w)),
                x.eq(index - mul_const(line, w)),
            ]
        m.d.comb += [
            c.eq(div_const(line, h, ci * h)),
            y.eq(line - mul_const(c, h)),
        ]
        ky0 = _table([k for k, _, _ in p.row_reach], kh)[y]
        oy0 = _table([o for _, o, _ in p.row_reach], ho)[y]
        ny = _table([n for _, _, n in p.row_reach], kh)[y]
        kx0 = _table([k for k, _, _ in p.col_reach], kw)[x]
        ox0 = _table([o for _, o, _ in p.col_reach], wo)[x]
        nx = _table([n for _, _, n in p.col_reach], kw)[x]

        j = Signal(range(max(2, kh)))    # kernel row in reach, counted
        i = Signal(range(max(2, kw)))    # kernel column in reach, counted
        g = Signal(range(max(2, groups)))
        empty = (ny == 0) | (nx == 0)
        last_g = g == groups - 1
        last_i = i == nx - 1
        last = empty | (last_g & last_i & (j == ny - 1))

        # -- take: a spike when none is held or in the cycle of the held one's last visit; the marker likewise ------
        m.d.comb += self.i.ready.eq(~state.active & (~held | last))
        take = self.i.valid & self.i.ready
        with m.If(held):
            with m.If(last):
                m.d.sync += [held.eq(0), j.eq(0), i.eq(0), g.eq(0)]
            with m.Elif(last_g):
                m.d.sync += g.eq(0)
                with m.If(last_i):
                    m.d.sync += [i.eq(0), j.eq(j + 1)]
                with m.Else():
                    m.d.sync += i.eq(i + 1)
            with m.Else():
                m.d.sync += g.eq(g + 1)
        with m.If(take & ~self.i.payload.end):
            m.d.sync += held.eq(1)
            if p.coordinates:
                m.d.sync += [held_line.eq(self.row), held_x.eq(self.col)]
            else:
                m.d.sync += index.eq(self.i.payload.index)
        m.d.comb += state.start.eq(take & self.i.payload.end)

        # -- visit: the weight word of tap (c, ky, kx) and group g, added in the next cycle to the current word of
        # group g at (oy, ox) -------------------------------------------------------------------------------------
        ky = Signal(range(max(2, kh)))
        kx = Signal(range(max(2, kw)))
        oy = Signal(range(max(2, ho)))
        ox = Signal(range(max(2, wo)))
        m.d.comb += [ky.eq(ky0 + mul_const(j, sh)), kx.eq(kx0 + mul_const(i, sw)), oy.eq(oy0 - j), ox.eq(ox0 - i)]
        tap = Signal(range(max(2, ci * kh * kw)))
        m.d.comb += tap.eq(mul_const(mul_const(c, kh) + ky, kw) + kx)
        stride_bits = (p.stride - 1).bit_length()
        m.d.comb += [
            w_rd.addr.eq(Cat(g[:stride_bits], tap) if stride_bits else tap),
            state.visit.eq(held & ~empty),
            state.word.eq(mul_const(g, positions) + mul_const(oy, wo) + ox),
        ]
        for l in range(lanes):
            m.d.comb += state.addend[l].eq(w_rd.data[l])
        return m
